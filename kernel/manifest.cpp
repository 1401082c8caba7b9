#include "manifest.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <toml++/toml.h>

#include "config_table.h"
#include "spelling.h"
#include "status.h"

namespace dsk::kernel {
namespace {

[[noreturn]] void fail(const std::string& at, const std::string& message) {
    throw Error(DSK_INVALID_ARGUMENT, at + ": " + message);
}

std::string required_string(const toml::table& plugin, const std::string& file, const char* key) {
    const toml::node* node = plugin.get(key);
    if (!node) fail(file, "[plugin] has no '" + std::string(key) + "' key");
    if (!node->is_string()) fail(where(*node), std::string(key) + " must be a string");
    return node->as_string()->get();
}

std::vector<std::string> string_list(const toml::table& plugin, const char* key) {
    std::vector<std::string> out;
    const toml::node* node = plugin.get(key);
    if (!node) return out;
    const toml::array* array = node->as_array();
    if (!array) fail(where(*node), std::string(key) + " must be an array of strings");
    for (const auto& item : *array) {
        if (!item.is_string()) fail(where(item), std::string(key) + " must hold strings only");
        out.push_back(item.as_string()->get());
    }
    return out;
}

}  // namespace

Manifest read_manifest(const std::string& path) {
    toml::table doc;
    try {
        doc = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        std::string at = path + ":" + std::to_string(e.source().begin.line) + ":" +
                         std::to_string(e.source().begin.column);
        fail(at, "TOML syntax error: " + std::string(e.description()));
    }
    for (const auto& [key, node] : doc) {
        if (key != "plugin" && key != "requires")
            fail(where(key, node), "unknown section '" + std::string(key.str()) + "'" +
                                  did_you_mean(key.str(), {"plugin", "requires"}));
    }
    const toml::table* plugin = doc["plugin"].as_table();
    if (!plugin) fail(path, "no [plugin] table; a manifest starts with [plugin] name = ...");
    static const std::vector<std::string> known = {
        "name",     "version",  "description",      "library", "abi",
        "kinds",    "provides", "system_libraries"};
    for (const auto& [key, node] : *plugin)
        if (std::find(known.begin(), known.end(), key.str()) == known.end())
            fail(where(key, node), "unknown key 'plugin." + std::string(key.str()) + "'" +
                                  did_you_mean(key.str(), known));

    Manifest m;
    m.path = path;
    m.name = required_string(*plugin, path, "name");
    std::string version = required_string(*plugin, path, "version");
    auto v = Version::parse(version);
    if (!v) fail(where(*plugin->get("version")), "version \"" + version + "\" is not a semantic version (MAJOR.MINOR.PATCH)");
    m.version = *v;
    std::string library = required_string(*plugin, path, "library");
    m.library_path = (std::filesystem::path(path).parent_path() / library).lexically_normal().string();
    std::string abi = required_string(*plugin, path, "abi");
    auto range = VersionRange::parse(abi);
    if (!range) fail(where(*plugin->get("abi")), "abi \"" + abi + "\" is not a version range (e.g. \">=1.0, <2\")");
    m.abi = *range;
    if (auto* d = plugin->get("description"); d && d->is_string()) m.description = d->as_string()->get();
    m.kinds = string_list(*plugin, "kinds");
    m.provides = string_list(*plugin, "provides");
    m.system_libraries = string_list(*plugin, "system_libraries");

    std::set<std::string> prefixes;
    for (const auto& p : m.provides) {
        auto colon = p.find(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == p.size())
            fail(where(*plugin->get("provides")), "provides entry \"" + p + "\" must be \"kind:name\"");
        prefixes.insert(p.substr(0, colon));
    }
    if (prefixes != std::set<std::string>(m.kinds.begin(), m.kinds.end()))
        fail(where(*plugin->get("kinds")),
             "kinds must list exactly the kinds named in provides (\"kind:name\")");

    if (const toml::node* req = doc.get("requires")) {
        const toml::table* table = req->as_table();
        if (!table) fail(where(*req), "requires must be a table: other-plugin = \">=1.0\"");
        for (const auto& [key, node] : *table) {
            const toml::value<std::string>* text = node.as_string();
            if (!text) fail(where(node), "requires." + std::string(key.str()) + " must be a version range string");
            auto r = VersionRange::parse(text->get());
            if (!r) fail(where(node), "requires." + std::string(key.str()) + " = \"" + text->get() + "\" is not a version range");
            m.requirements.push_back({std::string(key.str()), *r, where(node)});
        }
    }
    return m;
}

}  // namespace dsk::kernel
