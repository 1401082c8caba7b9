// normalization_kernels.cpp - BatchNormalization (inference and training, with the running
// statistics update of docs/ops.md) and BatchNormalizationGrad on oneDNN's batch normalization
// primitives. X [N, C, ...] of rank above 5 is seen as [N, C, spatial] (the same memory).
// LayerNormalization stays on cpu.
#include <cmath>
#include <string>
#include <vector>

#include "dnnl_tensors.h"
#include "kernels/onednn_kernel_table.h"
#include "primitive_cache.h"

namespace dsk::onednn {
namespace {

using Flags = dnnl::normalization_flags;

struct ChannelShape {
    int64_t batch, channels, spatial;
    Dims dims;  // X's own dims up to 5-D (oneDNN's limit for batch norm), else [N, C, spatial]
    int64_t count() const { return batch * spatial; }
    memory::desc data() const { return plain(dims); }
    memory::desc vector() const { return plain({channels}); }
};

ChannelShape channel_shape(const KernelArgs& args, const dsk_tensor_desc& x) {
    if (x.ndim < 2)
        args.fail("X " + shape_text(shape_of(x)) + " must have at least 2 dimensions (N, C, ...)");
    ChannelShape s{x.shape[0], x.shape[1], 1, {}};
    for (uint32_t k = 2; k < x.ndim; ++k) s.spatial *= x.shape[k];
    // The flat [N, C, spatial] view is the same memory, but oneDNN's optimised implementations
    // take NCHW and NCDHW, not a 3-D view of them.
    s.dims = x.ndim <= 5 ? dims_of(x) : Dims{s.batch, s.channels, s.spatial};
    return s;
}

void expect_per_channel(const KernelArgs& args, const dsk_tensor_desc& t, int64_t channels,
                        const std::string& what) {
    if (numel(t) != channels)
        args.fail(what + " " + shape_text(shape_of(t)) + " must have " + std::to_string(channels) +
                  " elements (one per channel)");
}

//----------------------------------------------------------------------------------------------
// BatchNormalization: X, scale, B, mean, var -> Y, [saved_mean], [saved_invstd]
//----------------------------------------------------------------------------------------------

struct BatchNormPlan {
    dnnl::batch_normalization_forward primitive;
    ChannelShape shape;
};

void batch_norm(const KernelArgs& args) {
    const ThreadsFor threads(numel(args.input(0)));
    const bool training = args.attrs().get_int("training_mode", 0) != 0;
    const double epsilon = args.attrs().get_float("epsilon", 1e-5);
    const double momentum = args.attrs().get_float("momentum", 0.9);
    auto plan = cached<BatchNormPlan>(cache_key(args), [&] {
        const ChannelShape s = channel_shape(args, args.input(0));
        const char* names[] = {"X", "scale", "B", "mean", "var"};
        for (size_t i = 1; i < 5; ++i) expect_per_channel(args, args.input(i), s.channels, names[i]);
        args.expect_output_shape(0, shape_of(args.input(0)));
        for (size_t i = 1; i < args.output_count(); ++i)
            expect_per_channel(args, args.output(i), s.channels, "output " + std::to_string(i));
        if (training && s.count() == 0) args.fail("training mode needs at least one value per channel");
        return with_dnnl(args, "creating the primitive", [&] {
            const Flags flags = Flags::use_scale | Flags::use_shift |
                                (training ? Flags::none : Flags::use_global_stats);
            const dnnl::batch_normalization_forward::desc desc(
                training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference,
                s.data(), static_cast<float>(epsilon), flags);
            return BatchNormPlan{dnnl::batch_normalization_forward(
                                     dnnl::batch_normalization_forward::primitive_desc(desc, engine())),
                                 s};
        });
    });
    const ChannelShape& s = plan->shape;
    const size_t channels = static_cast<size_t>(s.channels);
    // The running statistics are updated in place in training mode (docs/ops.md).
    float* running_mean = const_cast<float*>(args.in(3));
    float* running_var = const_cast<float*>(args.in(4));
    // Training: the batch statistics oneDNN computes (mean, biased variance).
    std::vector<float> batch_mean(training ? channels : 0), batch_var(training ? channels : 0);
    float* mean = training ? batch_mean.data() : running_mean;
    float* var = training ? batch_var.data() : running_var;
    execute(args, plan->primitive,
            {{DNNL_ARG_SRC, wrap(s.data(), args.in(0))},
             {DNNL_ARG_SCALE, wrap(s.vector(), args.in(1))},
             {DNNL_ARG_SHIFT, wrap(s.vector(), args.in(2))},
             {DNNL_ARG_MEAN, wrap(s.vector(), mean)},
             {DNNL_ARG_VARIANCE, wrap(s.vector(), var)},
             {DNNL_ARG_DST, wrap(s.data(), args.out(0))}});

    float* saved_mean = args.has_output(1) ? args.out(1) : nullptr;
    float* saved_invstd = args.has_output(2) ? args.out(2) : nullptr;
    const int64_t count = s.count();
    for (size_t c = 0; c < channels; ++c) {
        // Read before the running statistics change (in eval mode mean/var point to them).
        const double m = mean[c], v = var[c];
        if (training) {
            // As the cpu kernel: the running variance takes the unbiased batch variance.
            const double unbiased =
                count > 1 ? v * static_cast<double>(count) / static_cast<double>(count - 1) : v;
            running_mean[c] = static_cast<float>(running_mean[c] * momentum + m * (1.0 - momentum));
            running_var[c] =
                static_cast<float>(running_var[c] * momentum + unbiased * (1.0 - momentum));
        }
        if (saved_mean) saved_mean[c] = static_cast<float>(m);
        if (saved_invstd) saved_invstd[c] = static_cast<float>(1.0 / std::sqrt(v + epsilon));
    }
}

//----------------------------------------------------------------------------------------------
// BatchNormalizationGrad: dY, X, scale, saved_mean, saved_invstd -> dX, [dscale], [dB]
//----------------------------------------------------------------------------------------------

struct BatchNormGradPlan {
    dnnl::batch_normalization_backward primitive;
    ChannelShape shape;
};

void batch_norm_grad(const KernelArgs& args) {
    const ThreadsFor threads(numel(args.input(0)));
    const bool training = args.attrs().get_int("training_mode", 0) != 0;
    const double epsilon = args.attrs().get_float("epsilon", 1e-5);
    auto plan = cached<BatchNormGradPlan>(cache_key(args), [&] {
        const ChannelShape s = channel_shape(args, args.input(1));
        if (shape_of(args.input(0)) != shape_of(args.input(1)))
            args.fail("dY and X must have the same shape");
        const char* names[] = {"dY", "X", "scale", "saved_mean", "saved_invstd"};
        for (size_t i = 2; i < 5; ++i) expect_per_channel(args, args.input(i), s.channels, names[i]);
        args.expect_output_shape(0, shape_of(args.input(1)));
        for (size_t i = 1; i < args.output_count(); ++i)
            expect_per_channel(args, args.output(i), s.channels, "output " + std::to_string(i));
        return with_dnnl(args, "creating the primitive", [&] {
            // Eval mode: the statistics were constants, so dX = dY * scale * invstd.
            const Flags flags = Flags::use_scale | Flags::use_shift |
                                (training ? Flags::none : Flags::use_global_stats);
            const dnnl::batch_normalization_forward::primitive_desc hint(
                dnnl::batch_normalization_forward::desc(dnnl::prop_kind::forward_training, s.data(),
                                                        static_cast<float>(epsilon), flags),
                engine());
            const dnnl::batch_normalization_backward::desc desc(
                dnnl::prop_kind::backward, s.data(), s.data(), static_cast<float>(epsilon), flags);
            return BatchNormGradPlan{
                dnnl::batch_normalization_backward(
                    dnnl::batch_normalization_backward::primitive_desc(desc, engine(), hint)),
                s};
        });
    });
    const ChannelShape& s = plan->shape;
    const size_t channels = static_cast<size_t>(s.channels);
    // oneDNN takes the variance; the forward saved 1 / sqrt(var + epsilon).
    std::vector<float> var(channels);
    const float* invstd = args.in(4);
    for (size_t c = 0; c < channels; ++c)
        var[c] = static_cast<float>(1.0 / (static_cast<double>(invstd[c]) * invstd[c]) - epsilon);
    std::vector<float> unused_dscale(args.has_output(1) ? 0 : channels);
    std::vector<float> unused_dbias(args.has_output(2) ? 0 : channels);
    std::vector<float> unused_shift(channels);
    execute(args, plan->primitive,
            {{DNNL_ARG_DIFF_DST, wrap(s.data(), args.in(0))},
             {DNNL_ARG_SRC, wrap(s.data(), args.in(1))},
             {DNNL_ARG_SCALE, wrap(s.vector(), args.in(2))},
             // Not read by the backward pass, but oneDNN 2.6 checks it is there with use_shift.
             {DNNL_ARG_SHIFT, wrap(s.vector(), unused_shift.data())},
             {DNNL_ARG_MEAN, wrap(s.vector(), args.in(3))},
             {DNNL_ARG_VARIANCE, wrap(s.vector(), var.data())},
             {DNNL_ARG_DIFF_SRC, wrap(s.data(), args.out(0))},
             {DNNL_ARG_DIFF_SCALE,
              wrap(s.vector(), args.has_output(1) ? args.out(1) : unused_dscale.data())},
             {DNNL_ARG_DIFF_SHIFT,
              wrap(s.vector(), args.has_output(2) ? args.out(2) : unused_dbias.data())}});
}

// X (input 0 of the forward, 1 of the gradient) is [N, C, ...].
bool x_has_channels(const dsk_node_view* /*node*/, const dsk_tensor_desc* tensors) {
    return tensors[0].ndim >= 2;
}
bool grad_x_has_channels(const dsk_node_view* /*node*/, const dsk_tensor_desc* tensors) {
    return tensors[1].ndim >= 2;
}

const KernelDef kNormalizationKernels[] = {
    kernel("BatchNormalization", {F32, F32, F32, F32, F32}, {F32, F32, F32}, batch_norm,
           x_has_channels) |
        optional_outputs_from(1),
    kernel("BatchNormalizationGrad", {F32, F32, F32, F32, F32}, {F32, F32, F32}, batch_norm_grad,
           grad_x_has_channels) |
        optional_outputs_from(1),
};

}  // namespace

std::span<const KernelDef> normalization_kernels() { return kNormalizationKernels; }

}  // namespace dsk::onednn
