// gemm_chain_kernels.cpp - FusedGemmChain: consecutive Gemm [-> activation] layers whose
// intermediate results nothing else reads, made into one node by the kernel's fusion pass
// (fuse_gemm_chains) in batch-1 inference.
//
// With at most 4 rows each layer is a matrix-vector product bound by reading its weights, and the
// time between layers (a fork and join, the next layer reading what the other core wrote) is a
// large part of a run. So the layers go in pairs, each pair inside one parallel loop over groups
// of kGroup of the first layer's columns:
//
//   - a thread computes its groups of the first layer, with bias and activation (N split);
//   - from those columns alone, while they are in its cache, it computes each group's partial
//     sum of the second layer over them (K split): no layer's output crosses cores;
//   - after the join the calling thread adds the groups' partial sums in group order and applies
//     the second layer's bias and activation.
//
// A last odd layer is then one more product. Which sums are made depends on the layers' sizes
// only (groups are fixed by the width, not by the thread count), so results are the same on any
// number of threads; they differ from the unfused nodes' by the order of the second layer's sum.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "activation_functions.h"
#include "gemm.h"
#include "kernel_table.h"
#include "output_epilogue.h"
#include "scratch.h"

namespace dsk::cpu {
namespace {

constexpr int64_t kGroup = 128;  // columns per group: fc1 of the MLP, 256 wide, is 2 groups

struct ChainLayer {
    const float* b;
    int64_t ldb;
    bool trans_b;
    const float* bias;
    std::optional<ActivationParams> activation;
    int64_t k, n;

    // op(B)'s columns from `n0` on (an N split) and its rows from `k0` on (a K split).
    const float* columns(int64_t n0) const { return b + (trans_b ? n0 * ldb : n0); }
    const float* rows(int64_t k0) const { return b + (trans_b ? k0 : k0 * ldb); }
    // The bias and activation of columns [n0, n0 + ldy) on y (rows ldy apart), in place.
    OutputEpilogue epilogue(float* y, int64_t n0, int64_t ldy) const {
        return {.bias = bias + n0,
                .bias_row_step = 0,
                .bias_col_step = 1,
                .y = y,
                .ldy = ldy,
                .activation = activation};
    }
};

std::vector<ChainLayer> chain_layers(const KernelArgs& args) {
    const size_t count = (args.input_count() - 1) / 2;
    const std::vector<int64_t> trans_b =
        args.attrs().get_ints("transB", std::vector<int64_t>(count, 0));
    const std::vector<std::string> activations = args.attrs().get_string_list("activations");
    if (trans_b.size() != count || activations.size() != count)
        args.fail("transB and activations need one entry per layer (" + std::to_string(count) +
                  ")");
    std::vector<ChainLayer> layers;
    int64_t k = args.input(0).shape[1];
    for (size_t l = 0; l < count; ++l) {
        const dsk_tensor_desc& b = args.input(1 + 2 * l);
        args.expect_rank(b, 2, "B");
        ChainLayer layer{args.in(1 + 2 * l),
                         b.shape[1],
                         trans_b[l] != 0,
                         args.in(2 + 2 * l),
                         std::nullopt,
                         k,
                         trans_b[l] ? b.shape[0] : b.shape[1]};
        if ((layer.trans_b ? b.shape[1] : b.shape[0]) != k ||
            numel(args.input(2 + 2 * l)) != layer.n)
            args.fail("layer " + std::to_string(l) + " does not chain: its input has " +
                      std::to_string(k) + " columns, B is " + shape_text(shape_of(b)) + ", C has " +
                      std::to_string(numel(args.input(2 + 2 * l))) + " values");
        if (!activations[l].empty()) layer.activation = activation_params(args, activations[l]);
        layers.push_back(layer);
        k = layer.n;
    }
    return layers;
}

// y = activation(sum + bias) in place, rows of `n`.
void finish(const ChainLayer& layer, float* y, int64_t m) {
    const OutputEpilogue epilogue = layer.epilogue(y, 0, layer.n);
    OutputEpilogue::apply(&epilogue, 0, 0, m, layer.n, y, layer.n);
}

// What one pair needs: its input x (m rows of first.k), the first layer's output group by group
// (group g at h + g * m * kGroup, m rows of its width), and each group's partial sums of the
// second layer (group g at partial + g * m * second.n).
struct Pair {
    const ChainLayer& first;
    const ChainLayer& second;
    int64_t m;
    const float* x;
    float* h;
    float* partial;

    void group(int64_t g) const {
        const int64_t n0 = g * kGroup, width = std::min(kGroup, first.n - n0);
        float* hg = h + g * m * kGroup;
        const OutputEpilogue epilogue = first.epilogue(hg, n0, width);
        const GemmEpilogue hook = epilogue.hook(hg, width);
        sgemm_serial(false, first.trans_b, m, width, first.k, 1.0f, x, first.k, first.columns(n0),
                     first.ldb, 0.0f, hg, width, &hook);
        sgemm_serial(false, second.trans_b, m, second.n, width, 1.0f, hg, width, second.rows(n0),
                     second.ldb, 0.0f, partial + g * m * second.n, second.n);
    }

    // The second layer's output, finished, into y (m rows of second.n).
    void run(float* y) const {
        const int64_t groups = (first.n + kGroup - 1) / kGroup;
        const dsk::Work per_group{2.0 * static_cast<double>(m * kGroup * (first.k + second.n)),
                                  4.0 * static_cast<double>(kGroup * (first.k + second.n))};
        parallel_for(static_cast<size_t>(groups), per_group, [&](size_t begin, size_t end) {
            for (size_t g = begin; g < end; ++g) group(static_cast<int64_t>(g));
        });
        const int64_t size = m * second.n;
        std::copy(partial, partial + size, y);
        for (int64_t g = 1; g < groups; ++g)
            for (int64_t i = 0; i < size; ++i) y[i] += partial[g * size + i];
        finish(second, y, m);
    }
};

// The buffers a chain's node keeps from run to run (in its own cores' caches).
struct ChainBuffers {
    std::optional<Scratch> scratch;
};

void fused_gemm_chain(const KernelArgs& args) {
    args.expect_rank(args.input(0), 2, "A");
    const int64_t m = args.input(0).shape[0];
    const std::vector<ChainLayer> layers = chain_layers(args);
    args.expect_output_shape(0, {m, layers.back().n});

    // Two rows of the widest layer (a pair's input and a single layer's), a pair's h, its partials.
    int64_t widest = 0, pair_floats = 0;
    for (size_t l = 0; l < layers.size(); ++l) {
        widest = std::max(widest, layers[l].n);
        if (l + 1 < layers.size()) {
            const int64_t groups = (layers[l].n + kGroup - 1) / kGroup;
            pair_floats = std::max(pair_floats, m * (groups * kGroup + groups * layers[l + 1].n));
        }
    }
    const size_t floats = static_cast<size_t>(2 * m * widest + pair_floats);
    ChainBuffers local;
    ChainBuffers* buffers = dsk::node_cache<ChainBuffers>(args.context());
    if (!buffers) buffers = &local;
    if (!buffers->scratch || buffers->scratch->size() < floats) {
        buffers->scratch.reset();
        buffers->scratch.emplace(floats);
    }
    float* const work[2] = {buffers->scratch->data(), buffers->scratch->data() + m * widest};
    float* const pair_space = work[1] + m * widest;

    const float* x = args.in(0);
    for (size_t l = 0, step = 0; l < layers.size(); ++step) {
        const bool last = l + (l + 1 < layers.size() ? 2 : 1) == layers.size();
        float* y = last ? args.out(0) : work[step % 2];
        if (l + 1 < layers.size()) {
            const int64_t groups = (layers[l].n + kGroup - 1) / kGroup;
            Pair{layers[l], layers[l + 1], m, x, pair_space, pair_space + groups * m * kGroup}.run(
                y);
            l += 2;
        } else {
            const ChainLayer& layer = layers[l];
            const OutputEpilogue epilogue = layer.epilogue(y, 0, layer.n);
            const GemmEpilogue hook = epilogue.hook(y, layer.n);
            sgemm(false, layer.trans_b, m, layer.n, layer.k, 1.0f, x, layer.k, layer.b, layer.ldb,
                  0.0f, y, layer.n, &hook);
            l += 1;
        }
        x = y;
    }
}

// A 2-D A of at most 4 rows, which the SGEMM multiplies reading op(B) in place (AVX-512, AVX2):
// what the pairs are for. Larger batches run as well unfused, each layer on the packed SGEMM.
bool few_rows_chain(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    if (node->input_count < 5 || node->input_count % 2 == 0 || tensors[0].ndim != 2) return false;
    for (size_t i = 1; i < node->input_count; i += 2)
        if (tensors[i].ndim != 2) return false;
    return !sgemm_reads_packed_b(tensors[0].shape[0]);
}

const KernelDef kGemmChainKernels[] = {
    kernel("FusedGemmChain", {F32, F32, F32}, {F32}, fused_gemm_chain, few_rows_chain) | variadic,
};

}  // namespace

std::span<const KernelDef> gemm_chain_kernels() {
    return kGemmChainKernels;
}

}  // namespace dsk::cpu
