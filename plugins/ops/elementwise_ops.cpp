// Add, Sub, Mul, Div (numpy broadcasting) and SumToShape, the gradient of broadcasting.
#include "op_definition.h"
#include "op_families.h"

namespace dsk::ops {
namespace {

// A, B -> C [broadcast of A and B].
void infer_binary(ShapeContext& ctx) {
    const uint32_t t = ctx.dtype(0);
    if (t == DSK_DTYPE_BOOL || t == DSK_DTYPE_INVALID)
        ctx.fail(std::string("A must be a numeric tensor, got ") + dtype_name(t));
    ctx.expect_same_dtype(0, "A", 1, "B");
    ctx.set_output(0, t, broadcast_shapes(ctx.op(), ctx.shape(0), "A", ctx.shape(1), "B"));
}

// X -> Y [shape], summing over the dimensions `shape` broadcasts along.
void infer_sum_to_shape(ShapeContext& ctx) {
    const Shape target = ctx.attrs().require_ints("shape");
    if (!broadcasts_to(target, ctx.shape(0)))
        ctx.fail("shape " + shape_text(target) + " does not broadcast to X " +
                 shape_text(ctx.shape(0)) + ", so X cannot be summed down to it");
    ctx.set_output(0, ctx.dtype(0), target);
}

// The gradient of an input of shape `shape` from a gradient of the broadcast shape.
dsk_value_id to_input(const GradientContext& ctx, size_t i, dsk_value_id grad) {
    return ctx.sum_to(grad, ctx.shape(ctx.input(i)));
}

dsk_value_id neg(const GradientContext& ctx, dsk_value_id x) {
    return ctx.graph().node("Neg", {x});
}

// C = A + B: dA = dC, dB = dC (each summed to its input's shape).
void gradient_add(GradientContext& ctx) {
    const dsk_value_id dc = ctx.output_grad(0);
    ctx.set_input_grad(0, to_input(ctx, 0, dc));
    ctx.set_input_grad(1, to_input(ctx, 1, dc));
}

// C = A - B: dA = dC, dB = -dC.
void gradient_sub(GradientContext& ctx) {
    const dsk_value_id dc = ctx.output_grad(0);
    ctx.set_input_grad(0, to_input(ctx, 0, dc));
    ctx.set_input_grad(1, neg(ctx, to_input(ctx, 1, dc)));  // negate after summing: fewer elements
}

// C = A * B: dA = dC * B, dB = dC * A.
void gradient_mul(GradientContext& ctx) {
    const Graph& g = ctx.graph();
    const dsk_value_id dc = ctx.output_grad(0);
    ctx.set_input_grad(0, to_input(ctx, 0, g.node("Mul", {dc, ctx.input(1)})));
    ctx.set_input_grad(1, to_input(ctx, 1, g.node("Mul", {dc, ctx.input(0)})));
}

// C = A / B: dA = dC / B, dB = -dC * A / B^2 = -(dC * C) / B.
void gradient_div(GradientContext& ctx) {
    const Graph& g = ctx.graph();
    const dsk_value_id dc = ctx.output_grad(0);
    const dsk_value_id b = ctx.input(1);
    ctx.set_input_grad(0, to_input(ctx, 0, g.node("Div", {dc, b})));
    const dsk_value_id dc_c_over_b = g.node("Div", {g.node("Mul", {dc, ctx.output(0)}), b});
    ctx.set_input_grad(1, neg(ctx, to_input(ctx, 1, dc_c_over_b)));
}

}  // namespace

void register_elementwise_ops(Registrar& reg) {
    define_op(reg, "Add", "C = A + B with numpy broadcasting", {2, 2, 1, 1}, {}, infer_binary,
              gradient_add);
    define_op(reg, "Sub", "C = A - B with numpy broadcasting", {2, 2, 1, 1}, {}, infer_binary,
              gradient_sub);
    define_op(reg, "Mul", "C = A * B with numpy broadcasting", {2, 2, 1, 1}, {}, infer_binary,
              gradient_mul);
    define_op(reg, "Div", "C = A / B with numpy broadcasting", {2, 2, 1, 1}, {}, infer_binary,
              gradient_div);
    define_op(reg, "SumToShape",
              "sums X over the dimensions that broadcasting stretched, down to shape", {1, 1, 1, 1},
              {"shape"}, infer_sum_to_shape, nullptr);
}

}  // namespace dsk::ops
