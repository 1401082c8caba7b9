// output_epilogue.h - what the Gemm and Conv forward kernels (and their fused forms FusedGemm,
// FusedConv) do to each tile of the SGEMM's output once its sum over K is complete: add the bias,
// keep the pre-activation (Z) and write the activation of it (Y), all while the tile is in cache.
//
//     OutputEpilogue epilogue{.bias = c, .bias_row_step = 0, .bias_col_step = 1, .y = y, .ldy = n,
//                             .activation = relu};
//     const GemmEpilogue hook = epilogue.hook(z, n);
//     sgemm(..., z, n, epilogue.needed(z) ? &hook : nullptr);
//
// The SGEMM accumulates into Z (or into Y itself when no Z is wanted); the epilogue turns each
// finished tile into Z = tile + bias, Y = activation(Z). Gemm and Conv run through here with no
// activation, so a fused node and the unfused pair compute Z the same way, bit for bit, and the
// activation is activation_functions.h's, the one the standalone kernels use.
#ifndef DSK_CPU_KERNELS_OUTPUT_EPILOGUE_H_
#define DSK_CPU_KERNELS_OUTPUT_EPILOGUE_H_

#include <cstdint>
#include <optional>

#include "activation_functions.h"
#include "gemm.h"
#include "kernel_table.h"

namespace dsk::cpu {

struct OutputEpilogue {
    // Element (i, j) of the SGEMM's C gets bias_scale * bias[i * bias_row_step + j *
    // bias_col_step] added; bias_col_step is 0 (one value per row) or 1. Null: no bias.
    const float* bias = nullptr;
    int64_t bias_row_step = 0;
    int64_t bias_col_step = 0;
    float bias_scale = 1.0f;
    // Y, indexed like C (row i at y + i * ldy). May be C itself (in place).
    float* y = nullptr;
    int64_t ldy = 0;
    // None: Y is a copy of the biased sum (or the sum itself, in place).
    std::optional<ActivationParams> activation;

    // The GemmEpilogue calling apply with this object (which must outlive the sgemm call), for an
    // SGEMM writing C at `c`, rows `ldc` apart. With a bias per column (scale 1), no activation or
    // Relu, and Y being C, it says so (GemmEpilogue::column_bias): the micro-kernel may then add
    // the bias and apply Relu in its registers, bitwise as apply would.
    GemmEpilogue hook(const float* c, int64_t ldc) const;
    // Whether all the activation does is Relu, or there is none: then the bias and it take one
    // pass (or the micro-kernel's registers).
    bool relu_or_none() const { return !activation || activation->kind == Activation::relu; }
    // False when there is nothing to do for an SGEMM writing `c` (no bias, no activation, Y is C):
    // then the caller passes no epilogue and the SGEMM takes its plain path.
    bool needed(const float* c) const { return bias || activation || y != c; }

    // The GemmEpilogue function: rows [i0, i0 + rows) x columns [j0, j0 + cols) of C at `c`.
    static void apply(const void* self, int64_t i0, int64_t j0, int64_t rows, int64_t cols,
                      float* c, int64_t ldc);
};

//----------------------------------------------------------------------------------------------
// The forward kernels that end in this epilogue. Y is output 0; output 1, when the node has it,
// receives Z, the pre-activation. No activation: Gemm or Conv.
//----------------------------------------------------------------------------------------------

void gemm_forward(const KernelArgs& args, const std::optional<ActivationParams>& activation);
void conv_forward(const KernelArgs& args, const std::optional<ActivationParams>& activation);

// FusedConvMaxPool: conv_forward's Y (no Z) pooled by MaxPool's 2x2, stride-2 window, each block
// of output planes pooled while it is in cache; for the convolutions conv_max_pool_operands
// accepts (the direct path's, with no activation or Relu).
void conv_max_pool_forward(const KernelArgs& args, const std::optional<ActivationParams>& activation);

// The `accepts` conditions of their kernels: A and B 2-D (Gemm), X and W 4-D (Conv), and for
// FusedConvMaxPool a convolution the direct path (conv_direct.h) or Winograd's (conv_winograd.h)
// takes, with at least a 2x2 output.
bool gemm_operands_2d(const dsk_node_view* node, const dsk_tensor_desc* tensors);
bool conv_operands_2d(const dsk_node_view* node, const dsk_tensor_desc* tensors);
bool conv_max_pool_operands(const dsk_node_view* node, const dsk_tensor_desc* tensors);

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_OUTPUT_EPILOGUE_H_
