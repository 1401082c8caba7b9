// dsk_window.hpp - the sliding-window arithmetic that Conv and pooling kernels share, for every
// backend: kernel size, strides, pads (top, left, bottom, right), dilations, and the output size
// they give (docs/ops.md). Header-only, over dsk::Attrs (dsk_op.hpp).
#ifndef DSK_WINDOW_HPP_
#define DSK_WINDOW_HPP_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "dsk/dsk_op.hpp"

namespace dsk {

struct Window2d {
    int64_t in_h = 0, in_w = 0;
    int64_t kernel_h = 1, kernel_w = 1;
    int64_t stride_h = 1, stride_w = 1;
    int64_t dilation_h = 1, dilation_w = 1;
    int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
    int64_t out_h = 0, out_w = 0;

    // Output columns [begin, end) whose input column ow*stride - pad_left + kw*dilation lies
    // inside the input (the same for rows with the _h members).
    void valid_columns(int64_t kw, int64_t* begin, int64_t* end) const {
        valid_range(in_w, out_w, stride_w, pad_left - kw * dilation_w, begin, end);
    }
    void valid_rows(int64_t kh, int64_t* begin, int64_t* end) const {
        valid_range(in_h, out_h, stride_h, pad_top - kh * dilation_h, begin, end);
    }

  private:
    // o in [0, out) with 0 <= o*stride - shift < in.
    static void valid_range(int64_t in, int64_t out, int64_t stride, int64_t shift, int64_t* begin, int64_t* end) {
        const int64_t lo = shift <= 0 ? 0 : (shift + stride - 1) / stride;
        const int64_t hi = in + shift <= 0 ? 0 : (in - 1 + shift) / stride + 1;
        *begin = std::min(lo, out);
        *end = std::max(*begin, std::min(hi, out));
    }
};

// Reads strides ([1, 1]), pads ([0, 0, 0, 0]) and, when `dilations_allowed`, dilations ([1, 1])
// from the node's attributes and computes the output size for an in_h x in_w input and a
// kernel_h x kernel_w kernel into *out. Returns "" on success, else what is wrong, naming the
// attribute (a wrong count, a non-positive stride or dilation, a negative pad, an empty output).
inline std::string read_window_2d(const Attrs& attrs, int64_t in_h, int64_t in_w, int64_t kernel_h, int64_t kernel_w,
                                  bool dilations_allowed, Window2d* out) {
    const std::vector<int64_t> strides = attrs.get_ints("strides", {1, 1});
    const std::vector<int64_t> pads = attrs.get_ints("pads", {0, 0, 0, 0});
    const std::vector<int64_t> dilations =
        dilations_allowed ? attrs.get_ints("dilations", {1, 1}) : std::vector<int64_t>{1, 1};
    if (strides.size() != 2 || strides[0] < 1 || strides[1] < 1)
        return "attribute 'strides' must be 2 positive values (height, width)";
    if (pads.size() != 4 || pads[0] < 0 || pads[1] < 0 || pads[2] < 0 || pads[3] < 0)
        return "attribute 'pads' must be 4 values >= 0 (top, left, bottom, right)";
    if (dilations.size() != 2 || dilations[0] < 1 || dilations[1] < 1)
        return "attribute 'dilations' must be 2 positive values";
    if (kernel_h < 1 || kernel_w < 1) return "the kernel must be at least 1 x 1";
    Window2d w;
    w.in_h = in_h;
    w.in_w = in_w;
    w.kernel_h = kernel_h;
    w.kernel_w = kernel_w;
    w.stride_h = strides[0];
    w.stride_w = strides[1];
    w.dilation_h = dilations[0];
    w.dilation_w = dilations[1];
    w.pad_top = pads[0];
    w.pad_left = pads[1];
    w.pad_bottom = pads[2];
    w.pad_right = pads[3];
    const int64_t span_h = w.dilation_h * (kernel_h - 1) + 1;
    const int64_t span_w = w.dilation_w * (kernel_w - 1) + 1;
    const int64_t padded_h = in_h + w.pad_top + w.pad_bottom;
    const int64_t padded_w = in_w + w.pad_left + w.pad_right;
    if (padded_h < span_h || padded_w < span_w)
        return "the window (" + std::to_string(span_h) + " x " + std::to_string(span_w) +
               ") is larger than the padded input (" + std::to_string(padded_h) + " x " + std::to_string(padded_w) + ")";
    w.out_h = (padded_h - span_h) / w.stride_h + 1;
    w.out_w = (padded_w - span_w) / w.stride_w + 1;
    *out = w;
    return {};
}

}  // namespace dsk

#endif  // DSK_WINDOW_HPP_
