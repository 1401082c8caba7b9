// fused_kernels.cpp - FusedGemm and FusedConv, the nodes the kernel's fusion pass makes of
// `Gemm -> activation` and `Conv -> activation`: Gemm's or Conv's forward pass with the
// activation applied in the SGEMM's epilogue (output_epilogue.h) to each tile of the output
// while it is in cache, and the pre-activation Z written there too when the node asks for it;
// FusedConvMaxPool, `Conv [-> Relu] -> MaxPool 2x2` in inference, pooling each block of planes
// before it leaves the cache. Results are bitwise those of the unfused ops on this backend.
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "activation_functions.h"
#include "kernel_table.h"
#include "output_epilogue.h"

namespace dsk::cpu {
namespace {

// The node's `activation` ("" or absent: none), with `activation_alpha`/`activation_beta` for
// HardSigmoid.
std::optional<ActivationParams> fused_activation(const KernelArgs& args) {
    const std::string name = args.attrs().get_string("activation", "");
    if (name.empty()) return std::nullopt;
    if (name == "Neg")
        args.fail(
            "activation = \"Neg\" is not fusable (Relu, Sigmoid, Tanh, Gelu, Silu, "
            "HardSwish, HardSigmoid or \"\")");
    return activation_params(args, name, "activation_alpha", "activation_beta");
}

void fused_gemm(const KernelArgs& args) {
    gemm_forward(args, fused_activation(args));
}

void fused_conv(const KernelArgs& args) {
    conv_forward(args, fused_activation(args));
}

void fused_conv_max_pool(const KernelArgs& args) {
    conv_max_pool_forward(args, fused_activation(args));
}

// W' = W * s per output channel, B' = (conv_B - mean) * s + B, s = scale / sqrt(var + epsilon);
// in double, rounded once.
void fold_conv_batch_norm(const KernelArgs& args) {
    const dsk_tensor_desc& w = args.input(0);
    const int64_t m = w.shape[0];
    const int64_t per_channel = numel(w) / std::max<int64_t>(m, 1);
    const double epsilon = args.attrs().get_float("epsilon", 1e-5);
    const float* weights = args.in(0);
    const float *scale = args.in(1), *bias = args.in(2), *mean = args.in(3), *var = args.in(4);
    const float* conv_bias = args.has_input(5) ? args.in(5) : nullptr;
    float* folded = args.out(0);
    float* folded_bias = args.out(1);
    for (int64_t c = 0; c < m; ++c) {
        const double s = static_cast<double>(scale[c]) / std::sqrt(static_cast<double>(var[c]) + epsilon);
        for (int64_t i = 0; i < per_channel; ++i)
            folded[c * per_channel + i] = static_cast<float>(weights[c * per_channel + i] * s);
        const double b0 = conv_bias ? conv_bias[c] : 0.0;
        folded_bias[c] = static_cast<float>((b0 - mean[c]) * s + bias[c]);
    }
}

const KernelDef kFusedKernels[] = {
    kernel("FoldConvBatchNorm", {F32, F32, F32, F32, F32, F32}, {F32, F32}, fold_conv_batch_norm) |
        optional_inputs_from(5),
    kernel("FusedGemm", {F32, F32, F32}, {F32, F32}, fused_gemm, gemm_operands_2d) |
        optional_inputs_from(2) | optional_outputs_from(1),
    kernel("FusedConv", {F32, F32, F32}, {F32, F32}, fused_conv, conv_operands_2d) |
        optional_inputs_from(2) | optional_outputs_from(1),
    kernel("FusedConvMaxPool", {F32, F32, F32}, {F32}, fused_conv_max_pool, conv_max_pool_operands) |
        optional_inputs_from(2),
};

}  // namespace

std::span<const KernelDef> fused_kernels() {
    return kFusedKernels;
}

}  // namespace dsk::cpu
