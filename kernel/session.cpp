#include "session.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "dsk/dsk_random.hpp"
#include "dsk/dsk_tensor.hpp"
#include "kernel.h"
#include "pipeline.h"
#include "placement.h"
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

dsk_session::dsk_session(dsk_kernel* k, const dsk_graph& g, const DevicePreference& preference, uint64_t s)
    : kernel(k), seed(s), preference_(preference) {
    try {
        graph.kernel = kernel;
        graph.values = g.values;
        graph.nodes = g.nodes;
        for (auto& node : graph.nodes) node.refresh_views();  // views into this copy, which never moves again
        for (const auto& node : graph.nodes) {
            auto schema = kernel->registry.op_schemas.find(node.domain.empty() ? node.op : node.domain + "." + node.op);
            if (schema != kernel->registry.op_schemas.end()) keep_loaded(schema->second.plugin);
        }
        open_devices(preference);
        place(preference);
        storage.resize(graph.values.size());
        for (dsk_value_id v = 0; v < graph.values.size(); ++v) {
            ensure_storage(v);
            const Value& value = graph.values[v];
            if (value.kind == ValueKind::Variable) initialise_variable(v);
            if (value.kind == ValueKind::Constant) copy_in(storage[v], value.constant.data());
            if (value.kind == ValueKind::Input && storage[v].bytes) copy_in(storage[v], std::vector<uint8_t>(storage[v].bytes).data());
        }
    } catch (...) {
        release();  // the destructor does not run for a constructor that throws
        throw;
    }
}

void dsk_session::open_devices(const DevicePreference& preference) {
    for (const std::string& name : preference.backends) {
        auto it = kernel->registry.backends.find(name);
        if (it == kernel->registry.backends.end())
            throw Error(DSK_NOT_FOUND, "no device backend named '" + name + "' (searched: " + kernel->search_path_text() + ")");
        keep_loaded(it->second.plugin);
        // The backend's best usable device.
        const DeviceRecord* best = nullptr;
        for (const auto& d : kernel->devices)
            if (d.backend == name && d.info.score > 0 && (!best || d.info.score > best->info.score)) best = &d;
        if (!best) {
            std::string why = "no device";
            for (const auto& d : kernel->devices)
                if (d.backend == name) why = d.info.unusable_reason ? d.info.unusable_reason : "unusable";
            throw Error(DSK_UNAVAILABLE, "device backend '" + name + "' has no usable device: " + why);
        }
        Device device;
        device.name = name;
        device.backend = it->second.iface;
        device.host_memory = best->info.type == DSK_DEVICE_CPU;
        devices.push_back(device);  // before opening, so that release() closes what was opened
        Device& opened = devices.back();
        const std::string where = name + "#" + std::to_string(best->index);
        throw_if_error(opened.backend->device_open(opened.backend->self, best->index, &opened.device), "opening " + where);
        throw_if_error(opened.backend->queue_create(opened.device, &opened.queue), "creating a queue on " + where);
    }
}

void dsk_session::keep_loaded(const Plugin* plugin) {
    if (plugin && plugin->library &&
        std::find(libraries.begin(), libraries.end(), plugin->library) == libraries.end())
        libraries.push_back(plugin->library);
}

void dsk_session::release() {
    for (auto& r : replicas)
        if (r.storage.buffer) devices[r.storage.device].backend->buffer_free(r.storage.buffer);
    replicas.clear();
    for (auto& s : storage)
        if (s.buffer) devices[s.device].backend->buffer_free(s.buffer);
    storage.clear();
    for (auto& d : devices) {
        if (d.queue) d.backend->queue_destroy(d.queue);
        if (d.device) d.backend->device_close(d.device);
        d.queue = nullptr;
        d.device = nullptr;
    }
}

dsk_session::~dsk_session() { release(); }

const std::string& dsk_session::node_backend(uint32_t node) const { return devices.at(node_device.at(node)).name; }

namespace {

// The first kernel for the node on `backend` whose input dtypes match (dtype 0 = any).
const Provided<dsk_op_kernel>* find_kernel(const Registry& registry, const Node& node, const std::vector<Value>& values,
                                           const std::string& backend) {
    for (const auto& entry : registry.op_kernels) {
        const dsk_op_kernel* k = entry.iface;
        if (backend != k->backend || node.op != k->op || node.domain != (k->domain ? k->domain : "")) continue;
        bool match = true;
        for (size_t i = 0; i < node.inputs.size() && i < k->input_dtype_count; ++i)
            match &= k->input_dtypes[i] == 0 || k->input_dtypes[i] == values[node.inputs[i]].desc.dtype;
        if (match) return &entry;
    }
    return nullptr;
}

std::string value_label(const dsk_graph& graph, dsk_value_id v) {
    const Value& value = graph.values[v];
    if (!value.name.empty()) return value.name;
    if (value.producer != UINT32_MAX) return "%" + std::to_string(v) + " (" + graph.nodes[value.producer].op + ")";
    return "%" + std::to_string(v);
}

}  // namespace

void dsk_session::place(const DevicePreference& preference) {
    const size_t n_nodes = graph.nodes.size();
    kernels.assign(n_nodes, nullptr);
    node_device.assign(n_nodes, 0);
    placement = PlacementReport{};
    for (const auto& d : devices) placement.backends.push_back(d.name);
    placement.nodes_per_backend.assign(devices.size(), 0);
    std::map<std::string, PlacementReport::Fallback> fallbacks;

    std::vector<dsk_tensor_desc> tensors;
    for (uint32_t n = 0; n < n_nodes; ++n) {
        const Node& node = graph.nodes[n];
        tensors.clear();
        for (dsk_value_id in : node.inputs) tensors.push_back(graph.values[in].desc);
        for (dsk_value_id out : node.outputs) tensors.push_back(graph.values[out].desc);
        std::string why_not_first;
        bool placed = false;
        for (uint32_t d = 0; d < devices.size() && !placed; ++d) {
            const Device& device = devices[d];
            const Provided<dsk_op_kernel>* k = find_kernel(kernel->registry, node, graph.values, device.name);
            if (!k) {
                if (d == 0) why_not_first = "no " + device.name + " kernel for these input types";
                continue;
            }
            if (device.backend->supports_op && !device.backend->supports_op(device.device, &node.view, tensors.data())) {
                if (d == 0) why_not_first = device.name + " declines it (supports_op)";
                continue;
            }
            keep_loaded(k->plugin);
            kernels[n] = k->iface;
            node_device[n] = d;
            ++placement.nodes_per_backend[d];
            placed = true;
            if (d > 0) {
                auto& f = fallbacks[node.op];
                f.op = node.op;
                f.why = why_not_first;
                ++f.nodes;
            }
        }
        if (placed) continue;
        std::string types, tried, elsewhere;
        for (dsk_value_id in : node.inputs) types += (types.empty() ? "" : ", ") + std::string(dsk::dtype_name(graph.values[in].desc.dtype));
        for (const auto& d : devices) tried += (tried.empty() ? "" : " or ") + d.name;
        for (const auto& entry : kernel->registry.op_kernels)
            if (node.op == entry.iface->op && elsewhere.find(entry.iface->backend) == std::string::npos)
                elsewhere += (elsewhere.empty() ? "" : ", ") + std::string(entry.iface->backend);
        throw Error(DSK_UNIMPLEMENTED, "no " + tried + " kernel for op " + node.op + " with inputs (" + types + "); " +
                                           (elsewhere.empty() ? "no backend has one" : "backends with one: " + elsewhere) +
                                           " (kernels come from plugins providing kernel:<op>@<backend> or kernel:*)");
    }
    for (auto& [op, f] : fallbacks) placement.fallbacks.push_back(f);
    if (!placement.fallbacks.empty() && preference.policy == "error") {
        std::string ops;
        uint32_t count = 0;
        for (const auto& f : placement.fallbacks) {
            ops += (ops.empty() ? "" : ", ") + f.op + " x" + std::to_string(f.nodes) + " (" + f.why + ")";
            count += f.nodes;
        }
        throw Error(DSK_UNAVAILABLE, devices[0].name + " cannot run " + std::to_string(count) + " node(s) of this graph: " + ops +
                                         "; [devices] fallback = \"error\" forbids placing them on another device; set "
                                         "fallback = \"warn\" or \"allow\", or choose another device");
    }

    // Home of each value: where its producer runs; inputs, variables and constants live where
    // they are first read (and keep that home for the session's life, so their data stays).
    if (home_.empty()) home_.assign(graph.values.size(), UINT32_MAX);
    for (dsk_value_id v = 0; v < graph.values.size(); ++v)
        if (graph.values[v].kind == ValueKind::NodeOutput || graph.values[v].kind == ValueKind::Input) home_[v] = UINT32_MAX;
    for (uint32_t n = 0; n < n_nodes; ++n)
        for (dsk_value_id out : graph.nodes[n].outputs) home_[out] = node_device[n];
    for (uint32_t n = 0; n < n_nodes; ++n)
        for (dsk_value_id in : graph.nodes[n].inputs)
            if (home_[in] == UINT32_MAX) home_[in] = node_device[n];
    for (auto& h : home_)
        if (h == UINT32_MAX) h = 0;

    // A replica wherever a node reads a value on a device that cannot read its home memory.
    for (auto& r : replicas)
        if (r.storage.buffer) devices[r.storage.device].backend->buffer_free(r.storage.buffer);
    replicas.clear();
    input_replica.assign(n_nodes, {});
    for (uint32_t n = 0; n < n_nodes; ++n) {
        const Node& node = graph.nodes[n];
        input_replica[n].assign(node.inputs.size(), -1);
        const uint32_t d = node_device[n];
        for (size_t i = 0; i < node.inputs.size(); ++i) {
            const dsk_value_id v = node.inputs[i];
            const uint32_t h = home_[v];
            if (h == d || (devices[h].host_memory && devices[d].host_memory)) continue;
            int32_t found = -1;
            for (size_t r = 0; r < replicas.size(); ++r)
                if (replicas[r].value == v && replicas[r].device == d) found = static_cast<int32_t>(r);
            if (found < 0) {
                Replica r;
                r.value = v;
                r.device = d;
                allocate(r.storage, graph.values[v].desc, d);
                replicas.push_back(r);
                found = static_cast<int32_t>(replicas.size() - 1);
                placement.transfers.push_back({value_label(graph, v), devices[h].name, devices[d].name, r.storage.bytes});
            }
            input_replica[n][i] = found;
        }
    }
}

void dsk_session::allocate(Storage& s, const dsk_tensor_desc& desc, uint32_t device_index) {
    const Device& device = devices[device_index];
    const uint64_t bytes = bytes_of(desc);
    s = Storage{};
    s.device = device_index;
    throw_if_error(device.backend->buffer_alloc(device.device, bytes, 64, device.host_memory ? DSK_BUFFER_HOST_VISIBLE : 0u, &s.buffer),
                   "allocating " + std::to_string(bytes) + " bytes on " + device.name);
    s.bytes = bytes;
    if (!device.backend->buffer_map || device.backend->buffer_map(s.buffer, &s.data) != DSK_STATUS_OK) s.data = nullptr;
    if (device.host_memory && !s.data && bytes)
        throw Error(DSK_INTERNAL, "backend '" + device.name + "' says its device computes on host memory (DSK_DEVICE_CPU) "
                                                              "but gives no host address for a buffer (buffer_map)");
}

void dsk_session::ensure_storage(dsk_value_id v) {
    Storage& s = storage[v];
    const uint64_t bytes = bytes_of(graph.values[v].desc);
    if (s.buffer && s.bytes == bytes && s.device == home_[v]) return;
    if (s.buffer) devices[s.device].backend->buffer_free(s.buffer);
    s = Storage{};
    allocate(s, graph.values[v].desc, home_[v]);
}

void dsk_session::finish(uint32_t d) {
    Device& device = devices[d];
    if (!device.pending) return;
    device.pending = false;
    dsk_fence* fence = nullptr;
    throw_if_error(device.backend->queue_flush(device.queue, &fence), "submitting work to " + device.name);
    dsk_status st = device.backend->fence_wait(fence, DSK_WAIT_INFINITE);
    device.backend->fence_destroy(fence);
    throw_if_error(st, "waiting for " + device.name);
}

void dsk_session::copy_in(const Storage& s, const void* host) {
    if (!s.bytes) return;
    if (s.data) {
        std::memcpy(s.data, host, s.bytes);
        return;
    }
    Device& device = devices[s.device];
    throw_if_error(device.backend->copy_to_device(device.queue, host, s.buffer, 0, s.bytes), "copying to " + device.name);
    device.pending = true;
    finish(s.device);  // the host data is borrowed only for this call
}

void dsk_session::copy_out(const Storage& s, void* host) {
    if (!s.bytes) return;
    finish(s.device);
    if (s.data) {
        std::memcpy(host, s.data, s.bytes);
        return;
    }
    Device& device = devices[s.device];
    throw_if_error(device.backend->copy_to_host(device.queue, s.buffer, 0, host, s.bytes), "copying from " + device.name);
    device.pending = true;
    finish(s.device);
}

void dsk_session::refresh_replica(Replica& r) {
    if (r.fresh_in_run == runs) return;
    const Storage& home = storage[r.value];
    if (home.data && !devices[home.device].pending) {
        copy_in(r.storage, home.data);
    } else if (r.storage.data) {
        copy_out(home, r.storage.data);
    } else {
        std::vector<uint8_t> staging(home.bytes);
        copy_out(home, staging.data());
        copy_in(r.storage, staging.data());
    }
    r.fresh_in_run = runs;
    ++transfers;
    transfer_bytes += home.bytes;
}

void dsk_session::initialise_variable(dsk_value_id v) {
    const Value& value = graph.values[v];
    const int64_t n = dsk::numel(value.desc);
    if (value.desc.dtype != DSK_DTYPE_F32)
        throw Error(DSK_UNIMPLEMENTED, "variable '" + value.name + "': only f32 variables are initialised");
    std::vector<float> p(static_cast<size_t>(n));
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
    copy_in(storage[v], p.data());
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
    copy_in(storage[v], host.data);
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
    copy_out(storage[v], host.data);
}

dsk_tensor_desc dsk_session::view(dsk_value_id v, const Storage& s) const {
    dsk_tensor_desc d = graph.values[v].desc;
    d.device = devices[s.device].device;
    d.buffer = s.buffer;
    d.offset = 0;
    d.data = s.data;
    return d;
}

dsk_tensor_desc dsk_session::tensor(dsk_value_id v) const {
    graph.value(v);  // range check
    return view(v, storage[v]);
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
    place(preference_);  // a backend may answer supports_op differently for other shapes
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
        const uint32_t d = node_device[n];
        tensors.clear();
        for (size_t i = 0; i < node.inputs.size(); ++i) {
            const int32_t r = input_replica[n][i];
            if (r < 0) {
                const Storage& s = storage[node.inputs[i]];
                if (s.device != d) finish(s.device);  // produced on another host-memory device
                tensors.push_back(view(node.inputs[i], s));
            } else {
                refresh_replica(replicas[r]);
                tensors.push_back(view(node.inputs[i], replicas[r].storage));
            }
        }
        for (dsk_value_id out : node.outputs) tensors.push_back(view(out, storage[out]));
        dsk_exec_context ctx{this, n};
        const dsk_op_kernel* k = kernels[n];
        dsk_status st = DSK_STATUS_OK;
        try {
            st = k->compute(k->self, &ctx, &node.view, tensors.data());
        } catch (...) {  // a kernel without the C++ wrapper let an exception escape
            st = status_from_current_exception();
        }
        if (!devices[d].host_memory) devices[d].pending = true;
        throw_if_error(st, "node " + std::to_string(n) + " (" + node.op + ") on " + devices[d].name);
    }
    for (uint32_t d = 0; d < devices.size(); ++d) finish(d);
    ++runs;
}

// --- host table: sessions ----------------------------------------------------------------------

namespace dsk::kernel {
namespace {

dsk_status null_session() { return make_status(DSK_INVALID_ARGUMENT, "null session"); }

// Tells the stage's run where the session's nodes went: the log (a warning under "warn" when
// nodes fell back), `dsk run --explain`, and the stage's entry in summary.json.
void report_session(dsk_stage_context& ctx, const dsk_session& session, const DevicePreference& preference) {
    const PlacementReport& report = session.placement;
    const std::string text = "session of " + std::to_string(session.graph.nodes.size()) + " nodes, " + report.text();
    if (ctx.log && ctx.stage) {
        const bool fell_back = !report.fallbacks.empty() && preference.policy == "warn";
        ctx.log(fell_back ? DSK_LOG_WARNING : DSK_LOG_DEBUG, ctx.stage->name, text);
        if (ctx.explain) ctx.log(DSK_LOG_INFO, ctx.stage->name, text);
    }
    toml::table entry = report.table();
    entry.insert("nodes_total", static_cast<int64_t>(session.graph.nodes.size()));
    entry.insert("automatic", preference.automatic);
    ctx.sessions.push_back(std::move(entry));
}

}  // namespace

void fill_session_api(dsk_host_api& api) {
    api.session_create = [](dsk_stage_context* ctx, dsk_graph* graph, const char* device, uint64_t seed,
                            dsk_session** out) -> dsk_status {
        if (!ctx || !graph || !out) return make_status(DSK_INVALID_ARGUMENT, "session_create: null context, graph or out");
        return guarded([&] {
            DevicePreference preference = resolve_preference(*ctx->kernel, ctx, device ? device : "");
            auto session = std::make_unique<dsk_session>(ctx->kernel, *graph, preference, seed);
            report_session(*ctx, *session, preference);
            *out = session.release();
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
    api.exec_queue = [](dsk_exec_context* ctx) -> dsk_queue* {
        return ctx->session->devices[ctx->session->node_device[ctx->node]].queue;
    };
}

}  // namespace dsk::kernel
