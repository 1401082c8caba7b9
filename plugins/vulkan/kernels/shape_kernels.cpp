// shape_kernels.cpp - Reshape and Flatten (the same bytes: a copy on the device, none when the
// session hands both the same memory) and Transpose (transpose.comp).
#include <string>

#include "kernel_table.h"
#include "strided_dims.h"

namespace dsk::vulkan {
namespace {

constexpr size_t kTransposeRank = 6;

void reshape(const KernelArgs& args) {
    const dsk_tensor_desc& x = args.input(0);
    const dsk_tensor_desc& y = args.output(0);
    if (numel(x) != numel(y) || x.dtype != y.dtype)
        args.fail("input " + shape_text(shape_of(x)) + " and output " + shape_text(shape_of(y)) +
                  " differ in size or dtype");
    const BufferRange from = args.range(x);
    const BufferRange to = args.range(y);
    args.queue().copy_on_device(*from.buffer, from.offset, *to.buffer, to.offset, from.size);
}

std::vector<int64_t> permutation(const Attrs& attrs, uint32_t ndim) {
    std::vector<int64_t> reversed(ndim);
    for (uint32_t d = 0; d < ndim; ++d) reversed[d] = ndim - 1 - d;
    std::vector<int64_t> perm = attrs.get_ints("perm", reversed);
    std::vector<bool> seen(ndim, false);
    if (perm.size() != ndim) return {};
    for (int64_t p : perm) {
        if (p < 0 || p >= ndim || seen[static_cast<size_t>(p)]) return {};
        seen[static_cast<size_t>(p)] = true;
    }
    return perm;
}

// Y's dimensions with X's strides, merged where X is walked contiguously.
StridedDims transpose_dims(const dsk_tensor_desc& x, const std::vector<int64_t>& perm) {
    const std::vector<int64_t> strides = contiguous_strides(shape_of(x));
    StridedDims dims(1);
    for (int64_t p : perm) dims.add(x.shape[p], {strides[static_cast<size_t>(p)]});
    dims.collapse();
    return dims;
}

bool transpose_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    try {
        const std::vector<int64_t> perm = permutation(Attrs(node), tensors[0].ndim);
        return perm.size() == tensors[0].ndim && transpose_dims(tensors[0], perm).rank() <= kTransposeRank;
    } catch (...) {
        return false;
    }
}

void transpose(const KernelArgs& args) {
    const dsk_tensor_desc& x = args.input(0);
    const std::vector<int64_t> perm = permutation(args.attrs(), x.ndim);
    if (perm.size() != x.ndim) args.fail("attribute 'perm' is not a permutation of the input's " +
                                         std::to_string(x.ndim) + " dimensions");
    std::vector<int64_t> out_shape;
    for (int64_t p : perm) out_shape.push_back(x.shape[p]);
    args.expect_output_shape(0, out_shape);
    const StridedDims dims = transpose_dims(x, perm);
    if (dims.rank() > kTransposeRank)
        args.fail("the permutation needs " + std::to_string(dims.rank()) + " dimensions, the shader has " +
                  std::to_string(kTransposeRank));
    const int64_t n = numel(x);
    std::vector<uint32_t> params = {u32(args, n, "elements"), static_cast<uint32_t>(dims.rank())};
    std::vector<uint32_t> shape(kTransposeRank, 1), stride(kTransposeRank, 0);
    for (size_t d = 0; d < dims.rank(); ++d) {
        shape[d] = u32(args, dims.extent[d], "extent");
        stride[d] = u32(args, dims.strides[0][d], "stride");
    }
    params.insert(params.end(), shape.begin(), shape.end());
    params.insert(params.end(), stride.begin(), stride.end());
    args.dispatch_items("transpose", {&x, &args.output(0)}, {}, params, static_cast<uint64_t>(n));
}

const KernelDef kShapeKernels[] = {
    {"Reshape", 1, 1, 1, 1, {ANY}, {ANY}, reshape},
    {"Flatten", 1, 1, 1, 1, {ANY}, {ANY}, reshape},
    {"Transpose", 1, 1, 1, 1, {F32}, {F32}, transpose, transpose_fits},
};

}  // namespace

std::span<const KernelDef> shape_kernels() { return kShapeKernels; }

}  // namespace dsk::vulkan
