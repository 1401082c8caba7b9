// linear_kernels.cpp - Gemm (ONNX: Y = alpha * op(A) * op(B) + beta * C, C broadcast to
// [M, N]) and MatMul (2-D), both on the blocked SGEMM of gemm.cpp; gemm_forward also runs
// FusedGemm (fused_kernels.cpp), with an activation in the SGEMM's epilogue.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gemm.h"
#include "kernel_table.h"
#include "output_epilogue.h"

namespace dsk::cpu {
namespace {


// Y = beta * C broadcast to [M, N] (C: [], [1], [N], [1, N], [M, 1], [M, N], ...). Y may be C.
void fill_broadcast(const KernelArgs& args, float beta, float* y, int64_t m, int64_t n, int64_t cm,
                    int64_t cn) {
    const float* c = args.in(2);
    const int64_t row_step = cm == 1 ? 0 : cn;
    const double row = static_cast<double>(n);
    parallel_for(static_cast<size_t>(m), dsk::Work{row, 8.0 * row}, [&](size_t b, size_t e) {
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

// True when the `count` floats at a and at b share memory.
bool overlaps(const float* a, const float* b, int64_t count) {
    const auto begin_a = reinterpret_cast<uintptr_t>(a), begin_b = reinterpret_cast<uintptr_t>(b);
    const auto bytes = static_cast<uintptr_t>(count) * sizeof(float);
    return begin_a < begin_b + bytes && begin_b < begin_a + bytes;
}

// What a Gemm or MatMul node keeps across runs: its B packed, for the version of B packed.
struct PackedWeights {
    uint64_t version = 0;
    const float* source = nullptr;
    PackedB packed;
};

// op(B) packed once for as long as B keeps its contents (a layer's weights in an inference
// session: dsk::input_version), else null and sgemm packs B on every call.
const PackedB* packed_weights(const KernelArgs& args, uint32_t input, bool trans_b, int64_t m,
                              int64_t n, int64_t k, int64_t ldb) {
    if (!sgemm_reads_packed_b(m)) return nullptr;
    const uint64_t version = dsk::input_version(args.context(), input);
    if (version == 0) return nullptr;
    auto* cache = dsk::node_cache<PackedWeights>(args.context());
    if (!cache) return nullptr;
    const float* b = args.in(input);
    if (cache->version != version || cache->source != b || !cache->packed.holds(trans_b, n, k)) {
        cache->version = 0;  // not valid until packed
        cache->packed.pack(trans_b, n, k, b, ldb);
        cache->version = version;
        cache->source = b;
    }
    return &cache->packed;
}

}  // namespace

// The sum accumulates into Z (output 1) when the node has it, else into Y. A bias-like C (a row
// [N] or [1, N], a column [M, 1], a scalar) is added, times beta, by the epilogue; a full
// [M, N] C (with M, N > 1), or any C in the memory of the output, is copied in, times beta,
// before the product.
void gemm_forward(const KernelArgs& args, const std::optional<ActivationParams>& activation) {
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
    if (args.has_output(1)) args.expect_output_shape(1, {m, n});
    float* z = args.has_output(1) ? args.out(1) : args.out(0);
    OutputEpilogue epilogue{.y = args.out(0), .ldy = n, .activation = activation};
    float sum_beta = 0.0f;
    if (args.has_input(2) && beta != 0.0f) {
        const dsk_tensor_desc& c = args.input(2);
        if (c.ndim > 2)
            args.fail("C " + shape_text(shape_of(c)) + " must have at most 2 dimensions");
        const int64_t cm = c.ndim == 2 ? c.shape[0] : 1;
        const int64_t cn = c.ndim >= 1 ? c.shape[c.ndim - 1] : 1;
        if ((cm != 1 && cm != m) || (cn != 1 && cn != n))
            args.fail("C " + shape_text(shape_of(c)) + " does not broadcast to [" +
                      std::to_string(m) + ", " + std::to_string(n) + "]");
        const bool bias_like = (cm == 1 || cn == 1) && !overlaps(args.in(2), z, m * n) &&
                               !overlaps(args.in(2), args.out(0), m * n);
        if (!bias_like) {
            fill_broadcast(args, beta, z, m, n, cm, cn);
            sum_beta = 1.0f;
        } else {
            epilogue.bias = args.in(2);
            epilogue.bias_row_step = cm == 1 ? 0 : cn;
            epilogue.bias_col_step = cn == 1 ? 0 : 1;
            epilogue.bias_scale = beta;
        }
    }
    const GemmEpilogue hook = epilogue.hook(z, n);
    sgemm(trans_a, trans_b, m, n, k, alpha, args.in(0), a.shape[1], args.in(1), b.shape[1],
          sum_beta, z, n, epilogue.needed(z) ? &hook : nullptr,
          packed_weights(args, 1, trans_b, m, n, k, b.shape[1]));
}

bool gemm_operands_2d(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    (void)node;
    return tensors[0].ndim == 2 && tensors[1].ndim == 2;
}

namespace {

void gemm(const KernelArgs& args) {
    gemm_forward(args, std::nullopt);
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
    sgemm(false, false, m, n, k, 1.0f, args.in(0), k, args.in(1), n, 0.0f, args.out(0), n, nullptr,
          packed_weights(args, 1, false, m, n, k, n));
}

const KernelDef kLinearKernels[] = {
    kernel("Gemm", {F32, F32, F32}, {F32}, gemm, gemm_operands_2d) | optional_inputs_from(2),
    kernel("MatMul", {F32, F32}, {F32}, matmul, gemm_operands_2d),
};

}  // namespace

std::span<const KernelDef> linear_kernels() {
    return kLinearKernels;
}

}  // namespace dsk::cpu
