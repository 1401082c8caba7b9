#include "registry.h"

#include <algorithm>

#include "kernel.h"
#include "pipeline.h"
#include "status.h"

namespace dsk::kernel {
namespace {

template <class Map>
void erase_plugin(Map& map, const Plugin* plugin) {
    for (auto it = map.begin(); it != map.end();)
        it = it->second.plugin == plugin ? map.erase(it) : std::next(it);
}

template <class Map>
void list_plugin(const Map& map, const Plugin* plugin, const char* kind, std::vector<std::string>& out) {
    for (const auto& [name, entry] : map)
        if (entry.plugin == plugin) out.push_back(std::string(kind) + ":" + name);
}

std::string op_key(const char* domain, const char* name) {
    std::string d = domain ? domain : "";
    return d.empty() ? std::string(name) : d + "." + name;
}

// Checks that registration is open and that "kind:name" is declared in the manifest.
dsk_status admit(dsk_registrar* reg, const void* iface, uint32_t struct_size, size_t min_size,
                 const char* kind, const std::string& name) {
    if (!reg || !iface)
        return make_status(DSK_INVALID_ARGUMENT, std::string("register ") + kind + ": null registrar or interface");
    if (!reg->open)
        return make_status(DSK_FAILED_PRECONDITION, std::string("register ") + kind + " '" + name +
                                                        "' outside init: register everything in init");
    if (struct_size < min_size)
        return make_status(DSK_INCOMPATIBLE, std::string(kind) + " '" + name + "': struct_size " +
                                                 std::to_string(struct_size) + " is smaller than ABI 1.0's " +
                                                 std::to_string(min_size));
    if (name.empty())
        return make_status(DSK_INVALID_ARGUMENT, std::string("register ") + kind + ": the name is empty");
    const auto& provides = reg->plugin->manifest.provides;
    const std::string entry = std::string(kind) + ":" + name;
    if (std::find(provides.begin(), provides.end(), entry) == provides.end() &&
        std::find(provides.begin(), provides.end(), std::string(kind) + ":*") == provides.end())
        return make_status(DSK_INVALID_ARGUMENT, "registers " + entry + ", which its manifest " +
                                                     reg->plugin->manifest.path +
                                                     " does not list in provides; add it there");
    return DSK_STATUS_OK;
}

// A provider's parameter schema must itself be valid before users' pipelines are checked with it.
template <class Iface>
dsk_status check_specs(const Iface* iface, const char* kind, const std::string& name) {
    auto problems = check_param_specs(iface->params, iface->param_count, std::string(kind) + " '" + name + "'");
    if (problems.empty()) return DSK_STATUS_OK;
    std::string message;
    for (const auto& p : problems) message += (message.empty() ? "" : "; ") + p;
    return make_status(DSK_INVALID_ARGUMENT, "invalid parameter schema: " + message);
}

template <class Iface>
dsk_status add_named(dsk_registrar* reg, std::map<std::string, Provided<Iface>> Registry::*member,
                     const Iface* iface, const char* kind, const char* name, size_t min_size) {
    std::string n = name ? name : "";
    if (dsk_status s = admit(reg, iface, iface ? iface->struct_size : 0, min_size, kind, n)) return s;
    if constexpr (requires { iface->params; })
        if (dsk_status s = check_specs(iface, kind, n)) return s;
    auto& map = reg->kernel->registry.*member;
    if (auto it = map.find(n); it != map.end())
        return make_status(DSK_ALREADY_EXISTS, std::string(kind) + " '" + n + "' is already provided by plugin '" +
                                                   it->second.plugin->manifest.name + "' (" +
                                                   it->second.plugin->manifest.path + ")");
    map[n] = Provided<Iface>{iface, reg->plugin};
    return DSK_STATUS_OK;
}

#define DSK_MIN_SIZE(type, last) (offsetof(type, last) + sizeof(((type*)0)->last))

dsk_status register_backend(dsk_registrar* reg, const dsk_backend_iface* iface) {
    if (dsk_status s = add_named(reg, &Registry::backends, iface, "device", iface ? iface->name : nullptr,
                                 DSK_MIN_SIZE(dsk_backend_iface, executable_release)))
        return s;
    if (!iface->device_count || !iface->device_info || !iface->device_open || !iface->device_close ||
        !iface->buffer_alloc || !iface->buffer_free || !iface->queue_create || !iface->queue_destroy ||
        !iface->copy_to_device || !iface->copy_to_host || !iface->queue_flush || !iface->fence_wait ||
        !iface->fence_destroy || !iface->supports_op) {
        reg->kernel->registry.backends.erase(iface->name);
        return make_status(DSK_INVALID_ARGUMENT, std::string("backend '") + iface->name +
                                                     "' leaves a required function NULL (only buffer_map, "
                                                     "copy_on_device, get_capability, compile, execute and "
                                                     "executable_release are optional)");
    }
    return DSK_STATUS_OK;
}

dsk_status register_op_schema(dsk_registrar* reg, const dsk_op_schema* schema) {
    if (!schema || !schema->name) return make_status(DSK_INVALID_ARGUMENT, "register op: null schema or name");
    std::string key = op_key(schema->domain, schema->name);
    if (dsk_status s = admit(reg, schema, schema->struct_size, DSK_MIN_SIZE(dsk_op_schema, gradient), "op", key))
        return s;
    auto& map = reg->kernel->registry.op_schemas;
    if (auto it = map.find(key); it != map.end())
        return make_status(DSK_ALREADY_EXISTS, "op '" + key + "' is already defined by plugin '" +
                                                   it->second.plugin->manifest.name + "'");
    if (!schema->infer_shapes)
        return make_status(DSK_INVALID_ARGUMENT, "op '" + key + "' has no infer_shapes function");
    map[key] = {schema, reg->plugin};
    return DSK_STATUS_OK;
}

dsk_status register_op_kernel(dsk_registrar* reg, const dsk_op_kernel* kernel) {
    if (!kernel || !kernel->op || !kernel->backend)
        return make_status(DSK_INVALID_ARGUMENT, "register kernel: null kernel, op or backend");
    std::string key = op_key(kernel->domain, kernel->op) + "@" + kernel->backend;
    if (dsk_status s = admit(reg, kernel, kernel->struct_size, DSK_MIN_SIZE(dsk_op_kernel, compute), "kernel", key))
        return s;
    if (!kernel->compute) return make_status(DSK_INVALID_ARGUMENT, "kernel '" + key + "' has no compute function");
    reg->kernel->registry.op_kernels.push_back({kernel, reg->plugin});
    return DSK_STATUS_OK;
}

dsk_status register_optimizer(dsk_registrar* reg, const dsk_optimizer_iface* iface) {
    return add_named(reg, &Registry::optimizers, iface, "optimizer", iface ? iface->name : nullptr,
                     DSK_MIN_SIZE(dsk_optimizer_iface, destroy));
}
dsk_status register_search(dsk_registrar* reg, const dsk_search_iface* iface) {
    return add_named(reg, &Registry::searches, iface, "search", iface ? iface->name : nullptr,
                     DSK_MIN_SIZE(dsk_search_iface, destroy));
}
dsk_status register_stage(dsk_registrar* reg, const dsk_stage_iface* iface) {
    if (dsk_status s = add_named(reg, &Registry::stages, iface, "stage", iface ? iface->kind : nullptr,
                                 DSK_MIN_SIZE(dsk_stage_iface, run)))
        return s;
    if (!iface->run) {
        reg->kernel->registry.stages.erase(iface->kind);
        return make_status(DSK_INVALID_ARGUMENT, std::string("stage '") + iface->kind + "' has no run function");
    }
    return DSK_STATUS_OK;
}
dsk_status register_dataset(dsk_registrar* reg, const dsk_dataset_iface* iface) {
    return add_named(reg, &Registry::datasets, iface, "dataset", iface ? iface->name : nullptr,
                     DSK_MIN_SIZE(dsk_dataset_iface, close));
}
dsk_status register_model(dsk_registrar* reg, const dsk_model_iface* iface) {
    if (dsk_status s = add_named(reg, &Registry::models, iface, "model", iface ? iface->name : nullptr,
                                 DSK_MIN_SIZE(dsk_model_iface, build)))
        return s;
    if (!iface->build) {
        reg->kernel->registry.models.erase(iface->name);
        return make_status(DSK_INVALID_ARGUMENT, std::string("model '") + iface->name + "' has no build function");
    }
    return DSK_STATUS_OK;
}

}  // namespace

void Registry::remove(const Plugin* plugin) {
    erase_plugin(backends, plugin);
    erase_plugin(op_schemas, plugin);
    std::erase_if(op_kernels, [&](const auto& k) { return k.plugin == plugin; });
    erase_plugin(optimizers, plugin);
    erase_plugin(searches, plugin);
    erase_plugin(stages, plugin);
    erase_plugin(datasets, plugin);
    erase_plugin(models, plugin);
}

namespace {
template <class Map>
const void* lookup(const Map& map, const std::string& name) {
    auto it = map.find(name);
    return it == map.end() ? nullptr : it->second.iface;
}
template <class Map>
std::vector<std::string> keys_of(const Map& map) {
    std::vector<std::string> out;
    for (const auto& [name, entry] : map) out.push_back(name);
    return out;
}
}  // namespace

const void* Registry::find(const std::string& kind, const std::string& name) const {
    if (kind == "device") return lookup(backends, name);
    if (kind == "optimizer") return lookup(optimizers, name);
    if (kind == "search") return lookup(searches, name);
    if (kind == "stage") return lookup(stages, name);
    if (kind == "dataset") return lookup(datasets, name);
    if (kind == "model") return lookup(models, name);
    if (kind == "op") return lookup(op_schemas, name);
    return nullptr;
}

std::vector<std::string> Registry::names(const std::string& kind) const {
    if (kind == "device") return keys_of(backends);
    if (kind == "optimizer") return keys_of(optimizers);
    if (kind == "search") return keys_of(searches);
    if (kind == "stage") return keys_of(stages);
    if (kind == "dataset") return keys_of(datasets);
    if (kind == "model") return keys_of(models);
    if (kind == "op") return keys_of(op_schemas);
    return {};
}

std::vector<std::string> Registry::provided_by(const Plugin* plugin) const {
    std::vector<std::string> out;
    list_plugin(backends, plugin, "device", out);
    list_plugin(op_schemas, plugin, "op", out);
    for (const auto& k : op_kernels)
        if (k.plugin == plugin)
            out.push_back("kernel:" + op_key(k.iface->domain, k.iface->op) + "@" + k.iface->backend);
    list_plugin(optimizers, plugin, "optimizer", out);
    list_plugin(searches, plugin, "search", out);
    list_plugin(stages, plugin, "stage", out);
    list_plugin(datasets, plugin, "dataset", out);
    list_plugin(models, plugin, "model", out);
    return out;
}

void fill_registration_api(dsk_host_api& api) {
    api.register_backend = register_backend;
    api.register_op_schema = register_op_schema;
    api.register_op_kernel = register_op_kernel;
    api.register_optimizer = register_optimizer;
    api.register_search = register_search;
    api.register_stage = register_stage;
    api.register_dataset = register_dataset;
    api.register_model = register_model;
}

}  // namespace dsk::kernel
