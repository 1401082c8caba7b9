// Shape arithmetic shared by the op families (see shape_inference.h).
#include "shape_inference.h"

#include <algorithm>

namespace dsk::ops {

void invalid(const char* op, const std::string& message) {
    throw Error(DSK_INVALID_ARGUMENT, std::string(op) + ": " + message);
}

int64_t element_count(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

//==============================================================================================
// Broadcasting
//==============================================================================================

Shape broadcast_shapes(const char* op, const Shape& a, const char* a_name, const Shape& b,
                       const char* b_name) {
    const size_t rank = std::max(a.size(), b.size());
    Shape out(rank);
    for (size_t k = 0; k < rank; ++k) {
        // k counts from the right: dims are aligned on the trailing end.
        const int64_t da = k < a.size() ? a[a.size() - 1 - k] : 1;
        const int64_t db = k < b.size() ? b[b.size() - 1 - k] : 1;
        if (da != db && da != 1 && db != 1)
            invalid(op, std::string("cannot broadcast ") + a_name + " " + shape_text(a) + " with " +
                            b_name + " " + shape_text(b) + ": dimension " +
                            std::to_string(-static_cast<int64_t>(k) - 1) + " is " +
                            std::to_string(da) + " vs " + std::to_string(db) +
                            " (sizes must match or be 1)");
        out[rank - 1 - k] = da == 1 ? db : da;
    }
    return out;
}

bool broadcasts_to(const Shape& from, const Shape& to) {
    if (from.size() > to.size()) return false;
    for (size_t k = 0; k < from.size(); ++k) {
        const int64_t f = from[from.size() - 1 - k];
        const int64_t t = to[to.size() - 1 - k];
        if (f != t && f != 1) return false;
    }
    return true;
}

//==============================================================================================
// Axes and reductions
//==============================================================================================

size_t normalize_axis(const char* op, const char* attr, int64_t axis, size_t rank,
                      bool inclusive_end) {
    const int64_t r = static_cast<int64_t>(rank);
    const int64_t high = inclusive_end ? r : r - 1;
    if (axis < -r || axis > high)
        invalid(op, std::string(attr) + " = " + std::to_string(axis) +
                        " is out of range for rank " + std::to_string(rank) +
                        " (valid: " + std::to_string(-r) + " to " + std::to_string(high) + ")");
    return static_cast<size_t>(axis < 0 ? axis + r : axis);
}

std::vector<size_t> normalize_axes(const char* op, const char* attr,
                                   const std::vector<int64_t>& axes, size_t rank) {
    std::vector<size_t> out;
    for (int64_t axis : axes) {
        const size_t a = normalize_axis(op, attr, axis, rank);
        if (std::find(out.begin(), out.end(), a) != out.end())
            invalid(op, std::string(attr) + " " + shape_text(axes) + " names axis " +
                            std::to_string(a) + " twice");
        out.push_back(a);
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<size_t> reduction_axes(const char* op, const Attrs& attrs, size_t rank) {
    const std::vector<int64_t> given = attrs.get_ints("axes", {});
    if (given.empty()) {
        std::vector<size_t> all(rank);
        for (size_t k = 0; k < rank; ++k) all[k] = k;
        return all;
    }
    return normalize_axes(op, "axes", given, rank);
}

Shape reduce_shape(const Shape& x, const std::vector<size_t>& axes, bool keepdims) {
    Shape out;
    for (size_t k = 0; k < x.size(); ++k) {
        const bool reduced = std::find(axes.begin(), axes.end(), k) != axes.end();
        if (!reduced)
            out.push_back(x[k]);
        else if (keepdims)
            out.push_back(1);
    }
    return out;
}

//==============================================================================================
// 2-D windows
//==============================================================================================

namespace {

std::vector<int64_t> ints_of_length(const char* op, const Attrs& attrs, const char* name,
                                    std::vector<int64_t> fallback, int64_t min_value) {
    const size_t length = fallback.size();
    std::vector<int64_t> values = attrs.get_ints(name, std::move(fallback));
    if (values.size() != length)
        invalid(op, std::string(name) + " must have " + std::to_string(length) + " values, got " +
                        shape_text(values));
    for (int64_t v : values)
        if (v < min_value)
            invalid(op, std::string(name) + " " + shape_text(values) +
                            ": every value must be >= " + std::to_string(min_value));
    return values;
}

}  // namespace

Window2d read_window(const char* op, const Attrs& attrs, int64_t kh, int64_t kw,
                     bool with_dilations) {
    Window2d w{};
    if (kh < 1 || kw < 1)
        invalid(op, "the kernel must be at least 1x1, got " + std::to_string(kh) + "x" +
                        std::to_string(kw));
    w.kernel[0] = kh;
    w.kernel[1] = kw;
    const auto strides = ints_of_length(op, attrs, "strides", {1, 1}, 1);
    const auto pads = ints_of_length(op, attrs, "pads", {0, 0, 0, 0}, 0);
    const auto dilations = with_dilations ? ints_of_length(op, attrs, "dilations", {1, 1}, 1)
                                          : std::vector<int64_t>{1, 1};
    for (int k = 0; k < 2; ++k) {
        w.strides[k] = strides[k];
        w.dilations[k] = dilations[k];
    }
    for (int k = 0; k < 4; ++k) w.pads[k] = pads[k];
    return w;
}

std::vector<int64_t> window_output_hw(const char* op, int64_t h, int64_t w,
                                      const Window2d& window) {
    const int64_t in[2] = {h, w};
    std::vector<int64_t> out(2);
    for (int k = 0; k < 2; ++k) {
        const int64_t padded = in[k] + window.pads[k] + window.pads[k + 2];
        const int64_t extent = window.dilations[k] * (window.kernel[k] - 1) + 1;
        if (extent > padded)
            invalid(op,
                    "the " + std::string(k == 0 ? "kernel height" : "kernel width") + " " +
                        std::to_string(window.kernel[k]) +
                        (window.dilations[k] > 1 ? " (dilated to " + std::to_string(extent) + ")"
                                                 : std::string()) +
                        " is larger than the padded input " +
                        std::string(k == 0 ? "height" : "width") + " " + std::to_string(padded) +
                        " (" + std::to_string(in[k]) + " + pads " + std::to_string(window.pads[k]) +
                        " + " + std::to_string(window.pads[k + 2]) + ")");
        out[k] = (padded - extent) / window.strides[k] + 1;
    }
    return out;
}

}  // namespace dsk::ops
