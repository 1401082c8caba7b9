// reduce_kernels.cpp - ReduceSum, ReduceMean, ReduceMax, SumToShape (reduce.comp) and
// ReduceGrad: "sum" and "mean" with the broadcast mode of binary.comp, "max" with
// reduce_max_grad.comp.
#include <string>

#include "kernel_table.h"
#include "strided_dims.h"

namespace dsk::vulkan {
namespace {

constexpr size_t kReduceRank = 4;

// Which dimensions of `shape` a Reduce* node reduces (all when `axes` is absent or empty), and
// the output shape it implies. Throws dsk::Error for a bad axis.
std::vector<bool> reduced_axes(const Attrs& attrs, const std::vector<int64_t>& shape,
                               std::vector<int64_t>* out_shape) {
    const int64_t ndim = static_cast<int64_t>(shape.size());
    const std::vector<int64_t> axes = attrs.get_ints("axes", {});
    std::vector<bool> reduce(shape.size(), axes.empty());
    for (int64_t a : axes) {
        if (a < -ndim || a >= std::max<int64_t>(ndim, 1))
            throw Error(DSK_INVALID_ARGUMENT, "attribute 'axes' has " + std::to_string(a) +
                                                  ", out of range for rank " + std::to_string(ndim));
        reduce[static_cast<size_t>(a < 0 ? a + ndim : a)] = true;
    }
    const bool keepdims = attrs.get_int("keepdims", 1) != 0;
    out_shape->clear();
    for (size_t k = 0; k < shape.size(); ++k) {
        if (!reduce[k]) out_shape->push_back(shape[k]);
        else if (keepdims) out_shape->push_back(1);
    }
    return reduce;
}

// Kept and reduced dimensions of X, each merged where contiguous.
struct ReducePlan {
    StridedDims keep{1}, red{1};
    int64_t count = 1;  // reduced elements per output
};

ReducePlan plan_reduction(const std::vector<int64_t>& shape, const std::vector<bool>& reduce) {
    ReducePlan plan;
    const std::vector<int64_t> strides = contiguous_strides(shape);
    for (size_t d = 0; d < shape.size(); ++d) {
        if (reduce[d]) {
            plan.red.add(shape[d], {strides[d]});
            plan.count *= shape[d];
        } else {
            plan.keep.add(shape[d], {strides[d]});
        }
    }
    plan.keep.collapse();
    plan.red.collapse();
    return plan;
}

bool plan_fits(const ReducePlan& plan) {
    return plan.keep.rank() <= kReduceRank && plan.red.rank() <= kReduceRank;
}

void record_reduce(const KernelArgs& args, const ReducePlan& plan, int32_t mode, float scale) {
    if (!plan_fits(plan))
        args.fail("the reduction needs more than " + std::to_string(kReduceRank) +
                  " kept or reduced dimensions after merging");
    const dsk_tensor_desc& x = args.input(0);
    const dsk_tensor_desc& y = args.output(0);
    const int64_t outputs = numel(y);
    std::vector<uint32_t> params = {u32(args, outputs, "outputs")};
    for (int64_t v : plan.keep.padded_extent(kReduceRank)) params.push_back(u32(args, v, "extent"));
    for (int64_t v : plan.keep.padded_strides(0, kReduceRank)) params.push_back(u32(args, v, "stride"));
    for (int64_t v : plan.red.padded_extent(kReduceRank)) params.push_back(u32(args, v, "extent"));
    for (int64_t v : plan.red.padded_strides(0, kReduceRank)) params.push_back(u32(args, v, "stride"));
    params.push_back(float_bits(scale));
    args.dispatch_items("reduce", {&x, &y}, {mode}, params, static_cast<uint64_t>(outputs));
}

void reduce_op(const KernelArgs& args) {
    const std::vector<int64_t> shape = shape_of(args.input(0));
    std::vector<int64_t> out_shape;
    const std::vector<bool> flags = reduced_axes(args.attrs(), shape, &out_shape);
    args.expect_output_shape(0, out_shape);
    const ReducePlan plan = plan_reduction(shape, flags);
    const std::string op = args.op();
    if (op == "ReduceMax") {
        record_reduce(args, plan, 1, 1.0f);
    } else {
        // The mean of nothing is NaN, as on the cpu: 0 * (1 / 0).
        const float scale = op == "ReduceMean" ? static_cast<float>(1.0 / static_cast<double>(plan.count)) : 1.0f;
        record_reduce(args, plan, 0, scale);
    }
}

bool reduce_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    try {
        const std::vector<int64_t> shape = shape_of(tensors[0]);
        std::vector<int64_t> out_shape;
        return plan_fits(plan_reduction(shape, reduced_axes(Attrs(node), shape, &out_shape)));
    } catch (...) {
        return false;
    }
}

// SumToShape: the axes come from the target shape (right-aligned; leading dimensions go).
std::vector<bool> sum_to_shape_axes(const std::vector<int64_t>& shape, const std::vector<int64_t>& target,
                                    std::string* why) {
    if (target.size() > shape.size()) {
        *why = "target shape " + shape_text(target) + " has more dimensions than the input " + shape_text(shape);
        return {};
    }
    const size_t lead = shape.size() - target.size();
    std::vector<bool> reduce(shape.size(), false);
    for (size_t k = 0; k < shape.size(); ++k) {
        if (k < lead) {
            reduce[k] = true;
            continue;
        }
        const int64_t t = target[k - lead];
        if (t != shape[k] && t != 1) {
            *why = "input " + shape_text(shape) + " does not broadcast from target shape " + shape_text(target);
            return {};
        }
        reduce[k] = t == 1 && shape[k] != 1;
    }
    return reduce;
}

void sum_to_shape(const KernelArgs& args) {
    const std::vector<int64_t> shape = shape_of(args.input(0));
    const std::vector<int64_t> target = args.attrs().require_ints("shape");
    std::string why;
    const std::vector<bool> flags = sum_to_shape_axes(shape, target, &why);
    if (!why.empty()) args.fail(why);
    args.expect_output_shape(0, target);
    record_reduce(args, plan_reduction(shape, flags), 0, 1.0f);
}

bool sum_to_shape_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    try {
        std::string why;
        const std::vector<int64_t> shape = shape_of(tensors[0]);
        const std::vector<bool> flags = sum_to_shape_axes(shape, Attrs(node).require_ints("shape"), &why);
        return why.empty() && plan_fits(plan_reduction(shape, flags));
    } catch (...) {
        return false;
    }
}

// ReduceGrad(dY, X, Y): dX = dY broadcast back over the reduced axes (/ count for "mean").
// The index space is X's, with dY's stride for each dimension: 0 where reduced, else its place
// among the kept ones.
StridedDims reduce_grad_dims(const std::vector<int64_t>& shape, const std::vector<bool>& reduce,
                             int64_t* out_count) {
    std::vector<int64_t> dy_strides(shape.size(), 0);
    int64_t running = 1;
    *out_count = 1;
    for (size_t d = shape.size(); d-- > 0;) {
        if (reduce[d]) {
            *out_count *= shape[d];
            continue;
        }
        dy_strides[d] = running;
        running *= shape[d];
    }
    StridedDims dims(1);
    for (size_t d = 0; d < shape.size(); ++d) dims.add(shape[d], {dy_strides[d]});
    dims.collapse();
    return dims;
}

void reduce_grad(const KernelArgs& args) {
    const std::string mode = args.attrs().get_string("mode", "sum");
    if (mode != "sum" && mode != "mean" && mode != "max")
        args.fail("attribute 'mode' = \"" + mode + "\" is not one of \"sum\", \"mean\", \"max\"");
    const dsk_tensor_desc& dy = args.input(0);
    const std::vector<int64_t> shape = shape_of(args.input(1));
    std::vector<int64_t> out_shape;
    const std::vector<bool> flags = reduced_axes(args.attrs(), shape, &out_shape);
    int64_t kept = 1;
    for (int64_t v : out_shape) kept *= v;
    if (numel(dy) != kept || numel(args.input(2)) != kept)
        args.fail("dY " + shape_text(shape_of(dy)) + " and Y " + shape_text(shape_of(args.input(2))) +
                  " must match the reduced shape " + shape_text(out_shape));
    args.expect_output_shape(0, shape);
    const dsk_tensor_desc& dx = args.output(0);
    if (mode == "max") {
        // One invocation per group walks it: reduce.comp's index space.
        const ReducePlan plan = plan_reduction(shape, flags);
        if (!plan_fits(plan)) args.fail("the reduction needs more than 4 kept or reduced dimensions after merging");
        std::vector<uint32_t> params = {u32(args, kept, "outputs")};
        for (int64_t v : plan.keep.padded_extent(kReduceRank)) params.push_back(u32(args, v, "extent"));
        for (int64_t v : plan.keep.padded_strides(0, kReduceRank)) params.push_back(u32(args, v, "stride"));
        for (int64_t v : plan.red.padded_extent(kReduceRank)) params.push_back(u32(args, v, "extent"));
        for (int64_t v : plan.red.padded_strides(0, kReduceRank)) params.push_back(u32(args, v, "stride"));
        args.dispatch_items("reduce_max_grad", {&dy, &args.input(1), &args.input(2), &dx}, {}, params,
                            static_cast<uint64_t>(kept));
        return;
    }
    int64_t count = 1;
    const StridedDims dims = reduce_grad_dims(shape, flags, &count);
    if (dims.rank() > kReduceRank) args.fail("the broadcast back needs more than 4 dimensions after merging");
    const int64_t n = numel(dx);
    std::vector<uint32_t> params = {u32(args, n, "elements")};
    for (int64_t v : dims.padded_extent(kReduceRank)) params.push_back(u32(args, v, "extent"));
    for (int64_t v : dims.padded_strides(0, kReduceRank)) params.push_back(u32(args, v, "stride"));
    for (size_t i = 0; i < kReduceRank; ++i) params.push_back(0);  // B's strides: B is not read
    params.push_back(float_bits(mode == "mean" ? static_cast<float>(1.0 / static_cast<double>(count)) : 1.0f));
    // binary.comp's mode 4 (Y = A * scale), four elements per invocation.
    args.dispatch_items("binary", {&dy, &dy, &dx}, {4}, params, (static_cast<uint64_t>(n) + 3) / 4);
}

bool reduce_grad_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    try {
        const Attrs attrs(node);
        const std::string mode = attrs.get_string("mode", "sum");
        const std::vector<int64_t> shape = shape_of(tensors[1]);
        std::vector<int64_t> out_shape;
        const std::vector<bool> flags = reduced_axes(attrs, shape, &out_shape);
        if (mode == "max") return plan_fits(plan_reduction(shape, flags));
        int64_t count = 1;
        return (mode == "sum" || mode == "mean") && reduce_grad_dims(shape, flags, &count).rank() <= kReduceRank;
    } catch (...) {
        return false;
    }
}

const KernelDef kReduceKernels[] = {
    {"ReduceSum", 1, 1, 1, 1, {F32}, {F32}, reduce_op, reduce_fits},
    {"ReduceMean", 1, 1, 1, 1, {F32}, {F32}, reduce_op, reduce_fits},
    {"ReduceMax", 1, 1, 1, 1, {F32}, {F32}, reduce_op, reduce_fits},
    {"SumToShape", 1, 1, 1, 1, {F32}, {F32}, sum_to_shape, sum_to_shape_fits},
    {"ReduceGrad", 3, 3, 1, 1, {F32, F32, F32}, {F32}, reduce_grad, reduce_grad_fits},
};

}  // namespace

std::span<const KernelDef> reduce_kernels() { return kReduceKernels; }

}  // namespace dsk::vulkan
