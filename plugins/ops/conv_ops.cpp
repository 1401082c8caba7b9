// Conv (2-D cross-correlation, ONNX Conv) and its backward ops ConvGradInput, ConvGradWeight.
#include "op_definition.h"
#include "op_families.h"
#include "shared_inference.h"

#include "conv_shape.h"

namespace dsk::ops {

Shape conv_output_shape(const ShapeContext& ctx, const Shape& x, const char* x_name, const Shape& w,
                        const char* w_name) {
    if (x.size() != 4)
        ctx.fail(std::string(x_name) + " must be 4-D [N, C, H, W], got " + shape_text(x));
    if (w.size() != 4)
        ctx.fail(std::string(w_name) + " must be 4-D [M, C/group, kH, kW], got " + shape_text(w));
    const int64_t group = ctx.attrs().get_int("group", 1);
    if (group < 1) ctx.fail("group = " + std::to_string(group) + " must be >= 1");
    if (w[1] * group != x[1])
        ctx.fail("channels differ: " + std::string(x_name) + " " + shape_text(x) +
                 " has C=" + std::to_string(x[1]) + ", " + w_name + " " + shape_text(w) +
                 " takes " + std::to_string(w[1]) + " x group " + std::to_string(group) + " = " +
                 std::to_string(w[1] * group));
    if (w[0] % group != 0)
        ctx.fail(std::string(w_name) + " " + shape_text(w) + " has M=" + std::to_string(w[0]) +
                 " output channels, not a multiple of group " + std::to_string(group));
    const Window2d window = read_window(ctx.op(), ctx.attrs(), w[2], w[3], true);
    const auto hw = window_output_hw(ctx.op(), x[2], x[3], window);
    return {x[0], w[0], hw[0], hw[1]};
}


void infer_conv(ShapeContext& ctx) {
    ctx.expect_floating(0, "X");
    ctx.expect_same_dtype(0, "X", 1, "W");
    const Shape y = conv_output_shape(ctx, ctx.shape(0), "X", ctx.shape(1), "W");
    if (ctx.has_input(2)) {
        ctx.expect_same_dtype(0, "X", 2, "B");
        ctx.expect_shape(2, "B", {y[1]}, "M of W " + shape_text(ctx.shape(1)));
    }
    ctx.set_output(0, ctx.dtype(0), y);
}

namespace {

// dX [input_shape] from dY and W.
void infer_conv_grad_input(ShapeContext& ctx) {
    ctx.expect_floating(0, "dY");
    ctx.expect_same_dtype(0, "dY", 1, "W");
    const Shape x = ctx.attrs().require_ints("input_shape");
    ctx.expect_shape(
        0, "dY", conv_output_shape(ctx, x, "input_shape", ctx.shape(1), "W"),
        "Conv of input_shape " + shape_text(x) + " with W " + shape_text(ctx.shape(1)));
    ctx.set_output(0, ctx.dtype(0), x);
}

// dW [weight_shape] from dY and X, and dB [M] when the node has a second output.
void infer_conv_grad_weight(ShapeContext& ctx) {
    ctx.expect_floating(0, "dY");
    ctx.expect_same_dtype(0, "dY", 1, "X");
    const Shape w = ctx.attrs().require_ints("weight_shape");
    ctx.expect_shape(
        0, "dY", conv_output_shape(ctx, ctx.shape(1), "X", w, "weight_shape"),
        "Conv of X " + shape_text(ctx.shape(1)) + " with weight_shape " + shape_text(w));
    ctx.set_output(0, ctx.dtype(0), w);
    if (ctx.output_count() > 1) ctx.set_output(1, ctx.dtype(0), {w[0]});
}

void gradient_conv(GradientContext& ctx) {
    const dsk_value_id dy = ctx.output_grad(0);
    const dsk_value_id x = ctx.input(0);
    const dsk_value_id w = ctx.input(1);
    std::vector<Attr> input_attrs = Attr::all_of(ctx.node());
    std::vector<Attr> weight_attrs = input_attrs;
    input_attrs.emplace_back("input_shape", ctx.shape(x));
    weight_attrs.emplace_back("weight_shape", ctx.shape(w));
    ctx.set_input_grad(0, ctx.graph().node("ConvGradInput", {dy, w}, input_attrs));
    ctx.set_input_grad(1, ctx.graph().node("ConvGradWeight", {dy, x}, weight_attrs));
    if (ctx.input_count() > 2)
        ctx.set_input_grad(2,
                           ctx.graph().node("ReduceSum", {dy},
                                            {Attr("axes", Shape{0, 2, 3}), Attr("keepdims", 0)}));
}

}  // namespace

void register_conv_ops(Registrar& reg) {
    define_op(reg, "Conv",
              "2-D cross-correlation (ONNX Conv): X [N, C, H, W], W [M, C/group, kH, kW], [B [M]]",
              {2, 3, 1, 1}, {"strides", "pads", "dilations", "group"}, infer_conv, gradient_conv);
    define_op(reg, "ConvGradInput",
              "gradient of Conv with respect to X: dX [input_shape] from dY, W", {2, 2, 1, 1},
              {"strides", "pads", "dilations", "group", "input_shape"}, infer_conv_grad_input,
              nullptr);
    define_op(reg, "ConvGradWeight",
              "gradient of Conv with respect to W: dW [weight_shape] from dY, X; with a second "
              "output, also dB [M] = ReduceSum(dY, axes [0, 2, 3]) (the plan's fusion of the bias "
              "gradient)",
              {2, 2, 1, 2}, {"strides", "pads", "dilations", "group", "weight_shape"},
              infer_conv_grad_weight, nullptr);
}

}  // namespace dsk::ops
