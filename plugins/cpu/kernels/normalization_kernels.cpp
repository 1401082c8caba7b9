// normalization_kernels.cpp - BatchNormalization, LayerNormalization and their gradients.
//
// Statistics are computed two-pass (mean, then the mean of squared deviations), each row in
// fixed-order float lanes and rows added in double. BatchNormalization works channel by channel
// (channels split over the thread pool); LayerNormalization row by row, and the parameter
// gradients of LayerNormalizationGrad column by column over all rows. Each value is produced by
// one thread in a fixed order, so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernel_table.h"
#include "vector_math.h"

namespace dsk::cpu {
namespace {

constexpr int64_t kColumnBlock = 512;

//----------------------------------------------------------------------------------------------
// BatchNormalization
//----------------------------------------------------------------------------------------------

// X [N, C, spatial...]: channel c is `batch` runs of `spatial` contiguous values, `channels *
// spatial` apart.
struct ChannelLayout {
    int64_t batch, channels, spatial;
    int64_t count() const { return batch * spatial; }
    int64_t offset(int64_t n, int64_t c) const { return (n * channels + c) * spatial; }
};

ChannelLayout channel_layout(const KernelArgs& args, const dsk_tensor_desc& x) {
    if (x.ndim < 2)
        args.fail("X " + shape_text(shape_of(x)) + " must have at least 2 dimensions (N, C, ...)");
    ChannelLayout l{x.shape[0], x.shape[1], 1};
    for (uint32_t k = 2; k < x.ndim; ++k) l.spatial *= x.shape[k];
    return l;
}

void expect_channel_vector(const KernelArgs& args, const dsk_tensor_desc& t, int64_t channels,
                           const char* name) {
    if (numel(t) != channels)
        args.fail(std::string(name) + " " + shape_text(shape_of(t)) + " must have " +
                  std::to_string(channels) + " elements (one per channel)");
}

template <class Body>
void for_each_channel(const ChannelLayout& l, Body&& body) {
    // A few passes over the channel's values.
    const double count = static_cast<double>(l.count());
    parallel_for(static_cast<size_t>(l.channels), dsk::Work{4.0 * count, 12.0 * count},
                 [&](size_t b, size_t e) {
        for (size_t c = b; c < e; ++c) body(static_cast<int64_t>(c));
    });
}

void batch_norm(const KernelArgs& args) {
    const dsk_tensor_desc& x_desc = args.input(0);
    const ChannelLayout l = channel_layout(args, x_desc);
    const char* names[] = {"X", "scale", "B", "mean", "var"};
    for (size_t i = 1; i < 5; ++i) expect_channel_vector(args, args.input(i), l.channels, names[i]);
    args.expect_output_shape_of(0, x_desc);
    for (size_t i = 1; i < args.output_count(); ++i) {
        if (numel(args.output(i)) != l.channels)
            args.fail("output " + std::to_string(i) + " must have one value per channel");
    }
    const Attrs& attrs = args.attrs();
    const double epsilon = attrs.get_float("epsilon", 1e-5);
    const double momentum = attrs.get_float("momentum", 0.9);
    const bool training = attrs.get_int("training_mode", 0) != 0;

    const float* x = args.in(0);
    const float* scale = args.in(1);
    const float* bias = args.in(2);
    // The running statistics are updated in place in training mode (docs/ops.md).
    float* running_mean = const_cast<float*>(args.in(3));
    float* running_var = const_cast<float*>(args.in(4));
    float* y = args.out(0);
    float* saved_mean = args.has_output(1) ? args.out(1) : nullptr;
    float* saved_invstd = args.has_output(2) ? args.out(2) : nullptr;
    const int64_t count = l.count();
    if (training && count == 0) args.fail("training mode needs at least one value per channel");

    for_each_channel(l, [&](int64_t c) {
        double mean, var;
        if (training) {
            double sum = 0.0;
            for (int64_t n = 0; n < l.batch; ++n)
                sum += sum_fixed_order(x + l.offset(n, c), l.spatial);
            mean = sum / static_cast<double>(count);
            const float m = static_cast<float>(mean);
            double squares = 0.0;
            for (int64_t n = 0; n < l.batch; ++n) {
                const float* row = x + l.offset(n, c);
                squares += sum_fixed_order_of(l.spatial, [row, m](int64_t i) {
                    const float d = row[i] - m;
                    return d * d;
                });
            }
            var = squares / static_cast<double>(count);
            const double unbiased =
                count > 1 ? var * static_cast<double>(count) / static_cast<double>(count - 1) : var;
            running_mean[c] =
                static_cast<float>(running_mean[c] * momentum + mean * (1.0 - momentum));
            running_var[c] =
                static_cast<float>(running_var[c] * momentum + unbiased * (1.0 - momentum));
        } else {
            mean = running_mean[c];
            var = running_var[c];
        }
        const double invstd = 1.0 / std::sqrt(var + epsilon);
        // y = x * a + b with a = scale * invstd, b = B - mean * a.
        const float a = static_cast<float>(scale[c] * invstd);
        const float b = static_cast<float>(bias[c] - mean * scale[c] * invstd);
        for (int64_t n = 0; n < l.batch; ++n) {
            const float* in = x + l.offset(n, c);
            float* out = y + l.offset(n, c);
            for (int64_t i = 0; i < l.spatial; ++i) out[i] = in[i] * a + b;
        }
        if (saved_mean) saved_mean[c] = static_cast<float>(mean);
        if (saved_invstd) saved_invstd[c] = static_cast<float>(invstd);
    });
}

// dB = sum(dY), dscale = sum(dY * xhat); training: dX = scale * invstd / M * (M dY - dB - xhat
// dscale) (the batch statistics depend on X); eval: dX = dY * scale * invstd.
void batch_norm_grad(const KernelArgs& args) {
    const dsk_tensor_desc& x_desc = args.input(1);
    const ChannelLayout l = channel_layout(args, x_desc);
    if (shape_of(args.input(0)) != shape_of(x_desc)) args.fail("dY and X must have the same shape");
    const char* names[] = {"dY", "X", "scale", "saved_mean", "saved_invstd"};
    for (size_t i = 2; i < 5; ++i) expect_channel_vector(args, args.input(i), l.channels, names[i]);
    args.expect_output_shape_of(0, x_desc);
    for (size_t i = 1; i < args.output_count(); ++i)
        if (numel(args.output(i)) != l.channels)
            args.fail("output " + std::to_string(i) + " must have one value per channel");
    const bool training = args.attrs().get_int("training_mode", 0) != 0;

    const float* dy = args.in(0);
    const float* x = args.in(1);
    const float* scale = args.in(2);
    const float* mean = args.in(3);
    const float* invstd = args.in(4);
    float* dx = args.out(0);
    float* dscale = args.has_output(1) ? args.out(1) : nullptr;
    float* dbias = args.has_output(2) ? args.out(2) : nullptr;
    const int64_t count = l.count();

    for_each_channel(l, [&](int64_t c) {
        const float m = mean[c];
        const float s = invstd[c];
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int64_t n = 0; n < l.batch; ++n) {
            const float* g = dy + l.offset(n, c);
            const float* in = x + l.offset(n, c);
            sum_dy += sum_fixed_order(g, l.spatial);
            sum_dy_xhat +=
                sum_fixed_order_of(l.spatial, [g, in, m](int64_t i) { return g[i] * (in[i] - m); });
        }
        sum_dy_xhat *= s;
        if (dbias) dbias[c] = static_cast<float>(sum_dy);
        if (dscale) dscale[c] = static_cast<float>(sum_dy_xhat);
        const float k = scale[c] * s;
        if (!training || count == 0) {
            for (int64_t n = 0; n < l.batch; ++n) {
                const float* g = dy + l.offset(n, c);
                float* out = dx + l.offset(n, c);
                for (int64_t i = 0; i < l.spatial; ++i) out[i] = g[i] * k;
            }
            return;
        }
        // dX = k * (dY - mean(dY) - xhat * mean(dY * xhat)), xhat = (x - m) * s.
        const float mean_dy = static_cast<float>(sum_dy / static_cast<double>(count));
        const float mean_dy_xhat = static_cast<float>(sum_dy_xhat / static_cast<double>(count));
        for (int64_t n = 0; n < l.batch; ++n) {
            const float* g = dy + l.offset(n, c);
            const float* in = x + l.offset(n, c);
            float* out = dx + l.offset(n, c);
            for (int64_t i = 0; i < l.spatial; ++i)
                out[i] = k * (g[i] - mean_dy - (in[i] - m) * s * mean_dy_xhat);
        }
    });
}

//----------------------------------------------------------------------------------------------
// LayerNormalization
//----------------------------------------------------------------------------------------------

// X seen as [rows, width]: normalised over dims axis..end.
struct RowLayout {
    int64_t rows = 1, width = 1;
};

RowLayout row_layout(const KernelArgs& args, const dsk_tensor_desc& x) {
    const int64_t ndim = x.ndim;
    const int64_t axis = args.axis(args.attrs().get_int("axis", -1), ndim);
    RowLayout l;
    for (int64_t k = 0; k < ndim; ++k) (k < axis ? l.rows : l.width) *= x.shape[k];
    return l;
}

template <class Body>
void for_each_row(const RowLayout& l, Body&& body) {
    const double width = static_cast<double>(l.width);
    parallel_for(static_cast<size_t>(l.rows), dsk::Work{4.0 * width, 12.0 * width},
                 [&](size_t b, size_t e) {
        for (size_t r = b; r < e; ++r) body(static_cast<int64_t>(r));
    });
}

void layer_norm(const KernelArgs& args) {
    const dsk_tensor_desc& x_desc = args.input(0);
    const RowLayout l = row_layout(args, x_desc);
    if (numel(args.input(1)) != l.width)
        args.fail("scale must have the normalised dimensions' shape");
    if (args.has_input(2) && numel(args.input(2)) != l.width)
        args.fail("B must have the normalised dimensions' shape");
    args.expect_output_shape_of(0, x_desc);
    for (size_t i = 1; i < args.output_count(); ++i)
        if (numel(args.output(i)) != l.rows)
            args.fail("output " + std::to_string(i) + " must have one value per normalised row");
    const double epsilon = args.attrs().get_float("epsilon", 1e-5);
    const float* x = args.in(0);
    const float* scale = args.in(1);
    const float* bias = args.has_input(2) ? args.in(2) : nullptr;
    float* y = args.out(0);
    float* saved_mean = args.has_output(1) ? args.out(1) : nullptr;
    float* saved_invstd = args.has_output(2) ? args.out(2) : nullptr;
    if (l.width == 0) return;

    for_each_row(l, [&](int64_t r) {
        const float* in = x + r * l.width;
        float* out = y + r * l.width;
        const float mean = sum_fixed_order(in, l.width) / static_cast<float>(l.width);
        const float var = sum_fixed_order_of(l.width,
                                             [in, mean](int64_t i) {
                                                 const float d = in[i] - mean;
                                                 return d * d;
                                             }) /
                          static_cast<float>(l.width);
        const float invstd =
            static_cast<float>(1.0 / std::sqrt(static_cast<double>(var) + epsilon));
        if (bias) {
            for (int64_t i = 0; i < l.width; ++i)
                out[i] = (in[i] - mean) * invstd * scale[i] + bias[i];
        } else {
            for (int64_t i = 0; i < l.width; ++i) out[i] = (in[i] - mean) * invstd * scale[i];
        }
        if (saved_mean) saved_mean[r] = mean;
        if (saved_invstd) saved_invstd[r] = invstd;
    });
}

// Per row, with xhat = (x - mean) * invstd and g = dY * scale:
//   dX = invstd * (g - mean(g) - xhat * mean(g * xhat));
// over all rows: dscale = sum(dY * xhat), dB = sum(dY).
void layer_norm_grad(const KernelArgs& args) {
    const dsk_tensor_desc& x_desc = args.input(1);
    const RowLayout l = row_layout(args, x_desc);
    if (shape_of(args.input(0)) != shape_of(x_desc)) args.fail("dY and X must have the same shape");
    if (numel(args.input(2)) != l.width)
        args.fail("scale must have the normalised dimensions' shape");
    if (numel(args.input(3)) != l.rows || numel(args.input(4)) != l.rows)
        args.fail("saved_mean and saved_invstd must have one value per normalised row");
    args.expect_output_shape_of(0, x_desc);
    for (size_t i = 1; i < args.output_count(); ++i)
        if (numel(args.output(i)) != l.width) args.fail("dscale and dB must have scale's shape");

    const float* dy = args.in(0);
    const float* x = args.in(1);
    const float* scale = args.in(2);
    const float* mean = args.in(3);
    const float* invstd = args.in(4);
    float* dx = args.out(0);
    float* dscale = args.has_output(1) ? args.out(1) : nullptr;
    float* dbias = args.has_output(2) ? args.out(2) : nullptr;
    if (l.width == 0) return;

    for_each_row(l, [&](int64_t r) {
        const float* g = dy + r * l.width;
        const float* in = x + r * l.width;
        float* out = dx + r * l.width;
        const float m = mean[r];
        const float s = invstd[r];
        const float inv_width = 1.0f / static_cast<float>(l.width);
        const float mean_g =
            sum_fixed_order_of(l.width, [g, scale](int64_t i) { return g[i] * scale[i]; }) *
            inv_width;
        const float mean_gx = sum_fixed_order_of(l.width,
                                                 [g, scale, in, m, s](int64_t i) {
                                                     return g[i] * scale[i] * ((in[i] - m) * s);
                                                 }) *
                              inv_width;
        for (int64_t i = 0; i < l.width; ++i)
            out[i] = s * (g[i] * scale[i] - mean_g - (in[i] - m) * s * mean_gx);
    });

    if (!dscale && !dbias) return;
    // Column sums over all rows, in row order; blocks of columns split over the threads.
    const int64_t blocks = (l.width + kColumnBlock - 1) / kColumnBlock;
    const double block_values = static_cast<double>(l.rows * kColumnBlock);
    parallel_for(static_cast<size_t>(blocks), dsk::Work{2.0 * block_values, 8.0 * block_values},
                 [&](size_t b, size_t e) {
        double sum_dy[kColumnBlock], sum_dy_xhat[kColumnBlock];
        for (size_t block = b; block < e; ++block) {
            const int64_t j0 = static_cast<int64_t>(block) * kColumnBlock;
            const int64_t w = std::min(kColumnBlock, l.width - j0);
            std::fill(sum_dy, sum_dy + w, 0.0);
            std::fill(sum_dy_xhat, sum_dy_xhat + w, 0.0);
            for (int64_t r = 0; r < l.rows; ++r) {
                const float* g = dy + r * l.width + j0;
                const float* in = x + r * l.width + j0;
                const float m = mean[r];
                const float s = invstd[r];
                for (int64_t j = 0; j < w; ++j) {
                    sum_dy[j] += g[j];
                    sum_dy_xhat[j] += g[j] * ((in[j] - m) * s);
                }
            }
            for (int64_t j = 0; j < w; ++j) {
                if (dbias) dbias[j0 + j] = static_cast<float>(sum_dy[j]);
                if (dscale) dscale[j0 + j] = static_cast<float>(sum_dy_xhat[j]);
            }
        }
    });
}

const KernelDef kNormalizationKernels[] = {
    kernel("BatchNormalization", {F32, F32, F32, F32, F32}, {F32, F32, F32}, batch_norm) |
        optional_outputs_from(1),
    kernel("BatchNormalizationGrad", {F32, F32, F32, F32, F32}, {F32, F32, F32}, batch_norm_grad) |
        optional_outputs_from(1),
    kernel("LayerNormalization", {F32, F32, F32}, {F32, F32, F32}, layer_norm) |
        optional_inputs_from(2) | optional_outputs_from(1),
    kernel("LayerNormalizationGrad", {F32, F32, F32, F32, F32}, {F32, F32, F32}, layer_norm_grad) |
        optional_outputs_from(1),
};

}  // namespace

std::span<const KernelDef> normalization_kernels() {
    return kNormalizationKernels;
}

}  // namespace dsk::cpu
