// normalization_kernels.cpp - BatchNormalization (training: batch statistics and the in-place
// update of the running mean/var inputs; eval: running statistics) and BatchNormalizationGrad,
// one workgroup per channel (batch_norm.comp); LayerNormalization and its gradient, one
// workgroup per row (layer_norm.comp).
#include <algorithm>
#include <string>

#include "kernel_table.h"

namespace dsk::vulkan {
namespace {

struct ChannelLayout {
    int64_t batch = 1, channels = 1, spatial = 1;
};

ChannelLayout channel_layout(const KernelArgs& args, const dsk_tensor_desc& x) {
    if (x.ndim < 2) args.fail("X " + shape_text(shape_of(x)) + " must have at least 2 dimensions (N, C, ...)");
    ChannelLayout l{x.shape[0], x.shape[1], 1};
    for (uint32_t d = 2; d < x.ndim; ++d) l.spatial *= x.shape[d];
    return l;
}

void expect_per_channel(const KernelArgs& args, const dsk_tensor_desc& t, int64_t channels, const char* name) {
    if (t.ndim != 1 || t.shape[0] != channels)
        args.fail(std::string(name) + " " + shape_text(shape_of(t)) + " must have shape [" + std::to_string(channels) + "]");
}

// bindings 6 and 7: outputs 1 and 2 when present, else a placeholder that is not written.
void record_batch_norm(const KernelArgs& args, int32_t mode, const ChannelLayout& l, bool training) {
    const dsk_tensor_desc& first_out = args.output(0);
    const dsk_tensor_desc& out1 = args.has_output(1) ? args.output(1) : first_out;
    const dsk_tensor_desc& out2 = args.has_output(2) ? args.output(2) : first_out;
    const uint32_t params[] = {
        u32(args, l.batch, "N"), u32(args, l.channels, "C"), u32(args, l.spatial, "spatial size"),
        float_bits(static_cast<float>(args.attrs().get_float("epsilon", 1e-5))),
        float_bits(static_cast<float>(args.attrs().get_float("momentum", 0.9))),
        training ? 1u : 0u, args.has_output(1) ? 1u : 0u, args.has_output(2) ? 1u : 0u,
    };
    if (l.channels == 0) return;
    args.dispatch("batch_norm",
                  {&args.input(0), &args.input(1), &args.input(2), &args.input(3), &args.input(4), &first_out,
                   &out1, &out2},
                  {mode}, params, u32(args, l.channels, "channels"));
}

void batch_norm(const KernelArgs& args) {
    const ChannelLayout l = channel_layout(args, args.input(0));
    const char* names[] = {"X", "scale", "B", "mean", "var"};
    for (size_t i = 1; i < 5; ++i) expect_per_channel(args, args.input(i), l.channels, names[i]);
    args.expect_output_shape(0, shape_of(args.input(0)));
    for (size_t i = 1; i < args.output_count(); ++i)
        if (numel(args.output(i)) != l.channels) args.fail("output " + std::to_string(i) + " must have one value per channel");
    const bool training = args.attrs().get_int("training_mode", 0) != 0;
    if (training && l.batch * l.spatial == 0) args.fail("training mode needs at least one value per channel");
    record_batch_norm(args, 0, l, training);
}

void batch_norm_grad(const KernelArgs& args) {
    const ChannelLayout l = channel_layout(args, args.input(1));
    if (shape_of(args.input(0)) != shape_of(args.input(1))) args.fail("dY and X must have the same shape");
    const char* names[] = {"dY", "X", "scale", "saved_mean", "saved_invstd"};
    for (size_t i = 2; i < 5; ++i) expect_per_channel(args, args.input(i), l.channels, names[i]);
    args.expect_output_shape(0, shape_of(args.input(1)));
    for (size_t i = 1; i < args.output_count(); ++i)
        if (numel(args.output(i)) != l.channels) args.fail("output " + std::to_string(i) + " must have one value per channel");
    record_batch_norm(args, 1, l, args.attrs().get_int("training_mode", 0) != 0);
}

// X viewed as [rows, width] around `axis` (normalised over dims axis..end).
struct RowLayout {
    int64_t rows = 1, width = 1;
};

RowLayout row_layout(const KernelArgs& args, const dsk_tensor_desc& x) {
    const int64_t axis = args.axis(args.attrs().get_int("axis", -1), x.ndim);
    RowLayout l;
    for (int64_t k = 0; k < static_cast<int64_t>(x.ndim); ++k) (k < axis ? l.rows : l.width) *= x.shape[k];
    return l;
}

// `groups` workgroups, spread over x and y (layer_norm.comp linearises them).
void dispatch_groups(const KernelArgs& args, int32_t mode, std::initializer_list<const dsk_tensor_desc*> bindings,
                     std::span<const uint32_t> params, int64_t groups) {
    if (groups == 0) return;
    const int64_t max_x = args.device().physical().properties.limits.maxComputeWorkGroupCount[0];
    const int64_t x = std::min(groups, max_x);
    args.dispatch("layer_norm", bindings, {mode}, params, u32(args, x, "workgroups"),
                  u32(args, (groups + x - 1) / x, "workgroups"));
}

void layer_norm(const KernelArgs& args) {
    const dsk_tensor_desc& x = args.input(0);
    const RowLayout l = row_layout(args, x);
    if (numel(args.input(1)) != l.width) args.fail("scale must have the normalised dimensions' shape");
    if (args.has_input(2) && numel(args.input(2)) != l.width) args.fail("B must have the normalised dimensions' shape");
    args.expect_output_shape(0, shape_of(x));
    for (size_t i = 1; i < args.output_count(); ++i)
        if (numel(args.output(i)) != l.rows)
            args.fail("output " + std::to_string(i) + " must have one value per normalised row");
    if (l.width == 0) return;
    const dsk_tensor_desc& y = args.output(0);
    const uint32_t params[] = {u32(args, l.rows, "rows"), u32(args, l.width, "width"),
                               float_bits(static_cast<float>(args.attrs().get_float("epsilon", 1e-5))),
                               args.has_input(2) ? 1u : 0u, args.has_output(1) ? 1u : 0u,
                               args.has_output(2) ? 1u : 0u};
    dispatch_groups(args, 0,
                    {&x, &args.input(1), args.has_input(2) ? &args.input(2) : &x, &y,
                     args.has_output(1) ? &args.output(1) : &y, args.has_output(2) ? &args.output(2) : &y},
                    params, l.rows);
}

void layer_norm_grad(const KernelArgs& args) {
    const dsk_tensor_desc& dy = args.input(0);
    const dsk_tensor_desc& x = args.input(1);
    const RowLayout l = row_layout(args, x);
    if (shape_of(dy) != shape_of(x)) args.fail("dY and X must have the same shape");
    if (numel(args.input(2)) != l.width) args.fail("scale must have the normalised dimensions' shape");
    if (numel(args.input(3)) != l.rows || numel(args.input(4)) != l.rows)
        args.fail("saved_mean and saved_invstd must have one value per normalised row");
    args.expect_output_shape(0, shape_of(x));
    for (size_t i = 1; i < args.output_count(); ++i)
        if (numel(args.output(i)) != l.width) args.fail("dscale and dB must have scale's shape");
    if (l.width == 0) return;
    const dsk_tensor_desc& dx = args.output(0);
    const uint32_t params[] = {u32(args, l.rows, "rows"), u32(args, l.width, "width"), 0,
                               0, args.has_output(1) ? 1u : 0u, args.has_output(2) ? 1u : 0u};
    dispatch_groups(args, 1, {&dy, &x, &args.input(2), &args.input(3), &args.input(4), &dx}, params, l.rows);
    if (!args.has_output(1) && !args.has_output(2)) return;
    dispatch_groups(args, 2,
                    {&dy, &x, &args.input(3), &args.input(4), args.has_output(1) ? &args.output(1) : &dx,
                     args.has_output(2) ? &args.output(2) : &dx},
                    params, (l.width + 63) / 64);
}

const KernelDef kNormalizationKernels[] = {
    {"BatchNormalization", 5, 5, 1, 3, {F32, F32, F32, F32, F32}, {F32, F32, F32}, batch_norm},
    {"BatchNormalizationGrad", 5, 5, 1, 3, {F32, F32, F32, F32, F32}, {F32, F32, F32}, batch_norm_grad},
    {"LayerNormalization", 2, 3, 1, 3, {F32, F32, F32}, {F32, F32, F32}, layer_norm},
    {"LayerNormalizationGrad", 5, 5, 1, 3, {F32, F32, F32, F32, F32}, {F32, F32, F32}, layer_norm_grad},
};

}  // namespace

std::span<const KernelDef> normalization_kernels() { return kNormalizationKernels; }

}  // namespace dsk::vulkan
