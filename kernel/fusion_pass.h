// Fusion on an execution plan: a Gemm or Conv whose result feeds an activation becomes one
// FusedGemm / FusedConv node (ONNX Runtime's com.microsoft FusedGemm / FusedConv), which a
// backend computes with the activation as the epilogue of the product, in one pass over the
// output; in training, a MaxPoolGrad followed by the ActivationGrad of the Relu before the pool
// becomes one MaxPoolReluGrad, and a conv's bias gradient joins its ConvGradWeight; chains and
// trees of elementwise ops become one FusedElementwise node
// (elementwise_fusion.cpp). Softmax + cross-entropy needs no pass: it is one op
// (SoftmaxCrossEntropyLoss) already.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "graph.h"

namespace dsk::kernel {

struct FusableStep {
    Node node;
    uint32_t origin = 0;                // the graph node it came from
    std::vector<uint32_t> fused_from;   // graph nodes it replaces (empty: not fused)
    uint32_t device = 0;
};

// How many input slots read each value, how many distinct steps read it, and which step writes
// it (-1: none).
struct StepIndex {
    std::vector<uint32_t> readers;
    std::vector<uint32_t> reading_steps;
    std::vector<int32_t> producer;
    StepIndex(const std::vector<FusableStep>& steps, size_t value_count);
};

// Keeps the steps not `removed`, in order, with their views refreshed.
void drop_removed(std::vector<FusableStep>& steps, const std::vector<bool>& removed);

// Rewrites `steps` in place. `observable[v]`: the value must stay computed (a run target, a
// variable). `fused_schema(op)`: the schema of "FusedGemm" / "FusedConv", or null when no
// loaded plugin defines it (nothing is fused then). `accept(node, device)`: the device has a
// kernel for the fused node and takes it (supports_op). Returns a line per fusion, for reports.
// `place(node, device)`: the device that runs the node, `device` itself when it can, else one
// that shares its memory; -1 when none can.
std::vector<std::string> fuse_activations(std::vector<FusableStep>& steps, const std::vector<Value>& values,
                                          const std::vector<bool>& observable,
                                          const std::function<const dsk_op_schema*(const std::string&)>& fused_schema,
                                          const std::function<int32_t(const Node&, uint32_t)>& place);

// Inference: two or more Gemm / FusedGemm nodes in a row, each one's only output read by nothing
// but the next one's A, become one FusedGemmChain (the backend may then run the layers without
// handing each result over between its threads: plugins/cpu, gemm_chain_kernels.cpp). Each layer
// must be a plain dense layer: transA 0, alpha and beta 1, a bias C of shape [N] or [1, N], and
// an activation without attributes (not HardSigmoid). No step between the chain's first and last
// may read its inputs (one could write them in place before the chain, now later, reads them).
// The chain takes the place of its last step, where its device (`place`) must take it. Run after
// fuse_activations; same arguments; returns a line per chain.
std::vector<std::string> fuse_gemm_chains(std::vector<FusableStep>& steps, const std::vector<Value>& values,
                                          const std::vector<bool>& observable,
                                          const std::function<const dsk_op_schema*(const std::string&)>& schema_of,
                                          const std::function<int32_t(const Node&, uint32_t)>& place);

// Inference: a Conv or FusedConv with one output (no Z kept) whose only reader is a MaxPool with a
// 2x2 window at stride 2, no padding, dilation or ceil_mode and no Indices becomes one
// FusedConvMaxPool: the backend pools each block of the conv's planes while it is in cache, and
// the full-size Y is never written. (In training the pool's gradient reads Y too, so nothing is
// fused.) Run after fuse_activations; same arguments; returns a line per fusion.
std::vector<std::string> fuse_conv_max_pools(std::vector<FusableStep>& steps, const std::vector<Value>& values,
                                             const std::vector<bool>& observable,
                                             const std::function<const dsk_op_schema*(const std::string&)>& schema_of,
                                             const std::function<int32_t(const Node&, uint32_t)>& place);

// Training: MaxPoolGrad(dY, X) whose result only an ActivationGrad[Relu](., X) of the same X
// reads (X is then the Relu's output: a Relu's gradient reads its output, plugins/ops) becomes
// one MaxPoolReluGrad(dY, X), in one pass over X instead of two. Same arguments as
// fuse_activations; returns a line per fusion.
std::vector<std::string> fuse_pool_relu_grads(std::vector<FusableStep>& steps, const std::vector<Value>& values,
                                              const std::vector<bool>& observable,
                                              const std::function<const dsk_op_schema*(const std::string&)>& schema_of,
                                              const std::function<int32_t(const Node&, uint32_t)>& place);

// Training: ReduceSum(dY, axes [0, 2, 3], keepdims 0), a Conv's bias gradient, becomes the
// second output (dB) of the ConvGradWeight that reads the same dY, when that one comes before
// every reader of dB and its device takes the two-output node: dY is then read once, not twice.
// `place` as for fuse_activations. Returns a line per fusion.
std::vector<std::string> fuse_conv_bias_grads(std::vector<FusableStep>& steps,
                                              const std::function<int32_t(const Node&, uint32_t)>& place);

// Inference: a Conv whose only reader is a BatchNormalization in inference mode (training_mode
// 0, its statistics outputs unread) becomes FoldConvBatchNorm (W' and B' from the conv's weights
// and the normalization's parameters, recomputed each run, since they are variables that may be
// written between runs) and a Conv on W', B' that writes the normalization's output; the
// BatchNormalization goes (ONNX Runtime's ConvBNFusion, done here without constant weights).
// `add_value(desc)` adds a value to the graph for W' and B'. Run it before fuse_activations, so
// that the Conv then takes the activation too. Returns a line per fold.
std::vector<std::string> fold_batch_norms(std::vector<FusableStep>& steps, const std::vector<Value>& values,
                                          const std::vector<bool>& observable,
                                          const std::function<const dsk_op_schema*(const std::string&)>& schema_of,
                                          const std::function<int32_t(const Node&, uint32_t)>& place,
                                          const std::function<dsk_value_id(const dsk_tensor_desc&)>& add_value);

// Maximal chains and trees of elementwise ops (Add, Sub, Mul, Div, the activations, Neg,
// ActivationGrad: dsk/dsk_elementwise_program.hpp) become one FusedElementwise node whose
// program computes them in one pass over the output. A value joins its reader's group only when
// nothing else reads it (one reading step, not observable), it has the group's output shape and
// dtype, and its step runs on a device that shares memory with the group's (`shares_memory`);
// a step that reads a variable is not moved past another reader of that variable (which may
// update it in place). The fused node takes the place of the group's last step, on
// `place(fused, device of that step)`; a group that no device accepts stays unfused. Run after
// fuse_activations. `schema_of("FusedElementwise")` null: nothing is fused. Returns a line per
// fusion.
std::vector<std::string> fuse_elementwise(std::vector<FusableStep>& steps, const std::vector<Value>& values,
                                          const std::vector<bool>& observable,
                                          const std::function<const dsk_op_schema*(const std::string&)>& schema_of,
                                          const std::function<int32_t(const Node&, uint32_t)>& place,
                                          const std::function<bool(uint32_t, uint32_t)>& shares_memory);

}  // namespace dsk::kernel
