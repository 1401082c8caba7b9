// gather_kernels.cpp - Gather (axis 0: embedding lookup, any 4-byte dtype) and GatherGrad
// (gather.comp). GatherGrad gathers rather than scatters (no float atomics in core Vulkan), at
// O(positions) per element of dData; supports_op refuses it beyond kMaxGatherGradWork, where
// a cpu placement is the better plan.
#include <string>

#include "kernel_table.h"

namespace dsk::vulkan {
namespace {

constexpr int64_t kMaxGatherGradWork = int64_t{1} << 26;  // rows x width x positions

bool axis_zero(const dsk_node_view* node) { return Attrs(node).get_int("axis", 0) == 0; }

void gather(const KernelArgs& args) {
    if (args.attrs().get_int("axis", 0) != 0) args.fail("only axis 0 is supported");
    const dsk_tensor_desc& data = args.input(0);
    const dsk_tensor_desc& indices = args.input(1);
    if (data.ndim < 1) args.fail("data must have at least 1 dimension");
    std::vector<int64_t> out_shape = shape_of(indices);
    for (uint32_t d = 1; d < data.ndim; ++d) out_shape.push_back(data.shape[d]);
    args.expect_output_shape(0, out_shape);
    const int64_t rows = data.shape[0];
    const int64_t width = rows == 0 ? 0 : numel(data) / rows;
    const int64_t positions = numel(indices);
    const uint32_t params[] = {u32(args, positions, "positions"), u32(args, rows, "rows"), u32(args, width, "width")};
    args.dispatch_items("gather", {&data, &indices, &args.output(0)}, {0}, params,
                        static_cast<uint64_t>(positions * width));
}

void gather_grad(const KernelArgs& args) {
    if (args.attrs().get_int("axis", 0) != 0) args.fail("only axis 0 is supported");
    const std::vector<int64_t> data_shape = args.attrs().require_ints("input_shape");
    if (data_shape.empty()) args.fail("attribute 'input_shape' must have at least 1 dimension");
    args.expect_output_shape(0, data_shape);
    const int64_t rows = data_shape[0];
    const int64_t width = rows == 0 ? 0 : numel(args.output(0)) / rows;
    const int64_t positions = numel(args.input(1));
    if (numel(args.input(0)) != positions * width)
        args.fail("dY " + shape_text(shape_of(args.input(0))) + " does not hold one row per index");
    const uint32_t params[] = {u32(args, positions, "positions"), u32(args, rows, "rows"), u32(args, width, "width")};
    args.dispatch_items("gather", {&args.input(0), &args.input(1), &args.output(0)}, {1}, params,
                        static_cast<uint64_t>(rows * width));
}

bool gather_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    try {
        return axis_zero(node) && dtype_size(tensors[0].dtype) == 4;
    } catch (...) {
        return false;
    }
}

bool gather_grad_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    try {
        const std::vector<int64_t> shape = Attrs(node).require_ints("input_shape");
        int64_t elements = 1;
        for (int64_t v : shape) elements *= v;
        return axis_zero(node) && !shape.empty() && elements * numel(tensors[1]) <= kMaxGatherGradWork;
    } catch (...) {
        return false;
    }
}

const KernelDef kGatherKernels[] = {
    {"Gather", 2, 2, 1, 1, {ANY, I64}, {ANY}, gather, gather_fits},
    {"GatherGrad", 2, 2, 1, 1, {F32, I64}, {F32}, gather_grad, gather_grad_fits},
};

}  // namespace

std::span<const KernelDef> gather_kernels() { return kGatherKernels; }

}  // namespace dsk::vulkan
