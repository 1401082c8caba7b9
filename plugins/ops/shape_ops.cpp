// Ops that move data without computing on it: Reshape, Flatten, Transpose, Concat, Slice and
// SliceGrad (the gradient of Slice).
#include <algorithm>
#include <cstddef>

#include "op_definition.h"
#include "op_families.h"

namespace dsk::ops {
namespace {

//==============================================================================================
// Reshape, Flatten
//==============================================================================================

// `spec` with 0 (copy X's dim at that index) and -1 (inferred, at most one) resolved.
Shape reshape_target(const ShapeContext& ctx, const Shape& x, const Shape& spec) {
    Shape out = spec;
    size_t inferred = spec.size();  // index of the -1, or spec.size() when there is none
    int64_t known = 1;
    for (size_t i = 0; i < spec.size(); ++i) {
        if (spec[i] == 0) {
            if (i >= x.size())
                ctx.fail("shape " + shape_text(spec) + ": the 0 at index " + std::to_string(i) +
                         " copies a dimension of X " + shape_text(x) + ", which has only " +
                         std::to_string(x.size()));
            out[i] = x[i];
        } else if (spec[i] == -1) {
            if (inferred != spec.size())
                ctx.fail("shape " + shape_text(spec) + " has more than one -1");
            inferred = i;
            continue;
        } else if (spec[i] < -1) {
            ctx.fail("shape " + shape_text(spec) + " has " + std::to_string(spec[i]) +
                     " (dims are >= 0; 0 copies X's dim, -1 is inferred)");
        }
        known *= out[i];
    }
    const int64_t total = element_count(x);
    if (inferred != spec.size()) {
        if (known == 0 || total % known != 0)
            ctx.fail("cannot reshape X " + shape_text(x) + " (" + std::to_string(total) +
                     " elements) to " + shape_text(spec) + ": " + std::to_string(total) +
                     " is not a multiple of " + std::to_string(known));
        out[inferred] = total / known;
    } else if (known != total) {
        ctx.fail("cannot reshape X " + shape_text(x) + " (" + std::to_string(total) +
                 " elements) to " + shape_text(spec) + " (" + std::to_string(known) + " elements)");
    }
    return out;
}

void infer_reshape(ShapeContext& ctx) {
    const Shape x = ctx.shape(0);
    ctx.set_output(0, ctx.dtype(0), reshape_target(ctx, x, ctx.attrs().require_ints("shape")));
}

void infer_flatten(ShapeContext& ctx) {
    const Shape x = ctx.shape(0);
    const size_t axis =
        normalize_axis(ctx.op(), "axis", ctx.attrs().get_int("axis", 1), x.size(), true);
    const Shape front(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(axis));
    const Shape back(x.begin() + static_cast<std::ptrdiff_t>(axis), x.end());
    ctx.set_output(0, ctx.dtype(0), {element_count(front), element_count(back)});
}

// Reshape and Flatten: dX = Reshape(dY) to X's shape.
void gradient_reshape(GradientContext& ctx) {
    ctx.set_input_grad(0, ctx.graph().node("Reshape", {ctx.output_grad(0)},
                                           {Attr("shape", ctx.shape(ctx.input(0)))}));
}

//==============================================================================================
// Transpose
//==============================================================================================

// The node's perm (default: the dims reversed), checked to be a permutation of 0..rank-1.
Shape permutation(const Attrs& attrs, const char* op, size_t rank) {
    Shape reversed(rank);
    for (size_t k = 0; k < rank; ++k) reversed[k] = static_cast<int64_t>(rank - 1 - k);
    const Shape perm = attrs.get_ints("perm", reversed);
    Shape sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    bool valid = perm.size() == rank;
    for (size_t k = 0; valid && k < rank; ++k) valid = sorted[k] == static_cast<int64_t>(k);
    if (!valid)
        invalid(op, "perm " + shape_text(perm) + " is not a permutation of the " +
                        std::to_string(rank) + " dimensions of X (each of 0.." +
                        std::to_string(static_cast<int64_t>(rank) - 1) + " once)");
    return perm;
}

void infer_transpose(ShapeContext& ctx) {
    const Shape x = ctx.shape(0);
    const Shape perm = permutation(ctx.attrs(), ctx.op(), x.size());
    Shape y(x.size());
    for (size_t k = 0; k < x.size(); ++k) y[k] = x[static_cast<size_t>(perm[k])];
    ctx.set_output(0, ctx.dtype(0), y);
}

// dX = Transpose(dY) by the inverse permutation.
void gradient_transpose(GradientContext& ctx) {
    const Shape perm = permutation(ctx.attrs(), ctx.op(), ctx.shape(ctx.input(0)).size());
    Shape inverse(perm.size());
    for (size_t k = 0; k < perm.size(); ++k)
        inverse[static_cast<size_t>(perm[k])] = static_cast<int64_t>(k);
    ctx.set_input_grad(
        0, ctx.graph().node("Transpose", {ctx.output_grad(0)}, {Attr("perm", inverse)}));
}

//==============================================================================================
// Concat
//==============================================================================================

void infer_concat(ShapeContext& ctx) {
    if (!ctx.attrs().has("axis")) ctx.fail("attribute 'axis' is required");
    const Shape first = ctx.shape(0);
    if (first.empty()) ctx.fail("X0 must have at least 1 dimension, got a scalar");
    const size_t axis =
        normalize_axis(ctx.op(), "axis", ctx.attrs().get_int("axis", 0), first.size());
    Shape y = first;
    for (size_t i = 1; i < ctx.input_count(); ++i) {
        const std::string name = "X" + std::to_string(i);
        ctx.expect_same_dtype(0, "X0", i, name.c_str());
        const Shape xi = ctx.shape(i);
        bool fits = xi.size() == first.size();
        for (size_t k = 0; fits && k < first.size(); ++k) fits = k == axis || xi[k] == first[k];
        if (!fits)
            ctx.fail(name + " is " + shape_text(xi) + " but X0 is " + shape_text(first) +
                     ": inputs must agree on every dimension but axis " + std::to_string(axis));
        y[axis] += xi[axis];
    }
    ctx.set_output(0, ctx.dtype(0), y);
}

// One Slice of dY per input, along axis.
void gradient_concat(GradientContext& ctx) {
    const dsk_value_id dy = ctx.output_grad(0);
    if (ctx.input_count() == 1) {
        ctx.set_input_grad(0, dy);
        return;
    }
    const Shape first = ctx.shape(ctx.input(0));
    const int64_t axis = static_cast<int64_t>(
        normalize_axis(ctx.op(), "axis", ctx.attrs().get_int("axis", 0), first.size()));
    int64_t offset = 0;
    for (size_t i = 0; i < ctx.input_count(); ++i) {
        const int64_t length = ctx.shape(ctx.input(i))[static_cast<size_t>(axis)];
        ctx.set_input_grad(
            i, ctx.graph().node("Slice", {dy},
                                {Attr("starts", Shape{offset}),
                                 Attr("ends", Shape{offset + length}), Attr("axes", Shape{axis})}));
        offset += length;
    }
}

//==============================================================================================
// Slice, SliceGrad
//==============================================================================================

// The shape of X[starts:ends:steps] along axes, clamped like ONNX Slice (steps > 0).
Shape slice_shape(const ShapeContext& ctx, const Shape& x) {
    const Attrs& attrs = ctx.attrs();
    const Shape starts = attrs.require_ints("starts");
    const Shape ends = attrs.require_ints("ends");
    Shape all_axes(starts.size());
    for (size_t i = 0; i < starts.size(); ++i) all_axes[i] = static_cast<int64_t>(i);
    const Shape axes = attrs.get_ints("axes", all_axes);
    const Shape steps = attrs.get_ints("steps", Shape(starts.size(), 1));
    if (ends.size() != starts.size() || axes.size() != starts.size() ||
        steps.size() != starts.size())
        ctx.fail("starts " + shape_text(starts) + ", ends " + shape_text(ends) + ", axes " +
                 shape_text(axes) + " and steps " + shape_text(steps) + " must have one length");
    Shape y = x;
    std::vector<bool> seen(x.size(), false);
    for (size_t i = 0; i < starts.size(); ++i) {
        const size_t axis = normalize_axis(ctx.op(), "axes", axes[i], x.size());
        if (seen[axis])
            ctx.fail("axes " + shape_text(axes) + " names axis " + std::to_string(axis) + " twice");
        seen[axis] = true;
        if (steps[i] <= 0) ctx.fail("steps " + shape_text(steps) + ": every step must be > 0");
        const int64_t dim = x[axis];
        // ONNX: a negative index counts from the end; then both clamp to [0, dim].
        const int64_t start =
            std::clamp<int64_t>(starts[i] < 0 ? starts[i] + dim : starts[i], 0, dim);
        const int64_t end = std::clamp<int64_t>(ends[i] < 0 ? ends[i] + dim : ends[i], 0, dim);
        y[axis] = end > start ? (end - start - 1) / steps[i] + 1 : 0;
    }
    return y;
}

void infer_slice(ShapeContext& ctx) {
    ctx.set_output(0, ctx.dtype(0), slice_shape(ctx, ctx.shape(0)));
}

// dY -> dX [input_shape]: zeros with dY where the slice came from.
void infer_slice_grad(ShapeContext& ctx) {
    const Shape x = ctx.attrs().require_ints("input_shape");
    ctx.expect_shape(0, "dY", slice_shape(ctx, x), "the Slice of input_shape " + shape_text(x));
    ctx.set_output(0, ctx.dtype(0), x);
}

void gradient_slice(GradientContext& ctx) {
    std::vector<Attr> attrs = Attr::all_of(ctx.node());
    attrs.emplace_back("input_shape", ctx.shape(ctx.input(0)));
    ctx.set_input_grad(0, ctx.graph().node("SliceGrad", {ctx.output_grad(0)}, attrs));
}

}  // namespace

void register_shape_ops(Registrar& reg) {
    define_op(reg, "Reshape", "the same elements in a new shape (0 copies X's dim, -1 is inferred)",
              {1, 1, 1, 1}, {"shape"}, infer_reshape, gradient_reshape);
    define_op(reg, "Flatten", "2-D [d0*...*d(axis-1), rest] (axis 1)", {1, 1, 1, 1}, {"axis"},
              infer_flatten, gradient_reshape);
    define_op(reg, "Transpose", "permutes the dims by perm (default: reversed)", {1, 1, 1, 1},
              {"perm"}, infer_transpose, gradient_transpose);
    define_op(reg, "Concat", "joins X0, X1, ... along axis", {1, kManyInputs, 1, 1}, {"axis"},
              infer_concat, gradient_concat);
    define_op(reg, "Slice", "X[starts:ends:steps] along axes (ONNX clamping, steps > 0)",
              {1, 1, 1, 1}, {"starts", "ends", "axes", "steps"}, infer_slice, gradient_slice);
    define_op(reg, "SliceGrad",
              "gradient of Slice: zeros [input_shape] with dY placed where the slice came from",
              {1, 1, 1, 1}, {"starts", "ends", "axes", "steps", "input_shape"}, infer_slice_grad,
              nullptr);
}

}  // namespace dsk::ops
