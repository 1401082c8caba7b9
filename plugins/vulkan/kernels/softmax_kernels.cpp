// softmax_kernels.cpp - Softmax, LogSoftmax and their gradients (softmax.comp,
// softmax_grad.comp), SoftmaxCrossEntropyLoss (log-softmax, then cross_entropy.comp) and its
// gradient (cross_entropy_grad.comp).
#include <string>

#include "kernel_table.h"

namespace dsk::vulkan {
namespace {

// X viewed as [outer, len, inner] around `axis`.
struct Rows {
    uint32_t outer, len, inner;
};

Rows rows_around(const KernelArgs& args, const dsk_tensor_desc& x, int64_t axis_attr) {
    const int64_t axis = args.axis(axis_attr, x.ndim);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
    for (int64_t d = axis + 1; d < x.ndim; ++d) inner *= x.shape[d];
    const int64_t len = x.ndim == 0 ? 1 : x.shape[axis];
    return {u32(args, outer, "rows"), u32(args, len, "axis length"), u32(args, inner, "inner size")};
}

void softmax(const KernelArgs& args) {
    const dsk_tensor_desc& x = args.input(0);
    args.expect_output_shape(0, shape_of(x));
    const Rows r = rows_around(args, x, args.attrs().get_int("axis", -1));
    const uint32_t params[] = {r.outer, r.len, r.inner};
    const int32_t mode = std::string(args.op()) == "LogSoftmax" ? 1 : 0;
    args.dispatch_items("softmax", {&x, &args.output(0)}, {mode}, params, uint64_t{r.outer} * r.inner);
}

void softmax_grad(const KernelArgs& args) {
    const dsk_tensor_desc& dy = args.input(0);
    const dsk_tensor_desc& y = args.input(1);
    if (shape_of(dy) != shape_of(y))
        args.fail("dY " + shape_text(shape_of(dy)) + " and Y " + shape_text(shape_of(y)) + " differ");
    args.expect_output_shape(0, shape_of(y));
    const Rows r = rows_around(args, y, args.attrs().get_int("axis", -1));
    const uint32_t params[] = {r.outer, r.len, r.inner};
    const int32_t mode = std::string(args.op()) == "LogSoftmaxGrad" ? 1 : 0;
    args.dispatch_items("softmax_grad", {&dy, &y, &args.output(0)}, {mode}, params,
                        uint64_t{r.outer} * r.inner);
}

// 1/N for "mean", 1 for "sum".
float reduction_scale(const KernelArgs& args, int64_t rows) {
    const std::string reduction = args.attrs().get_string("reduction", "mean");
    if (reduction == "sum") return 1.0f;
    if (reduction != "mean")
        args.fail("attribute 'reduction' = \"" + reduction + "\" is not one of \"mean\", \"sum\"");
    return static_cast<float>(1.0 / static_cast<double>(rows));
}

void check_labels(const KernelArgs& args, const dsk_tensor_desc& labels, int64_t rows) {
    if (labels.ndim != 1 || labels.shape[0] != rows)
        args.fail("labels " + shape_text(shape_of(labels)) + " must have shape [" + std::to_string(rows) + "]");
}

// SoftmaxCrossEntropyLoss(scores [N, C], labels [N]) -> loss [], [log_prob [N, C]]: the loss
// straight from the scores; log_prob (a second dispatch) only when the node has that output.
void cross_entropy(const KernelArgs& args) {
    const dsk_tensor_desc& scores = args.input(0);
    if (scores.ndim != 2) args.fail("scores " + shape_text(shape_of(scores)) + " must be [N, C]");
    const int64_t n = scores.shape[0], c = scores.shape[1];
    check_labels(args, args.input(1), n);
    args.expect_output_shape(0, {});
    const uint32_t rows[] = {u32(args, n, "rows"), u32(args, c, "classes"), 1};
    if (args.has_output(1)) {
        args.expect_output_shape(1, {n, c});
        args.dispatch_items("softmax", {&scores, &args.output(1)}, {1}, rows, static_cast<uint64_t>(n));
    }
    const uint32_t params[] = {rows[0], rows[1], float_bits(reduction_scale(args, n))};
    args.dispatch("cross_entropy", {&scores, &args.input(1), &args.output(0)}, {}, params, 1);
}

void cross_entropy_grad(const KernelArgs& args) {
    const dsk_tensor_desc& dloss = args.input(0);
    const dsk_tensor_desc& log_prob = args.input(1);
    if (numel(dloss) != 1) args.fail("dloss " + shape_text(shape_of(dloss)) + " must have one element");
    if (log_prob.ndim != 2) args.fail("log_prob " + shape_text(shape_of(log_prob)) + " must be [N, C]");
    const int64_t n = log_prob.shape[0], c = log_prob.shape[1];
    check_labels(args, args.input(2), n);
    args.expect_output_shape(0, {n, c});
    const uint32_t params[] = {u32(args, n, "rows"), u32(args, c, "classes"), float_bits(reduction_scale(args, n))};
    args.dispatch_items("cross_entropy_grad", {&dloss, &log_prob, &args.input(2), &args.output(0)}, {},
                        params, static_cast<uint64_t>(n * c));
}

const KernelDef kSoftmaxKernels[] = {
    {"Softmax", 1, 1, 1, 1, {F32}, {F32}, softmax},
    {"LogSoftmax", 1, 1, 1, 1, {F32}, {F32}, softmax},
    {"SoftmaxGrad", 2, 2, 1, 1, {F32, F32}, {F32}, softmax_grad},
    {"LogSoftmaxGrad", 2, 2, 1, 1, {F32, F32}, {F32}, softmax_grad},
    {"SoftmaxCrossEntropyLoss", 2, 2, 1, 2, {F32, I64}, {F32, F32}, cross_entropy},
    {"SoftmaxCrossEntropyLossGrad", 3, 3, 1, 1, {F32, F32, I64}, {F32}, cross_entropy_grad},
};

}  // namespace

std::span<const KernelDef> softmax_kernels() { return kSoftmaxKernels; }

}  // namespace dsk::vulkan
