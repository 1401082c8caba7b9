// matmul_kernels.cpp - Gemm and MatMul (ONNX semantics, docs/ops.md).
//
// Two shaders, chosen per device at run time: matmul_blocked (register blocking, no shared
// memory) where Vulkan runs on a CPU, matmul_tiled (shared-memory tiles) on GPUs.
// DSK_VULKAN_MATMUL=blocked|blocked:<TM>x<TN>|tiled|tiled:<BM>x<BN>x<BK> overrides the choice
// (tests, tuning).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernel_table.h"

namespace dsk::vulkan {
namespace {

struct Variant {
    bool tiled;
    int32_t tm, tn;      // block of the register-blocked shader
    int32_t bm, bn, bk;  // tile of the shared-memory shader (0: chosen by the sizes)
};

// The tiled shader's constraints: 8x8 per invocation, every invocation loads the same number of
// A and B elements per slice, and two slices of each fit in shared memory.
bool tile_fits(const VulkanDevice& device, int32_t bm, int32_t bn, int32_t bk) {
    const auto& limits = device.physical().properties.limits;
    if (bm <= 0 || bn <= 0 || bk <= 0 || bm % 8 || bn % 8) return false;
    const int64_t threads = int64_t{bm / 8} * (bn / 8);
    const int64_t shared = 2 * int64_t{bk} * (bm / 4 + 1 + bn / 4 + 1) * 16;
    return threads <= limits.maxComputeWorkGroupInvocations && threads <= limits.maxComputeWorkGroupSize[0] &&
           (int64_t{bm} * bk) % threads == 0 && (int64_t{bn} * bk) % threads == 0 &&
           shared <= limits.maxComputeSharedMemorySize;
}

Variant choose_variant(const KernelArgs& args) {
    const VulkanDevice& device = args.device();
    // 16x16 blocks: 17-18 GFLOP/s at 1024^3 on lavapipe (2 threads), 8x8 10, 4x4 2.
    Variant v{!device.physical().cpu_emulated(), 16, 16, 0, 0, 0};
    const char* env = std::getenv("DSK_VULKAN_MATMUL");
    if (env == nullptr) return v;
    int tm = 0, tn = 0, bm = 0, bn = 0, bk = 0;
    if (std::strcmp(env, "tiled") == 0) v.tiled = true;
    else if (std::strcmp(env, "blocked") == 0) v.tiled = false;
    else if (std::sscanf(env, "blocked:%dx%d", &tm, &tn) == 2 && tm > 0 && tn > 0 && tm <= 16 && tn <= 16)
        v = {false, tm, tn, 0, 0, 0};
    else if (std::sscanf(env, "tiled:%dx%dx%d", &bm, &bn, &bk) == 3 && tile_fits(device, bm, bn, bk))
        v = {true, 16, 16, bm, bn, bk};
    else
        args.fail(std::string("DSK_VULKAN_MATMUL=") + env + " is not a variant for " + device.label() +
                  ": use blocked, blocked:<TM>x<TN> (1-16 each), tiled, or tiled:<BM>x<BN>x<BK> (multiples "
                  "of 8 whose two K-slices fit in shared memory), or unset it");
    return v;
}

// The tile for an M x N product: 128x128 (the most reuse) once there are enough of them to
// keep a large GPU busy, smaller ones before that.
void choose_tile(const VulkanDevice& device, Variant& v, uint32_t m, uint32_t n) {
    if (v.bm > 0) return;
    const auto tiles = [&](uint32_t bm, uint32_t bn) { return uint64_t{(m + bm - 1) / bm} * ((n + bn - 1) / bn); };
    if (tiles(128, 128) >= 128 && tile_fits(device, 128, 128, 8)) v.bm = 128, v.bn = 128, v.bk = 8;
    else if (tiles(64, 128) >= 128 && tile_fits(device, 64, 128, 8)) v.bm = 64, v.bn = 128, v.bk = 8;
    else v.bm = 64, v.bn = 64, v.bk = 8;
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
    Variant v = choose_variant(args);
    if (v.tiled) {
        choose_tile(args.device(), v, M, N);
        const int32_t threads = (v.bm / 8) * (v.bn / 8);
        args.dispatch("matmul_tiled", {&a, &b, &c, &y}, {v.bm, v.bn, v.bk, threads}, params,
                      (N + v.bn - 1) / v.bn, (M + v.bm - 1) / v.bm);
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
