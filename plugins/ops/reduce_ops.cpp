// ReduceSum, ReduceMean, ReduceMax (axes: all by default, keepdims 1) and ReduceGrad, their one
// backward op.
#include "op_definition.h"
#include "op_families.h"

namespace dsk::ops {
namespace {

bool read_keepdims(const ShapeContext& ctx) {
    const int64_t keepdims = ctx.attrs().get_int("keepdims", 1);
    if (keepdims != 0 && keepdims != 1)
        ctx.fail("keepdims = " + std::to_string(keepdims) + " must be 0 or 1");
    return keepdims != 0;
}

// The shape of reducing `x` with the node's axes and keepdims. A max needs an element to
// start from, so it refuses empty reduced dimensions.
Shape reduced_shape(const ShapeContext& ctx, const Shape& x, bool is_max) {
    const std::vector<size_t> axes = reduction_axes(ctx.op(), ctx.attrs(), x.size());
    if (is_max)
        for (size_t axis : axes)
            if (x[axis] == 0)
                ctx.fail("cannot take the max over dimension " + std::to_string(axis) + " of X " +
                         shape_text(x) + ", which is empty");
    return reduce_shape(x, axes, read_keepdims(ctx));
}

void infer_reduce(ShapeContext& ctx) {
    const uint32_t t = ctx.dtype(0);
    if (t == DSK_DTYPE_BOOL || t == DSK_DTYPE_INVALID)
        ctx.fail(std::string("X must be a numeric tensor, got ") + dtype_name(t));
    const bool is_max = std::string(ctx.op()) == "ReduceMax";
    ctx.set_output(0, t, reduced_shape(ctx, ctx.shape(0), is_max));
}

// dY, X, Y -> dX [X].
void infer_reduce_grad(ShapeContext& ctx) {
    if (!ctx.attrs().has("mode"))
        ctx.fail("attribute 'mode' is required (\"sum\", \"mean\" or \"max\")");
    const std::string mode = ctx.attrs().get_string("mode", "");
    if (mode != "sum" && mode != "mean" && mode != "max")
        ctx.fail("mode = \"" + mode + "\" must be \"sum\", \"mean\" or \"max\"");
    ctx.expect_floating(0, "dY");
    ctx.expect_same_dtype(0, "dY", 1, "X");
    ctx.expect_same_dtype(0, "dY", 2, "Y");
    const Shape x = ctx.shape(1);
    const Shape y = reduced_shape(ctx, x, mode == "max");
    const std::string why = "X " + shape_text(x) + " reduced";
    ctx.expect_shape(0, "dY", y, why);
    ctx.expect_shape(2, "Y", y, why);
    ctx.set_output(0, ctx.dtype(0), x);
}

// ReduceGrad(dY, X, Y) with the mode named by the op and the node's axes and keepdims.
void gradient_reduce(GradientContext& ctx) {
    const std::string op = ctx.op();
    const char* mode = op == "ReduceSum" ? "sum" : op == "ReduceMean" ? "mean" : "max";
    std::vector<Attr> attrs = Attr::all_of(ctx.node());
    attrs.emplace_back("mode", mode);
    ctx.set_input_grad(
        0,
        ctx.graph().node("ReduceGrad", {ctx.output_grad(0), ctx.input(0), ctx.output(0)}, attrs));
}

}  // namespace

void register_reduce_ops(Registrar& reg) {
    define_op(reg, "ReduceSum", "sum over axes (all), keepdims (1)", {1, 1, 1, 1},
              {"axes", "keepdims"}, infer_reduce, gradient_reduce);
    define_op(reg, "ReduceMean", "mean over axes (all), keepdims (1)", {1, 1, 1, 1},
              {"axes", "keepdims"}, infer_reduce, gradient_reduce);
    define_op(reg, "ReduceMax", "max over axes (all), keepdims (1)", {1, 1, 1, 1},
              {"axes", "keepdims"}, infer_reduce, gradient_reduce);
    define_op(reg, "ReduceGrad",
              "gradient of ReduceSum/Mean/Max: dY broadcast back (/ count for mean; to the first "
              "maximum for max)",
              {3, 3, 1, 1}, {"mode", "axes", "keepdims"}, infer_reduce_grad, nullptr);
}

}  // namespace dsk::ops
