// pooling_kernels.cpp - MaxPool, AveragePool and their gradients (pool.comp), GlobalAveragePool
// (reduce.comp) and GlobalAveragePoolGrad (the broadcast mode of binary.comp). NCHW, 2-D.
#include <string>

#include "kernel_table.h"
#include "window.h"

namespace dsk::vulkan {
namespace {

enum PoolMode : int32_t { max_forward = 0, average_forward = 1, max_backward = 2, average_backward = 3 };

// "" when the node pools a 4-D input of `x_shape`, else why not.
std::string pool_window(const Attrs& attrs, const std::vector<int64_t>& x_shape, Window* out) {
    if (x_shape.size() != 4) return "X " + shape_text(x_shape) + " must be 4-D (N, C, H, W)";
    const std::vector<int64_t> kernel = attrs.require_ints("kernel_shape");
    if (kernel.size() != 2) return "attribute 'kernel_shape' must have 2 values";
    if (attrs.get_int("ceil_mode", 0) != 0) return "ceil_mode = 1 is not supported";
    if (attrs.get_int("storage_order", 0) != 0) return "storage_order = 1 is not supported";
    return read_window(attrs, x_shape[2], x_shape[3], kernel[0], kernel[1], true, out);
}

void record_pool(const KernelArgs& args, PoolMode mode, const std::vector<int64_t>& x_shape, const Window& w,
                 const dsk_tensor_desc& src, const dsk_tensor_desc& aux, const dsk_tensor_desc& out) {
    const uint32_t params[] = {
        u32(args, x_shape[0] * x_shape[1], "planes"), u32(args, x_shape[2], "H"), u32(args, x_shape[3], "W"),
        u32(args, w.out_h, "OH"), u32(args, w.out_w, "OW"), u32(args, w.kernel_h, "KH"), u32(args, w.kernel_w, "KW"),
        u32(args, w.stride_h, "stride"), u32(args, w.stride_w, "stride"), u32(args, w.dilation_h, "dilation"),
        u32(args, w.dilation_w, "dilation"), u32(args, w.pad_top, "pad"), u32(args, w.pad_left, "pad"),
        args.attrs().get_int("count_include_pad", 0) != 0 ? 1u : 0u,
    };
    args.dispatch_items("pool", {&src, &aux, &out}, {mode}, params, static_cast<uint64_t>(numel(out)));
}

void pool(const KernelArgs& args) {
    const dsk_tensor_desc& x = args.input(0);
    const std::vector<int64_t> shape = shape_of(x);
    Window w;
    const std::string why = pool_window(args.attrs(), shape, &w);
    if (!why.empty()) args.fail(why);
    args.expect_output_shape(0, {shape[0], shape[1], w.out_h, w.out_w});
    const PoolMode mode = std::string(args.op()) == "MaxPool" ? max_forward : average_forward;
    record_pool(args, mode, shape, w, x, x, args.output(0));
}

// MaxPoolGrad(dY, X) and AveragePoolGrad(dY) [input_shape].
void pool_grad(const KernelArgs& args) {
    const bool max = std::string(args.op()) == "MaxPoolGrad";
    const std::vector<int64_t> shape = max ? shape_of(args.input(1)) : args.attrs().require_ints("input_shape");
    Window w;
    const std::string why = pool_window(args.attrs(), shape, &w);
    if (!why.empty()) args.fail(why);
    const dsk_tensor_desc& dy = args.input(0);
    if (shape_of(dy) != std::vector<int64_t>{shape[0], shape[1], w.out_h, w.out_w})
        args.fail("dY " + shape_text(shape_of(dy)) + " does not match the pooled shape of " + shape_text(shape));
    args.expect_output_shape(0, shape);
    record_pool(args, max ? max_backward : average_backward, shape, w, dy, max ? args.input(1) : dy,
                args.output(0));
}

bool pool_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    try {
        Window w;
        const Attrs attrs(node);
        const std::string op = node->op;
        const std::vector<int64_t> shape = op == "MaxPool" || op == "AveragePool" ? shape_of(tensors[0])
                                           : op == "MaxPoolGrad"                  ? shape_of(tensors[1])
                                                                                  : attrs.require_ints("input_shape");
        return pool_window(attrs, shape, &w).empty();
    } catch (...) {
        return false;
    }
}

// GlobalAveragePool: the mean of each H x W plane (reduce.comp: kept [planes], reduced [H*W]).
void global_average_pool(const KernelArgs& args) {
    const dsk_tensor_desc& x = args.input(0);
    if (x.ndim < 3) args.fail("X " + shape_text(shape_of(x)) + " must have at least 3 dimensions (N, C, ...)");
    const int64_t planes = x.shape[0] * x.shape[1];
    const int64_t plane = numel(x) / std::max<int64_t>(planes, 1);
    std::vector<int64_t> out_shape = {x.shape[0], x.shape[1]};
    out_shape.resize(x.ndim, 1);
    args.expect_output_shape(0, out_shape);
    const uint32_t params[] = {u32(args, planes, "planes"),
                               1, 1, 1, u32(args, planes, "planes"),  // kept extents
                               0, 0, 0, u32(args, plane, "plane"),    // kept strides
                               1, 1, 1, u32(args, plane, "plane"),    // reduced extents
                               0, 0, 0, 1,                            // reduced strides
                               float_bits(static_cast<float>(1.0 / static_cast<double>(plane)))};
    args.dispatch_items("reduce", {&x, &args.output(0)}, {0}, params, static_cast<uint64_t>(planes));
}

// GlobalAveragePoolGrad(dY) [input_shape]: dX = dY / (H*W), broadcast over each plane.
void global_average_pool_grad(const KernelArgs& args) {
    const std::vector<int64_t> shape = args.attrs().require_ints("input_shape");
    if (shape.size() < 3) args.fail("attribute 'input_shape' must have at least 3 dimensions");
    args.expect_output_shape(0, shape);
    const dsk_tensor_desc& dy = args.input(0);
    const int64_t planes = shape[0] * shape[1];
    if (numel(dy) != planes) args.fail("dY " + shape_text(shape_of(dy)) + " must have N*C elements");
    const int64_t n = numel(args.output(0));
    const int64_t plane = n / std::max<int64_t>(planes, 1);
    const uint32_t params[] = {u32(args, n, "elements"),
                               1, 1, u32(args, planes, "planes"), u32(args, plane, "plane"),  // extents
                               0, 0, 1, 0,                                                   // dY strides
                               0, 0, 0, 0,                                                   // B unused
                               float_bits(static_cast<float>(1.0 / static_cast<double>(plane)))};
    args.dispatch_items("binary", {&dy, &dy, &args.output(0)}, {4}, params, (static_cast<uint64_t>(n) + 3) / 4);
}

const KernelDef kPoolingKernels[] = {
    {"MaxPool", 1, 1, 1, 1, {F32}, {F32}, pool, pool_fits},
    {"AveragePool", 1, 1, 1, 1, {F32}, {F32}, pool, pool_fits},
    {"MaxPoolGrad", 2, 2, 1, 1, {F32, F32}, {F32}, pool_grad, pool_fits},
    {"AveragePoolGrad", 1, 1, 1, 1, {F32}, {F32}, pool_grad, pool_fits},
    {"GlobalAveragePool", 1, 1, 1, 1, {F32}, {F32}, global_average_pool},
    {"GlobalAveragePoolGrad", 1, 1, 1, 1, {F32}, {F32}, global_average_pool_grad},
};

}  // namespace

std::span<const KernelDef> pooling_kernels() { return kPoolingKernels; }

}  // namespace dsk::vulkan
