// softmax_kernels.cpp - Softmax, LogSoftmax (any axis) and their gradients on oneDNN's
// softmax_v2 primitives (algorithm softmax_accurate: max-subtracted, or softmax_log).
#include <cstring>
#include <string>

#include "dnnl_tensors.h"
#include "kernels/onednn_kernel_table.h"
#include "primitive_cache.h"

namespace dsk::onednn {
namespace {

bool is_log(const KernelArgs& args) {
    return std::strcmp(args.op(), "LogSoftmax") == 0 || std::strcmp(args.op(), "LogSoftmaxGrad") == 0;
}

dnnl::algorithm algorithm_of(const KernelArgs& args) {
    return is_log(args) ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate;
}

struct SoftmaxPlan {
    dnnl::softmax_v2_forward primitive;
    memory::desc data;
};

void softmax(const KernelArgs& args) {
    const ThreadsFor threads(numel(args.input(0)));
    auto plan = cached<SoftmaxPlan>(cache_key(args), [&] {
        const dsk_tensor_desc& x = args.input(0);
        const int64_t axis = args.axis(args.attrs().get_int("axis", -1), x.ndim);
        args.expect_output_shape(0, shape_of(x));
        return with_dnnl(args, "creating the primitive", [&] {
            const memory::desc data = plain_of(x);
            const dnnl::softmax_v2_forward::desc desc(dnnl::prop_kind::forward_inference,
                                                      algorithm_of(args), data, data,
                                                      static_cast<int>(axis));
            return SoftmaxPlan{
                dnnl::softmax_v2_forward(dnnl::softmax_v2_forward::primitive_desc(desc, engine())),
                data};
        });
    });
    if (numel(args.input(0)) == 0) return;
    execute(args, plan->primitive,
            {{DNNL_ARG_SRC, wrap(plan->data, args.in(0))},
             {DNNL_ARG_DST, wrap(plan->data, args.out(0))}});
}

struct SoftmaxGradPlan {
    dnnl::softmax_v2_backward primitive;
    memory::desc data;
};

// dY, Y -> dX (Y is the forward's output)
void softmax_grad(const KernelArgs& args) {
    const ThreadsFor threads(numel(args.input(0)));
    auto plan = cached<SoftmaxGradPlan>(cache_key(args), [&] {
        const dsk_tensor_desc& y = args.input(1);
        if (shape_of(args.input(0)) != shape_of(y)) args.fail("dY and Y must have the same shape");
        const int64_t axis = args.axis(args.attrs().get_int("axis", -1), y.ndim);
        args.expect_output_shape(0, shape_of(y));
        return with_dnnl(args, "creating the primitive", [&] {
            const memory::desc data = plain_of(y);
            const dnnl::softmax_v2_forward::primitive_desc hint(
                dnnl::softmax_v2_forward::desc(dnnl::prop_kind::forward_training,
                                               algorithm_of(args), data, data,
                                               static_cast<int>(axis)),
                engine());
            const dnnl::softmax_v2_backward::desc desc(algorithm_of(args), data, data, data,
                                                       static_cast<int>(axis));
            return SoftmaxGradPlan{dnnl::softmax_v2_backward(
                                       dnnl::softmax_v2_backward::primitive_desc(desc, engine(), hint)),
                                   data};
        });
    });
    if (numel(args.input(1)) == 0) return;
    execute(args, plan->primitive,
            {{DNNL_ARG_DIFF_DST, wrap(plan->data, args.in(0))},
             {DNNL_ARG_DST, wrap(plan->data, args.in(1))},
             {DNNL_ARG_DIFF_SRC, wrap(plan->data, args.out(0))}});
}

// oneDNN needs a tensor of rank >= 1 (a scalar's softmax is 1 and stays on cpu).
bool has_axis(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    return tensors[node->input_count - 1].ndim >= 1;
}

const KernelDef kSoftmaxKernels[] = {
    kernel("Softmax", {F32}, {F32}, softmax, has_axis),
    kernel("LogSoftmax", {F32}, {F32}, softmax, has_axis),
    kernel("SoftmaxGrad", {F32, F32}, {F32}, softmax_grad, has_axis),
    kernel("LogSoftmaxGrad", {F32, F32}, {F32}, softmax_grad, has_axis),
};

}  // namespace

std::span<const KernelDef> softmax_kernels() { return kSoftmaxKernels; }

}  // namespace dsk::onednn
