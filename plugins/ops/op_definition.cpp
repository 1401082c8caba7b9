// The C thunks behind every schema of this plugin, and the checks they share.
#include "op_definition.h"

#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

namespace dsk::ops {

bool is_floating(uint32_t dtype) {
    return dtype == DSK_DTYPE_F32 || dtype == DSK_DTYPE_F64 || dtype == DSK_DTYPE_F16 ||
           dtype == DSK_DTYPE_BF16;
}

std::string real_text(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", value);
    return text;
}

//==============================================================================================
// ShapeContext
//==============================================================================================

void ShapeContext::fail(const std::string& message) const {
    throw Error(DSK_INVALID_ARGUMENT, std::string(op()) + ": " + message);
}

void ShapeContext::set_output(size_t i, uint32_t dtype, const Shape& shape) const {
    if (i >= output_count()) return;
    if (shape.size() > DSK_MAX_DIMS)
        fail("output " + std::to_string(i) + " would be " + shape_text(shape) + ", rank " +
             std::to_string(shape.size()) + " > DSK_MAX_DIMS (" + std::to_string(DSK_MAX_DIMS) +
             ")");
    for (int64_t d : shape)
        if (d < 0) fail("output " + std::to_string(i) + " would be " + shape_text(shape));
    set_contiguous(tensors_[input_count() + i], dtype, shape);
}

void ShapeContext::set_output_like(size_t i, uint32_t dtype, size_t like) const {
    const dsk_tensor_desc& from = tensors_[like];
    bool plain = i < output_count() && from.ndim <= DSK_MAX_DIMS;
    for (uint32_t d = 0; plain && d < from.ndim; ++d) plain = from.shape[d] >= 0;
    if (!plain) return set_output(i, dtype, shape(like));  // its checks and messages
    dsk_tensor_desc& out = tensors_[input_count() + i];
    out.struct_size = sizeof(dsk_tensor_desc);
    out.dtype = dtype;
    out.ndim = from.ndim;
    int64_t stride = 1;
    for (uint32_t d = from.ndim; d-- > 0;) {
        out.shape[d] = from.shape[d];
        out.strides[d] = stride;
        stride *= from.shape[d];
    }
}

void ShapeContext::expect_rank(size_t i, const char* name, size_t rank) const {
    if (this->rank(i) != rank)
        fail(std::string(name) + " must be " + std::to_string(rank) + "-D, got " +
             shape_text(shape(i)));
}

void ShapeContext::expect_min_rank(size_t i, const char* name, size_t rank) const {
    if (this->rank(i) < rank)
        fail(std::string(name) + " must have at least " + std::to_string(rank) +
             " dimensions, got " + shape_text(shape(i)));
}

void ShapeContext::expect_floating(size_t i, const char* name) const {
    if (!is_floating(dtype(i)))
        fail(std::string(name) + " must be a floating-point tensor (f32, f64, f16, bf16), got " +
             dtype_name(dtype(i)));
}

void ShapeContext::expect_dtype(size_t i, const char* name, uint32_t dtype) const {
    if (this->dtype(i) != dtype)
        fail(std::string(name) + " must be " + dtype_name(dtype) + ", got " +
             dtype_name(this->dtype(i)));
}

void ShapeContext::expect_same_dtype(size_t i, const char* name_i, size_t j,
                                     const char* name_j) const {
    if (dtype(i) != dtype(j))
        fail(std::string(name_i) + " and " + name_j + " must have one dtype, got " +
             dtype_name(dtype(i)) + " and " + dtype_name(dtype(j)));
}

void ShapeContext::expect_shape(size_t i, const char* name, const Shape& expected,
                                const std::string& why) const {
    if (shape(i) != expected)
        fail(std::string(name) + " must be " + shape_text(expected) +
             (why.empty() ? "" : " (" + why + ")") + ", got " + shape_text(shape(i)));
}

//==============================================================================================
// GradientContext
//==============================================================================================

// The kernel puts "gradient of <op>: " in front.
void GradientContext::fail(const std::string& message) const {
    throw Error(DSK_INVALID_ARGUMENT, message);
}

void GradientContext::require_outputs(size_t count, const char* names) const {
    if (output_count() >= count) return;
    fail(std::string("needs the node's ") + names + " output(s), but the node was added with " +
         std::to_string(output_count()) + " output(s); add it with " + std::to_string(count) +
         " outputs to differentiate it");
}

dsk_value_id GradientContext::sum_to(dsk_value_id grad, const Shape& shape) const {
    if (this->shape(grad) == shape) return grad;
    return graph_.node("SumToShape", {grad}, {Attr("shape", shape)});
}

dsk_value_id GradientContext::scalar_like(double value, dsk_value_id like) const {
    const uint32_t type = dtype(like);
    if (type == DSK_DTYPE_F32) return graph_.scalar(static_cast<float>(value));
    if (type == DSK_DTYPE_F64) {
        dsk_tensor_desc desc = host_tensor(DSK_DTYPE_F64, {}, &value);
        return graph_.constant(desc);
    }
    fail(std::string("no scalar constant for dtype ") + dtype_name(type) +
         " (the gradient needs f32 or f64)");
}

//==============================================================================================
// Schemas
//==============================================================================================

namespace {

// What one registered schema owns; `schema.self` points back here.
struct OpEntry {
    OpDef def;
    dsk_op_schema schema;
};

std::string arity_text(uint32_t low, uint32_t high) {
    if (low == high) return std::to_string(low);
    if (high == kManyInputs) return std::to_string(low) + " or more";
    return std::to_string(low) + " to " + std::to_string(high);
}

void check_node(const OpDef& def, const dsk_node_view* node) {
    const std::string op = def.name;
    if (node->input_count < def.arity.min_inputs || node->input_count > def.arity.max_inputs)
        throw Error(DSK_INVALID_ARGUMENT,
                    op + ": takes " + arity_text(def.arity.min_inputs, def.arity.max_inputs) +
                        " input(s), got " + std::to_string(node->input_count));
    if (node->output_count < def.arity.min_outputs || node->output_count > def.arity.max_outputs)
        throw Error(DSK_INVALID_ARGUMENT,
                    op + ": has " + arity_text(def.arity.min_outputs, def.arity.max_outputs) +
                        " output(s), the node asks for " + std::to_string(node->output_count));
    for (size_t k = 0; k < node->attr_count; ++k) {
        const char* name = node->attrs[k].name != nullptr ? node->attrs[k].name : "";
        bool known = false;
        for (const char* accepted : def.attributes)
            known = known || std::strcmp(accepted, name) == 0;
        if (known) continue;
        std::string list;
        for (const char* accepted : def.attributes)
            list += (list.empty() ? "" : ", ") + std::string(accepted);
        throw Error(DSK_INVALID_ARGUMENT,
                    op + ": unknown attribute '" + name + "' (" +
                        (list.empty() ? std::string("it takes none") : "it takes " + list) +
                        "; see docs/ops.md)");
    }
}

dsk_status infer_thunk(void* self, const dsk_node_view* node, dsk_tensor_desc* tensors) {
    return guard([&] {
        const OpDef& def = static_cast<const OpEntry*>(self)->def;
        check_node(def, node);
        for (size_t i = 0; i < node->output_count; ++i)
            tensors[node->input_count + i].dtype = DSK_DTYPE_INVALID;
        ShapeContext ctx(node, tensors);
        def.infer(ctx);
        for (size_t i = 0; i < node->output_count; ++i)
            if (tensors[node->input_count + i].dtype == DSK_DTYPE_INVALID)
                throw Error(DSK_INTERNAL, std::string(def.name) + ": shape inference left output " +
                                              std::to_string(i) + " unset (a bug in plugin ops)");
    });
}

uint64_t written_inputs_thunk(void* self, const dsk_node_view* node) {
    const auto* entry = static_cast<const OpEntry*>(self);
    try {
        return entry->def.written_inputs ? entry->def.written_inputs(node) : 0;
    } catch (...) {  // an attribute of the wrong type: the node may write any input
        return ~uint64_t{0};
    }
}

dsk_status gradient_thunk(void* self, dsk_graph* graph, const dsk_node_view* node,
                          const dsk_value_id* inputs, const dsk_value_id* outputs,
                          const dsk_value_id* output_grads, dsk_value_id* out_input_grads) {
    return guard([&] {
        const OpDef& def = static_cast<const OpEntry*>(self)->def;
        for (size_t i = 0; i < node->input_count; ++i) out_input_grads[i] = DSK_VALUE_NONE;
        bool any = false;
        for (size_t i = 0; i < node->output_count; ++i)
            any = any || output_grads[i] != DSK_VALUE_NONE;
        if (!any) return;
        // The kernel puts "gradient of <op>: " in front of what fails here.
        GradientContext ctx(graph, node, inputs, outputs, output_grads, out_input_grads);
        def.gradient(ctx);
    });
}

}  // namespace

void define_op(Registrar& reg, const char* name, const char* description, Arity arity,
               std::vector<const char*> attributes, InferFunction infer,
               GradientFunction gradient, WrittenInputsFunction written_inputs) {
    auto owned = std::make_unique<OpEntry>(OpEntry{
        OpDef{name, description, arity, std::move(attributes), infer, gradient, written_inputs},
        dsk_op_schema{}});
    OpEntry* entry = owned.get();
    // Freed at shutdown, after the kernel has let go of the schema (or at once if init fails).
    reg.on_shutdown([entry] { delete entry; });
    owned.release();
    dsk_op_schema& schema = entry->schema;
    schema.struct_size = sizeof(dsk_op_schema);
    schema.since_version = 1;
    schema.name = entry->def.name;
    schema.domain = "";
    schema.description = entry->def.description;
    schema.self = entry;
    schema.min_inputs = entry->def.arity.min_inputs;
    schema.max_inputs = entry->def.arity.max_inputs;
    schema.min_outputs = entry->def.arity.min_outputs;
    schema.max_outputs = entry->def.arity.max_outputs;
    schema.infer_shapes = &infer_thunk;
    schema.gradient = entry->def.gradient != nullptr ? &gradient_thunk : nullptr;
    schema.written_inputs = &written_inputs_thunk;
    reg.op_schema(schema);
}

}  // namespace dsk::ops
