// One plugin candidate: its manifest, where it was found, its state, and once loaded its library,
// descriptor and init state.
#pragma once

#include <memory>
#include <string>

#include "dsk/dsk_plugin.h"
#include "dynamic_library.h"
#include "manifest.h"

namespace dsk::kernel {

enum class PluginState { Available, Loading, Loaded, Failed, Shadowed };
const char* state_name(PluginState state);

struct Plugin {
    Manifest manifest;  // partial (path only) when the manifest itself is broken
    PluginState state = PluginState::Available;
    std::string error;
    uint32_t abi_version = 0;  // from the descriptor, once loaded
    size_t load_order = 0;
    std::unique_ptr<DynamicLibrary> library;
    const dsk_plugin_descriptor* descriptor = nullptr;
    void* plugin_state = nullptr;  // what init returned, passed to shutdown

    // Backing strings for dsk_plugin_info.
    std::string version_text, kinds_text, provides_text;

    void fail(std::string message) {
        state = PluginState::Failed;
        error = std::move(message);
    }
};

}  // namespace dsk::kernel
