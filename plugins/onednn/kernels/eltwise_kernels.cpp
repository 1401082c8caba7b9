// eltwise_kernels.cpp - the activations oneDNN computes exactly (eltwise_algorithms.h) and
// ActivationGrad, on oneDNN's eltwise primitives over the tensor as one flat run of elements.
#include <string>

#include "dnnl_tensors.h"
#include "kernels/eltwise_algorithms.h"
#include "kernels/onednn_kernel_table.h"
#include "primitive_cache.h"

namespace dsk::onednn {
namespace {

memory::desc flat(const dsk_tensor_desc& t) { return plain(Dims{numel(t)}); }

Eltwise algorithm_of(const KernelArgs& args, const std::string& name) {
    const std::optional<Eltwise> e = eltwise_for(name, args.attrs());
    if (!e) args.fail("activation \"" + name + "\" has no oneDNN eltwise algorithm here");
    return *e;
}

struct EltwisePlan {
    dnnl::eltwise_forward primitive;
    memory::desc data;
};

void activation(const KernelArgs& args) {
    const ThreadsFor threads(numel(args.input(0)));
    auto plan = cached<EltwisePlan>(cache_key(args), [&] {
        const Eltwise e = algorithm_of(args, args.op());
        args.expect_output_shape(0, shape_of(args.input(0)));
        return with_dnnl(args, "creating the primitive", [&] {
            const memory::desc data = flat(args.input(0));
            const dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference,
                                                   e.algorithm, data, e.alpha, e.beta);
            return EltwisePlan{
                dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(desc, engine())), data};
        });
    });
    if (numel(args.input(0)) == 0) return;
    execute(args, plan->primitive,
            {{DNNL_ARG_SRC, wrap(plan->data, args.in(0))},
             {DNNL_ARG_DST, wrap(plan->data, args.out(0))}});
}

struct EltwiseGradPlan {
    dnnl::eltwise_backward primitive;
    memory::desc data;
};

// dY, X -> dX = dY * f'(X)
void activation_grad(const KernelArgs& args) {
    const ThreadsFor threads(numel(args.input(0)));
    auto plan = cached<EltwiseGradPlan>(cache_key(args), [&] {
        const std::string name = args.attrs().get_string("activation", "");
        if (name == "Neg") args.fail("Neg has no ActivationGrad (its gradient is Neg of dY)");
        const Eltwise e = algorithm_of(args, name);
        if (shape_of(args.input(0)) != shape_of(args.input(1)))
            args.fail("dY and X must have the same shape");
        args.expect_output_shape(0, shape_of(args.input(1)));
        return with_dnnl(args, "creating the primitive", [&] {
            const memory::desc data = flat(args.input(1));
            const dnnl::eltwise_forward::primitive_desc hint(
                dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_training, e.algorithm, data,
                                            e.alpha, e.beta),
                engine());
            const dnnl::eltwise_backward::desc desc(e.algorithm, data, data, e.alpha, e.beta);
            return EltwiseGradPlan{
                dnnl::eltwise_backward(dnnl::eltwise_backward::primitive_desc(desc, engine(), hint)),
                data};
        });
    });
    if (numel(args.input(1)) == 0) return;
    execute(args, plan->primitive,
            {{DNNL_ARG_DIFF_DST, wrap(plan->data, args.in(0))},
             {DNNL_ARG_SRC, wrap(plan->data, args.in(1))},
             {DNNL_ARG_DIFF_SRC, wrap(plan->data, args.out(0))}});
}

bool op_has_algorithm(const dsk_node_view* node, const dsk_tensor_desc* /*tensors*/) {
    return accepts_if([&] { return eltwise_for(node->op, Attrs(node)).has_value(); });
}

bool grad_has_algorithm(const dsk_node_view* node, const dsk_tensor_desc* /*tensors*/) {
    return accepts_if([&] {
        const Attrs attrs(node);
        const std::string name = attrs.get_string("activation", "");
        return name != "Neg" && eltwise_for(name, attrs).has_value();
    });
}

const KernelDef kEltwiseKernels[] = {
    kernel("Relu", {F32}, {F32}, activation, op_has_algorithm),
    kernel("Sigmoid", {F32}, {F32}, activation, op_has_algorithm),
    kernel("Tanh", {F32}, {F32}, activation, op_has_algorithm),
    kernel("Gelu", {F32}, {F32}, activation, op_has_algorithm),
    kernel("Silu", {F32}, {F32}, activation, op_has_algorithm),
    kernel("HardSwish", {F32}, {F32}, activation, op_has_algorithm),
    kernel("Neg", {F32}, {F32}, activation, op_has_algorithm),
    kernel("ActivationGrad", {F32, F32}, {F32}, activation_grad, grad_has_algorithm),
};

}  // namespace

std::span<const KernelDef> eltwise_kernels() { return kEltwiseKernels; }

}  // namespace dsk::onednn
