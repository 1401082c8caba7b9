// fused_kernels.cpp - FusedGemm and FusedConv, the nodes the kernel's fusion pass makes of
// `Gemm -> activation` and `Conv -> activation`: Gemm's or Conv's forward pass with the
// activation applied in the SGEMM's epilogue (output_epilogue.h) to each tile of the output
// while it is in cache, and the pre-activation Z written there too when the node asks for it.
// Results are bitwise those of the unfused pair on this backend.
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

const KernelDef kFusedKernels[] = {
    kernel("FusedGemm", {F32, F32, F32}, {F32, F32}, fused_gemm, gemm_operands_2d) |
        optional_inputs_from(2) | optional_outputs_from(1),
    kernel("FusedConv", {F32, F32, F32}, {F32, F32}, fused_conv, conv_operands_2d) |
        optional_inputs_from(2) | optional_outputs_from(1),
};

}  // namespace

std::span<const KernelDef> fused_kernels() {
    return kFusedKernels;
}

}  // namespace dsk::cpu
