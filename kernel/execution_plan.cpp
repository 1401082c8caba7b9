// Building a session's execution plan (execution_plan.h): the passes, in order, over the
// session's graph for one set of targets.
#include "execution_plan.h"

#include <algorithm>
#include <set>

#include "dsk/dsk_tensor.hpp"
#include "fusion_pass.h"
#include "kernel.h"
#include "memory_planner.h"
#include "session.h"
#include "status.h"

namespace dsk::kernel {

bool may_overwrite_input0(const Node& node) {
    static const std::set<std::string> ops = {"Relu", "Sigmoid", "Tanh", "Gelu", "Silu", "HardSwish", "HardSigmoid",
                                              "Neg", "Add", "Sub", "Mul", "Div", "ActivationGrad",
                                              "FusedElementwise", "Reshape", "Flatten"};
    return node.domain.empty() && ops.count(node.op) && !node.inputs.empty() && node.outputs.size() == 1;
}

uint64_t written_inputs(const Registry& registry, const Node& node) {
    auto it = registry.op_schemas.find(node.domain.empty() ? node.op : node.domain + "." + node.op);
    const dsk_op_schema* schema = it == registry.op_schemas.end() ? nullptr : it->second.iface;
    if (!schema || !DSK_HAS_MEMBER(schema, dsk_op_schema, written_inputs) || !schema->written_inputs) return ~uint64_t{0};
    return schema->written_inputs(schema->self, &node.view);
}

void unfold_from(ExecutionPlan& plan, const PlanStep& random) {
    std::vector<bool> changing(plan.derived.size(), false);
    for (dsk_value_id out : random.node.outputs)
        if (out < changing.size()) changing[out] = true;
    for (PlanStep& step : plan.steps) {
        bool reads_changing = &step == &random;
        for (dsk_value_id in : step.node.inputs) reads_changing = reads_changing || (in < changing.size() && changing[in]);
        if (!reads_changing || !(step.once || step.derived)) continue;
        step.once = step.derived = false;
        for (dsk_value_id out : step.node.outputs)
            if (out < changing.size()) changing[out] = true, plan.derived[out] = false;
    }
}

std::string PassReport::text() const {
    std::string out = std::string(eager ? "eager plan: " : "plan: ") + std::to_string(graph_nodes) + " graph nodes, " + std::to_string(needed_nodes) +
                      " needed, " + std::to_string(steps) + " steps after fusion";
    if (folded) out += ", " + std::to_string(folded) + " folded (computed once)";
    if (derived) out += ", " + std::to_string(derived) + " computed from variables (again only when they change)";
    for (const auto& f : fusions) out += "\n  fused: " + f;
    out += "\n  memory: " + std::to_string(planned_bytes) + " bytes planned for intermediate values (" +
           std::to_string(unplanned_bytes) + " with a buffer each), " + std::to_string(in_place) + " in place";
    return out;
}

toml::table PassReport::table() const {
    toml::array fused;
    for (const auto& f : fusions) fused.push_back(f);
    return toml::table{{"graph_nodes", static_cast<int64_t>(graph_nodes)},
                       {"needed_nodes", static_cast<int64_t>(needed_nodes)},
                       {"steps", static_cast<int64_t>(steps)},
                       {"folded", static_cast<int64_t>(folded)},
                       {"derived", static_cast<int64_t>(derived)},
                       {"fusions", std::move(fused)},
                       {"planned_bytes", static_cast<int64_t>(planned_bytes)},
                       {"unplanned_bytes", static_cast<int64_t>(unplanned_bytes)},
                       {"in_place", static_cast<int64_t>(in_place)},
                       {"execution", eager ? "eager" : "graph"}};
}

}  // namespace dsk::kernel

using namespace dsk::kernel;

std::unique_ptr<ExecutionPlan> dsk_session::build_plan(const std::vector<dsk_value_id>& targets) {
    auto plan = std::make_unique<ExecutionPlan>();
    ExecutionPlan& p = *plan;
    p.targets = targets;
    size_t n_values = graph.values.size();

    // 1. Dead code: the nodes the targets need.
    std::vector<bool> needed(n_values, false);
    for (dsk_value_id t : targets) needed[t] = true;
    std::vector<bool> runs_node(graph.nodes.size(), false);
    for (size_t n = graph.nodes.size(); n-- > 0;) {
        const Node& node = graph.nodes[n];
        for (dsk_value_id out : node.outputs) runs_node[n] = runs_node[n] || needed[out];
        if (runs_node[n])
            for (dsk_value_id in : node.inputs) needed[in] = true;
    }

    // 2. Placement: as the session placed the whole graph.
    std::vector<FusableStep> steps;
    for (uint32_t n = 0; n < graph.nodes.size(); ++n)
        if (runs_node[n]) steps.push_back({graph.nodes[n], n, {}, node_device[n]});
    p.passes.graph_nodes = graph.nodes.size();
    p.passes.eager = preference_.eager;
    p.passes.needed_nodes = steps.size();

    // 3. Fusion, where the device that runs the head has the fused kernel: Conv +
    // BatchNormalization (inference) folded first, then Gemm/Conv + activation, chains of Gemms
    // (inference), MaxPoolGrad + the Relu's ActivationGrad, a conv's bias gradient into its
    // ConvGradWeight, then chains of elementwise ops.
    std::vector<bool> observable(n_values, false);
    for (dsk_value_id t : targets) observable[t] = true;
    std::vector<OpenDevice> open;
    for (const auto& d : devices) open.push_back({d.name, d.backend, d.device});
    const bool eager = preference_.eager;
    if (!eager) {
        auto schema_of = [&](const std::string& op) -> const dsk_op_schema* {
            auto it = kernel->registry.op_schemas.find(op);
            return it == kernel->registry.op_schemas.end() ? nullptr : it->second.iface;
        };
        auto place = [&](const Node& node, uint32_t device) -> int32_t {
            if (kernel_on(kernel->registry, open[device], node, graph.values)) return static_cast<int32_t>(device);
            for (uint32_t d = 0; d < devices.size(); ++d)
                if (d != device && devices[d].host_memory && devices[device].host_memory &&
                    kernel_on(kernel->registry, open[d], node, graph.values))
                    return static_cast<int32_t>(d);
            return -1;
        };
        auto add_value = [&](const dsk_tensor_desc& desc) {
            Value v;
            v.kind = ValueKind::NodeOutput;
            v.desc = desc;
            const dsk_value_id id = graph.add_value(std::move(v));
            storage.resize(graph.values.size());
            home_.resize(graph.values.size(), 0);
            observable.resize(graph.values.size(), false);
            return id;
        };
        p.passes.fusions = fold_batch_norms(steps, graph.values, observable, schema_of, place, add_value);
        const auto fused = fuse_activations(steps, graph.values, observable, schema_of, place);
        p.passes.fusions.insert(p.passes.fusions.end(), fused.begin(), fused.end());
        const auto chained = fuse_gemm_chains(steps, graph.values, observable, schema_of, place);
        p.passes.fusions.insert(p.passes.fusions.end(), chained.begin(), chained.end());
        const auto pooled = fuse_conv_max_pools(steps, graph.values, observable, schema_of, place);
        p.passes.fusions.insert(p.passes.fusions.end(), pooled.begin(), pooled.end());
        const auto pool_grads = fuse_pool_relu_grads(steps, graph.values, observable, schema_of, place);
        p.passes.fusions.insert(p.passes.fusions.end(), pool_grads.begin(), pool_grads.end());
        const auto bias_grads = fuse_conv_bias_grads(steps, place);
        p.passes.fusions.insert(p.passes.fusions.end(), bias_grads.begin(), bias_grads.end());
        auto shares_memory = [&](uint32_t a, uint32_t b) {
            return a == b || (devices[a].host_memory && devices[b].host_memory);
        };
        const auto chains = fuse_elementwise(steps, graph.values, observable, schema_of, place, shares_memory);
        p.passes.fusions.insert(p.passes.fusions.end(), chains.begin(), chains.end());
    }
    n_values = graph.values.size();  // the folds added W' and B'

    p.steps.reserve(steps.size());
    for (auto& s : steps) {
        PlanStep step;
        step.node = std::move(s.node);
        step.origin = s.origin;
        step.fused_from = std::move(s.fused_from);
        step.device = s.device;
        p.steps.push_back(std::move(step));
    }
    for (auto& step : p.steps) {
        step.node.refresh_views();  // the moves left the views pointing at the old strings
        if (step.fused_from.empty()) {
            step.kernel = kernels[step.origin];
            continue;
        }
        const auto* k = kernel_on(kernel->registry, open[step.device], step.node, graph.values);
        if (!k) throw Error(DSK_INTERNAL, "the fused " + step.node.op + " lost its kernel on " + open[step.device].name);
        keep_loaded(k->plugin);
        step.kernel = k->iface;
    }
    p.passes.steps = p.steps.size();

    // What the steps write in place (versions, dsk_host_api.exec_input_version).
    p.writes.assign(n_values, false);
    for (const auto& step : p.steps) {
        const uint64_t mask = written_inputs(kernel->registry, step.node);
        for (size_t i = 0; i < step.node.inputs.size() && i < 64; ++i) {
            const dsk_value_id v = step.node.inputs[i];
            if ((mask >> i & 1u) && persistent(v) && !p.writes[v]) {
                p.writes[v] = true;
                p.written.push_back(v);
            }
        }
    }

    // 4. Constant folding: steps that read only constants (or folded results) run once; steps
    // that read only variables no step writes (or constants, or such results) run when one of
    // them changed (dsk_session::run compares versions).
    std::vector<bool> constant(n_values, false), stable(n_values, false);
    for (dsk_value_id v = 0; v < n_values; ++v) {
        const ValueKind kind = graph.values[v].kind;
        constant[v] = kind == ValueKind::Constant;
        stable[v] = constant[v] || (kind == ValueKind::Variable && !p.writes[v]);
    }
    p.derived.assign(n_values, false);
    for (auto& step : p.steps) {
        // (A step that turns out to draw random numbers is unfolded when it asks for its seed.)
        const bool foldable = !eager && !step.node.inputs.empty();
        bool all_constant = foldable, all_stable = foldable;
        for (dsk_value_id in : step.node.inputs) {
            all_constant = all_constant && constant[in];
            all_stable = all_stable && stable[in];
        }
        step.once = all_constant;
        step.derived = all_stable && !all_constant;
        for (dsk_value_id out : step.node.outputs) {
            constant[out] = all_constant;
            stable[out] = all_stable;
            p.derived[out] = step.derived;
        }
        p.passes.folded += step.once;
        p.passes.derived += step.derived;
    }

    // 5. Transfers: a replica wherever a step reads a value on a device that cannot read the
    // value's home memory.
    std::vector<uint32_t> home(n_values, 0);
    for (dsk_value_id v = 0; v < n_values; ++v)
        if (persistent(v)) home[v] = home_[v];
    for (const auto& step : p.steps)
        for (dsk_value_id out : step.node.outputs) home[out] = step.device;
    p.placement.backends = placement.backends;
    p.placement.nodes_per_backend.assign(devices.size(), 0);
    for (const auto& step : p.steps) ++p.placement.nodes_per_backend[step.device];
    for (auto& step : p.steps) {
        step.input_replica.assign(step.node.inputs.size(), -1);
        for (size_t i = 0; i < step.node.inputs.size(); ++i) {
            const dsk_value_id v = step.node.inputs[i];
            const uint32_t h = home[v], d = step.device;
            if (h == d || (devices[h].host_memory && devices[d].host_memory)) continue;
            int32_t found = -1;
            for (size_t r = 0; r < p.replicas.size(); ++r)
                if (p.replicas[r].value == v && p.replicas[r].device == d) found = static_cast<int32_t>(r);
            if (found < 0) {
                Replica r;
                r.value = v;
                r.device = d;
                allocate(r.storage, dsk::byte_size(graph.values[v].desc), d);
                p.buffers.push_back(r.storage);
                r.storage.owned = false;  // p.buffers frees it
                p.replicas.push_back(r);
                found = static_cast<int32_t>(p.replicas.size() - 1);
                const Value& value = graph.values[v];
                const std::string label = !value.name.empty() ? value.name
                                          : value.producer != UINT32_MAX
                                              ? "%" + std::to_string(v) + " (" + graph.nodes[value.producer].op + ")"
                                              : "%" + std::to_string(v);
                p.placement.transfers.push_back({label, devices[h].name, devices[d].name, r.storage.bytes});
            }
            step.input_replica[i] = found;
        }
    }

    // 6. Memory: folded and derived results get buffers of their own; the other step outputs share one arena
    // per device by liveness. Targets live past the run.
    p.transient.assign(n_values, Storage{});
    std::vector<Lifetime> lifetimes;
    std::vector<dsk_value_id> planned;  // lifetime index -> value
    std::vector<int32_t> lifetime_of(n_values, -1);
    for (uint32_t s = 0; s < p.steps.size(); ++s) {
        const PlanStep& step = p.steps[s];
        for (dsk_value_id out : step.node.outputs) {
            const uint64_t bytes = dsk::byte_size(graph.values[out].desc);
            if (step.once || step.derived) {
                Storage own;
                allocate(own, bytes, step.device);
                p.buffers.push_back(own);
                own.owned = false;
                p.transient[out] = own;
                continue;
            }
            Lifetime l;
            l.bytes = bytes;
            l.device = step.device;
            l.first = s;
            l.last = observable[out] ? UINT32_MAX : s;
            const dsk_value_id in0 = step.node.inputs.empty() ? 0 : step.node.inputs[0];
            if (out == step.node.outputs[0] && may_overwrite_input0(step.node) && devices[step.device].host_memory &&
                lifetime_of[in0] >= 0 && dsk::byte_size(graph.values[in0].desc) == bytes)
                l.in_place_of = lifetime_of[in0];
            lifetime_of[out] = static_cast<int32_t>(lifetimes.size());
            lifetimes.push_back(l);
            planned.push_back(out);
        }
        for (dsk_value_id in : step.node.inputs)
            if (lifetime_of[in] >= 0 && lifetimes[lifetime_of[in]].last != UINT32_MAX)
                lifetimes[lifetime_of[in]].last = std::max(lifetimes[lifetime_of[in]].last, s);
    }
    // An input may take over only a value that dies exactly at its step.
    if (eager) {  // a buffer each: nothing shares memory
        for (size_t i = 0; i < lifetimes.size(); ++i) {
            Storage own;
            allocate(own, lifetimes[i].bytes, lifetimes[i].device);
            p.buffers.push_back(own);
            own.owned = false;
            p.transient[planned[i]] = own;
            p.passes.unplanned_bytes += lifetimes[i].bytes;
        }
        p.passes.planned_bytes = p.passes.unplanned_bytes;
        return plan;
    }
    const MemoryPlan memory = plan_memory(lifetimes, static_cast<uint32_t>(devices.size()));
    p.passes.unplanned_bytes = memory.unplanned_bytes;
    p.passes.in_place = memory.in_place;
    std::vector<Storage> arenas(devices.size());
    for (uint32_t d = 0; d < devices.size(); ++d) {
        p.passes.planned_bytes += memory.arena_bytes[d];
        if (!memory.arena_bytes[d]) continue;
        allocate(arenas[d], memory.arena_bytes[d], d);
        p.buffers.push_back(arenas[d]);
    }
    for (size_t i = 0; i < planned.size(); ++i) {
        const Storage& arena = arenas[lifetimes[i].device];
        Storage slice;
        slice.buffer = arena.buffer;
        slice.offset = memory.offsets[i];
        slice.data = arena.data ? static_cast<uint8_t*>(arena.data) + memory.offsets[i] : nullptr;
        slice.bytes = lifetimes[i].bytes;
        slice.device = lifetimes[i].device;
        p.transient[planned[i]] = slice;
    }
    return plan;
}
