// MaxPool, AveragePool, GlobalAveragePool (2-D, NCHW) and their backward ops; MaxPoolReluGrad,
// what the plan's fusion pass makes of MaxPoolGrad -> ActivationGrad[Relu] on the same X.
#include "op_definition.h"
#include "op_families.h"

namespace dsk::ops {
namespace {

// [N, C, oH, oW] of a pool with the node's kernel_shape, strides and pads over `x`.
Shape pool_output_shape(const ShapeContext& ctx, const Shape& x, const char* x_name) {
    if (x.size() != 4)
        ctx.fail(std::string(x_name) + " must be 4-D [N, C, H, W], got " + shape_text(x));
    const Shape kernel = ctx.attrs().require_ints("kernel_shape");
    if (kernel.size() != 2)
        ctx.fail("kernel_shape must have 2 values [kH, kW], got " + shape_text(kernel));
    const Window2d window = read_window(ctx.op(), ctx.attrs(), kernel[0], kernel[1], false);
    // A window made only of padding would have no maximum and no element to average.
    for (int k = 0; k < 4; ++k)
        if (window.pads[k] >= window.kernel[k % 2])
            ctx.fail("pads " + shape_text(ctx.attrs().get_ints("pads", {})) +
                     " must be smaller than kernel_shape " + shape_text(kernel));
    const auto hw = window_output_hw(ctx.op(), x[2], x[3], window);
    return {x[0], x[1], hw[0], hw[1]};
}

void check_count_include_pad(const ShapeContext& ctx) {
    const int64_t flag = ctx.attrs().get_int("count_include_pad", 0);
    if (flag != 0 && flag != 1)
        ctx.fail("count_include_pad = " + std::to_string(flag) + " must be 0 or 1");
}

void infer_pool(ShapeContext& ctx) {
    ctx.expect_floating(0, "X");
    if (ctx.attrs().has("count_include_pad")) check_count_include_pad(ctx);
    ctx.set_output(0, ctx.dtype(0), pool_output_shape(ctx, ctx.shape(0), "X"));
}

void infer_global_average_pool(ShapeContext& ctx) {
    ctx.expect_floating(0, "X");
    ctx.expect_rank(0, "X", 4);
    const Shape x = ctx.shape(0);
    ctx.set_output(0, ctx.dtype(0), {x[0], x[1], 1, 1});
}

// dX [X] from dY and X.
void infer_max_pool_grad(ShapeContext& ctx) {
    ctx.expect_floating(0, "dY");
    ctx.expect_same_dtype(0, "dY", 1, "X");
    const Shape x = ctx.shape(1);
    ctx.expect_shape(0, "dY", pool_output_shape(ctx, x, "X"), "MaxPool of X " + shape_text(x));
    ctx.set_output(0, ctx.dtype(0), x);
}

// dX [input_shape] from dY.
void infer_average_pool_grad(ShapeContext& ctx) {
    ctx.expect_floating(0, "dY");
    check_count_include_pad(ctx);
    const Shape x = ctx.attrs().require_ints("input_shape");
    ctx.expect_shape(0, "dY", pool_output_shape(ctx, x, "input_shape"),
                     "AveragePool of input_shape " + shape_text(x));
    ctx.set_output(0, ctx.dtype(0), x);
}

void infer_global_average_pool_grad(ShapeContext& ctx) {
    ctx.expect_floating(0, "dY");
    const Shape x = ctx.attrs().require_ints("input_shape");
    if (x.size() != 4) ctx.fail("input_shape must be 4-D [N, C, H, W], got " + shape_text(x));
    ctx.expect_shape(0, "dY", {x[0], x[1], 1, 1},
                     "GlobalAveragePool of input_shape " + shape_text(x));
    ctx.set_output(0, ctx.dtype(0), x);
}

void gradient_max_pool(GradientContext& ctx) {
    ctx.set_input_grad(0, ctx.graph().node("MaxPoolGrad", {ctx.output_grad(0), ctx.input(0)},
                                           Attr::all_of(ctx.node())));
}

void gradient_average_pool(GradientContext& ctx) {
    std::vector<Attr> attrs = Attr::all_of(ctx.node());
    attrs.emplace_back("input_shape", ctx.shape(ctx.input(0)));
    ctx.set_input_grad(0, ctx.graph().node("AveragePoolGrad", {ctx.output_grad(0)}, attrs));
}

void gradient_global_average_pool(GradientContext& ctx) {
    ctx.set_input_grad(0, ctx.graph().node("GlobalAveragePoolGrad", {ctx.output_grad(0)},
                                           {Attr("input_shape", ctx.shape(ctx.input(0)))}));
}

}  // namespace

void register_pooling_ops(Registrar& reg) {
    define_op(reg, "MaxPool", "2-D max pooling; padding never wins the max", {1, 1, 1, 1},
              {"kernel_shape", "strides", "pads"}, infer_pool, gradient_max_pool);
    define_op(reg, "AveragePool", "2-D average pooling", {1, 1, 1, 1},
              {"kernel_shape", "strides", "pads", "count_include_pad"}, infer_pool,
              gradient_average_pool);
    define_op(reg, "GlobalAveragePool", "mean over H and W: [N, C, H, W] -> [N, C, 1, 1]",
              {1, 1, 1, 1}, {}, infer_global_average_pool, gradient_global_average_pool);
    define_op(reg, "MaxPoolGrad", "gradient of MaxPool: dY to the first maximum of each window",
              {2, 2, 1, 1}, {"kernel_shape", "strides", "pads"}, infer_max_pool_grad, nullptr);
    define_op(reg, "MaxPoolReluGrad",
              "ActivationGrad[Relu](MaxPoolGrad(dY, X), X) for X a Relu's output: the plan's "
              "fusion of the two (no gradient rule)",
              {2, 2, 1, 1}, {"kernel_shape", "strides", "pads"}, infer_max_pool_grad, nullptr);
    define_op(reg, "AveragePoolGrad", "gradient of AveragePool: dX [input_shape] from dY",
              {1, 1, 1, 1}, {"kernel_shape", "strides", "pads", "count_include_pad", "input_shape"},
              infer_average_pool_grad, nullptr);
    define_op(reg, "GlobalAveragePoolGrad", "gradient of GlobalAveragePool: dX [input_shape]",
              {1, 1, 1, 1}, {"input_shape"}, infer_global_average_pool_grad, nullptr);
}

}  // namespace dsk::ops
