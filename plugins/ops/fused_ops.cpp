// FusedGemm and FusedConv: what the kernel's fusion pass makes of `Gemm -> activation` and
// `Conv -> activation` (after autodiff, so no gradient rules). Attributes are Gemm's or Conv's
// plus the activation; Y = activation(Z) and the optional second output is Z itself, the
// pre-activation, for a graph that still needs it (ActivationGrad reads it in training).
// FusedConvMaxPool: FusedConv's Y (no Z) pooled by MaxPool's 2x2 stride-2 window, in one node
// (inference: the pass makes it only when nothing else reads the conv's output).
// FusedGemmChain: consecutive Gemm [-> activation] layers whose intermediate results nothing else
// reads, in one node (the backend may keep them in its own threads' caches between layers).
// FusedElementwise: a chain or tree of elementwise ops as one node, its `program` written in the
// grammar of dsk/dsk_elementwise_program.hpp (also made after autodiff: no gradient rule).
#include <dsk/dsk_elementwise_program.hpp>

#include "op_definition.h"
#include "op_families.h"
#include "shape_inference.h"
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

// Y: FusedConv's Y pooled by a 2x2 window at stride 2 without padding, [N, M, H / 2, W / 2].
void infer_fused_conv_max_pool(ShapeContext& ctx) {
    check_fused_activation(ctx);
    infer_conv(ctx);
    const Shape conv = shape_of(ctx.output(0));
    if (conv[2] < 2 || conv[3] < 2)
        ctx.fail("the convolution's output " + shape_text(conv) + " is smaller than the 2x2 pool window");
    ctx.set_output(0, ctx.output(0).dtype, {conv[0], conv[1], conv[2] / 2, conv[3] / 2});
}

// W [M, ...], scale, B, mean, var [M], [conv_B [M]] -> W' (W's shape), B' [M].
void infer_fold_conv_batch_norm(ShapeContext& ctx) {
    ctx.expect_floating(0, "W");
    if (ctx.rank(0) < 1) ctx.fail("W must have an output-channel dimension, got a scalar");
    const int64_t m = ctx.shape(0)[0];
    const char* names[] = {"scale", "B", "mean", "var", "conv_B"};
    for (size_t i = 1; i < ctx.input_count(); ++i) {
        ctx.expect_same_dtype(0, "W", i, names[i - 1]);
        ctx.expect_shape(i, names[i - 1], {m}, "M of W " + shape_text(ctx.shape(0)));
    }
    const double epsilon = ctx.attrs().get_float("epsilon", 1e-5);
    if (!(epsilon >= 0)) ctx.fail("epsilon = " + real_text(epsilon) + " must be >= 0");
    ctx.set_output_like(0, ctx.dtype(0), 0);
    ctx.set_output(1, ctx.dtype(0), {m});
}

// Every instruction's shape as the op alone would infer it (numpy broadcasting for the binary
// ops, ActivationGrad's dY and X alike); Y is the last one's. All inputs share one floating dtype.
void infer_fused_elementwise(ShapeContext& ctx) {
    const std::string text = ctx.attrs().get_string("program", "");
    if (text.empty()) ctx.fail("attribute 'program' is required (docs/ops.md)");
    ElementwiseProgram program;
    try {
        program = ElementwiseProgram::parse(text, ctx.input_count());
    } catch (const Error& e) {
        ctx.fail(e.what());
    }
    for (size_t i = 0; i < ctx.input_count(); ++i) {
        const std::string name = "x" + std::to_string(i);
        ctx.expect_floating(i, name.c_str());
        if (i) ctx.expect_same_dtype(0, "x0", i, name.c_str());
    }
    std::vector<Shape> shapes;
    for (const ElementwiseInstruction& in : program.instructions) {
        std::vector<Shape> args;
        for (const ElementwiseOperand& o : in.operands) args.push_back(o.temporary ? shapes[o.index] : ctx.shape(o.index));
        const std::string where = "t" + std::to_string(shapes.size()) + " = " + in.op;
        if (in.op == "ActivationGrad") {
            expect_activation(ctx, "activation", in.get_string("activation", ""));
            if (args[0] != args[1])
                ctx.fail(where + ": dY " + shape_text(args[0]) + " and X " + shape_text(args[1]) +
                         " must have the same shape");
        }
        const std::string approximate = in.get_string("approximate", "none");
        if (approximate != "none" && approximate != "tanh")
            ctx.fail(where + ": approximate = \"" + approximate + "\" must be \"none\" or \"tanh\"");
        try {
            in.get_float("alpha", 0);
            in.get_float("beta", 0);
        } catch (const Error& e) {
            ctx.fail(e.what());
        }
        shapes.push_back(args.size() == 2 ? broadcast_shapes(where.c_str(), args[0], "A", args[1], "B") : args[0]);
    }
    ctx.set_output(0, ctx.dtype(0), shapes.back());
}

// A, then B and C of each layer: layer l is Gemm(h, B_l, C_l) with transB = transB[l] (transA 0,
// alpha and beta 1), C_l its bias ([N_l] or [1, N_l]), followed by activations[l]; Y is the last
// layer's output, [M, N_last].
void infer_fused_gemm_chain(ShapeContext& ctx) {
    const size_t inputs = ctx.input_count();
    if (inputs < 5 || inputs % 2 == 0)
        ctx.fail("inputs are A, then B and C of each of at least 2 layers (an odd count, at least 5); got " +
                 std::to_string(inputs));
    const size_t layers = (inputs - 1) / 2;
    const std::vector<int64_t> trans_b = ctx.attrs().get_ints("transB", std::vector<int64_t>(layers, 0));
    const std::vector<std::string> activations = ctx.attrs().get_string_list("activations");
    if (trans_b.size() != layers)
        ctx.fail("transB has " + std::to_string(trans_b.size()) + " entries for " + std::to_string(layers) +
                 " layers (one 0 or 1 per layer)");
    if (activations.size() != layers)
        ctx.fail("activations has " + std::to_string(activations.size()) + " entries for " +
                 std::to_string(layers) + " layers (one name per layer, comma-separated, \"\" for none)");
    ctx.expect_rank(0, "A", 2);
    ctx.expect_floating(0, "A");
    const int64_t m = ctx.shape(0)[0];
    int64_t k = ctx.shape(0)[1];
    for (size_t l = 0; l < layers; ++l) {
        const std::string b_name = "B" + std::to_string(l), c_name = "C" + std::to_string(l);
        if (trans_b[l] != 0 && trans_b[l] != 1)
            ctx.fail("transB[" + std::to_string(l) + "] = " + std::to_string(trans_b[l]) + " must be 0 or 1");
        if (!activations[l].empty()) expect_activation(ctx, "activations", activations[l]);
        ctx.expect_rank(1 + 2 * l, b_name.c_str(), 2);
        ctx.expect_same_dtype(0, "A", 1 + 2 * l, b_name.c_str());
        ctx.expect_same_dtype(0, "A", 2 + 2 * l, c_name.c_str());
        const Shape b = ctx.shape(1 + 2 * l);
        const int64_t kb = trans_b[l] ? b[1] : b[0], n = trans_b[l] ? b[0] : b[1];
        if (kb != k)
            ctx.fail("layer " + std::to_string(l) + ": its input has " + std::to_string(k) + " columns but " +
                     b_name + " is " + shape_text(b) + (trans_b[l] ? " (transB=1)" : "") + " (K=" +
                     std::to_string(kb) + ")");
        const Shape c = ctx.shape(2 + 2 * l);
        if (c != Shape{n} && c != Shape{1, n})
            ctx.fail("layer " + std::to_string(l) + ": " + c_name + " is " + shape_text(c) + ", not the bias [" +
                     std::to_string(n) + "] or [1, " + std::to_string(n) + "]");
        k = n;
    }
    ctx.set_output(0, ctx.dtype(0), {m, k});
}

}  // namespace

void register_fused_ops(Registrar& reg) {
    define_op(reg, "FoldConvBatchNorm",
              "BatchNormalization (inference) folded into the Conv before it: s = scale / sqrt(var + "
              "epsilon), W' = W * s (per output channel), B' = (conv_B - mean) * s + B (conv_B 0 when absent)",
              {5, 6, 2, 2}, {"epsilon"}, infer_fold_conv_batch_norm, nullptr);
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
    define_op(reg, "FusedConvMaxPool",
              "Y = MaxPool(activation(Conv(X, W, [B]))) with a 2x2 window at stride 2, no padding "
              "(activation \"\": none); made in inference of Conv [-> activation] -> MaxPool whose "
              "conv output nothing else reads",
              {2, 3, 1, 1},
              {"strides", "pads", "dilations", "group", "activation", "activation_alpha",
               "activation_beta"},
              infer_fused_conv_max_pool, nullptr);
    define_op(reg, "FusedGemmChain",
              "h_0 = A, h_l = activations[l](Gemm(h_(l-1), B_l, C_l, transB = transB[l])) for each layer, "
              "Y = the last h; made in inference of Gemm [-> activation] nodes each read only by the next",
              {5, kManyInputs, 1, 1}, {"transB", "activations"}, infer_fused_gemm_chain, nullptr);
    define_op(reg, "FusedElementwise",
              "Y = the program's last result; each instruction is an elementwise op over the inputs "
              "x<i> (broadcast to Y's shape) and earlier results t<k>",
              {1, kManyInputs, 1, 1}, {"program"}, infer_fused_elementwise, nullptr);
}

}  // namespace dsk::ops
