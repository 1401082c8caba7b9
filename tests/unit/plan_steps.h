// Hand-built plan steps for the tests of the fusion passes (fusion_pass.h).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "graph.h"

namespace dsk::kernel::test {

inline const dsk_op_schema kFakeSchema{};  // only its address is used: the passes never call it

inline Node node(const std::string& op, std::vector<dsk_value_id> inputs, std::vector<dsk_value_id> outputs) {
    Node n;
    n.op = op;
    n.inputs = std::move(inputs);
    n.outputs = std::move(outputs);
    return n;
}

}  // namespace dsk::kernel::test
