// matmul_kernels.cpp - Gemm and MatMul (ONNX semantics, docs/ops.md).
//
// Two shaders, chosen per device at run time: matmul_blocked (register blocking, no shared
// memory) where Vulkan runs on a CPU, matmul_tiled_<BM>x<BN> (shared-memory tiles, one module per
// tile shape) on GPUs. DSK_VULKAN_MATMUL=blocked|blocked:<TM>x<TN>|tiled|tiled:<BM>x<BN>
// overrides the choice (tests, tuning).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernel_table.h"

namespace dsk::vulkan {
namespace {

// The tile shapes matmul_tiled.glsl is compiled for, the largest first.
struct Tile {
    int32_t bm, bn;
    const char* shader;
};
constexpr Tile kTiles[] = {
    {128, 128, "matmul_tiled_128x128"},
    {64, 128, "matmul_tiled_64x128"},
    {64, 64, "matmul_tiled_64x64"},
};

// (BM/8) x (BN/8) invocations, and two K-slices of 8 of A and B in shared memory.
bool tile_fits(const VulkanDevice& device, const Tile& t) {
    const auto& limits = device.physical().properties.limits;
    const uint32_t threads = static_cast<uint32_t>(t.bm / 8 * (t.bn / 8));
    const uint32_t shared = 2 * 8 * static_cast<uint32_t>(t.bm / 4 + 1 + t.bn / 4 + 1) * 16;
    return threads <= limits.maxComputeWorkGroupInvocations && threads <= limits.maxComputeWorkGroupSize[0] &&
           shared <= limits.maxComputeSharedMemorySize;
}

struct Variant {
    bool tiled;
    int32_t tm, tn;             // block of the register-blocked shader
    const Tile* tile = nullptr;  // of the shared-memory shader (null: chosen by the sizes)
};

Variant choose_variant(const KernelArgs& args) {
    const VulkanDevice& device = args.device();
    // 16x16 blocks: 17-18 GFLOP/s at 1024^3 on lavapipe (2 threads), 8x8 10, 4x4 2.
    Variant v{!device.physical().cpu_emulated(), 16, 16};
    const char* env = std::getenv("DSK_VULKAN_MATMUL");
    if (env == nullptr) return v;
    int tm = 0, tn = 0, bm = 0, bn = 0;
    if (std::strcmp(env, "tiled") == 0) return {true, 16, 16};
    if (std::strcmp(env, "blocked") == 0) return {false, 16, 16};
    if (std::sscanf(env, "blocked:%dx%d", &tm, &tn) == 2 && tm > 0 && tn > 0 && tm <= 16 && tn <= 16)
        return {false, tm, tn};
    if (std::sscanf(env, "tiled:%dx%d", &bm, &bn) == 2)
        for (const Tile& t : kTiles)
            if (t.bm == bm && t.bn == bn && tile_fits(device, t)) return {true, 16, 16, &t};
    args.fail(std::string("DSK_VULKAN_MATMUL=") + env + " is not a variant for " + device.label() +
              ": use blocked, blocked:<TM>x<TN> (1-16 each), tiled, or tiled:<BM>x<BN> with one of the "
              "compiled tiles 128x128, 64x128, 64x64 that fits the device's shared memory, or unset it");
}

// The tile for an M x N product: the largest of which there are enough to keep a large GPU's
// multiprocessors busy (an H200 has 132), else the smallest that fits.
const Tile& choose_tile(const VulkanDevice& device, uint32_t m, uint32_t n) {
    const Tile* fallback = nullptr;
    for (const Tile& t : kTiles) {
        if (!tile_fits(device, t)) continue;
        fallback = &t;
        const uint64_t tiles = uint64_t{(m + t.bm - 1) / t.bm} * ((n + t.bn - 1) / t.bn);
        if (tiles >= 128) return t;
    }
    return fallback != nullptr ? *fallback : kTiles[2];
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
    const Variant v = choose_variant(args);
    if (v.tiled) {
        const Tile& t = v.tile != nullptr ? *v.tile : choose_tile(args.device(), M, N);
        args.dispatch(t.shader, {&a, &b, &c, &y}, {}, params, (N + t.bn - 1) / t.bn, (M + t.bm - 1) / t.bm);
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
