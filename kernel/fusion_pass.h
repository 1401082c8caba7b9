// Fusion on an execution plan: a Gemm or Conv whose result feeds an activation becomes one
// FusedGemm / FusedConv node (ONNX Runtime's com.microsoft FusedGemm / FusedConv), which a
// backend computes with the activation as the epilogue of the product, in one pass over the
// output. Softmax + cross-entropy needs no pass: it is one op (SoftmaxCrossEntropyLoss) already.
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

// Rewrites `steps` in place. `observable[v]`: the value must stay computed (a run target, a
// variable). `fused_schema(op)`: the schema of "FusedGemm" / "FusedConv", or null when no
// loaded plugin defines it (nothing is fused then). `accept(node, device)`: the device has a
// kernel for the fused node and takes it (supports_op). Returns a line per fusion, for reports.
std::vector<std::string> fuse_activations(std::vector<FusableStep>& steps, const std::vector<Value>& values,
                                          const std::vector<bool>& observable,
                                          const std::function<const dsk_op_schema*(const std::string&)>& fused_schema,
                                          const std::function<bool(const Node&, uint32_t)>& accept);

}  // namespace dsk::kernel
