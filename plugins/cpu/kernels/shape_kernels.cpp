// shape_kernels.cpp - data movement: Reshape, Flatten (copies), Transpose, Concat, Slice and
// SliceGrad. They move elements without looking at them, so they take any dtype with a known
// element size (indices and masks get reshaped too).
//
// Transpose and Slice read a strided view of the input into a contiguous output (gather);
// SliceGrad writes a contiguous dY into a strided view of a zeroed dX (scatter). Views are
// simplified first (size-1 dimensions dropped, contiguous neighbours merged) so that the inner
// loop is as long as possible, and rows of the output are split over the thread pool.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_table.h"

namespace dsk::cpu {
namespace {

// A copy of `bytes` bytes: read once, written once.
dsk::Work copy_work(int64_t bytes) {
    return {0.0, 2.0 * static_cast<double>(bytes)};
}

//----------------------------------------------------------------------------------------------
// Strided views
//----------------------------------------------------------------------------------------------

struct StridedView {
    int ndim = 0;
    int64_t shape[DSK_MAX_DIMS] = {};
    int64_t stride[DSK_MAX_DIMS] = {};  // in elements of the strided side
    int64_t offset = 0;
};

StridedView simplified(const StridedView& view) {
    StridedView out;
    out.offset = view.offset;
    for (int k = 0; k < view.ndim; ++k) {
        if (view.shape[k] == 1) continue;
        if (out.ndim > 0 && out.stride[out.ndim - 1] == view.stride[k] * view.shape[k]) {
            out.shape[out.ndim - 1] *= view.shape[k];
            out.stride[out.ndim - 1] = view.stride[k];
            continue;
        }
        out.shape[out.ndim] = view.shape[k];
        out.stride[out.ndim] = view.stride[k];
        ++out.ndim;
    }
    if (out.ndim == 0) {
        out.ndim = 1;
        out.shape[0] = 1;
        out.stride[0] = 1;
    }
    return out;
}

// Copies between a strided view of `strided` and the contiguous array `dense` (both of element
// type T): gather = true reads the view, false writes it.
template <class T>
void copy_view(const StridedView& raw, T* strided, T* dense, bool gather) {
    const StridedView v = simplified(raw);
    const int inner_dim = v.ndim - 1;
    const int64_t inner = v.shape[inner_dim];
    const int64_t step = v.stride[inner_dim];
    int64_t rows = 1;
    for (int k = 0; k < inner_dim; ++k) rows *= v.shape[k];
    if (rows * inner == 0) return;
    const int64_t row_bytes = inner * static_cast<int64_t>(sizeof(T));
    parallel_for(static_cast<size_t>(rows), copy_work(row_bytes), [&](size_t begin, size_t end) {
        for (size_t row = begin; row < end; ++row) {
            int64_t offset = v.offset, rest = static_cast<int64_t>(row);
            for (int k = inner_dim - 1; k >= 0; --k) {
                offset += rest % v.shape[k] * v.stride[k];
                rest /= v.shape[k];
            }
            T* s = strided + offset;
            T* d = dense + static_cast<int64_t>(row) * inner;
            if (step == 1) {
                if (gather)
                    std::memcpy(d, s, static_cast<size_t>(row_bytes));
                else
                    std::memcpy(s, d, static_cast<size_t>(row_bytes));
            } else if (gather) {
                for (int64_t i = 0; i < inner; ++i) d[i] = s[i * step];
            } else {
                for (int64_t i = 0; i < inner; ++i) s[i * step] = d[i];
            }
        }
    });
}

void copy_view_bytes(size_t element_size, const StridedView& view, void* strided, void* dense,
                     bool gather) {
    switch (element_size) {
        case 1:
            copy_view(view, static_cast<uint8_t*>(strided), static_cast<uint8_t*>(dense), gather);
            break;
        case 2:
            copy_view(view, static_cast<uint16_t*>(strided), static_cast<uint16_t*>(dense), gather);
            break;
        case 4:
            copy_view(view, static_cast<uint32_t*>(strided), static_cast<uint32_t*>(dense), gather);
            break;
        case 8:
            copy_view(view, static_cast<uint64_t*>(strided), static_cast<uint64_t*>(dense), gather);
            break;
        default:
            throw Error(DSK_INTERNAL, "cpu kernel: unsupported element size");
    }
}

std::vector<int64_t> row_major_strides(const std::vector<int64_t>& shape) {
    std::vector<int64_t> strides(shape.size());
    int64_t stride = 1;
    for (size_t k = shape.size(); k-- > 0;) {
        strides[k] = stride;
        stride *= shape[k];
    }
    return strides;
}

size_t element_size(const KernelArgs& args, const dsk_tensor_desc& t) {
    const size_t size = dtype_size(t.dtype);
    if (size == 0) args.fail(std::string("dtype ") + dtype_name(t.dtype) + " has no element size");
    return size;
}

// Parallel memcpy (a no-op when source and destination are the same memory).
void copy_bytes(void* dst, const void* src, size_t bytes) {
    if (dst == src || bytes == 0) return;
    parallel_for(bytes, 64, copy_work(1), [&](size_t b, size_t e) {  // whole cache lines
        std::memcpy(static_cast<char*>(dst) + b, static_cast<const char*>(src) + b, e - b);
    });
}

//----------------------------------------------------------------------------------------------
// Kernels
//----------------------------------------------------------------------------------------------

// Reshape and Flatten: the same elements in the same order; the output's shape (inferred by the
// schema) is the only difference.
void reshape(const KernelArgs& args) {
    const dsk_tensor_desc& x = args.input(0);
    const dsk_tensor_desc& y = args.output(0);
    if (numel(x) != numel(y))
        args.fail("output " + shape_text(shape_of(y)) + " does not have the " +
                  std::to_string(numel(x)) + " elements of the input " + shape_text(shape_of(x)));
    if (x.dtype != y.dtype) args.fail("the output's dtype differs from the input's");
    copy_bytes(y.data, x.data, static_cast<size_t>(numel(x)) * element_size(args, x));
}

void transpose(const KernelArgs& args) {
    const dsk_tensor_desc& x = args.input(0);
    const int64_t ndim = x.ndim;
    std::vector<int64_t> perm(static_cast<size_t>(ndim));
    for (int64_t k = 0; k < ndim; ++k) perm[static_cast<size_t>(k)] = ndim - 1 - k;
    perm = args.attrs().get_ints("perm", perm);
    if (static_cast<int64_t>(perm.size()) != ndim)
        args.fail("attribute 'perm' has " + std::to_string(perm.size()) + " entries for a rank-" +
                  std::to_string(ndim) + " input");
    std::vector<bool> seen(static_cast<size_t>(ndim), false);
    for (int64_t& p : perm) {
        p = args.axis(p, ndim, "perm");
        if (seen[static_cast<size_t>(p)])
            args.fail("attribute 'perm' repeats axis " + std::to_string(p));
        seen[static_cast<size_t>(p)] = true;
    }
    const std::vector<int64_t> in_shape = shape_of(x);
    const std::vector<int64_t> in_strides = row_major_strides(in_shape);
    StridedView view;
    view.ndim = static_cast<int>(ndim);
    std::vector<int64_t> out_shape(static_cast<size_t>(ndim));
    for (int64_t k = 0; k < ndim; ++k) {
        const size_t p = static_cast<size_t>(perm[static_cast<size_t>(k)]);
        out_shape[static_cast<size_t>(k)] = in_shape[p];
        view.shape[k] = in_shape[p];
        view.stride[k] = in_strides[p];
    }
    args.expect_output_shape(0, out_shape);
    copy_view_bytes(element_size(args, x), view, x.data, args.output(0).data, true);
}

void concat(const KernelArgs& args) {
    if (!args.attrs().has("axis")) args.fail("attribute 'axis' is required");
    const dsk_tensor_desc& first = args.input(0);
    const int64_t ndim = first.ndim;
    const int64_t axis = args.axis(args.attrs().get_int("axis", 0), ndim);
    const size_t es = element_size(args, first);
    std::vector<int64_t> out_shape = shape_of(first);
    out_shape[static_cast<size_t>(axis)] = 0;
    for (size_t i = 0; i < args.input_count(); ++i) {
        const dsk_tensor_desc& t = args.input(i);
        if (t.dtype != first.dtype || t.ndim != first.ndim)
            args.fail("input " + std::to_string(i) + " differs from input 0 in dtype or rank");
        for (int64_t k = 0; k < ndim; ++k)
            if (k != axis && t.shape[k] != first.shape[k])
                args.fail("input " + std::to_string(i) + " " + shape_text(shape_of(t)) +
                          " differs from input 0 " + shape_text(shape_of(first)) +
                          " outside axis " + std::to_string(axis));
        out_shape[static_cast<size_t>(axis)] += t.shape[axis];
    }
    args.expect_output_shape(0, out_shape);

    int64_t outer = 1, inner = 1;
    for (int64_t k = 0; k < axis; ++k) outer *= first.shape[k];
    for (int64_t k = axis + 1; k < ndim; ++k) inner *= first.shape[k];
    const int64_t out_row = out_shape[static_cast<size_t>(axis)] * inner * static_cast<int64_t>(es);
    char* out = static_cast<char*>(args.output(0).data);
    if (outer * out_row == 0) return;
    parallel_for(static_cast<size_t>(outer), copy_work(out_row), [&](size_t begin, size_t end) {
        for (size_t o = begin; o < end; ++o) {
            char* dst = out + static_cast<int64_t>(o) * out_row;
            for (size_t i = 0; i < args.input_count(); ++i) {
                const dsk_tensor_desc& t = args.input(i);
                const int64_t bytes = t.shape[axis] * inner * static_cast<int64_t>(es);
                if (bytes == 0) continue;
                std::memcpy(dst, static_cast<const char*>(t.data) + static_cast<int64_t>(o) * bytes,
                            static_cast<size_t>(bytes));
                dst += bytes;
            }
        }
    });
}

// Slice's attributes resolved against the input shape: the view of the input that the slice
// reads (and SliceGrad writes), and the output shape.
StridedView slice_view(const KernelArgs& args, const std::vector<int64_t>& in_shape,
                       std::vector<int64_t>* out_shape) {
    const Attrs& attrs = args.attrs();
    const int64_t ndim = static_cast<int64_t>(in_shape.size());
    const std::vector<int64_t> starts = attrs.get_ints("starts", {});
    const std::vector<int64_t> ends = attrs.get_ints("ends", {});
    if (starts.size() != ends.size())
        args.fail("attributes 'starts' and 'ends' must have the same length");
    std::vector<int64_t> axes(starts.size());
    for (size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<int64_t>(i);
    axes = attrs.get_ints("axes", axes);
    const std::vector<int64_t> steps =
        attrs.get_ints("steps", std::vector<int64_t>(starts.size(), 1));
    if (axes.size() != starts.size() || steps.size() != starts.size())
        args.fail("attributes 'axes' and 'steps' must have as many entries as 'starts'");

    std::vector<int64_t> begin(static_cast<size_t>(ndim), 0), step(static_cast<size_t>(ndim), 1);
    *out_shape = in_shape;
    std::vector<bool> seen(static_cast<size_t>(ndim), false);
    for (size_t i = 0; i < starts.size(); ++i) {
        const size_t a = static_cast<size_t>(args.axis(axes[i], ndim, "axes"));
        if (seen[a]) args.fail("attribute 'axes' repeats axis " + std::to_string(a));
        seen[a] = true;
        if (steps[i] <= 0) args.fail("attribute 'steps' must be positive");
        const int64_t dim = in_shape[a];
        auto clamp = [dim](int64_t v) {
            if (v < 0) v += dim;
            return std::clamp<int64_t>(v, 0, dim);
        };
        const int64_t s = clamp(starts[i]);
        const int64_t e = clamp(ends[i]);
        begin[a] = s;
        step[a] = steps[i];
        (*out_shape)[a] = e > s ? (e - s + steps[i] - 1) / steps[i] : 0;
    }
    const std::vector<int64_t> strides = row_major_strides(in_shape);
    StridedView view;
    view.ndim = static_cast<int>(ndim);
    for (int64_t k = 0; k < ndim; ++k) {
        const size_t u = static_cast<size_t>(k);
        view.shape[k] = (*out_shape)[u];
        view.stride[k] = strides[u] * step[u];
        view.offset += begin[u] * strides[u];
    }
    return view;
}

void slice(const KernelArgs& args) {
    const dsk_tensor_desc& x = args.input(0);
    std::vector<int64_t> out_shape;
    const StridedView view = slice_view(args, shape_of(x), &out_shape);
    args.expect_output_shape(0, out_shape);
    copy_view_bytes(element_size(args, x), view, x.data, args.output(0).data, true);
}

void slice_grad(const KernelArgs& args) {
    const std::vector<int64_t> in_shape = args.attrs().require_ints("input_shape");
    args.expect_output_shape(0, in_shape);
    std::vector<int64_t> out_shape;
    const StridedView view = slice_view(args, in_shape, &out_shape);
    const dsk_tensor_desc& dy = args.input(0);
    if (shape_of(dy) != out_shape)
        args.fail("dY " + shape_text(shape_of(dy)) + " does not have the slice's shape " +
                  shape_text(out_shape));
    float* dx = args.out(0);
    const int64_t total = numel(args.output(0));
    parallel_for(static_cast<size_t>(total), 16, dsk::Work{0.0, 4.0},
                 [&](size_t b, size_t e) { std::fill(dx + b, dx + e, 0.0f); });
    copy_view_bytes(sizeof(float), view, dx, const_cast<float*>(args.in(0)), false);
}

const KernelDef kShapeKernels[] = {
    kernel("Reshape", {ANY}, {ANY}, reshape),     kernel("Flatten", {ANY}, {ANY}, reshape),
    kernel("Transpose", {ANY}, {ANY}, transpose), kernel("Concat", {ANY}, {ANY}, concat) | variadic,
    kernel("Slice", {ANY}, {ANY}, slice),         kernel("SliceGrad", {F32}, {F32}, slice_grad),
};

}  // namespace

std::span<const KernelDef> shape_kernels() {
    return kShapeKernels;
}

}  // namespace dsk::cpu
