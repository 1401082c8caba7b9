// What loaded plugins provide, by kind and name. Each entry remembers its plugin, so a plugin
// that fails during init is rolled back and `dsk plugins info` can list what each one gave.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "dsk/dsk_plugin.h"

namespace dsk::kernel {

struct Plugin;

template <class Iface>
struct Provided {
    const Iface* iface = nullptr;  // borrowed from the plugin until its shutdown
    Plugin* plugin = nullptr;
};

struct Registry {
    std::map<std::string, Provided<dsk_backend_iface>> backends;
    std::map<std::string, Provided<dsk_op_schema>> op_schemas;  // "name" or "domain.name"
    std::vector<Provided<dsk_op_kernel>> op_kernels;
    std::map<std::string, Provided<dsk_optimizer_iface>> optimizers;
    std::map<std::string, Provided<dsk_search_iface>> searches;
    std::map<std::string, Provided<dsk_stage_iface>> stages;
    std::map<std::string, Provided<dsk_dataset_iface>> datasets;
    std::map<std::string, Provided<dsk_model_iface>> models;

    // The iface registered as "kind:name" (kind: device, optimizer, search, stage, dataset,
    // model), or nullptr.
    const void* find(const std::string& kind, const std::string& name) const;
    // Names registered under `kind`, for "did you mean".
    std::vector<std::string> names(const std::string& kind) const;

    // Drops everything `plugin` registered (after a failed init, or before unloading it).
    void remove(const Plugin* plugin);
    // "kind:name" of everything `plugin` registered, for checking against its manifest.
    std::vector<std::string> provided_by(const Plugin* plugin) const;
};

// Fills the host table's register_* members. The registrar names the kernel and the plugin
// being initialised; it refuses registrations outside init and outside the manifest's provides.
void fill_registration_api(dsk_host_api& api);

}  // namespace dsk::kernel
