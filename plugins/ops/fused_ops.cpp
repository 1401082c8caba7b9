// FusedGemm and FusedConv: what the kernel's fusion pass makes of `Gemm -> activation` and
// `Conv -> activation` (after autodiff, so no gradient rules). Attributes are Gemm's or Conv's
// plus the activation; Y = activation(Z) and the optional second output is Z itself, the
// pre-activation, for a graph that still needs it (ActivationGrad reads it in training).
#include "op_definition.h"
#include "op_families.h"
#include "shared_inference.h"

namespace dsk::ops {
namespace {

// `activation` is "" (none) or an activation op; HardSigmoid's alpha and beta are the
// activation_alpha and activation_beta attributes (the fusion pass copies them from the node).
void check_fused_activation(const ShapeContext& ctx) {
    const std::string activation = ctx.attrs().get_string("activation", "");
    if (!activation.empty()) expect_activation(ctx, "activation", activation);
}

// Z, when asked for, is Y's twin.
void infer_pre_activation(const ShapeContext& ctx) {
    if (ctx.output_count() < 2) return;
    ctx.set_output(1, ctx.output(0).dtype, shape_of(ctx.output(0)));
}

void infer_fused_gemm(ShapeContext& ctx) {
    check_fused_activation(ctx);
    infer_gemm(ctx);
    infer_pre_activation(ctx);
}

void infer_fused_conv(ShapeContext& ctx) {
    check_fused_activation(ctx);
    infer_conv(ctx);
    infer_pre_activation(ctx);
}

}  // namespace

void register_fused_ops(Registrar& reg) {
    define_op(
        reg, "FusedGemm",
        "Z = Gemm(A, B, [C]), Y = activation(Z) (activation \"\": Y = Z); outputs Y, [Z]",
        {2, 3, 1, 2},
        {"transA", "transB", "alpha", "beta", "activation", "activation_alpha", "activation_beta"},
        infer_fused_gemm, nullptr);
    define_op(reg, "FusedConv",
              "Z = Conv(X, W, [B]), Y = activation(Z) (activation \"\": Y = Z); outputs Y, [Z]",
              {2, 3, 1, 2},
              {"strides", "pads", "dilations", "group", "activation", "activation_alpha",
               "activation_beta"},
              infer_fused_conv, nullptr);
}

}  // namespace dsk::ops
