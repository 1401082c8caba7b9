// op_definition.h - how this plugin turns C++ functions into dsk_op_schema entries.
//
// define_op() takes an op's name, arity, the attributes it accepts, a shape inference function
// and an optional gradient rule, wraps them in C thunks (dsk::guard: an exception becomes a
// status and never crosses the ABI), keeps the schema alive until the plugin's shutdown and
// registers it in the core domain (""), since_version 1:
//
//     static void infer_relu(ShapeContext& ctx) {
//         ctx.expect_floating(0, "X");
//         ctx.set_output(0, ctx.dtype(0), ctx.shape(0));
//     }
//     define_op(reg, "Relu", "max(x, 0)", {1, 1, 1, 1}, {}, infer_relu, gradient_relu);
//
// The thunks check the arity and the attribute names before the functions run, so an infer
// function may read input i < min_inputs without checking, and a typo in an attribute name
// ("transa") is an error naming the op, not a silently ignored key.
#pragma once

#include <cstdint>
#include <dsk/dsk_op.hpp>
#include <string>
#include <vector>

#include "shape_inference.h"

namespace dsk::ops {

// f32, f64, f16 or bf16.
bool is_floating(uint32_t dtype);

// A real attribute as a user wrote it: "0.25", "1e-05" (not std::to_string's "0.250000").
std::string real_text(double value);

// One node during shape inference: its attributes, its input descriptors (borrowed) and the
// output descriptors to fill. Every failure is INVALID_ARGUMENT with "<op>: " in front.
class ShapeContext {
  public:
    ShapeContext(const dsk_node_view* node, dsk_tensor_desc* tensors)
        : node_(node), tensors_(tensors), attrs_(node) {}

    const char* op() const { return node_->op; }
    const Attrs& attrs() const { return attrs_; }
    size_t input_count() const { return node_->input_count; }
    size_t output_count() const { return node_->output_count; }
    bool has_input(size_t i) const { return i < node_->input_count; }

    const dsk_tensor_desc& input(size_t i) const { return tensors_[i]; }
    Shape shape(size_t i) const { return shape_of(tensors_[i]); }
    uint32_t dtype(size_t i) const { return tensors_[i].dtype; }
    size_t rank(size_t i) const { return tensors_[i].ndim; }

    // Writes output i: dtype, shape and row-major strides. Does nothing for an optional output
    // the node does not have (i >= output_count()).
    void set_output(size_t i, uint32_t dtype, const Shape& shape) const;
    // The same with the shape of input `like` (an elementwise result), without building a Shape:
    // an eager op infers its shapes on every call.
    void set_output_like(size_t i, uint32_t dtype, size_t like) const;
    // Output i as set_output wrote it (i < output_count()).
    const dsk_tensor_desc& output(size_t i) const { return tensors_[node_->input_count + i]; }

    [[noreturn]] void fail(const std::string& message) const;

    // Checks of input i, called `name` in the messages ("Gemm: A must be 2-D, got [3]").
    void expect_rank(size_t i, const char* name, size_t rank) const;
    void expect_min_rank(size_t i, const char* name, size_t rank) const;
    void expect_floating(size_t i, const char* name) const;
    void expect_dtype(size_t i, const char* name, uint32_t dtype) const;
    void expect_same_dtype(size_t i, const char* name_i, size_t j, const char* name_j) const;
    // `why` says where the expected shape comes from ("C of X [8, 64, 7, 7]").
    void expect_shape(size_t i, const char* name, const Shape& expected,
                      const std::string& why = {}) const;

  private:
    const dsk_node_view* node_;
    dsk_tensor_desc* tensors_;
    Attrs attrs_;
};

// One node during reverse-mode differentiation: its input and output values in the graph, the
// gradients that reach its outputs, and the input gradients to write (all DSK_VALUE_NONE until
// set_input_grad). The arrays are borrowed for the call.
class GradientContext {
  public:
    GradientContext(dsk_graph* graph, const dsk_node_view* node, const dsk_value_id* inputs,
                    const dsk_value_id* outputs, const dsk_value_id* output_grads,
                    dsk_value_id* out_input_grads)
        : graph_(graph),
          node_(node),
          attrs_(node),
          inputs_(inputs),
          outputs_(outputs),
          output_grads_(output_grads),
          input_grads_(out_input_grads) {}

    const Graph& graph() const { return graph_; }
    const char* op() const { return node_->op; }
    const dsk_node_view* node() const { return node_; }
    const Attrs& attrs() const { return attrs_; }
    size_t input_count() const { return node_->input_count; }
    size_t output_count() const { return node_->output_count; }

    dsk_value_id input(size_t i) const { return inputs_[i]; }
    // DSK_VALUE_NONE for an optional output the node does not have.
    dsk_value_id output(size_t i) const {
        return i < node_->output_count ? outputs_[i] : DSK_VALUE_NONE;
    }
    // DSK_VALUE_NONE when nothing depends on output i.
    dsk_value_id output_grad(size_t i) const {
        return i < node_->output_count ? output_grads_[i] : DSK_VALUE_NONE;
    }
    // Outputs the gradient reads (saved statistics, a mask): INVALID_ARGUMENT saying how to add
    // the node when it has fewer than `count` outputs. `names` lists them for the message.
    void require_outputs(size_t count, const char* names) const;

    Shape shape(dsk_value_id value) const { return graph_.shape(value); }
    uint32_t dtype(dsk_value_id value) const { return graph_.desc(value).dtype; }

    // Input i receives `grad`; ignored for an optional input the node does not have.
    void set_input_grad(size_t i, dsk_value_id grad) const {
        if (i < node_->input_count) input_grads_[i] = grad;
    }

    // `grad` summed down to `shape` (the gradient of broadcasting): a SumToShape node, or
    // `grad` itself when it already has that shape.
    dsk_value_id sum_to(dsk_value_id grad, const Shape& shape) const;
    // A scalar constant with the dtype of `like` (f32 or f64).
    dsk_value_id scalar_like(double value, dsk_value_id like) const;

    // INVALID_ARGUMENT; the kernel shows it as "gradient of <op>: <message>".
    [[noreturn]] void fail(const std::string& message) const;

  private:
    Graph graph_;
    const dsk_node_view* node_;
    Attrs attrs_;
    const dsk_value_id* inputs_;
    const dsk_value_id* outputs_;
    const dsk_value_id* output_grads_;
    dsk_value_id* input_grads_;
};

using InferFunction = void (*)(ShapeContext& ctx);
using GradientFunction = void (*)(GradientContext& ctx);
// The inputs a node writes in place, as a bit mask (dsk_op_schema.written_inputs).
using WrittenInputsFunction = uint64_t (*)(const dsk_node_view* node);

// A variadic op gives kManyInputs as max_inputs.
constexpr uint32_t kManyInputs = UINT32_MAX;

struct Arity {
    uint32_t min_inputs, max_inputs;
    uint32_t min_outputs, max_outputs;
};

struct OpDef {
    const char* name;  // core set (domain ""), as in docs/ops.md
    const char* description;
    Arity arity;
    std::vector<const char*> attributes;  // every attribute name the op accepts
    InferFunction infer;
    GradientFunction gradient;  // nullptr: no gradient (backward ops)
    WrittenInputsFunction written_inputs;  // nullptr: the op writes only its outputs
};

// Registers an op schema. The schema and what it points to are kept until the plugin's shutdown
// (the kernel borrows a schema that long). Throws dsk::Error when the kernel refuses it.
void define_op(Registrar& reg, const char* name, const char* description, Arity arity,
               std::vector<const char*> attributes, InferFunction infer, GradientFunction gradient,
               WrittenInputsFunction written_inputs = nullptr);

}  // namespace dsk::ops
