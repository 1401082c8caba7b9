// shared_inference.h - shape inference of one op family that another reuses: FusedGemm and
// FusedConv (fused_ops.cpp) infer their outputs as Gemm (linear_ops.cpp) and Conv (conv_ops.cpp)
// do, and name their activation from the list ActivationGrad knows (activation_ops.cpp).
#pragma once

#include <string>

#include "op_definition.h"

namespace dsk::ops {

// Output 0 of Gemm: Y [M, N] from A, B and the optional C, under transA/transB.
void infer_gemm(ShapeContext& ctx);
// Output 0 of Conv: Y [N, M, oH, oW] from X, W and the optional B, under strides, pads,
// dilations and group.
void infer_conv(ShapeContext& ctx);

// Fails unless `activation` (the value of attribute `attribute`) names an activation op with an
// ActivationGrad: Relu, Sigmoid, Tanh, Gelu, Silu, HardSwish or HardSigmoid.
void expect_activation(const ShapeContext& ctx, const char* attribute,
                       const std::string& activation);

}  // namespace dsk::ops
