// A pipeline file, parsed, overridden (--set), checked against the schemas that the stage plugins
// publish, and resolved to the plugins that run it. Nothing runs until all of that succeeded.
//
//   [pipeline]  name = "...", description = "..."
//   [plugins]   path = ["dir", ...]   require = { name = ">=1.0" }
//   [devices]   prefer = ["vulkan", "cpu"]   fallback = "error" | "warn" | "allow"
//   [[stages]]  kind = "env"   name = "report"   <keys published by the stage kind>
#pragma once

#include <string>
#include <vector>

#include <toml++/toml.h>

#include "dsk/dsk_plugin.h"

struct dsk_kernel;

namespace dsk::kernel {

struct Plugin;

struct StagePlan {
    size_t index = 0;
    std::string name, kind;
    toml::table* table = nullptr;  // inside Pipeline::root
    Plugin* plugin = nullptr;
    const dsk_stage_iface* iface = nullptr;
};

struct Pipeline {
    std::string path, name, description;
    std::string source_file;  // absolute; [pipeline] file of the resolved config (the original on --resume)
    toml::table root;  // after overrides, with defaults filled in: the resolved config
    std::vector<std::string> plugin_paths;
    std::vector<std::string> device_preference;
    std::string fallback = "error";
    // "graph": sessions run compiled plans (fusion, folding, memory planning); "eager": each
    // node as written, every value in a buffer of its own (for debugging and comparison).
    std::string execution = "graph";
    std::vector<StagePlan> stages;
};

// Parses, overrides, loads the plugins the pipeline needs and validates every key. Throws
// Error whose message lists every problem found, one per line, each naming file:line:column
// (or the --set that caused it) and what would fix it.
Pipeline load_pipeline(dsk_kernel& kernel, const std::string& path,
                       const std::vector<std::string>& overrides);

// Checks `table` against a provider's parameter specs: unknown keys (with "did you mean"),
// types, ranges, choices and required keys; fills defaults in. `label` names the table in
// messages ("stages[0] (train)"); keys in `reserved` are the caller's.
void check_params(toml::table& table, const std::string& label, const dsk_param_spec* specs,
                  size_t count, const std::vector<std::string>& reserved,
                  std::vector<std::string>& errors);

// Checks a provider's specs themselves when it registers them: names, types, and that each
// default is a TOML literal of the declared type within the declared range and choices. Returns
// the problems found, each naming `label` and the key.
std::vector<std::string> check_param_specs(const dsk_param_spec* specs, size_t count,
                                           const std::string& label);

}  // namespace dsk::kernel
