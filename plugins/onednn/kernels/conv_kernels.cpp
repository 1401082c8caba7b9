// conv_kernels.cpp - Conv, FusedConv (Conv + activation, made by the kernel's fusion pass: the
// activation is an eltwise post-op), ConvGradInput and ConvGradWeight (2-D, NCHW, groups,
// strides, dilations, asymmetric pads) on oneDNN's convolution primitives.
//
// Layouts: the weights and Y (dY) always get the layouts the primitives choose (format_tag::any:
// blocked OIhw16o, nChw16c and the like, oneDNN's direct jit / brgemm convolutions), reordered in
// and out on every call. X (dX) does too from 16 input channels per group; below that it stays in
// dsk's plain NCHW, which is what oneDNN's first-layer kernels read (a blocked X of one channel
// would be padded to 16). Measured on the 2-core Zen 4 machine, 3x3 "same":
// - 32 -> 64 channels at 14x14, batch 128, one thread: blocked forward 11.6 ms against 14.7
//   plain, backward data 10.5 against 17.9, backward weights 11.8 against 14.8.
// - 1 -> 32 at 28x28, two threads, batch 256, with bias and Relu: plain X with chosen W and Y
//   (jit:avx512_core) 1.85 ms with the reorders; all plain (im2col + GEMM, whose bias and Relu
//   then run in a scalar loop) 4.0 ms alone and 22 ms inside the CNN; all chosen (brgconv, X
//   padded) 3.9 ms. Backward weights at batch 128: 0.82 ms against 2.26 ms all plain.
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "dnnl_tensors.h"
#include "kernels/eltwise_algorithms.h"
#include "kernels/onednn_kernel_table.h"
#include "kernels/window_geometry.h"
#include "primitive_cache.h"

namespace dsk::onednn {
namespace {

using cpu::Window2d;

// The convolution's geometry in oneDNN's terms. X [N, C, H, W], W [M, C/group, kH, kW],
// Y [N, M, oH, oW].
constexpr int64_t kBlockedChannels = 16;

struct ConvGeometry {
    Dims x, w, y;
    int64_t group;
    Window2d window;

    // Whether the primitives choose X's layout too (see the top of the file).
    bool blocked_x() const { return w[1] >= kBlockedChannels; }
    memory::desc x_desc() const { return plain(x); }
    memory::desc y_desc() const { return plain(y); }
    // OIHW, or GOIHW with O = M / group: the same bytes as dsk's [M, C/group, kH, kW].
    memory::desc w_desc() const {
        if (group == 1) return plain(w);
        return plain({group, w[0] / group, w[1], w[2], w[3]});
    }
    Dims strides() const { return {window.stride_h, window.stride_w}; }
    // oneDNN counts dilation from 0 (no dilation), ONNX from 1.
    Dims dilations() const { return {window.dilation_h - 1, window.dilation_w - 1}; }
    Dims pads_begin() const { return {window.pad_top, window.pad_left}; }
    Dims pads_end() const { return {window.pad_bottom, window.pad_right}; }
    // What a primitive descriptor is created with: format_tag::any but for a plain X.
    memory::desc x_wanted() const { return blocked_x() ? chosen(x_desc()) : x_desc(); }
    memory::desc w_wanted() const { return chosen(w_desc()); }
    memory::desc y_wanted() const { return chosen(y_desc()); }

  private:
    static memory::desc chosen(const memory::desc& plain_desc) {
        return memory::desc(plain_desc.dims(), memory::data_type::f32, memory::format_tag::any);
    }
};

ConvGeometry conv_geometry(const KernelArgs& args, const Dims& x, const Dims& w) {
    if (x.size() != 4 || w.size() != 4) args.fail("X and W must be 4-D (NCHW, MCHW)");
    ConvGeometry g;
    g.x = x;
    g.w = w;
    g.group = args.attrs().get_int("group", 1);
    if (g.group < 1 || x[1] % g.group != 0 || w[0] % g.group != 0 || w[1] * g.group != x[1])
        args.fail("group " + std::to_string(g.group) + " does not fit X " + shape_text(x) +
                  " and W " + shape_text(w) + " (C and M must be multiples of group, W's second "
                  "dimension C / group)");
    g.window = cpu::window_2d(args, x[2], x[3], w[2], w[3]);
    g.y = {x[0], w[0], g.window.out_h, g.window.out_w};
    return g;
}

Dims shape_attribute(const KernelArgs& args, const char* name) {
    const std::vector<int64_t> shape = args.attrs().require_ints(name);
    if (shape.size() != 4) args.fail(std::string("attribute '") + name + "' must have 4 values");
    return Dims(shape.begin(), shape.end());
}

dnnl::convolution_forward::desc forward_desc(const ConvGeometry& g, dnnl::prop_kind kind,
                                             const memory::desc* bias) {
    if (bias != nullptr)
        return {kind, dnnl::algorithm::convolution_direct, g.x_wanted(), g.w_wanted(), *bias,
                g.y_wanted(), g.strides(), g.dilations(), g.pads_begin(), g.pads_end()};
    return {kind, dnnl::algorithm::convolution_direct, g.x_wanted(), g.w_wanted(), g.y_wanted(),
            g.strides(), g.dilations(), g.pads_begin(), g.pads_end()};
}

//----------------------------------------------------------------------------------------------
// Conv
//----------------------------------------------------------------------------------------------

struct ConvPlan {
    dnnl::convolution_forward primitive;
    ConvGeometry geometry;
    Relayout x, w, y;
    memory::desc bias;
    // FusedConv with its pre-activation output Z (kept for the activation's gradient): the
    // convolution writes Z and this eltwise computes Y from it.
    dnnl::eltwise_forward activation;
    bool separate_activation = false;
};

// FusedConv's activation ("" = none), or nothing for Conv.
std::optional<Eltwise> fused_activation(const KernelArgs& args) {
    if (std::strcmp(args.op(), "FusedConv") != 0) return std::nullopt;
    const std::string name = args.attrs().get_string("activation", "");
    if (name.empty()) return std::nullopt;
    const std::optional<Eltwise> e = eltwise_for(name, args.attrs());
    if (!e) args.fail("activation \"" + name + "\" has no oneDNN eltwise algorithm here");
    return e;
}

// Multiply-adds of a convolution: every element of Y (or dY) takes C/group * kH * kW of them.
int64_t conv_work(const dsk_tensor_desc& y, const dsk_tensor_desc& w) {
    return numel(y) * (w.ndim == 4 ? w.shape[1] * w.shape[2] * w.shape[3] : 1);
}

void conv(const KernelArgs& args) {  // Conv and FusedConv
    const ThreadsFor threads(conv_work(args.output(0), args.input(1)));
    const bool with_bias = args.has_input(2);
    const std::optional<Eltwise> activation = fused_activation(args);
    const bool with_z = activation && args.has_output(1);
    auto plan = cached<ConvPlan>(cache_key(args), [&] {
        ConvGeometry g = conv_geometry(args, dims_of(args.input(0)), dims_of(args.input(1)));
        if (with_bias && (args.input(2).ndim != 1 || args.input(2).shape[0] != g.w[0]))
            args.fail("B must be [" + std::to_string(g.w[0]) + "], one value per output channel");
        args.expect_output_shape(0, g.y);
        if (with_z) args.expect_output_shape(1, g.y);
        return with_dnnl(args, "creating the primitive", [&] {
            ConvPlan p;
            p.geometry = g;
            p.bias = plain({g.w[0]});
            const auto desc = forward_desc(g, dnnl::prop_kind::forward_inference,
                                           with_bias ? &p.bias : nullptr);
            dnnl::primitive_attr attr;
            p.separate_activation = with_z;
            if (activation && !with_z) {
                dnnl::post_ops ops;
                ops.append_eltwise(1.0f, activation->algorithm, activation->alpha, activation->beta);
                attr.set_post_ops(ops);
            }
            const dnnl::convolution_forward::primitive_desc pd(desc, attr, engine());
            p.primitive = dnnl::convolution_forward(pd);
            p.x = input_relayout(g.x_desc(), pd.src_desc());
            p.w = input_relayout(g.w_desc(), pd.weights_desc());
            p.y = output_relayout(g.y_desc(), pd.dst_desc());
            if (with_z)
                p.activation = dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(
                    dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference,
                                                activation->algorithm, g.y_desc(),
                                                activation->alpha, activation->beta),
                    engine()));
            return p;
        });
    });
    const ConvGeometry& g = plan->geometry;
    // With Z, the convolution goes to Z and the activation from there to Y.
    float* y = plan->separate_activation ? args.out(1) : args.out(0);
    Staged x(args, plan->x, args.in(0), true), w(args, plan->w, args.in(1), true);
    Staged y_out(args, plan->y, y, false);
    std::unordered_map<int, memory> arguments = {
        {DNNL_ARG_SRC, x.get()}, {DNNL_ARG_WEIGHTS, w.get()}, {DNNL_ARG_DST, y_out.get()}};
    if (with_bias) arguments.emplace(DNNL_ARG_BIAS, wrap(plan->bias, args.in(2)));
    execute(args, plan->primitive, arguments);
    y_out.finish();
    if (plan->separate_activation)
        execute(args, plan->activation,
                {{DNNL_ARG_SRC, wrap(g.y_desc(), y)}, {DNNL_ARG_DST, wrap(g.y_desc(), args.out(0))}});
}

//----------------------------------------------------------------------------------------------
// ConvGradInput: dY, W -> dX (input_shape); ConvGradWeight: dY, X -> dW (weight_shape)
//----------------------------------------------------------------------------------------------

struct ConvGradInputPlan {
    dnnl::convolution_backward_data primitive;
    Relayout dy, w, dx;
};

void conv_grad_input(const KernelArgs& args) {
    const ThreadsFor threads(conv_work(args.input(0), args.input(1)));
    auto plan = cached<ConvGradInputPlan>(cache_key(args), [&] {
        const ConvGeometry g =
            conv_geometry(args, shape_attribute(args, "input_shape"), dims_of(args.input(1)));
        if (dims_of(args.input(0)) != g.y)
            args.fail("dY is " + shape_text(shape_of(args.input(0))) + " but the convolution of " +
                      shape_text(g.x) + " gives " + shape_text(g.y));
        args.expect_output_shape(0, g.x);
        return with_dnnl(args, "creating the primitive", [&] {
            const auto hint = dnnl::convolution_forward::primitive_desc(
                forward_desc(g, dnnl::prop_kind::forward_training, nullptr), engine());
            const dnnl::convolution_backward_data::desc desc(
                dnnl::algorithm::convolution_direct, g.x_wanted(), g.w_wanted(), g.y_wanted(),
                g.strides(), g.dilations(), g.pads_begin(), g.pads_end());
            const dnnl::convolution_backward_data::primitive_desc pd(desc, engine(), hint);
            return ConvGradInputPlan{dnnl::convolution_backward_data(pd),
                                     input_relayout(g.y_desc(), pd.diff_dst_desc()),
                                     input_relayout(g.w_desc(), pd.weights_desc()),
                                     output_relayout(g.x_desc(), pd.diff_src_desc())};
        });
    });
    Staged dy(args, plan->dy, args.in(0), true), w(args, plan->w, args.in(1), true);
    Staged dx(args, plan->dx, args.out(0), false);
    execute(args, plan->primitive,
            {{DNNL_ARG_DIFF_DST, dy.get()}, {DNNL_ARG_WEIGHTS, w.get()}, {DNNL_ARG_DIFF_SRC, dx.get()}});
    dx.finish();
}

struct ConvGradWeightPlan {
    dnnl::convolution_backward_weights primitive;
    Relayout dy, x, dw;
};

void conv_grad_weight(const KernelArgs& args) {
    const ThreadsFor threads(conv_work(args.input(0), args.output(0)));
    auto plan = cached<ConvGradWeightPlan>(cache_key(args), [&] {
        const ConvGeometry g =
            conv_geometry(args, dims_of(args.input(1)), shape_attribute(args, "weight_shape"));
        if (dims_of(args.input(0)) != g.y)
            args.fail("dY is " + shape_text(shape_of(args.input(0))) + " but the convolution of " +
                      shape_text(g.x) + " gives " + shape_text(g.y));
        args.expect_output_shape(0, g.w);
        return with_dnnl(args, "creating the primitive", [&] {
            const auto hint = dnnl::convolution_forward::primitive_desc(
                forward_desc(g, dnnl::prop_kind::forward_training, nullptr), engine());
            const dnnl::convolution_backward_weights::desc desc(
                dnnl::algorithm::convolution_direct, g.x_wanted(), g.w_wanted(), g.y_wanted(),
                g.strides(), g.dilations(), g.pads_begin(), g.pads_end());
            const dnnl::convolution_backward_weights::primitive_desc pd(desc, engine(), hint);
            return ConvGradWeightPlan{dnnl::convolution_backward_weights(pd),
                                      input_relayout(g.y_desc(), pd.diff_dst_desc()),
                                      input_relayout(g.x_desc(), pd.src_desc()),
                                      output_relayout(g.w_desc(), pd.diff_weights_desc())};
        });
    });
    Staged dy(args, plan->dy, args.in(0), true), x(args, plan->x, args.in(1), true);
    Staged dw(args, plan->dw, args.out(0), false);
    execute(args, plan->primitive,
            {{DNNL_ARG_DIFF_DST, dy.get()}, {DNNL_ARG_SRC, x.get()}, {DNNL_ARG_DIFF_WEIGHTS, dw.get()}});
    dw.finish();
}

//----------------------------------------------------------------------------------------------
// What the primitives take
//----------------------------------------------------------------------------------------------

// X [N, C, H, W] and W [M, C/group, kH, kW] with the group dividing C and M; B (if any) [M].
bool conv_fits(const dsk_node_view* node, const dsk_tensor_desc* x, const dsk_tensor_desc* w,
               const dsk_tensor_desc* b) {
    return accepts_if([&] {
        if (x->ndim != 4 || w->ndim != 4) return false;
        const int64_t group = Attrs(node).get_int("group", 1);
        if (group < 1 || x->shape[1] % group != 0 || w->shape[0] % group != 0 ||
            w->shape[1] * group != x->shape[1])
            return false;
        return b == nullptr || (b->ndim == 1 && b->shape[0] == w->shape[0]);
    });
}

dsk_tensor_desc shape_only(const std::vector<int64_t>& shape) {
    dsk_tensor_desc t{};
    set_contiguous(t, DSK_DTYPE_F32, shape);
    return t;
}

bool conv_accepts(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    return conv_fits(node, &tensors[0], &tensors[1], node->input_count > 2 ? &tensors[2] : nullptr);
}

bool fused_conv_accepts(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    return conv_accepts(node, tensors) && accepts_if([&] {
               const Attrs attrs(node);
               const std::string name = attrs.get_string("activation", "");
               if (name.empty()) return node->output_count == 1;  // Z only comes with an activation
               return name != "Neg" && eltwise_for(name, attrs).has_value();
           });
}

bool conv_grad_input_accepts(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    return accepts_if([&] {
        const std::vector<int64_t> x = Attrs(node).get_ints("input_shape", {});
        if (x.size() != 4) return false;
        const dsk_tensor_desc xd = shape_only(x);
        return conv_fits(node, &xd, &tensors[1], nullptr) && tensors[0].ndim == 4;
    });
}

bool conv_grad_weight_accepts(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    return accepts_if([&] {
        const std::vector<int64_t> w = Attrs(node).get_ints("weight_shape", {});
        if (w.size() != 4) return false;
        const dsk_tensor_desc wd = shape_only(w);
        return conv_fits(node, &tensors[1], &wd, nullptr) && tensors[0].ndim == 4;
    });
}

const KernelDef kConvKernels[] = {
    kernel("Conv", {F32, F32, F32}, {F32}, conv, conv_accepts) | optional_inputs_from(2),
    // Outputs: Y = activation(Conv), and optionally Z = the Conv before the activation.
    kernel("FusedConv", {F32, F32, F32}, {F32, F32}, conv, fused_conv_accepts) |
        optional_inputs_from(2) | optional_outputs_from(1),
    kernel("ConvGradInput", {F32, F32}, {F32}, conv_grad_input, conv_grad_input_accepts),
    kernel("ConvGradWeight", {F32, F32}, {F32}, conv_grad_weight, conv_grad_weight_accepts),
};

}  // namespace

std::span<const KernelDef> conv_kernels() { return kConvKernels; }

}  // namespace dsk::onednn
