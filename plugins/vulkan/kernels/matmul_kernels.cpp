// matmul_kernels.cpp - Gemm and MatMul (ONNX semantics, docs/ops.md).
//
// Two shaders, chosen per device at run time: matmul_blocked (register blocking, no shared
// memory) where Vulkan runs on a CPU, matmul_tiled (shared-memory tiles) on GPUs.
// DSK_VULKAN_MATMUL=blocked|tiled|blocked:<TM>x<TN> overrides the choice (tests, tuning).
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernel_table.h"

namespace dsk::vulkan {
namespace {

struct Variant {
    bool tiled;
    int32_t tm, tn;  // block of the register-blocked shader
};

Variant choose_variant(const VulkanDevice& device) {
    // 16x16 blocks: 17-18 GFLOP/s at 1024^3 on lavapipe (2 threads), 8x8 10, 4x4 2.
    Variant v{!device.physical().cpu_emulated(), 16, 16};
    if (const char* env = std::getenv("DSK_VULKAN_MATMUL")) {
        int tm = 0, tn = 0;
        if (std::strcmp(env, "tiled") == 0) v.tiled = true;
        else if (std::strcmp(env, "blocked") == 0) v.tiled = false;
        else if (std::sscanf(env, "blocked:%dx%d", &tm, &tn) == 2 && tm > 0 && tn > 0 && tm <= 16 && tn <= 16)
            v = {false, tm, tn};
    }
    return v;
}

struct Gemm {
    bool trans_a = false, trans_b = false;
    float alpha = 1.0f, beta = 1.0f;
};

// Y = alpha * op(A) * op(B) + beta * C, C broadcast to [M, N].
void record_gemm(const KernelArgs& args, const Gemm& g) {
    const dsk_tensor_desc& a = args.input(0);
    const dsk_tensor_desc& b = args.input(1);
    if (a.ndim != 2 || b.ndim != 2)
        args.fail("A and B must be 2-D, not " + shape_text(shape_of(a)) + " and " + shape_text(shape_of(b)));
    const int64_t m = g.trans_a ? a.shape[1] : a.shape[0];
    const int64_t k = g.trans_a ? a.shape[0] : a.shape[1];
    const int64_t kb = g.trans_b ? b.shape[1] : b.shape[0];
    const int64_t n = g.trans_b ? b.shape[0] : b.shape[1];
    if (k != kb)
        args.fail("inner dimensions differ: op(A) has K = " + std::to_string(k) + ", op(B) has K = " +
                  std::to_string(kb));
    args.expect_output_shape(0, {m, n});
    const dsk_tensor_desc& y = args.output(0);

    const bool has_c = args.has_input(2);
    uint32_t scm = 0, scn = 0;
    if (has_c) {
        const dsk_tensor_desc& c = args.input(2);
        const int64_t rows = c.ndim == 2 ? c.shape[0] : 1;
        const int64_t cols = c.ndim >= 1 ? c.shape[c.ndim - 1] : 1;
        if (c.ndim > 2 || (rows != 1 && rows != m) || (cols != 1 && cols != n))
            args.fail("C " + shape_text(shape_of(c)) + " does not broadcast to [" + std::to_string(m) +
                      ", " + std::to_string(n) + "]");
        scm = rows == 1 ? 0 : u32(args, cols, "C's columns");
        scn = cols == 1 ? 0 : 1;
    }
    const uint32_t M = u32(args, m, "M"), N = u32(args, n, "N"), K = u32(args, k, "K");
    const uint32_t params[] = {
        M, N, K,
        g.trans_a ? 1u : K, g.trans_a ? M : 1u,  // sam, sak
        g.trans_b ? 1u : N, g.trans_b ? K : 1u,  // sbk, sbn
        scm, scn,
        float_bits(g.alpha), float_bits(g.beta),
        has_c ? 1u : 0u,
    };
    if (m == 0 || n == 0) return;  // K = 0 is fine: the shaders' loop does not run, Y = beta C
    const dsk_tensor_desc& c = has_c ? args.input(2) : y;  // unused binding when there is no C
    const Variant v = choose_variant(args.device());
    if (v.tiled) {
        args.dispatch("matmul_tiled", {&a, &b, &c, &y}, {}, params, (N + 63) / 64, (M + 63) / 64);
    } else {
        const uint64_t blocks = uint64_t{(M + v.tm - 1) / v.tm} * ((N + v.tn - 1) / v.tn);
        args.dispatch_items("matmul_blocked", {&a, &b, &c, &y}, {v.tm, v.tn}, params, blocks);
    }
}

void gemm(const KernelArgs& args) {
    Gemm g;
    g.trans_a = args.attrs().get_int("transA", 0) != 0;
    g.trans_b = args.attrs().get_int("transB", 0) != 0;
    g.alpha = static_cast<float>(args.attrs().get_float("alpha", 1.0));
    g.beta = static_cast<float>(args.attrs().get_float("beta", 1.0));
    record_gemm(args, g);
}

void matmul(const KernelArgs& args) { record_gemm(args, Gemm{}); }

bool two_dimensional(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    return node->input_count >= 2 && tensors[0].ndim == 2 && tensors[1].ndim == 2 &&
           (node->input_count < 3 || tensors[2].ndim <= 2);
}

const KernelDef kMatmulKernels[] = {
    {"Gemm", 2, 3, 1, 1, {F32, F32, F32}, {F32}, gemm, two_dimensional},
    {"MatMul", 2, 2, 1, 1, {F32, F32}, {F32}, matmul, two_dimensional},
};

}  // namespace

std::span<const KernelDef> matmul_kernels() { return kMatmulKernels; }

}  // namespace dsk::vulkan
