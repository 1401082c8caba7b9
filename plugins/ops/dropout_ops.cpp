// Dropout (ratio 0.5, training_mode 0; the mask is a u8 output) and DropoutGrad.
#include "op_definition.h"
#include "op_families.h"

namespace dsk::ops {
namespace {

void check_ratio(const ShapeContext& ctx) {
    const double ratio = ctx.attrs().get_float("ratio", 0.5);
    if (!(ratio >= 0 && ratio < 1)) ctx.fail("ratio = " + real_text(ratio) + " must be in [0, 1)");
}

// X -> Y [X], mask [X] u8.
void infer_dropout(ShapeContext& ctx) {
    ctx.expect_floating(0, "X");
    check_ratio(ctx);
    const int64_t training = ctx.attrs().get_int("training_mode", 0);
    if (training != 0 && training != 1)
        ctx.fail("training_mode = " + std::to_string(training) + " must be 0 or 1");
    ctx.set_output_like(0, ctx.dtype(0), 0);
    ctx.set_output_like(1, DSK_DTYPE_U8, 0);
}

// dY, mask u8 -> dX [dY].
void infer_dropout_grad(ShapeContext& ctx) {
    ctx.expect_floating(0, "dY");
    ctx.expect_dtype(1, "mask", DSK_DTYPE_U8);
    ctx.expect_shape(1, "mask", ctx.shape(0), "the shape of dY");
    check_ratio(ctx);
    ctx.set_output_like(0, ctx.dtype(0), 0);
}

// Training: DropoutGrad(dY, mask). Otherwise Y = X, so dX = dY.
void gradient_dropout(GradientContext& ctx) {
    const dsk_value_id dy = ctx.output_grad(0);
    if (dy == DSK_VALUE_NONE) return;  // only the mask is used
    if (ctx.attrs().get_int("training_mode", 0) == 0) {
        ctx.set_input_grad(0, dy);
        return;
    }
    ctx.require_outputs(2, "mask");
    ctx.set_input_grad(0, ctx.graph().node("DropoutGrad", {dy, ctx.output(1)},
                                           {Attr("ratio", ctx.attrs().get_float("ratio", 0.5))}));
}

}  // namespace

void register_dropout_ops(Registrar& reg) {
    define_op(reg, "Dropout",
              "training: Y = X * mask / (1 - ratio), mask ~ Bernoulli(1 - ratio) from the node's "
              "exec seed; otherwise Y = X, mask = 1",
              {1, 1, 1, 2}, {"ratio", "training_mode"}, infer_dropout, gradient_dropout);
    define_op(reg, "DropoutGrad", "gradient of Dropout: dX = dY * mask / (1 - ratio)", {2, 2, 1, 1},
              {"ratio"}, infer_dropout_grad, nullptr);
}

}  // namespace dsk::ops
