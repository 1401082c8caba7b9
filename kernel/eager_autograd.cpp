#include "eager_autograd.h"

#include <string>

#include "status.h"

namespace dsk::kernel {
namespace {

bool on_tape(const dsk_eager& eager, const dsk_eager_tensor& t) {
    return eager.tape && t.tape_epoch == eager.tape->epoch;
}

// The tape's value of `t`, adding it as an input value (holding a reference) if it has none.
dsk_value_id tape_value(EagerTape& tape, dsk_eager_tensor* t) {
    if (t->tape_epoch == tape.epoch) return t->tape_value;
    Value v;
    v.kind = ValueKind::Input;
    v.desc = t->desc;
    v.desc.device = nullptr;
    v.desc.buffer = nullptr;
    v.desc.offset = 0;
    v.desc.data = nullptr;
    const dsk_value_id id = tape.graph.add_value(std::move(v));
    dsk_eager_tensor_retain(t);
    tape.tensors.push_back(t);
    tape.requires_grad.push_back(0);
    t->tape_epoch = tape.epoch;
    t->tape_value = id;
    return id;
}

std::string op_name(const Node& n) { return n.domain.empty() ? n.op : n.domain + "." + n.op; }

void release_all(std::vector<dsk_eager_tensor*>& tensors, size_t from) {
    for (size_t i = from; i < tensors.size(); ++i) dsk_eager_tensor_release(tensors[i]);
    tensors.resize(from);
}

// Runs the gradient nodes [first_node, end) of the tape that `wanted` needs, eagerly and in
// order, filling tape.tensors for their outputs (and the constants they read). A tensor made
// here that no later node reads and that is not wanted is released at once.
void run_gradient_nodes(dsk_eager& eager, EagerTape& tape, size_t first_node, const std::vector<dsk_value_id>& wanted) {
    dsk_graph& g = tape.graph;
    std::vector<uint8_t> needed_value(g.values.size(), 0), needed_node(g.nodes.size(), 0);
    for (dsk_value_id v : wanted)
        if (v != DSK_VALUE_NONE) needed_value[v] = 1;
    std::vector<uint32_t> readers(g.values.size(), 0);  // by needed gradient nodes
    for (size_t n = g.nodes.size(); n-- > first_node;) {
        bool any = false;
        for (dsk_value_id out : g.nodes[n].outputs) any |= needed_value[out] != 0;
        if (!any) continue;
        needed_node[n] = 1;
        for (dsk_value_id in : g.nodes[n].inputs) {
            needed_value[in] = 1;
            ++readers[in];
        }
    }
    const size_t first_gradient_value = tape.tensors.size();
    tape.tensors.resize(g.values.size(), nullptr);
    std::vector<uint8_t> keep(g.values.size(), 0);
    for (dsk_value_id v : wanted)
        if (v != DSK_VALUE_NONE) keep[v] = 1;

    std::vector<dsk_eager_tensor*> in, out;
    for (size_t n = first_node; n < g.nodes.size(); ++n) {
        if (!needed_node[n]) continue;
        const Node& node = g.nodes[n];
        in.clear();
        for (dsk_value_id v : node.inputs) {
            if (!tape.tensors[v]) {
                const Value& value = g.values[v];
                if (value.kind != ValueKind::Constant)
                    throw Error(DSK_INTERNAL, "backward: value " + std::to_string(v) + " read by the gradient of " +
                                                  node.op + " has no tensor");
                dsk_tensor_desc host = value.desc;
                tape.tensors[v] = eager.make_from_host(host, value.constant.data());
            }
            in.push_back(tape.tensors[v]);
        }
        out.assign(node.outputs.size(), nullptr);
        eager.run(op_name(node).c_str(), node.attr_views.data(), node.attr_views.size(), in.data(), in.size(), out.data(),
                  out.size());
        for (size_t i = 0; i < out.size(); ++i) tape.tensors[node.outputs[i]] = out[i];
        // What this node made or read that nothing needs any more.
        for (dsk_value_id v : node.outputs)
            if (!needed_value[v] && !keep[v]) {
                dsk_eager_tensor_release(tape.tensors[v]);
                tape.tensors[v] = nullptr;
            }
        for (dsk_value_id v : node.inputs)
            if (--readers[v] == 0 && v >= first_gradient_value && !keep[v]) {
                dsk_eager_tensor_release(tape.tensors[v]);
                tape.tensors[v] = nullptr;
            }
    }
}

}  // namespace

EagerTape::EagerTape(dsk_eager& eager) : epoch(++eager.tape_epochs) { graph.kernel = eager.kernel; }

EagerTape::~EagerTape() { release_all(tensors, 0); }

void set_requires_grad(dsk_eager& eager, dsk_eager_tensor& t, bool on) {
    if (!on_tape(eager, t)) {
        if (!on) return;
        if (!eager.tape) eager.tape = std::make_unique<EagerTape>(eager);
        tape_value(*eager.tape, &t);
    }
    EagerTape& tape = *eager.tape;
    const Value& v = tape.graph.values[t.tape_value];
    if (!on && v.kind == ValueKind::NodeOutput)
        throw Error(DSK_FAILED_PRECONDITION,
                    "set_requires_grad(0): the tensor was computed from tensors that require a gradient; only a tensor "
                    "made outside the tape (a leaf) can be unmarked");
    tape.requires_grad[t.tape_value] = on ? 1 : 0;
}

bool requires_grad(const dsk_eager& eager, const dsk_eager_tensor& t) {
    return on_tape(eager, t) && eager.tape->requires_grad[t.tape_value] != 0;
}

void record_on_tape(dsk_eager& eager, const char* op, const dsk_attr* attrs, size_t attr_count,
                    dsk_eager_tensor* const* inputs, size_t input_count, dsk_eager_tensor* const* outputs,
                    size_t output_count) {
    if (!eager.tape) return;
    bool any = false;
    for (size_t i = 0; i < input_count && !any; ++i) any = requires_grad(eager, *inputs[i]);
    if (!any) return;
    EagerTape& tape = *eager.tape;
    std::vector<dsk_value_id> ids(input_count);
    for (size_t i = 0; i < input_count; ++i) ids[i] = tape_value(tape, inputs[i]);
    const std::vector<dsk_value_id> outs = tape.graph.add_node(op, attrs, attr_count, ids.data(), ids.size(), output_count);
    for (size_t i = 0; i < output_count; ++i) {
        dsk_eager_tensor_retain(outputs[i]);
        tape.tensors.push_back(outputs[i]);
        tape.requires_grad.push_back(1);
        outputs[i]->tape_epoch = tape.epoch;
        outputs[i]->tape_value = outs[i];
    }
}

std::vector<dsk_eager_tensor*> backward(dsk_eager& eager, dsk_eager_tensor& loss, dsk_eager_tensor* const* wrt,
                                        size_t count, bool retain) {
    const bool consumed = loss.tape_epoch != 0 && !on_tape(eager, loss);
    if (consumed)
        throw Error(DSK_FAILED_PRECONDITION,
                    "backward: the loss's tape was already consumed (by a backward, or dsk_eager_tape_clear); pass "
                    "DSK_EAGER_RETAIN_TAPE to the first backward to differentiate the same ops again");
    if (!requires_grad(eager, loss))
        throw Error(DSK_FAILED_PRECONDITION,
                    "backward: the loss was not computed from any tensor that requires a gradient (mark the tensors "
                    "to differentiate with dsk_eager_tensor_set_requires_grad before the ops that use them)");
    std::vector<dsk_value_id> wrt_ids(count);
    for (size_t i = 0; i < count; ++i) {
        if (!wrt[i] || wrt[i]->eager != &eager)
            throw Error(DSK_INVALID_ARGUMENT, "backward: wrt[" + std::to_string(i) + "] is null or belongs to another eager context");
        if (!requires_grad(eager, *wrt[i]))
            throw Error(DSK_INVALID_ARGUMENT, "backward: wrt[" + std::to_string(i) +
                                                  "] is not on the tape (mark it with dsk_eager_tensor_set_requires_grad "
                                                  "before computing the loss from it)");
        wrt_ids[i] = wrt[i]->tape_value;
    }

    // The gradient ops run with the tape set aside: they are not recorded on it (no second
    // order), while a running trace records them like any other op.
    std::unique_ptr<EagerTape> tape = std::move(eager.tape);
    dsk_graph& g = tape->graph;
    const size_t forward_nodes = g.nodes.size(), forward_values = g.values.size();
    std::vector<dsk_eager_tensor*> result(count, nullptr);
    auto finish = [&] {  // frees the gradient phase; keeps the forward ops when retained
        release_all(tape->tensors, forward_values);
        if (!retain) return;
        g.nodes.resize(forward_nodes);
        g.values.resize(forward_values);
        eager.tape = std::move(tape);
    };
    try {
        const std::vector<dsk_value_id> grads = g.gradients(loss.tape_value, wrt_ids);
        run_gradient_nodes(eager, *tape, forward_nodes, grads);
        for (size_t i = 0; i < count; ++i) {
            if (grads[i] == DSK_VALUE_NONE) continue;
            result[i] = tape->tensors[grads[i]];
            dsk_eager_tensor_retain(result[i]);
        }
    } catch (...) {
        for (dsk_eager_tensor* t : result) dsk_eager_tensor_release(t);
        finish();
        throw;
    }
    finish();
    return result;
}

}  // namespace dsk::kernel
