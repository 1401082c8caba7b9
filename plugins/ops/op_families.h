// op_families.h - one registration function per family of the core op set (docs/ops.md). Each
// registers the forward ops of its family with their gradient rules, and the backward ops those
// rules use.
#pragma once

#include <dsk/dsk_plugin.hpp>

namespace dsk::ops {

void register_linear_ops(Registrar& reg);         // Gemm, MatMul
void register_conv_ops(Registrar& reg);           // Conv, ConvGradInput, ConvGradWeight
void register_pooling_ops(Registrar& reg);        // MaxPool, AveragePool, GlobalAveragePool + grads
void register_normalization_ops(Registrar& reg);  // BatchNormalization, LayerNormalization + grads
void register_activation_ops(Registrar& reg);     // Relu ... HardSigmoid, Neg, ActivationGrad
void register_elementwise_ops(Registrar& reg);    // Add, Sub, Mul, Div, SumToShape
void register_softmax_ops(Registrar& reg);  // Softmax, LogSoftmax, SoftmaxCrossEntropyLoss + grads
void register_shape_ops(Registrar& reg);    // Reshape, Flatten, Transpose, Concat, Slice, SliceGrad
void register_reduce_ops(Registrar& reg);   // ReduceSum, ReduceMean, ReduceMax, ReduceGrad
void register_dropout_ops(Registrar& reg);  // Dropout, DropoutGrad
void register_gather_ops(Registrar& reg);   // Gather, GatherGrad
void register_optimizer_ops(Registrar& reg);  // AdamUpdate, SGDUpdate
void register_integer_ops(Registrar& reg);  // MatMulInteger, ConvInteger (integer_ops.cpp)

}  // namespace dsk::ops
