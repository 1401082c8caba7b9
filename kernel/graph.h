// struct dsk_graph: the static graph IR that stages and models build through the host table.
// Values are numbered in creation order and every node only reads values created before it, so
// creation order is a topological order. Shapes are inferred by the op schemas as nodes are
// added; reverse-mode autodiff appends the gradient nodes that the schemas' rules emit.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dsk/dsk_plugin.h"
#include "registry.h"

struct dsk_kernel;

namespace dsk::kernel {

enum class ValueKind { Input, Variable, Constant, NodeOutput };

struct Value {
    ValueKind kind = ValueKind::NodeOutput;
    dsk_tensor_desc desc{};  // dtype, ndim, shape, contiguous strides; no storage
    std::string name;        // inputs and variables
    uint32_t flags = 0;      // DSK_VARIABLE_TRAINABLE
    std::string init;        // variables: "zeros", "ones", "uniform", "normal"
    double scale = 0;
    std::vector<uint8_t> constant;  // constants: the bytes
    uint32_t producer = UINT32_MAX;  // node index for NodeOutput
};

// An attribute with owned storage, viewable as a dsk_attr.
struct OwnedAttr {
    std::string name, s;
    uint32_t type = 0;
    int64_t i = 0;
    double f = 0;
    std::vector<int64_t> ints;
    std::vector<double> floats;
};

struct Node {
    std::string op, domain;
    const dsk_op_schema* schema = nullptr;
    std::vector<OwnedAttr> attrs;
    std::vector<dsk_value_id> inputs, outputs;
    uint32_t op_version = 1;

    // C views, valid while the node is not modified (rebuilt by refresh_views()).
    std::vector<dsk_attr> attr_views;
    dsk_node_view view{};
    std::vector<uint32_t> input_ids, output_ids;  // positions 0..n in the tensors array passed
    void refresh_views();
};

// The schema of "op" or "domain.op", loading the plugin that provides it; NOT_FOUND with a
// did-you-mean otherwise.
const Provided<dsk_op_schema>& find_op_schema(dsk_kernel& kernel, const std::string& op_name);
// INVALID_ARGUMENT unless the counts are within the schema's.
void check_arity(const dsk_op_schema& schema, const std::string& op_name, size_t input_count, size_t output_count);

// Shape inference for one node: builds the inputs-then-outputs tensor array from `values` and
// asks the schema; throws Error naming the op when it refuses.
void infer_node_shapes(const Node& node, std::vector<Value>& values);

}  // namespace dsk::kernel

struct dsk_graph {
    dsk_kernel* kernel;
    std::vector<dsk::kernel::Value> values;
    std::vector<dsk::kernel::Node> nodes;

    dsk_value_id add_value(dsk::kernel::Value v);
    // Adds a node; looks its schema up (loading the plugin that provides it), checks input
    // counts and ids, and infers output shapes. Returns the output ids.
    std::vector<dsk_value_id> add_node(const std::string& op, const dsk_attr* attrs, size_t attr_count,
                                       const dsk_value_id* inputs, size_t input_count, size_t output_count);
    // Appends the gradient nodes of a scalar `loss` with respect to `wrt`.
    std::vector<dsk_value_id> gradients(dsk_value_id loss, const std::vector<dsk_value_id>& wrt);
    const dsk::kernel::Value& value(dsk_value_id id) const;
};

namespace dsk::kernel {
// The host table's graph_* members.
void fill_graph_api(dsk_host_api& api);
}  // namespace dsk::kernel
