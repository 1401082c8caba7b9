// Gemm and MatMul: shape inference and the gradient as Gemm nodes with swapped transposes.
#include "op_definition.h"
#include "op_families.h"
#include "shared_inference.h"

namespace dsk::ops {

// Y = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T.
void infer_gemm(ShapeContext& ctx) {
    ctx.expect_rank(0, "A", 2);
    ctx.expect_rank(1, "B", 2);
    ctx.expect_floating(0, "A");
    ctx.expect_same_dtype(0, "A", 1, "B");
    const bool trans_a = ctx.attrs().get_int("transA", 0) != 0;
    const bool trans_b = ctx.attrs().get_int("transB", 0) != 0;
    const Shape a = ctx.shape(0);
    const Shape b = ctx.shape(1);
    const int64_t m = trans_a ? a[1] : a[0];
    const int64_t k = trans_a ? a[0] : a[1];
    const int64_t k_b = trans_b ? b[1] : b[0];
    const int64_t n = trans_b ? b[0] : b[1];
    if (k != k_b)
        ctx.fail("inner dimensions differ: A is " + shape_text(a) + (trans_a ? " (transA=1)" : "") +
                 " (K=" + std::to_string(k) + "), B is " + shape_text(b) +
                 (trans_b ? " (transB=1)" : "") + " (K=" + std::to_string(k_b) + ")");
    const Shape y = {m, n};
    if (ctx.has_input(2)) {
        ctx.expect_same_dtype(0, "A", 2, "C");
        if (!broadcasts_to(ctx.shape(2), y))
            ctx.fail("C is " + shape_text(ctx.shape(2)) + ", which does not broadcast to Y " +
                     shape_text(y) + " (give [N], [1, N], [M, 1], [M, N] or a scalar)");
    }
    ctx.set_output(0, ctx.dtype(0), y);
}

namespace {

void infer_matmul(ShapeContext& ctx) {
    ctx.expect_rank(0, "A", 2);
    ctx.expect_rank(1, "B", 2);
    ctx.expect_floating(0, "A");
    ctx.expect_same_dtype(0, "A", 1, "B");
    const Shape a = ctx.shape(0);
    const Shape b = ctx.shape(1);
    if (a[1] != b[0])
        ctx.fail("inner dimensions differ: A is " + shape_text(a) + " (K=" + std::to_string(a[1]) +
                 "), B is " + shape_text(b) + " (K=" + std::to_string(b[0]) + ")");
    ctx.set_output(0, ctx.dtype(0), {a[0], b[1]});
}

// alpha * op(x) * op(y) as one Gemm node; attributes only where they differ from the defaults.
dsk_value_id gemm(const GradientContext& ctx, dsk_value_id x, dsk_value_id y, bool trans_x,
                  bool trans_y, double alpha) {
    std::vector<Attr> attrs;
    if (trans_x) attrs.emplace_back("transA", 1);
    if (trans_y) attrs.emplace_back("transB", 1);
    if (alpha != 1.0) attrs.emplace_back("alpha", alpha);
    return ctx.graph().node("Gemm", {x, y}, attrs);
}

// With P = op(A), Q = op(B), Y = alpha * P * Q:
//   dP = alpha * dY * Q^T, dQ = alpha * P^T * dY,
// and dA = dP (or dP^T when transA), dB = dQ (or dQ^T when transB), each written as one Gemm:
//   dA = alpha * dY * op(B)^T                    (transA = 0)
//   dA = alpha * op(B) * dY^T                    (transA = 1)
//   dB = alpha * op(A)^T * dY                    (transB = 0)
//   dB = alpha * dY^T * op(A)                    (transB = 1)
void gemm_input_grads(GradientContext& ctx, bool trans_a, bool trans_b, double alpha) {
    const dsk_value_id a = ctx.input(0);
    const dsk_value_id b = ctx.input(1);
    const dsk_value_id dy = ctx.output_grad(0);
    if (!trans_a)
        ctx.set_input_grad(0, gemm(ctx, dy, b, false, !trans_b, alpha));
    else
        ctx.set_input_grad(0, gemm(ctx, b, dy, trans_b, true, alpha));
    if (!trans_b)
        ctx.set_input_grad(1, gemm(ctx, a, dy, !trans_a, false, alpha));
    else
        ctx.set_input_grad(1, gemm(ctx, dy, a, true, trans_a, alpha));
}

void gradient_gemm(GradientContext& ctx) {
    const bool trans_a = ctx.attrs().get_int("transA", 0) != 0;
    const bool trans_b = ctx.attrs().get_int("transB", 0) != 0;
    const double alpha = ctx.attrs().get_float("alpha", 1.0);
    const double beta = ctx.attrs().get_float("beta", 1.0);
    gemm_input_grads(ctx, trans_a, trans_b, alpha);
    if (ctx.input_count() > 2) {
        dsk_value_id dc = ctx.output_grad(0);
        if (beta != 1.0) dc = ctx.graph().node("Mul", {dc, ctx.scalar_like(beta, dc)});
        ctx.set_input_grad(2, ctx.sum_to(dc, ctx.shape(ctx.input(2))));
    }
}

void gradient_matmul(GradientContext& ctx) {
    gemm_input_grads(ctx, false, false, 1.0);
}

}  // namespace

void register_linear_ops(Registrar& reg) {
    define_op(reg, "Gemm", "Y = alpha * op(A) * op(B) + beta * C (ONNX Gemm)", {2, 3, 1, 1},
              {"transA", "transB", "alpha", "beta"}, infer_gemm, gradient_gemm);
    define_op(reg, "MatMul", "Y = A * B for 2-D A [M, K], B [K, N]", {2, 2, 1, 1}, {}, infer_matmul,
              gradient_matmul);
}

}  // namespace dsk::ops
