#include "graph.h"

#include <cstring>
#include <map>
#include <set>

#include "dsk/dsk_tensor.hpp"
#include "kernel.h"
#include "spelling.h"
#include "stage_context.h"
#include "status.h"

namespace dsk::kernel {
namespace {

std::string shape_text(const dsk_tensor_desc& d) {
    std::string s = "[";
    for (uint32_t i = 0; i < d.ndim; ++i) s += (i ? ", " : "") + std::to_string(d.shape[i]);
    return s + "]";
}

void make_contiguous(dsk_tensor_desc& d) {
    d.struct_size = sizeof d;
    int64_t stride = 1;
    for (uint32_t i = d.ndim; i-- > 0;) {
        d.strides[i] = stride;
        stride *= d.shape[i];
    }
    d.device = nullptr;
    d.buffer = nullptr;
    d.offset = 0;
    d.data = nullptr;
}

// Reads only what an ABI 1.0 tensor descriptor has, and checks it.
dsk_tensor_desc checked_desc(const dsk_tensor_desc* in, const std::string& what) {
    if (!in) throw Error(DSK_INVALID_ARGUMENT, what + ": null tensor descriptor");
    if (in->dtype == DSK_DTYPE_INVALID || in->dtype >= DSK_DTYPE_COUNT_)
        throw Error(DSK_INVALID_ARGUMENT, what + ": invalid dtype " + std::to_string(in->dtype));
    if (in->ndim > DSK_MAX_DIMS)
        throw Error(DSK_INVALID_ARGUMENT, what + ": rank " + std::to_string(in->ndim) + " exceeds " + std::to_string(DSK_MAX_DIMS));
    dsk_tensor_desc d{};
    d.dtype = in->dtype;
    d.ndim = in->ndim;
    for (uint32_t i = 0; i < d.ndim; ++i) {
        if (in->shape[i] < 0) throw Error(DSK_INVALID_ARGUMENT, what + ": negative dimension in " + shape_text(*in));
        d.shape[i] = in->shape[i];
    }
    make_contiguous(d);
    return d;
}

OwnedAttr own(const dsk_attr& a) {
    OwnedAttr o;
    if (!a.name) throw Error(DSK_INVALID_ARGUMENT, "attribute without a name");
    o.name = a.name;
    o.type = a.type;
    switch (a.type) {
        case DSK_ATTR_INT: o.i = a.i; break;
        case DSK_ATTR_FLOAT: o.f = a.f; break;
        case DSK_ATTR_STRING: o.s = a.s ? a.s : ""; break;
        case DSK_ATTR_INTS: o.ints.assign(a.ints, a.ints + a.count); break;
        case DSK_ATTR_FLOATS: o.floats.assign(a.floats, a.floats + a.count); break;
        default: throw Error(DSK_INVALID_ARGUMENT, "attribute '" + o.name + "' has unknown type " + std::to_string(a.type));
    }
    return o;
}

}  // namespace

void Node::refresh_views() {
    attr_views.clear();
    for (const auto& a : attrs) {
        dsk_attr v{};
        v.struct_size = sizeof v;
        v.type = a.type;
        v.name = a.name.c_str();
        v.i = a.i;
        v.f = a.f;
        v.s = a.s.c_str();
        v.ints = a.ints.data();
        v.floats = a.floats.data();
        v.count = a.type == DSK_ATTR_FLOATS ? a.floats.size() : a.ints.size();
        attr_views.push_back(v);
    }
    input_ids.resize(inputs.size());
    output_ids.resize(outputs.size());
    for (size_t i = 0; i < inputs.size(); ++i) input_ids[i] = static_cast<uint32_t>(i);
    for (size_t i = 0; i < outputs.size(); ++i) output_ids[i] = static_cast<uint32_t>(inputs.size() + i);
    view = dsk_node_view{};
    view.struct_size = sizeof view;
    view.op_version = op_version;
    view.op = op.c_str();
    view.domain = domain.c_str();
    view.attrs = attr_views.data();
    view.attr_count = attr_views.size();
    view.inputs = input_ids.data();
    view.input_count = input_ids.size();
    view.outputs = output_ids.data();
    view.output_count = output_ids.size();
}

const Provided<dsk_op_schema>& find_op_schema(dsk_kernel& kernel, const std::string& op_name) {
    auto& schemas = kernel.registry.op_schemas;
    auto it = schemas.find(op_name);
    if (it == schemas.end()) {
        if (Plugin* provider = kernel.find_provider("op", op_name)) {
            if (provider->state == PluginState::Available) kernel.load(provider->manifest.name, *VersionRange::parse("*"));
            it = schemas.find(op_name);
        }
    }
    if (it == schemas.end()) {
        std::vector<std::string> known;
        for (const auto& [name, entry] : schemas) known.push_back(name);
        throw Error(DSK_NOT_FOUND, "no op named '" + op_name + "'" + did_you_mean(op_name, known) +
                                       " (op schemas come from plugins providing op:<name> or op:*; searched: " +
                                       kernel.search_path_text() + ")");
    }
    return it->second;
}

void check_arity(const dsk_op_schema& schema, const std::string& op_name, size_t input_count, size_t output_count) {
    if (input_count < schema.min_inputs || input_count > schema.max_inputs)
        throw Error(DSK_INVALID_ARGUMENT, op_name + " takes " + std::to_string(schema.min_inputs) + ".." +
                                              std::to_string(schema.max_inputs) + " inputs, given " +
                                              std::to_string(input_count));
    if (output_count < schema.min_outputs || output_count > schema.max_outputs)
        throw Error(DSK_INVALID_ARGUMENT, op_name + " has " + std::to_string(schema.min_outputs) + ".." +
                                              std::to_string(schema.max_outputs) + " outputs, asked for " +
                                              std::to_string(output_count));
}

void infer_node_shapes(const Node& node, std::vector<Value>& values) {
    std::vector<dsk_tensor_desc> tensors;
    for (dsk_value_id v : node.inputs) tensors.push_back(values[v].desc);
    for (size_t i = 0; i < node.outputs.size(); ++i) {
        dsk_tensor_desc d{};
        d.struct_size = sizeof d;
        tensors.push_back(d);
    }
    dsk_status st = node.schema->infer_shapes(node.schema->self, &node.view, tensors.data());
    // Schemas name their op in their messages; add it only where one does not.
    const bool named = st && st->message.rfind(node.op, 0) == 0;
    throw_if_error(st, named ? std::string() : node.op);
    for (size_t i = 0; i < node.outputs.size(); ++i) {
        dsk_tensor_desc d = checked_desc(&tensors[node.inputs.size() + i], node.op + " output " + std::to_string(i));
        values[node.outputs[i]].desc = d;
    }
}

}  // namespace dsk::kernel

using namespace dsk::kernel;

dsk_value_id dsk_graph::add_value(Value v) {
    values.push_back(std::move(v));
    return static_cast<dsk_value_id>(values.size() - 1);
}

const Value& dsk_graph::value(dsk_value_id id) const {
    if (id >= values.size())
        throw Error(DSK_INVALID_ARGUMENT, "value id " + std::to_string(id) + " is not in this graph (it has " +
                                              std::to_string(values.size()) + " values)");
    return values[id];
}

std::vector<dsk_value_id> dsk_graph::add_node(const std::string& op_name, const dsk_attr* attrs, size_t attr_count,
                                              const dsk_value_id* inputs, size_t input_count, size_t output_count) {
    // "domain.op" outside the core set.
    std::string domain, op = op_name;
    if (auto dot = op_name.rfind('.'); dot != std::string::npos) {
        domain = op_name.substr(0, dot);
        op = op_name.substr(dot + 1);
    }
    const dsk_op_schema* schema = find_op_schema(*kernel, op_name).iface;
    check_arity(*schema, op_name, input_count, output_count);
    Node node;
    node.op = op;
    node.domain = domain;
    node.schema = schema;
    node.op_version = schema->since_version;
    for (size_t i = 0; i < attr_count; ++i) node.attrs.push_back(own(attrs[i]));
    for (size_t i = 0; i < input_count; ++i) {
        value(inputs[i]);  // checks the id
        node.inputs.push_back(inputs[i]);
    }
    const uint32_t index = static_cast<uint32_t>(nodes.size());
    for (size_t i = 0; i < output_count; ++i) {
        Value out;
        out.producer = index;
        node.outputs.push_back(add_value(std::move(out)));
    }
    node.refresh_views();
    try {
        infer_node_shapes(node, values);
    } catch (...) {
        values.resize(values.size() - output_count);  // leave the graph as it was
        throw;
    }
    nodes.push_back(std::move(node));
    return nodes.back().outputs;
}

std::vector<dsk_value_id> dsk_graph::gradients(dsk_value_id loss, const std::vector<dsk_value_id>& wrt) {
    const Value& l = value(loss);
    if (dsk::numel(l.desc) != 1 || l.desc.dtype != DSK_DTYPE_F32)
        throw Error(DSK_INVALID_ARGUMENT, "gradients: the loss must be a scalar f32, it is " + shape_text(l.desc));
    for (dsk_value_id w : wrt) value(w);

    // Values that depend on a `wrt` value: only their producers' gradients are needed.
    std::vector<bool> depends(values.size(), false);
    for (dsk_value_id w : wrt) depends[w] = true;
    const size_t forward_nodes = nodes.size();
    for (size_t n = 0; n < forward_nodes; ++n) {
        bool any = false;
        for (dsk_value_id in : nodes[n].inputs) any |= depends[in];
        if (any)
            for (dsk_value_id out : nodes[n].outputs) depends[out] = true;
    }

    std::map<dsk_value_id, dsk_value_id> grad;
    const float one = 1.0f;
    Value seed;
    seed.kind = ValueKind::Constant;
    seed.desc = l.desc;
    seed.constant.resize(sizeof one);
    std::memcpy(seed.constant.data(), &one, sizeof one);
    grad[loss] = add_value(std::move(seed));

    auto accumulate = [&](dsk_value_id v, dsk_value_id g) {
        auto it = grad.find(v);
        if (it == grad.end()) {
            grad[v] = g;
            return;
        }
        dsk_value_id in[2] = {it->second, g};
        it->second = add_node("Add", nullptr, 0, in, 2, 1)[0];
    };

    for (size_t n = forward_nodes; n-- > 0;) {
        // Copies: add_node below may grow `nodes`.
        const std::vector<dsk_value_id> inputs = nodes[n].inputs, outputs = nodes[n].outputs;
        std::vector<dsk_value_id> out_grads;
        bool any_grad = false;
        for (dsk_value_id out : outputs) {
            auto it = grad.find(out);
            out_grads.push_back(it == grad.end() ? DSK_VALUE_NONE : it->second);
            any_grad |= it != grad.end();
        }
        bool needed = false;
        for (dsk_value_id in : inputs) needed |= depends[in];
        if (!any_grad || !needed) continue;
        const dsk_op_schema* schema = nodes[n].schema;
        if (!schema->gradient)
            throw Error(DSK_UNIMPLEMENTED, "op " + nodes[n].op + " (node " + std::to_string(n) +
                                               ") has no gradient rule, but the loss depends on it through a variable being differentiated");
        std::vector<dsk_value_id> in_grads(inputs.size(), DSK_VALUE_NONE);
        // A copy: the rule adds nodes, and `nodes` may reallocate under a view into it.
        Node forward = nodes[n];
        forward.refresh_views();
        dsk_status st = schema->gradient(schema->self, this, &forward.view, inputs.data(), outputs.data(),
                                         out_grads.data(), in_grads.data());
        throw_if_error(st, "gradient of " + nodes[n].op);
        for (size_t i = 0; i < inputs.size(); ++i)
            if (in_grads[i] != DSK_VALUE_NONE && depends[inputs[i]]) accumulate(inputs[i], in_grads[i]);
    }

    std::vector<dsk_value_id> result;
    for (dsk_value_id w : wrt) {
        auto it = grad.find(w);
        result.push_back(it == grad.end() ? DSK_VALUE_NONE : it->second);
    }
    return result;
}

// --- host table: graphs ------------------------------------------------------------------------

namespace dsk::kernel {
namespace {

dsk_status null_graph() { return make_status(DSK_INVALID_ARGUMENT, "null graph"); }

}  // namespace

void fill_graph_api(dsk_host_api& api) {
    api.graph_create = [](dsk_stage_context* ctx, dsk_graph** out) -> dsk_status {
        if (!ctx || !out) return make_status(DSK_INVALID_ARGUMENT, "graph_create: null context or out");
        return guarded([&] { *out = new dsk_graph{ctx->kernel, {}, {}}; });
    };
    api.graph_destroy = [](dsk_graph* g) { delete g; };
    api.graph_input = [](dsk_graph* g, const char* name, const dsk_tensor_desc* desc, dsk_value_id* out) -> dsk_status {
        if (!g) return null_graph();
        return guarded([&] {
            Value v;
            v.kind = ValueKind::Input;
            v.name = name ? name : "";
            v.desc = checked_desc(desc, "input '" + v.name + "'");
            *out = g->add_value(std::move(v));
        });
    };
    api.graph_variable = [](dsk_graph* g, const char* name, const dsk_tensor_desc* desc, uint32_t flags,
                            const char* init, double scale, dsk_value_id* out) -> dsk_status {
        if (!g) return null_graph();
        return guarded([&] {
            Value v;
            v.kind = ValueKind::Variable;
            v.name = name ? name : "";
            if (v.name.empty()) throw Error(DSK_INVALID_ARGUMENT, "graph_variable: variables need a name (checkpoints use it)");
            for (const auto& other : g->values)
                if (other.kind == ValueKind::Variable && other.name == v.name)
                    throw Error(DSK_ALREADY_EXISTS, "graph_variable: a variable named '" + v.name + "' already exists");
            v.desc = checked_desc(desc, "variable '" + v.name + "'");
            v.flags = flags;
            v.init = init ? init : "zeros";
            static const std::set<std::string> inits = {"zeros", "ones", "uniform", "normal"};
            if (!inits.count(v.init))
                throw Error(DSK_INVALID_ARGUMENT, "variable '" + v.name + "': init '" + v.init +
                                                      "' is not one of zeros, ones, uniform, normal");
            v.scale = scale;
            *out = g->add_value(std::move(v));
        });
    };
    api.graph_constant = [](dsk_graph* g, const dsk_tensor_desc* desc, dsk_value_id* out) -> dsk_status {
        if (!g) return null_graph();
        return guarded([&] {
            Value v;
            v.kind = ValueKind::Constant;
            v.desc = checked_desc(desc, "constant");
            if (!desc->data) throw Error(DSK_INVALID_ARGUMENT, "graph_constant: the descriptor has no host data");
            size_t bytes = static_cast<size_t>(dsk::numel(v.desc)) * dsk::dtype_size(v.desc.dtype);
            v.constant.resize(bytes);
            // The caller's tensor may be strided; constants are small, copy element by element.
            const size_t elem = dsk::dtype_size(v.desc.dtype);
            std::vector<int64_t> index(v.desc.ndim, 0);
            for (size_t e = 0; e < bytes / std::max<size_t>(elem, 1); ++e) {
                int64_t offset = 0;
                for (uint32_t k = 0; k < v.desc.ndim; ++k) offset += index[k] * desc->strides[k];
                std::memcpy(v.constant.data() + e * elem, static_cast<const uint8_t*>(desc->data) + offset * elem, elem);
                for (uint32_t k = v.desc.ndim; k-- > 0;) {
                    if (++index[k] < v.desc.shape[k]) break;
                    index[k] = 0;
                }
            }
            *out = g->add_value(std::move(v));
        });
    };
    api.graph_add_node = [](dsk_graph* g, const char* op, const dsk_attr* attrs, size_t attr_count,
                            const dsk_value_id* inputs, size_t input_count, dsk_value_id* out_outputs,
                            size_t output_count) -> dsk_status {
        if (!g || !op) return make_status(DSK_INVALID_ARGUMENT, "graph_add_node: null graph or op");
        return guarded([&] {
            auto outs = g->add_node(op, attrs, attr_count, inputs, input_count, output_count);
            for (size_t i = 0; i < outs.size(); ++i) out_outputs[i] = outs[i];
        });
    };
    api.graph_value_desc = [](dsk_graph* g, dsk_value_id v, dsk_tensor_desc* out) -> dsk_status {
        if (!g || !out) return null_graph();
        return guarded([&] { copy_out(g->value(v).desc, out); });
    };
    api.graph_gradients = [](dsk_graph* g, dsk_value_id loss, const dsk_value_id* wrt, size_t count,
                             dsk_value_id* out) -> dsk_status {
        if (!g) return null_graph();
        return guarded([&] {
            auto grads = g->gradients(loss, std::vector<dsk_value_id>(wrt, wrt + count));
            for (size_t i = 0; i < count; ++i) out[i] = grads[i];
        });
    };
    api.graph_variable_count = [](dsk_graph* g) -> size_t {
        size_t n = 0;
        for (const auto& v : g->values) n += v.kind == ValueKind::Variable;
        return n;
    };
    api.graph_variable_at = [](dsk_graph* g, size_t index, dsk_value_id* out_value, const char** out_name,
                               uint32_t* out_flags) -> dsk_status {
        if (!g) return null_graph();
        size_t n = 0;
        for (size_t i = 0; i < g->values.size(); ++i) {
            const Value& v = g->values[i];
            if (v.kind != ValueKind::Variable) continue;
            if (n++ == index) {
                if (out_value) *out_value = static_cast<dsk_value_id>(i);
                if (out_name) *out_name = v.name.c_str();
                if (out_flags) *out_flags = v.flags;
                return DSK_STATUS_OK;
            }
        }
        return make_status(DSK_INVALID_ARGUMENT, "graph_variable_at: index " + std::to_string(index) + " past the " +
                                                     std::to_string(n) + " variables");
    };
}

}  // namespace dsk::kernel
