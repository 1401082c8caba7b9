// shape_kernels.cpp - Reshape and Flatten (the same bytes: a copy on the device, none when the
// session hands both the same memory); Transpose, Slice, SliceGrad and Concat as strided copies
// of 32-bit elements (strided_copy.comp).
#include <algorithm>
#include <string>

#include "kernel_table.h"
#include "strided_dims.h"

namespace dsk::vulkan {
namespace {

constexpr size_t kCopyRank = 6;  // strided_copy.comp's dimensions

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

// One strided copy: `dims` holds the index space with X's strides (operand 0) and Y's (1).
struct StridedCopy {
    StridedDims dims{2};
    int64_t src_base = 0, dst_base = 0;
};

bool copy_fits(StridedCopy c) {
    c.dims.collapse();
    return c.dims.rank() <= kCopyRank;
}

void record_copy(const KernelArgs& args, StridedCopy c, const dsk_tensor_desc& x, const dsk_tensor_desc& y) {
    c.dims.collapse();
    if (c.dims.rank() > kCopyRank)
        args.fail("the copy needs " + std::to_string(c.dims.rank()) + " dimensions after merging, the shader has " +
                  std::to_string(kCopyRank));
    int64_t n = 1;
    for (int64_t e : c.dims.extent) n *= e;
    if (n == 0) return;
    std::vector<uint32_t> params = {u32(args, n, "elements"), static_cast<uint32_t>(c.dims.rank()),
                                    u32(args, c.src_base, "offset"), u32(args, c.dst_base, "offset")};
    for (int k = 0; k < 3; ++k)
        for (size_t d = 0; d < kCopyRank; ++d) {
            const bool real = d < c.dims.rank();
            const int64_t v = k == 0 ? (real ? c.dims.extent[d] : 1) : (real ? c.dims.strides[k - 1][d] : 0);
            params.push_back(u32(args, v, "extent or stride"));
        }
    args.dispatch_items("strided_copy", {&x, &y}, {}, params, static_cast<uint64_t>(n));
}

bool four_byte(const dsk_tensor_desc& t) { return dtype_size(t.dtype) == 4; }

//----------------------------------------------------------------------------------------------
// Transpose
//----------------------------------------------------------------------------------------------

std::vector<int64_t> permutation(const Attrs& attrs, uint32_t ndim) {
    std::vector<int64_t> reversed(ndim);
    for (uint32_t d = 0; d < ndim; ++d) reversed[d] = ndim - 1 - d;
    std::vector<int64_t> perm = attrs.get_ints("perm", reversed);
    std::vector<bool> seen(ndim, false);
    if (perm.size() != ndim) return {};
    for (int64_t& p : perm) {
        if (p < 0) p += ndim;
        if (p < 0 || p >= ndim || seen[static_cast<size_t>(p)]) return {};
        seen[static_cast<size_t>(p)] = true;
    }
    return perm;
}

// Y's dimensions in order, with X's strides and Y's (contiguous).
StridedCopy transpose_copy(const dsk_tensor_desc& x, const std::vector<int64_t>& perm) {
    const std::vector<int64_t> strides = contiguous_strides(shape_of(x));
    std::vector<int64_t> out_shape;
    for (int64_t p : perm) out_shape.push_back(x.shape[p]);
    const std::vector<int64_t> out_strides = contiguous_strides(out_shape);
    StridedCopy c;
    for (size_t d = 0; d < perm.size(); ++d)
        c.dims.add(out_shape[d], {strides[static_cast<size_t>(perm[d])], out_strides[d]});
    return c;
}

bool transpose_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    try {
        const std::vector<int64_t> perm = permutation(Attrs(node), tensors[0].ndim);
        return four_byte(tensors[0]) && perm.size() == tensors[0].ndim && copy_fits(transpose_copy(tensors[0], perm));
    } catch (...) {
        return false;
    }
}

void transpose(const KernelArgs& args) {
    const dsk_tensor_desc& x = args.input(0);
    const std::vector<int64_t> perm = permutation(args.attrs(), x.ndim);
    if (perm.size() != x.ndim)
        args.fail("attribute 'perm' is not a permutation of the input's " + std::to_string(x.ndim) + " dimensions");
    std::vector<int64_t> out_shape;
    for (int64_t p : perm) out_shape.push_back(x.shape[p]);
    args.expect_output_shape(0, out_shape);
    record_copy(args, transpose_copy(x, perm), x, args.output(0));
}

//----------------------------------------------------------------------------------------------
// Slice, SliceGrad
//----------------------------------------------------------------------------------------------

// The region of an input of `shape` that Slice reads (SliceGrad writes), as docs/ops.md and the
// cpu backend resolve it: negative starts/ends count from the end, both clamp to [0, dim],
// steps > 0. "" or what is wrong.
std::string slice_region(const Attrs& attrs, const std::vector<int64_t>& shape, StridedCopy* region,
                         std::vector<int64_t>* out_shape, bool region_is_source) {
    const int64_t ndim = static_cast<int64_t>(shape.size());
    const std::vector<int64_t> starts = attrs.get_ints("starts", {});
    const std::vector<int64_t> ends = attrs.get_ints("ends", {});
    if (starts.size() != ends.size()) return "attributes 'starts' and 'ends' must have the same length";
    std::vector<int64_t> axes(starts.size());
    for (size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<int64_t>(i);
    axes = attrs.get_ints("axes", axes);
    const std::vector<int64_t> steps = attrs.get_ints("steps", std::vector<int64_t>(starts.size(), 1));
    if (axes.size() != starts.size() || steps.size() != starts.size())
        return "attributes 'axes' and 'steps' must have as many entries as 'starts'";
    std::vector<int64_t> begin(shape.size(), 0), step(shape.size(), 1);
    *out_shape = shape;
    std::vector<bool> seen(shape.size(), false);
    for (size_t i = 0; i < starts.size(); ++i) {
        int64_t a = axes[i] < 0 ? axes[i] + ndim : axes[i];
        if (a < 0 || a >= ndim) return "attribute 'axes' has " + std::to_string(axes[i]) + ", out of range";
        if (seen[static_cast<size_t>(a)]) return "attribute 'axes' repeats axis " + std::to_string(a);
        seen[static_cast<size_t>(a)] = true;
        if (steps[i] <= 0) return "attribute 'steps' must be positive";
        const int64_t dim = shape[static_cast<size_t>(a)];
        auto clamp = [dim](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + dim : v, 0, dim); };
        const int64_t s = clamp(starts[i]), e = clamp(ends[i]);
        begin[static_cast<size_t>(a)] = s;
        step[static_cast<size_t>(a)] = steps[i];
        (*out_shape)[static_cast<size_t>(a)] = e > s ? (e - s + steps[i] - 1) / steps[i] : 0;
    }
    const std::vector<int64_t> strides = contiguous_strides(shape);
    const std::vector<int64_t> out_strides = contiguous_strides(*out_shape);
    int64_t base = 0;
    for (size_t d = 0; d < shape.size(); ++d) {
        const int64_t strided = strides[d] * step[d];
        if (region_is_source) region->dims.add((*out_shape)[d], {strided, out_strides[d]});
        else region->dims.add((*out_shape)[d], {out_strides[d], strided});
        base += begin[d] * strides[d];
    }
    (region_is_source ? region->src_base : region->dst_base) = base;
    return {};
}

void slice(const KernelArgs& args) {
    const dsk_tensor_desc& x = args.input(0);
    StridedCopy c;
    std::vector<int64_t> out_shape;
    const std::string why = slice_region(args.attrs(), shape_of(x), &c, &out_shape, true);
    if (!why.empty()) args.fail(why);
    args.expect_output_shape(0, out_shape);
    record_copy(args, c, x, args.output(0));
}

void slice_grad(const KernelArgs& args) {
    const std::vector<int64_t> in_shape = args.attrs().require_ints("input_shape");
    args.expect_output_shape(0, in_shape);
    StridedCopy c;
    std::vector<int64_t> out_shape;
    const std::string why = slice_region(args.attrs(), in_shape, &c, &out_shape, false);
    if (!why.empty()) args.fail(why);
    const dsk_tensor_desc& dy = args.input(0);
    if (shape_of(dy) != out_shape)
        args.fail("dY " + shape_text(shape_of(dy)) + " does not have the slice's shape " + shape_text(out_shape));
    const BufferRange dx = args.range(args.output(0));
    args.queue().fill(*dx.buffer, dx.offset, dx.size, 0);  // 0.0f is all zero bits
    record_copy(args, c, dy, args.output(0));
}

bool slice_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    try {
        const Attrs attrs(node);
        const bool grad = std::string(node->op) == "SliceGrad";
        const std::vector<int64_t> shape = grad ? attrs.require_ints("input_shape") : shape_of(tensors[0]);
        StridedCopy c;
        std::vector<int64_t> out_shape;
        return four_byte(tensors[0]) && slice_region(attrs, shape, &c, &out_shape, !grad).empty() && copy_fits(c);
    } catch (...) {
        return false;
    }
}

//----------------------------------------------------------------------------------------------
// Concat: each input copied into its region of the output
//----------------------------------------------------------------------------------------------

StridedCopy concat_region(const dsk_tensor_desc& input, const std::vector<int64_t>& out_shape, int64_t axis,
                          int64_t axis_offset) {
    const std::vector<int64_t> in_strides = contiguous_strides(shape_of(input));
    const std::vector<int64_t> out_strides = contiguous_strides(out_shape);
    StridedCopy c;
    for (uint32_t d = 0; d < input.ndim; ++d) c.dims.add(input.shape[d], {in_strides[d], out_strides[d]});
    c.dst_base = axis_offset * out_strides[static_cast<size_t>(axis)];
    return c;
}

void concat(const KernelArgs& args) {
    if (!args.attrs().has("axis")) args.fail("attribute 'axis' is required");
    const dsk_tensor_desc& first = args.input(0);
    const int64_t axis = args.axis(args.attrs().get_int("axis", 0), first.ndim);
    std::vector<int64_t> out_shape = shape_of(first);
    out_shape[static_cast<size_t>(axis)] = 0;
    for (size_t i = 0; i < args.input_count(); ++i) {
        const dsk_tensor_desc& t = args.input(i);
        if (t.dtype != first.dtype || t.ndim != first.ndim)
            args.fail("input " + std::to_string(i) + " differs from input 0 in dtype or rank");
        for (int64_t k = 0; k < first.ndim; ++k)
            if (k != axis && t.shape[k] != first.shape[k])
                args.fail("input " + std::to_string(i) + " " + shape_text(shape_of(t)) + " differs from input 0 " +
                          shape_text(shape_of(first)) + " outside axis " + std::to_string(axis));
        out_shape[static_cast<size_t>(axis)] += t.shape[axis];
    }
    args.expect_output_shape(0, out_shape);
    int64_t offset = 0;
    for (size_t i = 0; i < args.input_count(); ++i) {
        record_copy(args, concat_region(args.input(i), out_shape, axis, offset), args.input(i), args.output(0));
        offset += args.input(i).shape[axis];
    }
}

bool concat_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    try {
        const int64_t ndim = tensors[0].ndim;
        int64_t axis = Attrs(node).get_int("axis", 0);
        if (axis < 0) axis += ndim;
        if (axis < 0 || axis >= std::max<int64_t>(ndim, 1) || !four_byte(tensors[0])) return false;
        const std::vector<int64_t> out_shape = shape_of(tensors[node->input_count]);
        if (static_cast<int64_t>(out_shape.size()) != ndim) return false;
        for (size_t i = 0; i < node->input_count; ++i)
            if (tensors[i].ndim != ndim || !copy_fits(concat_region(tensors[i], out_shape, axis, 0))) return false;
        return true;
    } catch (...) {
        return false;
    }
}

const KernelDef kShapeKernels[] = {
    {"Reshape", 1, 1, 1, 1, {ANY}, {ANY}, reshape},
    {"Flatten", 1, 1, 1, 1, {ANY}, {ANY}, reshape},
    {"Transpose", 1, 1, 1, 1, {ANY}, {ANY}, transpose, transpose_fits},
    {"Slice", 1, 1, 1, 1, {ANY}, {ANY}, slice, slice_fits},
    {"SliceGrad", 1, 1, 1, 1, {F32}, {F32}, slice_grad, slice_fits},
    {"Concat", 1, 64, 1, 1, {ANY}, {ANY}, concat, concat_fits},
};

}  // namespace

std::span<const KernelDef> shape_kernels() { return kShapeKernels; }

}  // namespace dsk::vulkan
