#include "session.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include "dsk/dsk_random.hpp"
#include "dsk/dsk_tensor.hpp"
#include "dsk/dsk_work.hpp"
#include "kernel.h"
#include "pipeline.h"
#include "placement.h"
#include "semver.h"
#include "spelling.h"
#include "stage_context.h"
#include "status.h"
#include "thread_pool.h"

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

// Copies between host memory and a host-visible buffer. A large one (an input batch) is split
// into one equal part per thread that the copy pays for (dsk::threads_for, the plugins' rule):
// the copy is the only serial part of a run otherwise, and with the parts in thread order each
// core writes the rows that the same core's share of the first layer reads next (cpu kernels
// split their rows over threads in order), so the data does not move between the cores' caches
// on every run.
void copy_host(void* dst, const void* src, uint64_t bytes) {
    const uint64_t parts =
        dsk::threads_for(dsk::Work{0.0, 2.0 * static_cast<double>(bytes)}, dsk::kernel::thread_count());
    if (parts <= 1) {
        std::memcpy(dst, src, bytes);
        return;
    }
    struct Copy {
        uint8_t* dst;
        const uint8_t* src;
        uint64_t bytes, parts;
        uint64_t at(size_t part) const { return std::min(bytes, (bytes * part / parts + 63) / 64 * 64); }
    } copy{static_cast<uint8_t*>(dst), static_cast<const uint8_t*>(src), bytes, parts};
    dsk::kernel::parallel_for(
        parts, 1,
        [](void* user, size_t begin, size_t end) {
            const auto& c = *static_cast<const Copy*>(user);
            std::memcpy(c.dst + c.at(begin), c.src + c.at(begin), c.at(end) - c.at(begin));
        },
        &copy);
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
        // Fused schemas: the plans may use them.
        for (const char* fused : {"FusedGemm", "FusedConv", "FusedConvMaxPool", "FusedGemmChain"}) {
            auto schema = kernel->registry.op_schemas.find(fused);
            if (schema != kernel->registry.op_schemas.end()) keep_loaded(schema->second.plugin);
        }
        open_devices(preference);
        place(preference);
        storage.resize(graph.values.size());
        versions.resize(graph.values.size());
        for (dsk_value_id v = 0; v < graph.values.size(); ++v) {
            if (!persistent(v)) continue;
            changed(v);
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

void dsk_session::free_storage(Storage& s) {
    if (s.buffer && s.owned) devices[s.device].backend->buffer_free(s.buffer);
    s = Storage{};
}

void dsk_session::release_plans() {
    for (auto& plan : plans)
        for (auto& b : plan->buffers) free_storage(b);
    plans.clear();
    last_plan = nullptr;
    plans_by_last_ = nullptr;
    last_targets_.clear();
}

void dsk_session::release() {
    release_plans();
    for (auto& s : storage) free_storage(s);
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

bool dsk_session::persistent(dsk_value_id v) const { return graph.values[v].kind != ValueKind::NodeOutput; }

void dsk_session::place(const DevicePreference& preference) {
    // Kernels come from whichever plugin provides "kernel:<op>@<backend>": load those not
    // loaded yet (an optimizer's update kernels, a vendor's extra kernels), as schemas are.
    for (const auto& node : graph.nodes)
        for (const auto& d : devices)
            if (!find_kernel(kernel->registry, node, graph.values, d.name))
                if (Plugin* provider = kernel->find_provider("kernel", node.op + "@" + d.name))
                    if (provider->state == PluginState::Available) {
                        try {
                            kernel->load(provider->manifest.name, *VersionRange::parse("*"));
                        } catch (const Error&) {
                            // Reported by `dsk doctor`; placement then says no kernel was found.
                        }
                    }
    std::vector<OpenDevice> open;
    for (const auto& d : devices) open.push_back({d.name, d.backend, d.device});
    std::vector<const Node*> nodes;
    for (const auto& node : graph.nodes) nodes.push_back(&node);
    NodePlacement placed = place_nodes(kernel->registry, open, nodes, graph.values, preference.policy);
    kernels.clear();
    for (const auto* k : placed.kernels) {
        keep_loaded(k->plugin);
        kernels.push_back(k->iface);
    }
    node_device = placed.devices;
    placement = std::move(placed.report);

    // Home of each input, variable and constant: where it is first read (for the session's
    // life, so that its data stays where the work is).
    if (home_.empty()) {
        home_.assign(graph.values.size(), UINT32_MAX);
        for (uint32_t n = 0; n < graph.nodes.size(); ++n)
            for (dsk_value_id in : graph.nodes[n].inputs)
                if (home_[in] == UINT32_MAX) home_[in] = node_device[n];
        for (auto& h : home_)
            if (h == UINT32_MAX) h = 0;
    }
}

void dsk_session::allocate(Storage& s, uint64_t bytes, uint32_t device_index) {
    const Device& device = devices[device_index];
    s = Storage{};
    s.device = device_index;
    throw_if_error(device.backend->buffer_alloc(device.device, bytes, 64, device.host_memory ? DSK_BUFFER_HOST_VISIBLE : 0u, &s.buffer),
                   "allocating " + std::to_string(bytes) + " bytes on " + device.name);
    s.owned = true;
    s.bytes = bytes;
    if (device.backend->buffer_map) {
        if (dsk_status st = device.backend->buffer_map(s.buffer, &s.data)) {  // device-only memory
            free_status(st);
            s.data = nullptr;
        }
    }
    if (device.host_memory && !s.data && bytes)
        throw Error(DSK_INTERNAL, "backend '" + device.name + "' says its device computes on host memory (DSK_DEVICE_CPU) "
                                                              "but gives no host address for a buffer (buffer_map)");
}

void dsk_session::ensure_storage(dsk_value_id v) {
    Storage& s = storage[v];
    const uint64_t bytes = dsk::byte_size(graph.values[v].desc);
    if (s.buffer && s.bytes == bytes && s.device == home_[v]) return;
    free_storage(s);
    allocate(s, bytes, home_[v]);
}

const Storage& dsk_session::storage_of(dsk_value_id v) const {
    graph.value(v);  // range check
    if (persistent(v)) return storage[v];
    if (last_plan && last_plan->transient[v].bytes) {
        if (std::binary_search(last_plan->targets.begin(), last_plan->targets.end(), v)) return last_plan->transient[v];
    }
    if (dsk::byte_size(graph.values[v].desc) == 0) return last_plan ? last_plan->transient[v] : storage[v];
    const uint32_t producer = graph.values[v].producer;
    const std::string what = producer < graph.nodes.size() ? " (" + graph.nodes[producer].op + " output)" : "";
    throw Error(DSK_FAILED_PRECONDITION, "value " + std::to_string(v) + what +
                                             " was not a target of the last run: only targets are kept after "
                                             "a run (the others share memory); list it in the run's targets");
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
        copy_host(s.data, host, s.bytes);
        return;
    }
    Device& device = devices[s.device];
    throw_if_error(device.backend->copy_to_device(device.queue, host, s.buffer, s.offset, s.bytes), "copying to " + device.name);
    device.pending = true;
    finish(s.device);  // the host data is borrowed only for this call
}

void dsk_session::copy_out(const Storage& s, void* host) {
    if (!s.bytes) return;
    finish(s.device);
    if (s.data) {
        copy_host(host, s.data, s.bytes);
        return;
    }
    Device& device = devices[s.device];
    throw_if_error(device.backend->copy_to_host(device.queue, s.buffer, s.offset, host, s.bytes), "copying from " + device.name);
    device.pending = true;
    finish(s.device);
}

void dsk_session::refresh_replica(Replica& r) {
    if (r.fresh_in_run == runs) return;
    const Storage& home = persistent(r.value) ? storage[r.value] : last_plan->transient[r.value];
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
    if (!host.data && dsk::byte_size(host)) throw Error(DSK_INVALID_ARGUMENT, "session_write '" + value.name + "': no host data");
    if (!dsk::is_contiguous(host)) throw Error(DSK_INVALID_ARGUMENT, "session_write '" + value.name + "': host data must be contiguous");
    if (!same_shape(host, value.desc)) {
        if (value.kind == ValueKind::Variable)
            throw Error(DSK_INVALID_ARGUMENT, "session_write '" + value.name + "': expected " + describe(value.desc) +
                                                  ", given " + describe(host));
        // A new batch size: shapes are inferred again, and plans rebuilt, before the next run.
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
    changed(v);
}

void dsk_session::changed(dsk_value_id v) {
    const ValueKind kind = graph.values[v].kind;
    if (kind != ValueKind::Variable && kind != ValueKind::Constant) return;
    versions[v] = ++version_clock;  // variables and constants all exist when the session is made
}

dsk_tensor_desc dsk_session::expose(dsk_value_id v) {
    const dsk_tensor_desc d = tensor(v);
    changed(v);
    if (std::find(exposed.begin(), exposed.end(), v) == exposed.end()) exposed.push_back(v);
    return d;
}

uint64_t dsk_session::input_version(const ExecutionPlan& plan, const PlanStep& step, uint32_t input) const {
    if (input >= step.node.inputs.size()) return 0;
    const dsk_value_id v = step.node.inputs[input];
    if (v >= versions.size() || (v < plan.writes.size() && plan.writes[v]) ||
        std::find(exposed.begin(), exposed.end(), v) != exposed.end())
        return 0;
    // A computed value has a version only where this plan derives it from stable inputs.
    if (graph.values[v].kind == ValueKind::NodeOutput && !(v < plan.derived.size() && plan.derived[v])) return 0;
    return versions[v];
}

uint64_t dsk_session::derived_inputs_version(PlanStep& step) const {
    uint64_t newest = 0;
    for (dsk_value_id in : step.node.inputs) newest = std::max(newest, in < versions.size() ? versions[in] : 0);
    bool exposed_output = false;
    for (dsk_value_id out : step.node.outputs)
        exposed_output = exposed_output || std::find(exposed.begin(), exposed.end(), out) != exposed.end();
    if (step.derived_from == newest && !exposed_output) return 0;
    step.derived_from = 0;  // not current until the step has run
    return newest;
}

void dsk_session::derived_ran(PlanStep& step, uint64_t inputs_version) {
    step.derived_from = inputs_version;
    if (versions.size() < graph.values.size()) versions.resize(graph.values.size());  // a plan's new values
    for (dsk_value_id out : step.node.outputs) versions[out] = ++version_clock;
}

void dsk_session::read(dsk_value_id v, const dsk_tensor_desc& host) {
    const Value& value = graph.value(v);
    if (host.dtype != value.desc.dtype || !same_shape(host, value.desc))
        throw Error(DSK_INVALID_ARGUMENT, "session_read: value " + std::to_string(v) + (value.name.empty() ? "" : " '" + value.name + "'") +
                                              " is " + describe(value.desc) + ", the host tensor is " + describe(host));
    if (!dsk::is_contiguous(host)) throw Error(DSK_INVALID_ARGUMENT, "session_read: host data must be contiguous");
    if (!host.data && dsk::byte_size(host)) throw Error(DSK_INVALID_ARGUMENT, "session_read: no host data");
    const Storage& s = storage_of(v);
    if (s.bytes != dsk::byte_size(host))
        throw Error(DSK_INTERNAL, "session_read: value " + std::to_string(v) + " has no storage of its size (a failed run?)");
    copy_out(s, host.data);
}

dsk_tensor_desc dsk_session::view(dsk_value_id v, const Storage& s) const {
    dsk_tensor_desc d = graph.values[v].desc;
    d.device = devices[s.device].device;
    d.buffer = s.buffer;
    d.offset = s.offset;
    d.data = s.data;
    return d;
}

dsk_tensor_desc dsk_session::tensor(dsk_value_id v) const { return view(v, storage_of(v)); }

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
    release_plans();
    place(preference_);  // a backend may answer supports_op differently for other shapes
    for (dsk_value_id v = 0; v < graph.values.size(); ++v)
        if (persistent(v)) ensure_storage(v);
    shapes_dirty = false;
}

ExecutionPlan& dsk_session::plan_for(std::vector<dsk_value_id> targets) {
    for (dsk_value_id t : targets) graph.value(t);  // range check
    std::sort(targets.begin(), targets.end());
    targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
    for (auto& plan : plans)
        if (plan->targets == targets) return *plan;
    plans.push_back(build_plan(targets));
    if (explain) explain(plans.back()->passes.text() + "\n" + plans.back()->placement.text());
    return *plans.back();
}

std::vector<dsk_value_id> dsk_session::sinks() const {
    std::vector<bool> read(graph.values.size(), false);
    for (const auto& node : graph.nodes)
        for (dsk_value_id in : node.inputs) read[in] = true;
    // First outputs only: a node's later outputs are by-products (saved statistics, masks,
    // log-probabilities) that a run asks for only when it reads them.
    std::vector<dsk_value_id> out;
    for (const auto& node : graph.nodes)
        if (!node.outputs.empty() && !read[node.outputs[0]]) out.push_back(node.outputs[0]);
    std::sort(out.begin(), out.end());
    return out;
}

// The tensors of a step whose inputs need no replica and no wait for another device: the same
// on every run of the plan, so they are described once (the run loop then only calls kernels).
void dsk_session::bind_steps(ExecutionPlan& plan) {
    for (PlanStep& step : plan.steps) {
        const Node& node = step.node;
        bool direct = true;
        for (size_t i = 0; i < node.inputs.size() && direct; ++i) {
            const dsk_value_id in = node.inputs[i];
            direct = step.input_replica[i] < 0 && (persistent(in) ? storage[in] : plan.transient[in]).device == step.device;
        }
        if (!direct) continue;
        step.bound.clear();
        for (dsk_value_id in : node.inputs) step.bound.push_back(view(in, persistent(in) ? storage[in] : plan.transient[in]));
        for (dsk_value_id out : node.outputs) step.bound.push_back(view(out, plan.transient[out]));
    }
}

// The tensors of a step that reads a replica or memory another device writes: replicas
// refreshed and other devices waited for first.
const dsk_tensor_desc* dsk_session::gather_tensors(ExecutionPlan& plan, const PlanStep& step, std::vector<dsk_tensor_desc>& tensors) {
    const Node& node = step.node;
    tensors.clear();
    for (size_t i = 0; i < node.inputs.size(); ++i) {
        const dsk_value_id in = node.inputs[i];
        const int32_t r = step.input_replica[i];
        if (r < 0) {
            const Storage& s = persistent(in) ? storage[in] : plan.transient[in];
            if (s.device != step.device) finish(s.device);  // produced on another host-memory device
            tensors.push_back(view(in, s));
        } else {
            refresh_replica(plan.replicas[r]);
            tensors.push_back(view(in, plan.replicas[r].storage));
        }
    }
    for (dsk_value_id out : node.outputs) tensors.push_back(view(out, plan.transient[out]));
    return tensors.data();
}

void dsk_session::run(std::span<const dsk_value_id> targets) {
    if (shapes_dirty) reinfer_shapes();
    // The plan of the last run again (a training or serving loop), without sorting the targets.
    const bool same = plans_by_last_ && std::equal(targets.begin(), targets.end(), last_targets_.begin(), last_targets_.end());
    ExecutionPlan& plan = same ? *plans_by_last_ : plan_for(std::vector<dsk_value_id>(targets.begin(), targets.end()));
    if (!same) last_targets_.assign(targets.begin(), targets.end());
    plans_by_last_ = &plan;
    last_plan = &plan;
    if (plan.runs == 0 || plan.rebind) {
        bind_steps(plan);
        plan.rebind = false;
    }
    // What the run writes gets a new version before it (memory handed out may have been written
    // since the last run) and after it, even when a step fails (the writes may have happened).
    for (dsk_value_id v : exposed) changed(v);
    struct NewVersions {
        dsk_session& session;
        const ExecutionPlan& plan;
        void operator()() const {
            for (dsk_value_id v : plan.written) session.changed(v);
        }
        ~NewVersions() { (*this)(); }
    } new_versions{*this, plan};
    new_versions();
    std::vector<dsk_tensor_desc> gathered;
    for (PlanStep& step : plan.steps) {
        if (step.once && plan.runs > 0) continue;
        const uint64_t inputs_version = step.derived ? derived_inputs_version(step) : 0;
        if (step.derived && inputs_version == 0) continue;  // its results are those of its inputs now
        const uint32_t d = step.device;
        const dsk_tensor_desc* tensors = step.bound.empty() ? gather_tensors(plan, step, gathered) : step.bound.data();
        dsk_exec_context ctx{seed, runs, step.origin, devices[d].queue, this, &plan, &step};
        const dsk_op_kernel* k = step.kernel;
        dsk_status st = DSK_STATUS_OK;
        try {
            st = k->compute(k->self, &ctx, &step.node.view, tensors);
        } catch (...) {  // a kernel without the C++ wrapper let an exception escape
            st = status_from_current_exception();
        }
        if (!devices[d].host_memory) devices[d].pending = true;
        if (st) throw_if_error(st, "node " + std::to_string(step.origin) + " (" + step.node.op + ") on " + devices[d].name);
        if (step.derived) derived_ran(step, inputs_version);
    }
    for (uint32_t d = 0; d < devices.size(); ++d) finish(d);
    ++plan.runs;
    ++runs;
}

bool dsk_session::host_memory_only() const {
    return std::all_of(devices.begin(), devices.end(), [](const Device& d) { return d.host_memory; });
}

std::vector<bool> dsk_session::run_bound(std::span<const dsk_value_id> targets, std::span<const Binding> inputs,
                                         std::span<const Binding> outputs) {
    if (!host_memory_only()) throw Error(DSK_INTERNAL, "run_bound: the session has a device without host memory");
    ExecutionPlan& plan = plan_for(std::vector<dsk_value_id>(targets.begin(), targets.end()));
    // What to put back afterwards, whatever happens.
    std::vector<std::pair<Storage*, Storage>> saved;
    // The steps' tensors describe the storage of the run they were built for: again for this run
    // and again for the next one, with the storage back.
    struct Restore {
        std::vector<std::pair<Storage*, Storage>>& saved;
        ExecutionPlan& plan;
        ~Restore() {
            for (auto& [where, old] : saved) *where = old;
            plan.rebind = true;
        }
    } restore{saved, plan};
    plan.rebind = true;
    auto bind = [&](Storage& where, const Binding& b) {
        if (b.bytes != where.bytes || (!b.data && b.bytes))
            throw Error(DSK_INTERNAL, "run_bound: value " + std::to_string(b.value) + " is bound to " + std::to_string(b.bytes) +
                                          " bytes, it has " + std::to_string(where.bytes));
        saved.emplace_back(&where, where);
        where.buffer = b.buffer;
        where.offset = 0;
        where.data = b.data;
        where.owned = false;
    };
    for (const Binding& b : inputs) {
        if (graph.value(b.value).kind != ValueKind::Input)
            throw Error(DSK_INTERNAL, "run_bound: value " + std::to_string(b.value) + " is not an input");
        ensure_storage(b.value);
        bind(storage[b.value], b);
    }
    std::vector<bool> bound(outputs.size(), false), taken(graph.values.size(), false);
    for (const PlanStep& step : plan.steps)
        if (step.once || step.derived)
            for (dsk_value_id v : step.node.outputs) taken[v] = true;  // kept from run to run
    for (size_t i = 0; i < outputs.size(); ++i) {
        const dsk_value_id v = outputs[i].value;
        if (graph.value(v).kind != ValueKind::NodeOutput || taken[v] || plan.transient[v].bytes == 0) continue;
        taken[v] = true;
        bind(plan.transient[v], outputs[i]);
        bound[i] = true;
    }
    run(targets);
    return bound;
}

// --- host table: sessions ----------------------------------------------------------------------

namespace dsk::kernel {
namespace {

dsk_status null_session() { return make_status(DSK_INVALID_ARGUMENT, "null session"); }

// Tells the stage's run where the session's nodes went and what its default plan (every result
// computed) looks like: the log (a warning under "warn" when nodes fell back), `dsk run
// --explain` (which also gets the plans built later, for other targets), and the stage's entry
// in summary.json. The session is destroyed before the stage returns, so the log it keeps for
// --explain outlives it never.
void report_session(dsk_stage_context& ctx, dsk_session& session, const DevicePreference& preference) {
    const ExecutionPlan& plan = session.plan_for(session.sinks());
    session.placement.transfers = plan.placement.transfers;
    const PlacementReport& report = session.placement;
    const std::string text = "session of " + std::to_string(session.graph.nodes.size()) + " nodes, " + report.text() +
                             "\n" + plan.passes.text();
    if (ctx.log && ctx.stage) {
        const bool fell_back = !report.fallbacks.empty() && preference.policy == "warn";
        ctx.log(fell_back ? DSK_LOG_WARNING : ctx.explain ? DSK_LOG_INFO : DSK_LOG_DEBUG, ctx.stage->name, text);
        if (ctx.explain) {
            session.explain = [log = ctx.log, stage = ctx.stage->name](const std::string& plan_text) {
                log(DSK_LOG_INFO, stage, "new plan for other targets: " + plan_text);
            };
        }
    }
    toml::table entry = report.table();
    entry.insert("nodes_total", static_cast<int64_t>(session.graph.nodes.size()));
    entry.insert("automatic", preference.automatic);
    entry.insert("default_plan", plan.passes.table());
    ctx.sessions.push_back(std::move(entry));
    // The report is all it was built for: a stage's runs usually target other values (a loss and
    // the update), so its arenas would only sit beside theirs.
    session.release_plans();
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
        if (count && !targets) return make_status(DSK_INVALID_ARGUMENT, "session_run: null targets");
        return guarded([&] { s->run(std::span<const dsk_value_id>(targets, count)); });
    };
    api.session_tensor = [](dsk_session* s, dsk_value_id v, dsk_tensor_desc* out) -> dsk_status {
        if (!s || !out) return null_session();
        return guarded([&] { copy_out(s->expose(v), out); });
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
        // A step that draws random numbers is not a function of its inputs: it runs on every run,
        // even where it reads only constants or variables (folded or derived until now).
        if (ctx->step && (ctx->step->once || ctx->step->derived)) unfold_from(*ctx->plan, *ctx->step);
        uint64_t state = ctx->seed ^ (ctx->runs * 0xd1b54a32d192ed03ull) ^
                         (static_cast<uint64_t>(ctx->node) * 0x8cb92ba72f3d8dd7ull);
        return splitmix64(state);
    };
    api.exec_queue = [](dsk_exec_context* ctx) -> dsk_queue* {
        return ctx->queue;
    };
    api.exec_input_version = [](dsk_exec_context* ctx, uint32_t input) -> uint64_t {
        return ctx && ctx->session && ctx->step ? ctx->session->input_version(*ctx->plan, *ctx->step, input) : 0;
    };
    api.exec_cache = [](dsk_exec_context* ctx) -> void* {
        return ctx && ctx->step ? ctx->step->cache.data : nullptr;
    };
    api.exec_set_cache = [](dsk_exec_context* ctx, void* cache, void (*release)(void*)) {
        if (ctx && ctx->step) {
            ctx->step->cache.reset(cache, release);
        } else if (cache && release) {
            release(cache);
        }
    };
}

}  // namespace dsk::kernel
