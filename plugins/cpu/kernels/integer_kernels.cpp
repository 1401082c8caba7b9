// integer_kernels.cpp - MatMulInteger and ConvInteger (ONNX), the reference for quantized
// backends: u8/i8 inputs, optional zero points, exact i32 sums. Plain loops over whole numbers
// (rows / output planes split over the thread pool): exact, so results never depend on the order.
//
// Each loop states its work (dsk::Work), so a small product stays on the calling thread.
//
// Zero points: a_zero_point a scalar, [1] or [M] (per row of A); b_zero_point a scalar, [1] or [N]
// (per column of B); x_zero_point a scalar or [1]; w_zero_point a scalar, [1] or [M] (per output
// channel). ConvInteger's padding contributes nothing (a padded X reads as x_zero_point).
#include <cstdint>
#include <string>
#include <vector>

#include "kernel_table.h"
#include "window_geometry.h"

namespace dsk::cpu {
namespace {

constexpr uint32_t I8 = DSK_DTYPE_I8;
constexpr uint32_t I32 = DSK_DTYPE_I32;

bool is_8bit(uint32_t dtype) { return dtype == DSK_DTYPE_U8 || dtype == I8; }

// Element k of an u8 or i8 tensor, as an integer.
int32_t element(const dsk_tensor_desc& t, int64_t k) {
    return t.dtype == DSK_DTYPE_U8 ? static_cast<int32_t>(static_cast<const uint8_t*>(t.data)[k])
                                   : static_cast<int32_t>(static_cast<const int8_t*>(t.data)[k]);
}

// The zero points of input `i` (absent: zeros), one per index of an axis of `count` entries.
std::vector<int32_t> zero_points(const KernelArgs& args, size_t i, int64_t count, const char* name) {
    std::vector<int32_t> z(static_cast<size_t>(count), 0);
    if (!args.has_input(i)) return z;
    const dsk_tensor_desc& t = args.input(i);
    const int64_t n = numel(t);
    if (n != 1 && n != count)
        args.fail(std::string(name) + " " + shape_text(shape_of(t)) + " must have 1 or " +
                  std::to_string(count) + " values");
    for (int64_t k = 0; k < count; ++k) z[static_cast<size_t>(k)] = element(t, n == 1 ? 0 : k);
    return z;
}

void matmul_integer(const KernelArgs& args) {
    const dsk_tensor_desc& a = args.input(0);
    const dsk_tensor_desc& b = args.input(1);
    args.expect_rank(a, 2, "A");
    args.expect_rank(b, 2, "B");
    const int64_t m = a.shape[0], k = a.shape[1], n = b.shape[1];
    if (b.shape[0] != k)
        args.fail("A " + shape_text(shape_of(a)) + " and B " + shape_text(shape_of(b)) + " do not chain");
    args.expect_output_shape(0, {m, n});
    const std::vector<int32_t> za = zero_points(args, 2, m, "a_zero_point");
    const std::vector<int32_t> zb = zero_points(args, 3, n, "b_zero_point");
    int32_t* y = data_of<int32_t>(args.output(0));
    // A row: k * n multiply-adds, its k bytes of A, all of B, n sums written.
    const Work per_row{2.0 * static_cast<double>(k * n), static_cast<double>(k + k * n + 4 * n)};
    parallel_for(static_cast<size_t>(m), per_row, [&](size_t begin, size_t end) {
        std::vector<int32_t> row(static_cast<size_t>(k));
        for (int64_t i = static_cast<int64_t>(begin); i < static_cast<int64_t>(end); ++i) {
            for (int64_t p = 0; p < k; ++p) row[p] = element(a, i * k + p) - za[i];
            for (int64_t j = 0; j < n; ++j) {
                int32_t sum = 0;
                for (int64_t p = 0; p < k; ++p) sum += row[p] * (element(b, p * n + j) - zb[j]);
                y[i * n + j] = sum;
            }
        }
    });
}

void conv_integer(const KernelArgs& args) {
    const dsk_tensor_desc& x = args.input(0);
    const dsk_tensor_desc& w = args.input(1);
    args.expect_rank(x, 4, "X");
    args.expect_rank(w, 4, "W");
    const int64_t batch = x.shape[0], channels = x.shape[1], m = w.shape[0];
    const int64_t group = args.attrs().get_int("group", 1);
    if (group < 1 || channels % group != 0 || m % group != 0 || w.shape[1] * group != channels)
        args.fail("group " + std::to_string(group) + " does not fit X " + shape_text(shape_of(x)) +
                  " and W " + shape_text(shape_of(w)));
    const Window2d win = window_2d(args, x.shape[2], x.shape[3], w.shape[2], w.shape[3]);
    args.expect_output_shape(0, {batch, m, win.out_h, win.out_w});
    const std::vector<int32_t> zx = zero_points(args, 2, 1, "x_zero_point");
    const std::vector<int32_t> zw = zero_points(args, 3, m, "w_zero_point");
    const int64_t cg = channels / group, mg = m / group;
    const int64_t h = x.shape[2], wd = x.shape[3];
    int32_t* y = data_of<int32_t>(args.output(0));
    // One (image, output channel) plane per task: every output reads cg * kH * kW inputs.
    const double plane_outputs = static_cast<double>(win.out_h * win.out_w);
    const double taps = static_cast<double>(cg * w.shape[2] * w.shape[3]);
    const Work per_plane{2.0 * taps * plane_outputs, static_cast<double>(cg * h * wd) + taps + 4.0 * plane_outputs};
    parallel_for(static_cast<size_t>(batch * m), per_plane, [&](size_t begin, size_t end) {
        for (int64_t plane = static_cast<int64_t>(begin); plane < static_cast<int64_t>(end); ++plane) {
            const int64_t nn = plane / m, oc = plane % m, g = oc / mg;
            int32_t* out = y + plane * win.out_h * win.out_w;
            for (int64_t oh = 0; oh < win.out_h; ++oh)
                for (int64_t ow = 0; ow < win.out_w; ++ow) {
                    int32_t sum = 0;
                    for (int64_t c = 0; c < cg; ++c)
                        for (int64_t kh = 0; kh < w.shape[2]; ++kh) {
                            const int64_t ih = oh * win.stride_h - win.pad_top + kh * win.dilation_h;
                            if (ih < 0 || ih >= h) continue;  // padding: contributes nothing
                            for (int64_t kw = 0; kw < w.shape[3]; ++kw) {
                                const int64_t iw = ow * win.stride_w - win.pad_left + kw * win.dilation_w;
                                if (iw < 0 || iw >= wd) continue;
                                const int32_t xv =
                                    element(x, ((nn * channels + g * cg + c) * h + ih) * wd + iw) - zx[0];
                                const int32_t wv =
                                    element(w, ((oc * cg + c) * w.shape[2] + kh) * w.shape[3] + kw) - zw[oc];
                                sum += xv * wv;
                            }
                        }
                    out[oh * win.out_w + ow] = sum;
                }
        }
    });
}

// A and B (X and W) are u8 or i8; each zero point has the dtype of its tensor.
bool integer_inputs(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    if (!is_8bit(tensors[0].dtype) || !is_8bit(tensors[1].dtype)) return false;
    for (size_t i = 2; i < node->input_count; ++i)
        if (tensors[i].dtype != tensors[i - 2].dtype) return false;
    return true;
}

const KernelDef kIntegerKernels[] = {
    kernel("MatMulInteger", {ANY, ANY, ANY, ANY}, {I32}, matmul_integer, integer_inputs) |
        optional_inputs_from(2),
    kernel("ConvInteger", {ANY, ANY, ANY, ANY}, {I32}, conv_integer, integer_inputs) |
        optional_inputs_from(2),
};

}  // namespace

std::span<const KernelDef> integer_kernels() { return kIntegerKernels; }

}  // namespace dsk::cpu
