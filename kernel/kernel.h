// struct dsk_kernel: one independent kernel instance (dsk.h). It owns its search path, its plugin
// candidates, the registry of what loaded plugins provide, and the devices of loaded backends.
// No state is global: two kernels in one process share nothing but the host function table,
// which is constant.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dsk/dsk.h"
#include "plugin.h"
#include "registry.h"

struct dsk_registrar {
    dsk_kernel* kernel;
    dsk::kernel::Plugin* plugin;
    bool open;  // registration is allowed only while init runs
};

struct DeviceRecord {
    std::string backend, plugin;
    uint32_t index = 0;
    dsk_device_info info{};
    std::string reason;  // owns unusable_reason when the kernel, not the backend, wrote it
};

struct dsk_kernel {
    std::vector<std::string> user_paths;         // dsk_kernel_add_plugin_path, in order
    std::vector<std::string> search_path;        // user paths, DSK_PLUGIN_PATH, install dir
    std::vector<std::unique_ptr<dsk::kernel::Plugin>> plugins;  // candidates in search order
    std::vector<std::string> diagnostics;        // for dsk doctor
    dsk::kernel::Registry registry;
    std::vector<DeviceRecord> devices;
    std::string last_error, last_run_dir, last_resolved_pipeline;
    std::atomic<bool> stop_requested{false};
    size_t loads = 0;

    ~dsk_kernel();

    // Rebuilds the candidate list from the manifests on the search path. Loaded plugins stay.
    void discover();
    // Loads the first candidate named `name` whose version is in `range` (and its requirements).
    // Throws Error with the full reason; the candidate keeps the reason too.
    dsk::kernel::Plugin& load(const std::string& name, const dsk::kernel::VersionRange& range,
                              const std::string& required_by = {});
    void load_all();
    // The candidate that is used for `name` (first in search order, not shadowed), or nullptr.
    dsk::kernel::Plugin* find(const std::string& name);
    // The candidate whose manifest provides "kind:name", or nullptr.
    dsk::kernel::Plugin* find_provider(const std::string& kind, const std::string& name);
    std::string search_path_text() const;
    // Re-reads the devices of every loaded backend.
    void refresh_devices();
    // The C views of candidates and devices (strings owned by this kernel).
    dsk_plugin_info plugin_info(size_t index) const;
    dsk_device_entry device_entry(size_t index) const;

private:
    void load_candidate(dsk::kernel::Plugin& plugin, std::vector<std::string>& chain);
    void unload(dsk::kernel::Plugin& plugin);
};

namespace dsk::kernel {

// Writes `full` into a caller's struct, only as far as the caller's struct_size reaches (the
// caller may have been compiled against an older, smaller struct).
template <class T>
void copy_out(const T& full, T* out) {
    uint32_t size = out->struct_size;
    std::memcpy(static_cast<void*>(out), &full, std::min<size_t>(size, sizeof(T)));
    out->struct_size = size;
}

// The constant host function table given to every plugin.
const dsk_host_api& host_api();
}  // namespace dsk::kernel
