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

}  // namespace dsk::kernel
struct dsk_registrar;
namespace dsk::kernel {

struct Plugin {
    Manifest manifest;  // partial (path only) when the manifest itself is broken
    PluginState state = PluginState::Available;
    std::string error;
    uint32_t abi_version = 0;  // from the descriptor, once loaded
    size_t load_order = 0;
    // Shared: a session made from this plugin's backend, kernels or schemas keeps the library
    // loaded until it is destroyed, even after the kernel unloaded the plugin (OpenVINO SoPtr).
    std::shared_ptr<DynamicLibrary> library;
    const dsk_plugin_descriptor* descriptor = nullptr;
    void* plugin_state = nullptr;  // what init returned, passed to shutdown
    // Lives as long as the candidate, so a plugin that keeps the pointer and registers after
    // init gets FAILED_PRECONDITION instead of touching freed memory.
    std::shared_ptr<dsk_registrar> registrar;

    // Backing strings for dsk_plugin_info.
    std::string version_text, kinds_text, provides_text;

    void fail(std::string message) {
        state = PluginState::Failed;
        error = std::move(message);
    }
};

}  // namespace dsk::kernel
