// reference_ops.h - an independent float64 reference for every forward op of docs/ops.md.
//
// The conformance suite (conformance_tests.cpp) runs each op on a backend and compares what it
// gives with what these functions compute from the same inputs. They are written for clarity,
// not speed: a dense row-major tensor of doubles and plain nested loops, one function per op,
// following docs/ops.md (ONNX semantics) and sharing no code with the schemas or the kernels.
//
//     std::vector<ref::Tensor> inputs = {x, w};
//     std::vector<ref::Tensor> y = ref::run("Conv", inputs, {ref::Attr::ints("pads", {1, 1, 1, 1})});
//
// Integer inputs (labels, indices) are stored as doubles holding whole numbers; Dropout's u8
// mask comes back the same way (1 = kept).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include <dsk/dsk_plugin.h>

namespace dsk::conformance::ref {

using Shape = std::vector<int64_t>;

// A dense row-major tensor of doubles; shape {} is a scalar with one element.
struct Tensor {
    Shape shape;
    std::vector<double> data;

    Tensor() = default;
    explicit Tensor(Shape s, double fill = 0.0);
    Tensor(Shape s, std::vector<double> values);

    int64_t numel() const { return static_cast<int64_t>(data.size()); }
    size_t rank() const { return shape.size(); }
    // Row-major offset of a full multi-index.
    int64_t offset(const Shape& index) const;
    double& at(const Shape& index) { return data[static_cast<size_t>(offset(index))]; }
    double at(const Shape& index) const { return data[static_cast<size_t>(offset(index))]; }
    // The same for a literal index (`x.at({n, c, h, w})`), without building a Shape.
    int64_t offset(std::initializer_list<int64_t> index) const;
    double& at(std::initializer_list<int64_t> index) { return data[static_cast<size_t>(offset(index))]; }
    double at(std::initializer_list<int64_t> index) const { return data[static_cast<size_t>(offset(index))]; }
};

int64_t element_count(const Shape& shape);
// The multi-index of row-major position `flat` in `shape`.
Shape unravel(int64_t flat, const Shape& shape);
std::string shape_text(const Shape& shape);

// One attribute of a node, owning its storage; view() gives the dsk_attr that graph_add_node
// takes (valid while this Attr lives).
struct Attr {
    std::string name;
    uint32_t type = DSK_ATTR_INT;  // dsk_attr_type
    int64_t i = 0;
    double f = 0;
    std::string s;
    std::vector<int64_t> list;

    static Attr integer(const char* name, int64_t value);
    static Attr real(const char* name, double value);
    static Attr text(const char* name, const char* value);
    static Attr ints(const char* name, std::vector<int64_t> values);

    dsk_attr view() const;
    std::string to_string() const;  // "pads=[1, 1, 1, 1]"
};

using Attrs = std::vector<Attr>;

// The outputs of `op` (every output docs/ops.md lists, in order) for `inputs`. Inputs the op
// updates in place are updated here too: BatchNormalization with training_mode 1 writes the new
// running statistics into inputs[3] (mean) and inputs[4] (var). Throws std::invalid_argument for
// an op it does not know or inputs that do not fit.
std::vector<Tensor> run(const std::string& op, std::vector<Tensor>& inputs, const Attrs& attrs);

// The forward ops of docs/ops.md, i.e. every op run() knows.
const std::vector<std::string>& forward_ops();

}  // namespace dsk::conformance::ref
