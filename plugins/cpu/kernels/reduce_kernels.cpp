// reduce_kernels.cpp - ReduceSum, ReduceMean, ReduceMax, their gradient ReduceGrad, and
// SumToShape (the gradient of broadcasting: a ReduceSum whose axes come from a target shape).
//
// A reduction is planned once: size-1 dimensions are dropped and neighbouring dimensions that
// are both kept or both reduced are merged. Two loop shapes then cover everything:
//   - innermost group kept (e.g. [N, D] -> [D]): each output row is a vector of L contiguous
//     values, accumulated over the reduced positions in order (vectorized across the row);
//   - innermost group reduced (e.g. [N, C, HW] -> [C]): each output is a sum over contiguous
//     runs of L values, in order.
// Outputs are split over the thread pool and each is accumulated by one thread in a fixed order
// (sums in double), so results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernel_table.h"
#include "scratch.h"
#include "vector_math.h"

namespace dsk::cpu {
namespace {

constexpr int64_t kRowChunk = 512;  // output columns per work item when the inner group is kept

enum class ReduceMode { sum, mean, max };

struct ReducePlan {
    std::vector<int64_t> kept_size, kept_stride;  // outer kept groups (not the inner one)
    std::vector<int64_t> red_size, red_stride;    // reduced groups (not the inner one)
    bool inner_kept = true;
    int64_t inner = 1;    // size of the innermost group
    int64_t outputs = 1;  // elements of the output
    int64_t count = 1;    // input elements per output
};

ReducePlan plan_reduction(const std::vector<int64_t>& shape, const std::vector<bool>& reduce) {
    struct Group {
        int64_t size;
        bool reduced;
    };
    std::vector<Group> groups;
    for (size_t k = 0; k < shape.size(); ++k) {
        if (shape[k] == 1) continue;
        if (!groups.empty() && groups.back().reduced == reduce[k])
            groups.back().size *= shape[k];
        else
            groups.push_back({shape[k], reduce[k]});
    }
    ReducePlan plan;
    if (groups.empty()) return plan;  // one element in, one out
    std::vector<int64_t> strides(groups.size());
    int64_t stride = 1;
    for (size_t g = groups.size(); g-- > 0;) {
        strides[g] = stride;
        stride *= groups[g].size;
    }
    plan.inner_kept = !groups.back().reduced;
    plan.inner = groups.back().size;
    for (size_t g = 0; g + 1 < groups.size(); ++g) {
        if (groups[g].reduced) {
            plan.red_size.push_back(groups[g].size);
            plan.red_stride.push_back(strides[g]);
        } else {
            plan.kept_size.push_back(groups[g].size);
            plan.kept_stride.push_back(strides[g]);
        }
    }
    for (const Group& g : groups) (g.reduced ? plan.count : plan.outputs) *= g.size;
    return plan;
}

// Input offset of kept index `index` (row-major over the outer kept groups).
int64_t kept_offset(const ReducePlan& plan, int64_t index) {
    int64_t offset = 0;
    for (size_t g = plan.kept_size.size(); g-- > 0;) {
        offset += index % plan.kept_size[g] * plan.kept_stride[g];
        index /= plan.kept_size[g];
    }
    return offset;
}

// Calls f(offset) for every position of the (outer) reduced groups, in row-major order.
template <class F>
void for_each_reduced(const ReducePlan& plan, int64_t base, F&& f) {
    const size_t n = plan.red_size.size();
    int64_t index[DSK_MAX_DIMS] = {};
    int64_t offset = base;
    while (true) {
        f(offset);
        size_t g = n;
        while (g-- > 0) {
            offset += plan.red_stride[g];
            if (++index[g] < plan.red_size[g]) break;
            offset -= plan.red_stride[g] * plan.red_size[g];
            index[g] = 0;
        }
        if (g == static_cast<size_t>(-1)) return;  // every digit wrapped: done
    }
}

// Runs body(begin, end) over the work items of the plan: (output row, column chunk) pairs when
// the inner group is kept, outputs otherwise.
template <class Body>
void for_each_output_block(const ReducePlan& plan, Body&& body) {
    const int64_t per_output_work =
        plan.count * (plan.inner_kept ? std::min(plan.inner, kRowChunk) : 1);
    const int64_t items =
        plan.inner_kept ? plan.outputs / plan.inner * ((plan.inner + kRowChunk - 1) / kRowChunk)
                        : plan.outputs;
    const double values = static_cast<double>(per_output_work);
    parallel_for(static_cast<size_t>(items), dsk::Work{values, 4.0 * values}, body);
}

// y[o] = reduction of x over the plan's reduced positions.
void reduce(const ReducePlan& plan, ReduceMode mode, const float* x, float* y) {
    if (plan.outputs == 0) return;
    if (plan.count == 0) {
        const float empty = mode == ReduceMode::max    ? -std::numeric_limits<float>::infinity()
                            : mode == ReduceMode::mean ? std::numeric_limits<float>::quiet_NaN()
                                                       : 0.0f;
        std::fill(y, y + plan.outputs, empty);
        return;
    }
    const double mean_scale = 1.0 / static_cast<double>(plan.count);
    const int64_t inner = plan.inner;
    if (plan.inner_kept) {
        const int64_t chunks = (inner + kRowChunk - 1) / kRowChunk;
        for_each_output_block(plan, [&](size_t begin, size_t end) {
            double acc[kRowChunk];
            float best[kRowChunk];
            for (size_t item = begin; item < end; ++item) {
                const int64_t row = static_cast<int64_t>(item) / chunks;
                const int64_t j0 = static_cast<int64_t>(item) % chunks * kRowChunk;
                const int64_t w = std::min(kRowChunk, inner - j0);
                float* out = y + row * inner + j0;
                if (mode == ReduceMode::max) {
                    for (int64_t j = 0; j < w; ++j)
                        best[j] = -std::numeric_limits<float>::infinity();
                    for_each_reduced(plan, kept_offset(plan, row) + j0, [&](int64_t offset) {
                        const float* v = x + offset;
                        for (int64_t j = 0; j < w; ++j)
                            best[j] = v[j] > best[j] || v[j] != v[j] ? v[j] : best[j];
                    });
                    std::copy(best, best + w, out);
                } else {
                    for (int64_t j = 0; j < w; ++j) acc[j] = 0.0;
                    for_each_reduced(plan, kept_offset(plan, row) + j0, [&](int64_t offset) {
                        const float* v = x + offset;
                        for (int64_t j = 0; j < w; ++j) acc[j] += v[j];
                    });
                    const double scale = mode == ReduceMode::mean ? mean_scale : 1.0;
                    for (int64_t j = 0; j < w; ++j) out[j] = static_cast<float>(acc[j] * scale);
                }
            }
        });
        return;
    }
    for_each_output_block(plan, [&](size_t begin, size_t end) {
        for (size_t o = begin; o < end; ++o) {
            const int64_t base = kept_offset(plan, static_cast<int64_t>(o));
            if (mode == ReduceMode::max) {
                float best = -std::numeric_limits<float>::infinity();
                for_each_reduced(plan, base, [&](int64_t offset) {
                    for (int64_t i = 0; i < inner; ++i) {
                        const float v = x[offset + i];
                        best = v > best || v != v ? v : best;
                    }
                });
                y[o] = best;
            } else {
                double total = 0.0;
                for_each_reduced(plan, base, [&](int64_t offset) {
                    total += sum_fixed_order(x + offset, inner);
                });
                y[o] = static_cast<float>(mode == ReduceMode::mean ? total * mean_scale : total);
            }
        }
    });
}

// dx = dY broadcast back over the reduced positions (times `scale`); for max, only to the first
// position (in row-major order) where x equals y, zero elsewhere.
void reduce_grad(const ReducePlan& plan, ReduceMode mode, const float* dy, const float* x,
                 const float* y, float* dx) {
    if (plan.outputs == 0 || plan.count == 0) return;
    const float scale =
        mode == ReduceMode::mean ? static_cast<float>(1.0 / static_cast<double>(plan.count)) : 1.0f;
    const int64_t inner = plan.inner;
    if (plan.inner_kept) {
        const int64_t chunks = (inner + kRowChunk - 1) / kRowChunk;
        for_each_output_block(plan, [&](size_t begin, size_t end) {
            bool found[kRowChunk];
            for (size_t item = begin; item < end; ++item) {
                const int64_t row = static_cast<int64_t>(item) / chunks;
                const int64_t j0 = static_cast<int64_t>(item) % chunks * kRowChunk;
                const int64_t w = std::min(kRowChunk, inner - j0);
                const float* g = dy + row * inner + j0;
                const float* m = y + row * inner + j0;
                std::fill(found, found + w, false);
                for_each_reduced(plan, kept_offset(plan, row) + j0, [&](int64_t offset) {
                    float* d = dx + offset;
                    if (mode != ReduceMode::max) {
                        for (int64_t j = 0; j < w; ++j) d[j] = g[j] * scale;
                        return;
                    }
                    const float* v = x + offset;
                    for (int64_t j = 0; j < w; ++j) {
                        const bool first =
                            !found[j] && (v[j] == m[j] || (v[j] != v[j] && m[j] != m[j]));
                        d[j] = first ? g[j] : 0.0f;
                        found[j] = found[j] || first;
                    }
                });
            }
        });
        return;
    }
    for_each_output_block(plan, [&](size_t begin, size_t end) {
        for (size_t o = begin; o < end; ++o) {
            const int64_t base = kept_offset(plan, static_cast<int64_t>(o));
            const float g = dy[o];
            if (mode != ReduceMode::max) {
                for_each_reduced(plan, base, [&](int64_t offset) {
                    std::fill(dx + offset, dx + offset + inner, g * scale);
                });
                continue;
            }
            const float m = y[o];
            bool found = false;
            for_each_reduced(plan, base, [&](int64_t offset) {
                for (int64_t i = 0; i < inner; ++i) {
                    const float v = x[offset + i];
                    const bool first = !found && (v == m || (v != v && m != m));
                    dx[offset + i] = first ? g : 0.0f;
                    found = found || first;
                }
            });
        }
    });
}

// The reduced axes of a Reduce* node (all when `axes` is absent or empty) for a rank-`ndim`
// input, and the output shape with or without kept dimensions.
std::vector<bool> reduced_axes(const KernelArgs& args, const std::vector<int64_t>& shape,
                               std::vector<int64_t>* out_shape) {
    const int64_t ndim = static_cast<int64_t>(shape.size());
    const std::vector<int64_t> axes = args.attrs().get_ints("axes", {});
    std::vector<bool> reduce(shape.size(), axes.empty());
    for (int64_t a : axes) {
        const size_t k = static_cast<size_t>(args.axis(a, ndim, "axes"));
        if (reduce[k]) args.fail("attribute 'axes' repeats axis " + std::to_string(k));
        reduce[k] = true;
    }
    const bool keepdims = args.attrs().get_int("keepdims", 1) != 0;
    out_shape->clear();
    for (size_t k = 0; k < shape.size(); ++k) {
        if (!reduce[k])
            out_shape->push_back(shape[k]);
        else if (keepdims)
            out_shape->push_back(1);
    }
    return reduce;
}

ReduceMode mode_of_op(const std::string& op) {
    if (op == "ReduceSum") return ReduceMode::sum;
    if (op == "ReduceMean") return ReduceMode::mean;
    return ReduceMode::max;
}

void reduce_op(const KernelArgs& args) {
    const std::vector<int64_t> shape = shape_of(args.input(0));
    std::vector<int64_t> out_shape;
    const std::vector<bool> reduce_flags = reduced_axes(args, shape, &out_shape);
    args.expect_output_shape(0, out_shape);
    reduce(plan_reduction(shape, reduce_flags), mode_of_op(args.op()), args.in(0), args.out(0));
}

void reduce_grad_op(const KernelArgs& args) {
    const std::string mode_name = args.attrs().get_string("mode", "sum");
    ReduceMode mode = ReduceMode::sum;
    if (mode_name == "mean")
        mode = ReduceMode::mean;
    else if (mode_name == "max")
        mode = ReduceMode::max;
    else if (mode_name != "sum")
        args.fail("attribute 'mode' = \"" + mode_name +
                  "\" is not one of \"sum\", \"mean\", \"max\"");

    const std::vector<int64_t> shape = shape_of(args.input(1));
    std::vector<int64_t> out_shape;
    const std::vector<bool> reduce_flags = reduced_axes(args, shape, &out_shape);
    args.expect_output_shape(0, shape);
    const ReducePlan plan = plan_reduction(shape, reduce_flags);
    if (numel(args.input(0)) != plan.outputs)
        args.fail("dY " + shape_text(shape_of(args.input(0))) + " does not have the " +
                  std::to_string(plan.outputs) + " elements of the reduction's output");
    const float* y = nullptr;
    std::vector<float> recomputed;
    if (mode == ReduceMode::max) {
        if (args.has_input(2)) {
            if (numel(args.input(2)) != plan.outputs)
                args.fail("Y does not have the reduction's output size");
            y = args.in(2);
        } else {  // Y not passed: recompute the maxima
            recomputed.resize(static_cast<size_t>(plan.outputs));
            reduce(plan, ReduceMode::max, args.in(1), recomputed.data());
            y = recomputed.data();
        }
    }
    reduce_grad(plan, mode, args.in(0), args.in(1), y, args.out(0));
}

void sum_to_shape(const KernelArgs& args) {
    const std::vector<int64_t> shape = shape_of(args.input(0));
    const std::vector<int64_t> target = args.attrs().require_ints("shape");
    if (target.size() > shape.size())
        args.fail("target shape " + shape_text(target) + " has more dimensions than the input " +
                  shape_text(shape));
    args.expect_output_shape(0, target);
    const size_t lead = shape.size() - target.size();
    std::vector<bool> reduce_flags(shape.size(), false);
    for (size_t k = 0; k < shape.size(); ++k) {
        if (k < lead) {
            reduce_flags[k] = true;
            continue;
        }
        const int64_t t = target[k - lead];
        if (t != shape[k] && t != 1)
            args.fail("input " + shape_text(shape) + " does not broadcast from target shape " +
                      shape_text(target));
        reduce_flags[k] = t == 1 && shape[k] != 1;
    }
    reduce(plan_reduction(shape, reduce_flags), ReduceMode::sum, args.in(0), args.out(0));
}

const KernelDef kReduceKernels[] = {
    kernel("ReduceSum", {F32}, {F32}, reduce_op),
    kernel("ReduceMean", {F32}, {F32}, reduce_op),
    kernel("ReduceMax", {F32}, {F32}, reduce_op),
    kernel("ReduceGrad", {F32, F32, F32}, {F32}, reduce_grad_op) | optional_inputs_from(2),
    kernel("SumToShape", {F32}, {F32}, sum_to_shape),
};

}  // namespace

std::span<const KernelDef> reduce_kernels() {
    return kReduceKernels;
}

}  // namespace dsk::cpu
