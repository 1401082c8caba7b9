// conv_kernels.cpp - Conv, ConvGradInput and ConvGradWeight (2-D, groups, strides, pads,
// dilations) as implicit GEMMs in conv.comp.
#include <string>

#include "kernel_table.h"
#include "window.h"

namespace dsk::vulkan {
namespace {

// 8x8 blocks: the CNN forward at batch 128 takes 0.16 s on lavapipe; 16x16 0.26-0.33, 16x8 0.21.
constexpr int32_t kTileM = 8;
constexpr int32_t kTileN = 8;

enum ConvMode : int32_t { forward = 0, grad_input = 1, grad_weight = 2 };

// The shapes of one convolution: X [N, C, H, W], W [M, C/G, KH, KW], Y [N, M, OH, OW].
struct ConvShape {
    int64_t n, c, h, w, m, kh, kw, groups;
    Window window;
};

// "" when the shapes and attributes make a convolution, else why not.
std::string conv_shape(const Attrs& attrs, const std::vector<int64_t>& x, const std::vector<int64_t>& weight,
                       ConvShape* out) {
    if (x.size() != 4 || weight.size() != 4)
        return "X " + shape_text(x) + " and W " + shape_text(weight) + " must be 4-D (2-D convolution)";
    ConvShape s{x[0], x[1], x[2], x[3], weight[0], weight[2], weight[3], attrs.get_int("group", 1), {}};
    if (s.groups < 1 || s.c % s.groups != 0 || s.m % s.groups != 0)
        return "attribute 'group' = " + std::to_string(s.groups) + " does not divide the channels";
    if (weight[1] != s.c / s.groups)
        return "W " + shape_text(weight) + " needs C/group = " + std::to_string(s.c / s.groups) +
               " input channels";
    const std::string why = read_window(attrs, s.h, s.w, s.kh, s.kw, true, &s.window);
    if (!why.empty()) return why;
    *out = s;
    return {};
}

void record_conv(const KernelArgs& args, ConvMode mode, const ConvShape& s, const dsk_tensor_desc& a,
                 const dsk_tensor_desc& b, const dsk_tensor_desc* bias, const dsk_tensor_desc& y) {
    const Window& w = s.window;
    const uint32_t params[] = {
        u32(args, s.n, "N"), u32(args, s.c, "C"), u32(args, s.h, "H"), u32(args, s.w, "W"),
        u32(args, s.m, "M"), u32(args, w.out_h, "OH"), u32(args, w.out_w, "OW"),
        u32(args, s.kh, "KH"), u32(args, s.kw, "KW"),
        u32(args, w.stride_h, "stride"), u32(args, w.stride_w, "stride"),
        u32(args, w.dilation_h, "dilation"), u32(args, w.dilation_w, "dilation"),
        u32(args, w.pad_top, "pad"), u32(args, w.pad_left, "pad"),
        u32(args, s.groups, "group"), bias != nullptr ? 1u : 0u,
    };
    const int64_t cg = s.c / s.groups, mg = s.m / s.groups;
    const int64_t rows = mode == forward ? mg : mode == grad_input ? cg : mg;
    const int64_t cols = mode == forward ? w.out_h * w.out_w : mode == grad_input ? s.h * s.w : cg * s.kh * s.kw;
    const int64_t blocks = ((rows + kTileM - 1) / kTileM) * ((cols + kTileN - 1) / kTileN);
    const int64_t slices = mode == grad_weight ? s.groups : s.n * s.groups;
    if (numel(y) == 0) return;
    args.dispatch("conv", {&a, &b, bias != nullptr ? bias : &y, &y}, {mode, kTileM, kTileN}, params,
                  u32(args, (blocks + kLocalSize - 1) / kLocalSize, "workgroups"), 1,
                  u32(args, slices, "images x groups"));
}

void conv(const KernelArgs& args) {
    ConvShape s;
    const std::string why = conv_shape(args.attrs(), shape_of(args.input(0)), shape_of(args.input(1)), &s);
    if (!why.empty()) args.fail(why);
    const dsk_tensor_desc* bias = args.has_input(2) ? &args.input(2) : nullptr;
    if (bias != nullptr && (bias->ndim != 1 || bias->shape[0] != s.m))
        args.fail("B " + shape_text(shape_of(*bias)) + " must have shape [" + std::to_string(s.m) + "]");
    args.expect_output_shape(0, {s.n, s.m, s.window.out_h, s.window.out_w});
    record_conv(args, forward, s, args.input(1), args.input(0), bias, args.output(0));
}

// ConvGradInput(dY, W) -> dX of `input_shape`.
void conv_grad_input(const KernelArgs& args) {
    const std::vector<int64_t> x_shape = args.attrs().require_ints("input_shape");
    ConvShape s;
    const std::string why = conv_shape(args.attrs(), x_shape, shape_of(args.input(1)), &s);
    if (!why.empty()) args.fail(why);
    args.expect_output_shape(0, x_shape);
    if (shape_of(args.input(0)) != std::vector<int64_t>{s.n, s.m, s.window.out_h, s.window.out_w})
        args.fail("dY " + shape_text(shape_of(args.input(0))) + " does not match the convolution's output");
    record_conv(args, grad_input, s, args.input(1), args.input(0), nullptr, args.output(0));
}

// ConvGradWeight(dY, X) -> dW of `weight_shape`.
void conv_grad_weight(const KernelArgs& args) {
    const std::vector<int64_t> w_shape = args.attrs().require_ints("weight_shape");
    ConvShape s;
    const std::string why = conv_shape(args.attrs(), shape_of(args.input(1)), w_shape, &s);
    if (!why.empty()) args.fail(why);
    args.expect_output_shape(0, w_shape);
    if (shape_of(args.input(0)) != std::vector<int64_t>{s.n, s.m, s.window.out_h, s.window.out_w})
        args.fail("dY " + shape_text(shape_of(args.input(0))) + " does not match the convolution's output");
    record_conv(args, grad_weight, s, args.input(0), args.input(1), nullptr, args.output(0));
}

bool conv_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    try {
        ConvShape s;
        return conv_shape(Attrs(node), shape_of(tensors[0]), shape_of(tensors[1]), &s).empty();
    } catch (...) {
        return false;
    }
}

bool conv_grad_input_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    try {
        ConvShape s;
        const Attrs attrs(node);
        return conv_shape(attrs, attrs.require_ints("input_shape"), shape_of(tensors[1]), &s).empty();
    } catch (...) {
        return false;
    }
}

bool conv_grad_weight_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    try {
        ConvShape s;
        const Attrs attrs(node);
        return conv_shape(attrs, shape_of(tensors[1]), attrs.require_ints("weight_shape"), &s).empty();
    } catch (...) {
        return false;
    }
}

const KernelDef kConvKernels[] = {
    {"Conv", 2, 3, 1, 1, {F32, F32, F32}, {F32}, conv, conv_fits},
    {"ConvGradInput", 2, 2, 1, 1, {F32, F32}, {F32}, conv_grad_input, conv_grad_input_fits},
    {"ConvGradWeight", 2, 2, 1, 1, {F32, F32}, {F32}, conv_grad_weight, conv_grad_weight_fits},
};

}  // namespace

std::span<const KernelDef> conv_kernels() { return kConvKernels; }

}  // namespace dsk::vulkan
