// pooling_kernels.cpp - MaxPool, AveragePool (2-D, NCHW, strides, pads, dilations) and their
// gradients on oneDNN's pooling_v2 primitives. GlobalAveragePool stays on cpu.
//
// MaxPoolGrad gets X, not the forward's argmax: it runs the forward pooling again (training
// kind, which records the argmax in oneDNN's workspace) and then the backward pooling.
#include <string>
#include <vector>

#include "dnnl_tensors.h"
#include "kernels/onednn_kernel_table.h"
#include "kernels/window_geometry.h"
#include "primitive_cache.h"

namespace dsk::onednn {
namespace {

using cpu::Window2d;

struct PoolGeometry {
    Dims x, y;
    Window2d window;

    memory::desc x_desc() const { return plain(x); }
    memory::desc y_desc() const { return plain(y); }
};

PoolGeometry pool_geometry(const KernelArgs& args, const Dims& x) {
    if (x.size() != 4) args.fail("X " + shape_text(x) + " must be 4-D (N, C, H, W)");
    const std::vector<int64_t> kernel_shape = args.attrs().require_ints("kernel_shape");
    if (kernel_shape.size() != 2) args.fail("attribute 'kernel_shape' must have 2 values");
    if (args.attrs().get_int("ceil_mode", 0) != 0) args.fail("ceil_mode = 1 is not supported");
    PoolGeometry g;
    g.x = x;
    g.window = cpu::window_2d(args, x[2], x[3], kernel_shape[0], kernel_shape[1]);
    g.y = {x[0], x[1], g.window.out_h, g.window.out_w};
    return g;
}

dnnl::algorithm pool_algorithm(const KernelArgs& args, bool max) {
    if (max) return dnnl::algorithm::pooling_max;
    return args.attrs().get_int("count_include_pad", 0) != 0
               ? dnnl::algorithm::pooling_avg_include_padding
               : dnnl::algorithm::pooling_avg_exclude_padding;
}

dnnl::pooling_v2_forward::desc forward_desc(const PoolGeometry& g, dnnl::prop_kind kind,
                                            dnnl::algorithm algorithm) {
    const Window2d& w = g.window;
    return {kind,
            algorithm,
            g.x_desc(),
            g.y_desc(),
            {w.stride_h, w.stride_w},
            {w.kernel_h, w.kernel_w},
            {w.dilation_h - 1, w.dilation_w - 1},  // oneDNN counts dilation from 0
            {w.pad_top, w.pad_left},
            {w.pad_bottom, w.pad_right}};
}

//----------------------------------------------------------------------------------------------
// MaxPool, AveragePool
//----------------------------------------------------------------------------------------------

struct PoolPlan {
    dnnl::pooling_v2_forward primitive;
    PoolGeometry geometry;
};

void pool(const KernelArgs& args, bool max) {
    const ThreadsFor threads(numel(args.input(0)));
    auto plan = cached<PoolPlan>(cache_key(args), [&] {
        const PoolGeometry g = pool_geometry(args, dims_of(args.input(0)));
        args.expect_output_shape(0, g.y);
        return with_dnnl(args, "creating the primitive", [&] {
            const auto desc =
                forward_desc(g, dnnl::prop_kind::forward_inference, pool_algorithm(args, max));
            return PoolPlan{dnnl::pooling_v2_forward(
                                dnnl::pooling_v2_forward::primitive_desc(desc, engine())),
                            g};
        });
    });
    const PoolGeometry& g = plan->geometry;
    execute(args, plan->primitive,
            {{DNNL_ARG_SRC, wrap(g.x_desc(), args.in(0))},
             {DNNL_ARG_DST, wrap(g.y_desc(), args.out(0))}});
}

void max_pool(const KernelArgs& args) { pool(args, true); }
void average_pool(const KernelArgs& args) { pool(args, false); }

//----------------------------------------------------------------------------------------------
// MaxPoolGrad: dY, X -> dX; AveragePoolGrad: dY -> dX (input_shape)
//----------------------------------------------------------------------------------------------

struct PoolGradPlan {
    dnnl::pooling_v2_forward forward;  // MaxPoolGrad: recomputes the argmax (workspace)
    dnnl::pooling_v2_backward backward;
    memory::desc workspace;
    PoolGeometry geometry;
};

void pool_grad(const KernelArgs& args, bool max) {
    const ThreadsFor threads(numel(args.output(0)));
    auto plan = cached<PoolGradPlan>(cache_key(args), [&] {
        const Dims x = max ? dims_of(args.input(1)) : [&] {
            const std::vector<int64_t> shape = args.attrs().require_ints("input_shape");
            return Dims(shape.begin(), shape.end());
        }();
        const PoolGeometry g = pool_geometry(args, x);
        if (dims_of(args.input(0)) != g.y)
            args.fail("dY " + shape_text(shape_of(args.input(0))) +
                      " does not match the pooled shape " + shape_text(g.y));
        args.expect_output_shape(0, g.x);
        return with_dnnl(args, "creating the primitives", [&] {
            const dnnl::algorithm algorithm = pool_algorithm(args, max);
            const dnnl::pooling_v2_forward::primitive_desc hint(
                forward_desc(g, dnnl::prop_kind::forward_training, algorithm), engine());
            const Window2d& w = g.window;
            const dnnl::pooling_v2_backward::desc desc(
                algorithm, g.x_desc(), g.y_desc(), {w.stride_h, w.stride_w},
                {w.kernel_h, w.kernel_w}, {w.dilation_h - 1, w.dilation_w - 1},
                {w.pad_top, w.pad_left}, {w.pad_bottom, w.pad_right});
            PoolGradPlan p;
            p.geometry = g;
            if (max) {
                p.forward = dnnl::pooling_v2_forward(hint);
                p.workspace = hint.workspace_desc();
            }
            dnnl::pooling_v2_backward::primitive_desc backward(desc, engine(), hint);
            // The argmax workspace is each implementation's own format: oneDNN 2.6 may offer a
            // backward implementation (jit) other than the forward's (simple_nchw) first.
            if (max)
                while (backward.impl_info_str() != hint.impl_info_str())
                    if (!backward.next_impl())
                        args.fail(std::string("oneDNN has no max pooling backward implementation "
                                              "matching the forward's (") +
                                  hint.impl_info_str() + ")");
            p.backward = dnnl::pooling_v2_backward(backward);
            return p;
        });
    });
    const PoolGeometry& g = plan->geometry;
    std::unordered_map<int, memory> arguments = {
        {DNNL_ARG_DIFF_DST, wrap(g.y_desc(), args.in(0))},
        {DNNL_ARG_DIFF_SRC, wrap(g.x_desc(), args.out(0))}};
    // MaxPoolGrad: the forward's Y and argmax, for this call only.
    std::vector<float> y(max ? static_cast<size_t>(g.y[0] * g.y[1] * g.y[2] * g.y[3]) : 0);
    std::vector<uint8_t> workspace(max ? plan->workspace.get_size() : 0);
    if (max) {
        const memory ws = wrap(plan->workspace, workspace.data());
        execute(args, plan->forward,
                {{DNNL_ARG_SRC, wrap(g.x_desc(), args.in(1))},
                 {DNNL_ARG_DST, wrap(g.y_desc(), y.data())},
                 {DNNL_ARG_WORKSPACE, ws}});
        arguments.emplace(DNNL_ARG_WORKSPACE, ws);
    }
    execute(args, plan->backward, arguments);
}

void max_pool_grad(const KernelArgs& args) { pool_grad(args, true); }
void average_pool_grad(const KernelArgs& args) { pool_grad(args, false); }

//----------------------------------------------------------------------------------------------
// What the primitives take: 2-D windows, no ceil_mode (the cpu kernels refuse it too), no
// MaxPool indices output (oneDNN's argmax is its own workspace format).
//----------------------------------------------------------------------------------------------

bool window_fits(const dsk_node_view* node, int64_t x_rank) {
    return accepts_if([&] {
        const Attrs attrs(node);
        return x_rank == 4 && attrs.get_ints("kernel_shape", {}).size() == 2 &&
               attrs.get_int("ceil_mode", 0) == 0;
    });
}

bool pool_accepts(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    return window_fits(node, tensors[0].ndim);
}
bool max_pool_grad_accepts(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    return window_fits(node, tensors[1].ndim);
}
bool average_pool_grad_accepts(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    return accepts_if([&] {
        const int64_t rank =
            static_cast<int64_t>(Attrs(node).get_ints("input_shape", {}).size());
        return tensors[0].ndim == 4 && window_fits(node, rank);
    });
}

const KernelDef kPoolingKernels[] = {
    kernel("MaxPool", {F32}, {F32}, max_pool, pool_accepts),
    kernel("MaxPoolGrad", {F32, F32}, {F32}, max_pool_grad, max_pool_grad_accepts),
    kernel("AveragePool", {F32}, {F32}, average_pool, pool_accepts),
    kernel("AveragePoolGrad", {F32}, {F32}, average_pool_grad, average_pool_grad_accepts),
};

}  // namespace

std::span<const KernelDef> pooling_kernels() { return kPoolingKernels; }

}  // namespace dsk::onednn
