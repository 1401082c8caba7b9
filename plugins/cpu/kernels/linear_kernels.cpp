// linear_kernels.cpp - Gemm (ONNX: Y = alpha * op(A) * op(B) + beta * C, C broadcast to
// [M, N]) and MatMul (2-D), both on the blocked SGEMM of gemm.cpp.
#include <algorithm>
#include <string>
#include <vector>

#include "gemm.h"
#include "kernel_table.h"
#include "small_gemm.h"

namespace dsk::cpu {
namespace {

constexpr int64_t kGrain = 16384;

// Y = beta * C broadcast to [M, N] (C: [], [1], [N], [1, N], [M, 1], [M, N], ...). Y may be C.
void fill_broadcast(const KernelArgs& args, const dsk_tensor_desc& c_desc, float beta, float* y,
                    int64_t m, int64_t n) {
    if (c_desc.ndim > 2)
        args.fail("C " + shape_text(shape_of(c_desc)) + " must have at most 2 dimensions");
    const int64_t cm = c_desc.ndim == 2 ? c_desc.shape[0] : 1;
    const int64_t cn = c_desc.ndim >= 1 ? c_desc.shape[c_desc.ndim - 1] : 1;
    if ((cm != 1 && cm != m) || (cn != 1 && cn != n))
        args.fail("C " + shape_text(shape_of(c_desc)) + " does not broadcast to [" +
                  std::to_string(m) + ", " + std::to_string(n) + "]");
    const float* c = args.in(2);
    const int64_t row_step = cm == 1 ? 0 : cn;
    const size_t grain =
        static_cast<size_t>(std::max<int64_t>(1, kGrain / std::max<int64_t>(n, 1)));
    parallel_for(static_cast<size_t>(m), grain, [&](size_t b, size_t e) {
        for (int64_t i = static_cast<int64_t>(b); i < static_cast<int64_t>(e); ++i) {
            const float* src = c + i * row_step;
            float* dst = y + i * n;
            if (cn == 1) {
                const float v = beta * src[0];
                for (int64_t j = 0; j < n; ++j) dst[j] = v;
            } else {
                for (int64_t j = 0; j < n; ++j) dst[j] = beta * src[j];
            }
        }
    });
}

void gemm(const KernelArgs& args) {
    const dsk_tensor_desc& a = args.input(0);
    const dsk_tensor_desc& b = args.input(1);
    args.expect_rank(a, 2, "A");
    args.expect_rank(b, 2, "B");
    const Attrs& attrs = args.attrs();
    const bool trans_a = attrs.get_int("transA", 0) != 0;
    const bool trans_b = attrs.get_int("transB", 0) != 0;
    const float alpha = static_cast<float>(attrs.get_float("alpha", 1.0));
    const float beta = static_cast<float>(attrs.get_float("beta", 1.0));
    const int64_t m = trans_a ? a.shape[1] : a.shape[0];
    const int64_t k = trans_a ? a.shape[0] : a.shape[1];
    const int64_t kb = trans_b ? b.shape[1] : b.shape[0];
    const int64_t n = trans_b ? b.shape[0] : b.shape[1];
    if (k != kb)
        args.fail("op(A) is [" + std::to_string(m) + ", " + std::to_string(k) + "] but op(B) is [" +
                  std::to_string(kb) + ", " + std::to_string(n) + "]");
    args.expect_output_shape(0, {m, n});
    float* y = args.out(0);
    const bool with_c = args.has_input(2) && beta != 0.0f;
    if (with_c) fill_broadcast(args, args.input(2), beta, y, m, n);
    if (!trans_a && m <= kSmallGemmRows) {
        small_gemm(trans_b, m, n, k, alpha, args.in(0), a.shape[1], args.in(1), b.shape[1], with_c ? 1.0f : 0.0f, y, n);
        return;
    }
    sgemm(trans_a, trans_b, m, n, k, alpha, args.in(0), a.shape[1], args.in(1), b.shape[1],
          with_c ? 1.0f : 0.0f, y, n);
}

void matmul(const KernelArgs& args) {
    const dsk_tensor_desc& a = args.input(0);
    const dsk_tensor_desc& b = args.input(1);
    args.expect_rank(a, 2, "A");
    args.expect_rank(b, 2, "B");
    if (a.shape[1] != b.shape[0])
        args.fail("A " + shape_text(shape_of(a)) + " and B " + shape_text(shape_of(b)) +
                  " do not chain (A's columns must equal B's rows)");
    const int64_t m = a.shape[0], k = a.shape[1], n = b.shape[1];
    args.expect_output_shape(0, {m, n});
    if (m <= kSmallGemmRows) {
        small_gemm(false, m, n, k, 1.0f, args.in(0), k, args.in(1), n, 0.0f, args.out(0), n);
        return;
    }
    sgemm(false, false, m, n, k, 1.0f, args.in(0), k, args.in(1), n, 0.0f, args.out(0), n);
}

bool both_2d(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    (void)node;
    return tensors[0].ndim == 2 && tensors[1].ndim == 2;
}

const KernelDef kLinearKernels[] = {
    kernel("Gemm", {F32, F32, F32}, {F32}, gemm, both_2d) | optional_inputs_from(2),
    kernel("MatMul", {F32, F32}, {F32}, matmul, both_2d),
};

}  // namespace

std::span<const KernelDef> linear_kernels() {
    return kLinearKernels;
}

}  // namespace dsk::cpu
