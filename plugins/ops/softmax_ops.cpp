// Softmax, LogSoftmax, SoftmaxCrossEntropyLoss and their backward ops.
#include "op_definition.h"
#include "op_families.h"

namespace dsk::ops {
namespace {

// X -> Y [X], normalised along `axis` (-1).
void infer_softmax(ShapeContext& ctx) {
    ctx.expect_floating(0, "X");
    if (ctx.rank(0) == 0) ctx.fail("X must have at least 1 dimension, got a scalar");
    normalize_axis(ctx.op(), "axis", ctx.attrs().get_int("axis", -1), ctx.rank(0));
    ctx.set_output_like(0, ctx.dtype(0), 0);
}

// dY, Y -> dX [Y].
void infer_softmax_grad(ShapeContext& ctx) {
    ctx.expect_floating(0, "dY");
    ctx.expect_same_dtype(0, "dY", 1, "Y");
    ctx.expect_shape(0, "dY", ctx.shape(1), "the shape of Y");
    if (ctx.rank(1) == 0) ctx.fail("Y must have at least 1 dimension, got a scalar");
    normalize_axis(ctx.op(), "axis", ctx.attrs().get_int("axis", -1), ctx.rank(1));
    ctx.set_output_like(0, ctx.dtype(0), 1);
}

// Softmax -> SoftmaxGrad(dY, Y), LogSoftmax -> LogSoftmaxGrad(dY, Y).
void gradient_softmax(GradientContext& ctx) {
    const std::string grad_op = std::string(ctx.op()) + "Grad";
    ctx.set_input_grad(0, ctx.graph().node(grad_op.c_str(), {ctx.output_grad(0), ctx.output(0)},
                                           {Attr("axis", ctx.attrs().get_int("axis", -1))}));
}

void check_reduction(const ShapeContext& ctx) {
    const std::string reduction = ctx.attrs().get_string("reduction", "mean");
    if (reduction != "mean" && reduction != "sum")
        ctx.fail("reduction = \"" + reduction + "\" must be \"mean\" or \"sum\"");
}

// Labels (input i) are i64 [N] for scores [N, C].
void expect_labels(const ShapeContext& ctx, size_t i, const Shape& scores,
                   const char* scores_name) {
    ctx.expect_dtype(i, "labels", DSK_DTYPE_I64);
    ctx.expect_shape(i, "labels", {scores[0]},
                     std::string("N of ") + scores_name + " " + shape_text(scores));
}

// scores [N, C], labels [N] i64 -> loss [], log_prob [N, C].
void infer_cross_entropy(ShapeContext& ctx) {
    ctx.expect_floating(0, "scores");
    ctx.expect_rank(0, "scores", 2);
    const Shape scores = ctx.shape(0);
    expect_labels(ctx, 1, scores, "scores");
    check_reduction(ctx);
    ctx.set_output(0, ctx.dtype(0), {});
    ctx.set_output(1, ctx.dtype(0), scores);
}

// dloss [], log_prob [N, C], labels [N] -> dscores [N, C].
void infer_cross_entropy_grad(ShapeContext& ctx) {
    ctx.expect_floating(0, "dloss");
    if (numel(ctx.input(0)) != 1)
        ctx.fail("dloss must be a scalar, got " + shape_text(ctx.shape(0)));
    ctx.expect_same_dtype(0, "dloss", 1, "log_prob");
    ctx.expect_rank(1, "log_prob", 2);
    const Shape log_prob = ctx.shape(1);
    expect_labels(ctx, 2, log_prob, "log_prob");
    check_reduction(ctx);
    ctx.set_output(0, ctx.dtype(1), log_prob);
}

// dscores from log_prob; when the node was added without its log_prob output, log_prob is
// recomputed as LogSoftmax(scores) over the classes. The labels get no gradient.
void gradient_cross_entropy(GradientContext& ctx) {
    const dsk_value_id dloss = ctx.output_grad(0);
    if (dloss == DSK_VALUE_NONE) return;  // only log_prob is used: it is an output, not a path
    dsk_value_id log_prob = ctx.output(1);
    if (log_prob == DSK_VALUE_NONE)
        log_prob = ctx.graph().node("LogSoftmax", {ctx.input(0)}, {Attr("axis", 1)});
    ctx.set_input_grad(
        0, ctx.graph().node("SoftmaxCrossEntropyLossGrad", {dloss, log_prob, ctx.input(1)},
                            {Attr("reduction", ctx.attrs().get_string("reduction", "mean"))}));
}

}  // namespace

void register_softmax_ops(Registrar& reg) {
    define_op(reg, "Softmax", "exp(x) / sum(exp(x)) along axis (-1)", {1, 1, 1, 1}, {"axis"},
              infer_softmax, gradient_softmax);
    define_op(reg, "LogSoftmax", "x - log(sum(exp(x))) along axis (-1)", {1, 1, 1, 1}, {"axis"},
              infer_softmax, gradient_softmax);
    define_op(
        reg, "SoftmaxCrossEntropyLoss",
        "loss = -sum(log_prob[n, label[n]]) (/ N for mean), log_prob = LogSoftmax(scores [N, C])",
        {2, 2, 1, 2}, {"reduction"}, infer_cross_entropy, gradient_cross_entropy);
    define_op(reg, "SoftmaxGrad", "gradient of Softmax: dX = Y * (dY - sum(dY * Y))", {2, 2, 1, 1},
              {"axis"}, infer_softmax_grad, nullptr);
    define_op(reg, "LogSoftmaxGrad", "gradient of LogSoftmax: dX = dY - exp(Y) * sum(dY)",
              {2, 2, 1, 1}, {"axis"}, infer_softmax_grad, nullptr);
    define_op(reg, "SoftmaxCrossEntropyLossGrad",
              "gradient of SoftmaxCrossEntropyLoss: dscores = (exp(log_prob) - onehot) * dloss (/ "
              "N for mean)",
              {3, 3, 1, 1}, {"reduction"}, infer_cross_entropy_grad, nullptr);
}

}  // namespace dsk::ops
