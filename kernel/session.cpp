#include "session.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "dsk/dsk_random.hpp"
#include "dsk/dsk_tensor.hpp"
#include "kernel.h"
#include "pipeline.h"
#include "spelling.h"
#include "stage_context.h"
#include "status.h"

using namespace dsk::kernel;

namespace {

using dsk::splitmix64;  // variable initialisation and exec_seed draw from it

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

std::string describe(const dsk_tensor_desc& d) {
    return std::string(dsk::dtype_name(d.dtype)) + " " + dsk::shape_text(dsk::shape_of(d));
}

bool same_shape(const dsk_tensor_desc& a, const dsk_tensor_desc& b) {
    if (a.ndim != b.ndim) return false;
    for (uint32_t i = 0; i < a.ndim; ++i)
        if (a.shape[i] != b.shape[i]) return false;
    return true;
}

uint64_t bytes_of(const dsk_tensor_desc& d) {
    return static_cast<uint64_t>(dsk::numel(d)) * dsk::dtype_size(d.dtype);
}

}  // namespace

dsk_session::dsk_session(dsk_kernel* k, const dsk_graph& g, const std::string& device_name, uint64_t s)
    : kernel(k), backend_name(device_name), seed(s) {
    auto it = kernel->registry.backends.find(backend_name);
    if (it == kernel->registry.backends.end()) {
        if (Plugin* provider = kernel->find_provider("device", backend_name))
            kernel->load(provider->manifest.name, *VersionRange::parse("*"));
        it = kernel->registry.backends.find(backend_name);
    }
    if (it == kernel->registry.backends.end()) {
        std::vector<std::string> known;
        for (const auto& [name, e] : kernel->registry.backends) known.push_back(name);
        throw Error(DSK_NOT_FOUND, "no device backend named '" + backend_name + "'" + did_you_mean(backend_name, known) +
                                       " (searched: " + kernel->search_path_text() + ")");
    }
    backend = it->second.iface;
    keep_loaded(it->second.plugin);
    try {
        graph.kernel = kernel;
        graph.values = g.values;
        graph.nodes = g.nodes;
        for (auto& node : graph.nodes) node.refresh_views();  // views into this copy, which never moves again
        for (const auto& node : graph.nodes) {
            kernels.push_back(choose_kernel(node));
            auto schema = kernel->registry.op_schemas.find(node.domain.empty() ? node.op : node.domain + "." + node.op);
            if (schema != kernel->registry.op_schemas.end()) keep_loaded(schema->second.plugin);
        }

        bool usable = false;
        for (const auto& d : kernel->devices)
            if (d.backend == backend_name && d.index == 0) {
                usable = d.info.score > 0;
                if (!usable)
                    throw Error(DSK_UNAVAILABLE, "device " + backend_name + "#0 is unusable: " +
                                                     (d.info.unusable_reason ? d.info.unusable_reason : ""));
            }
        if (!usable) throw Error(DSK_UNAVAILABLE, "backend '" + backend_name + "' has no device");
        throw_if_error(backend->device_open(backend->self, 0, &device), "opening " + backend_name + "#0");
        throw_if_error(backend->queue_create(device, &queue), "creating a queue on " + backend_name + "#0");

        storage.resize(graph.values.size());
        for (dsk_value_id v = 0; v < graph.values.size(); ++v) {
            ensure_storage(v);
            const Value& value = graph.values[v];
            if (value.kind == ValueKind::Variable) initialise_variable(v);
            if (value.kind == ValueKind::Constant) std::memcpy(storage[v].data, value.constant.data(), value.constant.size());
            if (value.kind == ValueKind::Input && storage[v].bytes) std::memset(storage[v].data, 0, storage[v].bytes);
        }
    } catch (...) {
        release();  // the destructor does not run for a constructor that throws
        throw;
    }
}

void dsk_session::keep_loaded(const Plugin* plugin) {
    if (plugin && plugin->library &&
        std::find(libraries.begin(), libraries.end(), plugin->library) == libraries.end())
        libraries.push_back(plugin->library);
}

void dsk_session::release() {
    for (auto& s : storage)
        if (s.buffer) backend->buffer_free(s.buffer);
    storage.clear();
    if (queue) backend->queue_destroy(queue);
    if (device) backend->device_close(device);
    queue = nullptr;
    device = nullptr;
}

dsk_session::~dsk_session() { release(); }

const dsk_op_kernel* dsk_session::choose_kernel(const Node& node) {
    std::vector<std::string> elsewhere;
    for (const auto& entry : kernel->registry.op_kernels) {
        const dsk_op_kernel* k = entry.iface;
        if (node.op != k->op || node.domain != (k->domain ? k->domain : "")) continue;
        if (backend_name != k->backend) {
            elsewhere.push_back(k->backend);
            continue;
        }
        bool match = true;
        for (size_t i = 0; i < node.inputs.size() && i < k->input_dtype_count; ++i)
            match &= k->input_dtypes[i] == 0 || k->input_dtypes[i] == graph.values[node.inputs[i]].desc.dtype;
        if (match) {
            keep_loaded(entry.plugin);
            return k;
        }
    }
    std::string types;
    for (dsk_value_id in : node.inputs) types += (types.empty() ? "" : ", ") + std::string(dsk::dtype_name(graph.values[in].desc.dtype));
    std::string where = elsewhere.empty() ? "no backend has one" : "backends with one: ";
    for (size_t i = 0; i < elsewhere.size(); ++i) where += (i ? ", " : "") + elsewhere[i];
    throw Error(DSK_UNIMPLEMENTED, "no " + backend_name + " kernel for op " + node.op + " with inputs (" + types + "); " +
                                       where + " (kernels come from plugins providing kernel:<op>@<backend> or kernel:*)");
}

void dsk_session::ensure_storage(dsk_value_id v) {
    Storage& s = storage[v];
    const uint64_t bytes = bytes_of(graph.values[v].desc);
    if (s.buffer && s.bytes == bytes) return;
    if (s.buffer) backend->buffer_free(s.buffer);
    s = Storage{};
    throw_if_error(backend->buffer_alloc(device, bytes, 64, DSK_BUFFER_HOST_VISIBLE, &s.buffer),
                   "allocating " + std::to_string(bytes) + " bytes on " + backend_name);
    s.bytes = bytes;
    if (!backend->buffer_map || backend->buffer_map(s.buffer, &s.data) != DSK_STATUS_OK || (!s.data && bytes))
        throw Error(DSK_UNIMPLEMENTED, "backend '" + backend_name +
                                           "' gives no host-visible memory; sessions on device-only memory come with "
                                           "device placement");
}

void dsk_session::initialise_variable(dsk_value_id v) {
    const Value& value = graph.values[v];
    const int64_t n = dsk::numel(value.desc);
    if (value.desc.dtype != DSK_DTYPE_F32)
        throw Error(DSK_UNIMPLEMENTED, "variable '" + value.name + "': only f32 variables are initialised");
    float* p = static_cast<float*>(storage[v].data);
    uint64_t state = seed ^ fnv1a(value.name);  // by name: adding a variable never reshuffles the others
    const double scale = value.scale;
    for (int64_t i = 0; i < n; ++i) {
        if (value.init == "zeros") p[i] = 0.0f;
        else if (value.init == "ones") p[i] = 1.0f;
        else if (value.init == "uniform") {
            double u = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
            p[i] = static_cast<float>((2.0 * u - 1.0) * scale);
        } else {  // normal, Box-Muller
            double u1 = (static_cast<double>(splitmix64(state) >> 11) + 1.0) * 0x1.0p-53;
            double u2 = static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;
            p[i] = static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2) * scale);
        }
    }
}

void dsk_session::write(dsk_value_id v, const dsk_tensor_desc& host) {
    const Value& value = graph.value(v);
    if (value.kind != ValueKind::Input && value.kind != ValueKind::Variable)
        throw Error(DSK_INVALID_ARGUMENT, "session_write: value " + std::to_string(v) + " is not an input or a variable");
    if (host.dtype != value.desc.dtype || host.ndim > DSK_MAX_DIMS)
        throw Error(DSK_INVALID_ARGUMENT, "session_write '" + value.name + "': expected " + describe(value.desc) +
                                              ", given " + describe(host));
    if (!host.data && bytes_of(host)) throw Error(DSK_INVALID_ARGUMENT, "session_write '" + value.name + "': no host data");
    if (!dsk::is_contiguous(host)) throw Error(DSK_INVALID_ARGUMENT, "session_write '" + value.name + "': host data must be contiguous");
    if (!same_shape(host, value.desc)) {
        if (value.kind == ValueKind::Variable)
            throw Error(DSK_INVALID_ARGUMENT, "session_write '" + value.name + "': expected " + describe(value.desc) +
                                                  ", given " + describe(host));
        // A new batch size: shapes are inferred again before the next run.
        Value& mutable_value = graph.values[v];
        mutable_value.desc.ndim = host.ndim;
        for (uint32_t i = 0; i < host.ndim; ++i) mutable_value.desc.shape[i] = host.shape[i];
        int64_t stride = 1;
        for (uint32_t i = host.ndim; i-- > 0;) {
            mutable_value.desc.strides[i] = stride;
            stride *= host.shape[i];
        }
        ensure_storage(v);
        shapes_dirty = true;
    }
    std::memcpy(storage[v].data, host.data, storage[v].bytes);
}

void dsk_session::read(dsk_value_id v, const dsk_tensor_desc& host) {
    const Value& value = graph.value(v);
    if (host.dtype != value.desc.dtype || !same_shape(host, value.desc))
        throw Error(DSK_INVALID_ARGUMENT, "session_read: value " + std::to_string(v) + (value.name.empty() ? "" : " '" + value.name + "'") +
                                              " is " + describe(value.desc) + ", the host tensor is " + describe(host));
    if (!dsk::is_contiguous(host)) throw Error(DSK_INVALID_ARGUMENT, "session_read: host data must be contiguous");
    if (!host.data && bytes_of(host)) throw Error(DSK_INVALID_ARGUMENT, "session_read: no host data");
    if (storage[v].bytes != bytes_of(host))
        throw Error(DSK_INTERNAL, "session_read: value " + std::to_string(v) + " has no storage of its size (a failed run?)");
    std::memcpy(host.data, storage[v].data, storage[v].bytes);
}

dsk_tensor_desc dsk_session::tensor(dsk_value_id v) const {
    dsk_tensor_desc d = graph.value(v).desc;
    d.device = device;
    d.buffer = storage[v].buffer;
    d.offset = 0;
    d.data = storage[v].data;
    return d;
}

void dsk_session::reinfer_shapes() {
    for (auto& node : graph.nodes) {
        try {
            infer_node_shapes(node, graph.values);
        } catch (const Error& e) {
            // Gradient nodes carry the shapes they were built for (e.g. ConvGradInput's
            // input_shape): a graph with them runs at the batch size it was built with.
            throw Error(e.code(), std::string(e.what()) +
                                      " (after an input changed shape: graphs with gradient nodes run only at the "
                                      "shapes they were built for; build another graph for another batch size)");
        }
    }
    for (dsk_value_id v = 0; v < graph.values.size(); ++v) ensure_storage(v);
    shapes_dirty = false;
}

void dsk_session::run(const std::vector<dsk_value_id>& targets) {
    if (shapes_dirty) reinfer_shapes();
    std::vector<bool> needed(graph.values.size(), false);
    for (dsk_value_id t : targets) {
        graph.value(t);
        needed[t] = true;
    }
    std::vector<bool> run_node(graph.nodes.size(), false);
    for (size_t n = graph.nodes.size(); n-- > 0;) {
        const Node& node = graph.nodes[n];
        for (dsk_value_id out : node.outputs) run_node[n] = run_node[n] || needed[out];
        if (run_node[n])
            for (dsk_value_id in : node.inputs) needed[in] = true;
    }
    std::vector<dsk_tensor_desc> tensors;
    for (uint32_t n = 0; n < graph.nodes.size(); ++n) {
        if (!run_node[n]) continue;
        const Node& node = graph.nodes[n];
        tensors.clear();
        for (dsk_value_id in : node.inputs) tensors.push_back(tensor(in));
        for (dsk_value_id out : node.outputs) tensors.push_back(tensor(out));
        dsk_exec_context ctx{this, n};
        const dsk_op_kernel* k = kernels[n];
        dsk_status st = DSK_STATUS_OK;
        try {
            st = k->compute(k->self, &ctx, &node.view, tensors.data());
        } catch (...) {  // a kernel without the C++ wrapper let an exception escape
            st = status_from_current_exception();
        }
        throw_if_error(st, "node " + std::to_string(n) + " (" + node.op + ") on " + backend_name);
    }
    ++runs;
}

// --- host table: sessions ----------------------------------------------------------------------

namespace dsk::kernel {
namespace {

dsk_status null_session() { return make_status(DSK_INVALID_ARGUMENT, "null session"); }

}  // namespace

void fill_session_api(dsk_host_api& api) {
    api.session_create = [](dsk_stage_context* ctx, dsk_graph* graph, const char* device, uint64_t seed,
                            dsk_session** out) -> dsk_status {
        if (!ctx || !graph || !out) return make_status(DSK_INVALID_ARGUMENT, "session_create: null context, graph or out");
        return guarded([&] {
            std::string name = device ? device : "";
            if (name.empty() && ctx->pipeline && !ctx->pipeline->device_preference.empty()) {
                // The pipeline's preference: the first preferred backend with a usable device.
                // Falling back past the first is the pipeline's `fallback` policy, never silent.
                const auto& preference = ctx->pipeline->device_preference;
                std::string passed_over;
                for (const auto& preferred : preference) {
                    for (const auto& d : ctx->kernel->devices)
                        if (name.empty() && d.backend == preferred && d.info.score > 0) name = preferred;
                    if (!name.empty()) break;
                    std::string why = "no device";
                    for (const auto& d : ctx->kernel->devices)
                        if (d.backend == preferred) why = d.info.unusable_reason ? d.info.unusable_reason : "unusable";
                    passed_over += (passed_over.empty() ? "" : "; ") + preferred + ": " + why;
                }
                const std::string& policy = ctx->pipeline->fallback;
                if (name.empty() || name != preference.front()) {
                    if (name.empty()) name = "cpu";
                    const std::string message = "no usable device for the preferred backend(s) (" + passed_over +
                                                "); running on '" + name + "'";
                    if (policy == "error")
                        throw Error(DSK_UNAVAILABLE, message + " is not allowed by [devices] fallback = \"error\"; "
                                                               "set fallback = \"warn\" or \"allow\", or fix the device");
                    if (policy == "warn" && ctx->stage) ctx->log(DSK_LOG_WARNING, ctx->stage->name, message);
                }
            }
            if (name.empty()) name = "cpu";  // no preference: the always-available reference backend
            *out = new dsk_session(ctx->kernel, *graph, name, seed);
        });
    };
    api.session_destroy = [](dsk_session* s) { delete s; };
    api.session_write = [](dsk_session* s, dsk_value_id v, const dsk_tensor_desc* host) -> dsk_status {
        if (!s || !host) return null_session();
        return guarded([&] { s->write(v, *host); });
    };
    api.session_run = [](dsk_session* s, const dsk_value_id* targets, size_t count) -> dsk_status {
        if (!s) return null_session();
        return guarded([&] { s->run(std::vector<dsk_value_id>(targets, targets + count)); });
    };
    api.session_tensor = [](dsk_session* s, dsk_value_id v, dsk_tensor_desc* out) -> dsk_status {
        if (!s || !out) return null_session();
        return guarded([&] { copy_out(s->tensor(v), out); });
    };
    api.session_read = [](dsk_session* s, dsk_value_id v, const dsk_tensor_desc* host) -> dsk_status {
        if (!s || !host) return null_session();
        return guarded([&] { s->read(v, *host); });
    };
    api.session_run_count = [](dsk_session* s) -> uint64_t { return s ? s->runs : 0; };
    api.session_set_run_count = [](dsk_session* s, uint64_t runs) -> dsk_status {
        if (!s) return null_session();
        s->runs = runs;
        return DSK_STATUS_OK;
    };
    api.exec_seed = [](dsk_exec_context* ctx) -> uint64_t {
        uint64_t state = ctx->session->seed ^ (ctx->session->runs * 0xd1b54a32d192ed03ull) ^
                         (static_cast<uint64_t>(ctx->node) * 0x8cb92ba72f3d8dd7ull);
        return splitmix64(state);
    };
    api.exec_queue = [](dsk_exec_context* ctx) -> dsk_queue* { return ctx->session->queue; };
}

}  // namespace dsk::kernel
