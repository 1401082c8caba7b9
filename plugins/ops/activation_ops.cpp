// Elementwise activations (Relu, Sigmoid, Tanh, Gelu, Silu, HardSwish, HardSigmoid), Neg, and
// ActivationGrad, the one backward op of all the activations (dX = dY * f'(X)).
#include "op_definition.h"
#include "op_families.h"
#include "shared_inference.h"

namespace dsk::ops {
namespace {

// The activations ActivationGrad knows, i.e. every activation registered here but Neg.
const char* const kActivations[] = {"Relu", "Sigmoid",   "Tanh",       "Gelu",
                                    "Silu", "HardSwish", "HardSigmoid"};

void check_approximate(const ShapeContext& ctx) {
    if (!ctx.attrs().has("approximate")) return;
    const std::string approximate = ctx.attrs().get_string("approximate", "none");
    if (approximate != "none" && approximate != "tanh")
        ctx.fail("approximate = \"" + approximate + "\" must be \"none\" or \"tanh\"");
}

void infer_activation(ShapeContext& ctx) {
    ctx.expect_floating(0, "X");
    check_approximate(ctx);
    ctx.set_output_like(0, ctx.dtype(0), 0);
}

void infer_neg(ShapeContext& ctx) {
    const uint32_t t = ctx.dtype(0);
    if (!is_floating(t) && t != DSK_DTYPE_I8 && t != DSK_DTYPE_I32 && t != DSK_DTYPE_I64)
        ctx.fail(std::string("X must be a floating-point or signed integer tensor, got ") +
                 dtype_name(t));
    ctx.set_output_like(0, t, 0);
}

// dY, X -> dX [X].
void infer_activation_grad(ShapeContext& ctx) {
    if (!ctx.attrs().has("activation")) ctx.fail("attribute 'activation' is required");
    expect_activation(ctx, "activation", ctx.attrs().get_string("activation", ""));
    check_approximate(ctx);
    ctx.expect_floating(0, "dY");
    ctx.expect_same_dtype(0, "dY", 1, "X");
    ctx.expect_shape(0, "dY", ctx.shape(1), "the shape of X");
    ctx.set_output_like(0, ctx.dtype(0), 1);
}

// ActivationGrad(dY, X) with the forward node's attributes (alpha, beta, approximate).
// Relu reads its output Y instead of X: relu'(x) = [x > 0] = [relu(x) > 0] (NaN stays NaN, -0
// stays -0), so dX is bitwise the same, and X need not outlive the forward pass. Where X is the
// pre-activation of a Conv or Gemm, the fused FusedConv / FusedGemm then writes Y only (no Z),
// and a MaxPool on Y can take the gradient through the Relu in its own pass (MaxPoolReluGrad).
void gradient_activation(GradientContext& ctx) {
    std::vector<Attr> attrs = Attr::all_of(ctx.node());
    attrs.emplace_back("activation", ctx.op());
    const dsk_value_id x = std::string(ctx.op()) == "Relu" ? ctx.output(0) : ctx.input(0);
    ctx.set_input_grad(0, ctx.graph().node("ActivationGrad", {ctx.output_grad(0), x}, attrs));
}

void gradient_neg(GradientContext& ctx) {
    ctx.set_input_grad(0, ctx.graph().node("Neg", {ctx.output_grad(0)}));
}

}  // namespace

void expect_activation(const ShapeContext& ctx, const char* attribute,
                       const std::string& activation) {
    bool known = false;
    std::string list;
    for (const char* name : kActivations) {
        known = known || activation == name;
        list += (list.empty() ? "" : ", ") + std::string(name);
    }
    if (!known)
        ctx.fail(std::string(attribute) + " = \"" + activation + "\" is not one of " + list);
}

void register_activation_ops(Registrar& reg) {
    define_op(reg, "Relu", "max(x, 0)", {1, 1, 1, 1}, {}, infer_activation, gradient_activation);
    define_op(reg, "Sigmoid", "1 / (1 + exp(-x))", {1, 1, 1, 1}, {}, infer_activation,
              gradient_activation);
    define_op(reg, "Tanh", "tanh(x)", {1, 1, 1, 1}, {}, infer_activation, gradient_activation);
    define_op(reg, "Gelu", "x * Phi(x); approximate \"tanh\": the tanh approximation", {1, 1, 1, 1},
              {"approximate"}, infer_activation, gradient_activation);
    define_op(reg, "Silu", "x * sigmoid(x)", {1, 1, 1, 1}, {}, infer_activation,
              gradient_activation);
    define_op(reg, "HardSwish", "x * max(0, min(1, x/6 + 1/2))", {1, 1, 1, 1}, {}, infer_activation,
              gradient_activation);
    define_op(reg, "HardSigmoid", "max(0, min(1, alpha*x + beta)), alpha 0.2, beta 0.5",
              {1, 1, 1, 1}, {"alpha", "beta"}, infer_activation, gradient_activation);
    define_op(reg, "Neg", "-x", {1, 1, 1, 1}, {}, infer_neg, gradient_neg);
    define_op(reg, "ActivationGrad", "dX = dY * f'(X) for the forward op named by activation",
              {2, 2, 1, 1}, {"activation", "alpha", "beta", "approximate"}, infer_activation_grad,
              nullptr);
}

}  // namespace dsk::ops
