// dsk_config: a TOML table handed to plugins through the host table, plus the dotted-path
// navigation ("stages.0.optimizer.lr") and source locations ("file:12:5") shared by manifests,
// pipelines and --set overrides.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <toml++/toml.h>

#include "dsk/dsk_plugin.h"

// Borrowed view of a table owned elsewhere (a pipeline, a results table).
struct dsk_config {
    dsk_config(toml::table* t = nullptr, std::string prefix = {}) : table(t), path_prefix(std::move(prefix)) {}

    toml::table* table = nullptr;
    std::string path_prefix;  // "stages[0]": how messages name keys of this table
    // Views of sub-tables handed out by config_table, owned here.
    mutable std::map<std::string, std::unique_ptr<dsk_config>> sections;
};

// A table that owns its storage (host->config_create).
struct OwnedConfig : dsk_config {
    toml::table storage;
};

namespace dsk::kernel {

// "file:line:column" of a node, or "<--set>" for values that came from an override.
std::string where(const toml::node& node);
// Where a key itself is written; keys that came from --set fall back to their value's source.
std::string where(const toml::key& key, const toml::node& value);
std::string type_name(const toml::node& node);

// Follows a dotted path; numeric parts index arrays. nullptr when absent.
toml::node* find_path(toml::table& root, std::string_view path);
const toml::node* find_path(const toml::table& root, std::string_view path);

// Sets `path` to `value`, creating intermediate tables. Throws Error(INVALID_ARGUMENT) when a
// part of the path exists with a non-table type.
void set_path(toml::table& root, std::string_view path, toml::node&& value);

// Parses a TOML literal ("3", "0.5", "\"sgd\"", "[1, 2]", "true"). Text that is not a valid
// literal becomes a string, so `--set pipeline.name=foo` works unquoted.
toml::table parse_value_literal(std::string_view literal, const std::string& source_name);

// The host table's config_* functions (see dsk_host_api).
void fill_config_api(dsk_host_api& api);

}  // namespace dsk::kernel
