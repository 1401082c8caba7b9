// shape_inference.h - shape arithmetic shared by several op families: broadcasting, axes,
// reductions and 2-D sliding windows (Conv, pools). Pure functions of shapes and attributes;
// every failure is dsk::Error(INVALID_ARGUMENT) with "<op>: " in front.
#pragma once

#include <cstdint>
#include <dsk/dsk_op.hpp>
#include <string>
#include <vector>

namespace dsk::ops {

using Shape = std::vector<int64_t>;

[[noreturn]] void invalid(const char* op, const std::string& message);

int64_t element_count(const Shape& shape);

// numpy broadcasting of `a` and `b`, named `a_name` and `b_name` in the message.
Shape broadcast_shapes(const char* op, const Shape& a, const char* a_name, const Shape& b,
                       const char* b_name);
// True when `from` stretches to `to` (aligned on the right, each dim equal or 1) without
// changing `to`: ONNX unidirectional broadcasting, and what SumToShape can undo.
bool broadcasts_to(const Shape& from, const Shape& to);

// `axis` of attribute `attr` in [-rank, rank) (or [-rank, rank] with `inclusive_end`), as an
// index from the front.
size_t normalize_axis(const char* op, const char* attr, int64_t axis, size_t rank,
                      bool inclusive_end = false);
// Distinct axes in [-rank, rank), as sorted indices from the front.
std::vector<size_t> normalize_axes(const char* op, const char* attr,
                                   const std::vector<int64_t>& axes, size_t rank);

// The reduced axes of a Reduce* node: its `axes` attribute (absent or empty: all), normalized.
std::vector<size_t> reduction_axes(const char* op, const Attrs& attrs, size_t rank);
// `x` with `axes` set to 1 (keepdims) or removed.
Shape reduce_shape(const Shape& x, const std::vector<size_t>& axes, bool keepdims);

// A 2-D window sliding over [H, W] (Conv, MaxPool, AveragePool).
struct Window2d {
    int64_t kernel[2];
    int64_t strides[2];
    int64_t dilations[2];
    int64_t pads[4];  // top, left, bottom, right
};

// Reads `strides` ([1, 1]), `pads` ([0, 0, 0, 0]) and, when `with_dilations`, `dilations`
// ([1, 1]) around a kernel of kh x kw; checks their lengths and signs.
Window2d read_window(const char* op, const Attrs& attrs, int64_t kh, int64_t kw,
                     bool with_dilations);
// [oH, oW] for an input of h x w: o = (i + pad_begin + pad_end - d*(k-1) - 1) / s + 1.
// INVALID_ARGUMENT when the (dilated) kernel does not fit in the padded input.
std::vector<int64_t> window_output_hw(const char* op, int64_t h, int64_t w, const Window2d& window);

}  // namespace dsk::ops
