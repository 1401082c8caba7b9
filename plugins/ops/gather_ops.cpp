// Gather along axis 0 (an embedding lookup) and GatherGrad (a scatter-add of dY rows).
#include "op_definition.h"
#include "op_families.h"

namespace dsk::ops {
namespace {

// indices' shape followed by data's dims after the first.
Shape gathered_shape(const Shape& data, const Shape& indices) {
    Shape y = indices;
    y.insert(y.end(), data.begin() + 1, data.end());
    return y;
}

// data [V, D...], indices i64 [...] -> Y [indices..., D...].
void infer_gather(ShapeContext& ctx) {
    ctx.expect_min_rank(0, "data", 1);
    ctx.expect_dtype(1, "indices", DSK_DTYPE_I64);
    const size_t axis =
        normalize_axis(ctx.op(), "axis", ctx.attrs().get_int("axis", 0), ctx.rank(0));
    if (axis != 0)
        ctx.fail("axis = " + std::to_string(ctx.attrs().get_int("axis", 0)) +
                 ": only axis 0 is supported (transpose data first)");
    ctx.set_output(0, ctx.dtype(0), gathered_shape(ctx.shape(0), ctx.shape(1)));
}

// dY [indices..., D...], indices i64 -> dData [input_shape].
void infer_gather_grad(ShapeContext& ctx) {
    ctx.expect_floating(0, "dY");
    ctx.expect_dtype(1, "indices", DSK_DTYPE_I64);
    const Shape data = ctx.attrs().require_ints("input_shape");
    if (data.empty()) ctx.fail("input_shape must have at least 1 dimension, got []");
    ctx.expect_shape(0, "dY", gathered_shape(data, ctx.shape(1)),
                     "indices " + shape_text(ctx.shape(1)) + " then input_shape " +
                         shape_text(data) + " without its first dim");
    ctx.set_output(0, ctx.dtype(0), data);
}

// dData = GatherGrad(dY, indices); the indices get no gradient.
void gradient_gather(GradientContext& ctx) {
    ctx.set_input_grad(0, ctx.graph().node("GatherGrad", {ctx.output_grad(0), ctx.input(1)},
                                           {Attr("input_shape", ctx.shape(ctx.input(0)))}));
}

}  // namespace

void register_gather_ops(Registrar& reg) {
    define_op(reg, "Gather", "rows of data [V, D...] picked by i64 indices (axis 0 only)",
              {2, 2, 1, 1}, {"axis"}, infer_gather, gradient_gather);
    define_op(reg, "GatherGrad",
              "gradient of Gather: scatter-add of dY rows into zeros [input_shape]", {2, 2, 1, 1},
              {"input_shape"}, infer_gather_grad, nullptr);
}

}  // namespace dsk::ops
