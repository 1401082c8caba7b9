// softmax_kernels.cpp - Softmax, LogSoftmax, SoftmaxCrossEntropyLoss and their gradients.
//
// A tensor is seen as [outer, L, inner] around the softmax axis (ONNX opset 13: one axis).
// With inner == 1 each row is contiguous and handled whole; otherwise a block of `inner`
// columns is handled together, walking down the axis. Every sum runs in a fixed order, and rows
// are split over the thread pool, so the split never changes a result.
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

constexpr int64_t kColumnBlock = 256;  // columns per block in the strided layout

// The work of `values` values through a softmax: an exponential each, a few passes.
dsk::Work softmax_work(int64_t values) {
    const double n = static_cast<double>(values);
    return {16.0 * n, 12.0 * n};
}

struct AxisLayout {
    int64_t outer = 1, length = 1, inner = 1;
};

AxisLayout axis_layout(const KernelArgs& args, const dsk_tensor_desc& t) {
    const int64_t ndim = t.ndim;
    const int64_t axis = args.axis(args.attrs().get_int("axis", -1), ndim);
    AxisLayout layout;
    for (int64_t k = 0; k < ndim; ++k) {
        if (k < axis)
            layout.outer *= t.shape[k];
        else if (k == axis)
            layout.length = t.shape[k];
        else
            layout.inner *= t.shape[k];
    }
    return layout;
}

float max_fixed_order(const float* x, int64_t n) {
    float lanes[kSumLanes];
    for (float& lane : lanes) lane = -std::numeric_limits<float>::infinity();
    int64_t i = 0;
    for (; i + kSumLanes <= n; i += kSumLanes)
        for (int j = 0; j < kSumLanes; ++j) lanes[j] = x[i + j] > lanes[j] ? x[i + j] : lanes[j];
    for (int j = 0; i < n; ++i, ++j) lanes[j] = x[i] > lanes[j] ? x[i] : lanes[j];
    float m = lanes[0];
    for (int j = 1; j < kSumLanes; ++j) m = lanes[j] > m ? lanes[j] : m;
    return m;
}

// y[i] = exp(x[i] - shift); returns the sum of y in a fixed order. y may be x.
DSK_CPU_VECTOR_CLONES
float exp_shifted(const float* x, float shift, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = exp_approx(x[i] - shift);
    return sum_fixed_order(y, n);
}

// One contiguous row of softmax (log = false) or log-softmax (log = true).
void softmax_row(const float* x, float* y, int64_t n, bool log) {
    const float m = max_fixed_order(x, n);
    if (log) {
        // Sum of exp first (into y as scratch), then y = x - m - log(sum).
        const float sum = exp_shifted(x, m, y, n);
        const float shift = m + std::log(sum);
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] - shift;
    } else {
        const float sum = exp_shifted(x, m, y, n);
        const float scale = 1.0f / sum;
        for (int64_t i = 0; i < n; ++i) y[i] *= scale;
    }
}

// Softmax down the axis for columns [j0, j1) of one outer slice (the strided layout).
void softmax_columns(const float* x, float* y, const AxisLayout& l, int64_t j0, int64_t j1,
                     bool log) {
    float m[kColumnBlock], s[kColumnBlock];
    const int64_t w = j1 - j0;
    for (int64_t j = 0; j < w; ++j) m[j] = -std::numeric_limits<float>::infinity();
    for (int64_t a = 0; a < l.length; ++a) {
        const float* row = x + a * l.inner + j0;
        for (int64_t j = 0; j < w; ++j) m[j] = row[j] > m[j] ? row[j] : m[j];
    }
    for (int64_t j = 0; j < w; ++j) s[j] = 0.0f;
    for (int64_t a = 0; a < l.length; ++a) {
        const float* row = x + a * l.inner + j0;
        float* out = y + a * l.inner + j0;
        for (int64_t j = 0; j < w; ++j) {
            const float e = exp_approx(row[j] - m[j]);
            s[j] += e;
            if (!log) out[j] = e;
        }
    }
    for (int64_t j = 0; j < w; ++j) s[j] = log ? m[j] + std::log(s[j]) : 1.0f / s[j];
    for (int64_t a = 0; a < l.length; ++a) {
        const float* row = x + a * l.inner + j0;
        float* out = y + a * l.inner + j0;
        if (log) {
            for (int64_t j = 0; j < w; ++j) out[j] = row[j] - s[j];
        } else {
            for (int64_t j = 0; j < w; ++j) out[j] *= s[j];
        }
    }
}

// Runs body(slice, j0, j1) over every (outer slice, column block) of the layout, in parallel.
template <class Body>
void for_each_block(const AxisLayout& l, Body&& body) {
    const int64_t blocks_per_slice = l.inner == 1 ? 1 : (l.inner + kColumnBlock - 1) / kColumnBlock;
    const int64_t work_per_item = l.length * std::min(l.inner, kColumnBlock);
    parallel_for(static_cast<size_t>(l.outer * blocks_per_slice), softmax_work(work_per_item),
                 [&](size_t b, size_t e) {
        for (size_t item = b; item < e; ++item) {
            const int64_t slice = static_cast<int64_t>(item) / blocks_per_slice;
            const int64_t j0 = static_cast<int64_t>(item) % blocks_per_slice * kColumnBlock;
            body(slice, j0, std::min(l.inner, j0 + kColumnBlock));
        }
    });
}

void softmax(const KernelArgs& args) {
    const bool log = std::string(args.op()) == "LogSoftmax";
    const AxisLayout l = axis_layout(args, args.input(0));
    args.expect_output_shape_of(0, args.input(0));
    const float* x = args.in(0);
    float* y = args.out(0);
    if (l.length == 0) return;
    for_each_block(l, [&](int64_t slice, int64_t j0, int64_t j1) {
        const int64_t base = slice * l.length * l.inner;
        if (l.inner == 1)
            softmax_row(x + base, y + base, l.length, log);
        else
            softmax_columns(x + base, y + base, l, j0, j1, log);
    });
}

// SoftmaxGrad: dX = Y * (dY - sum(dY * Y)); LogSoftmaxGrad: dX = dY - exp(Y) * sum(dY), sums
// along the axis.
void softmax_grad(const KernelArgs& args) {
    const bool log = std::string(args.op()) == "LogSoftmaxGrad";
    const dsk_tensor_desc& dy_desc = args.input(0);
    const dsk_tensor_desc& y_desc = args.input(1);
    if (shape_of(dy_desc) != shape_of(y_desc))
        args.fail("dY " + shape_text(shape_of(dy_desc)) + " and Y " + shape_text(shape_of(y_desc)) +
                  " must have the same shape");
    args.expect_output_shape_of(0, y_desc);
    const AxisLayout l = axis_layout(args, y_desc);
    const float* dy = args.in(0);
    const float* y = args.in(1);
    float* dx = args.out(0);
    if (l.length == 0) return;
    for_each_block(l, [&](int64_t slice, int64_t j0, int64_t j1) {
        const int64_t base = slice * l.length * l.inner;
        const float* g = dy + base;
        const float* out = y + base;
        float* d = dx + base;
        if (l.inner == 1) {
            const int64_t n = l.length;
            if (log) {
                const float sum = sum_fixed_order(g, n);
                for (int64_t i = 0; i < n; ++i) d[i] = g[i] - exp_approx(out[i]) * sum;
            } else {
                const float sum = dot_fixed_order(g, out, n);
                for (int64_t i = 0; i < n; ++i) d[i] = out[i] * (g[i] - sum);
            }
            return;
        }
        float s[kColumnBlock];
        const int64_t w = j1 - j0;
        for (int64_t j = 0; j < w; ++j) s[j] = 0.0f;
        for (int64_t a = 0; a < l.length; ++a) {
            const int64_t row = a * l.inner + j0;
            for (int64_t j = 0; j < w; ++j) s[j] += log ? g[row + j] : g[row + j] * out[row + j];
        }
        for (int64_t a = 0; a < l.length; ++a) {
            const int64_t row = a * l.inner + j0;
            for (int64_t j = 0; j < w; ++j)
                d[row + j] = log ? g[row + j] - exp_approx(out[row + j]) * s[j]
                                 : out[row + j] * (g[row + j] - s[j]);
        }
    });
}

//----------------------------------------------------------------------------------------------
// SoftmaxCrossEntropyLoss
//----------------------------------------------------------------------------------------------

// "mean" (the default) or "sum".
bool mean_reduction(const KernelArgs& args) {
    const std::string r = args.attrs().get_string("reduction", "mean");
    if (r != "mean" && r != "sum")
        args.fail("attribute 'reduction' = \"" + r + "\" is not one of \"mean\", \"sum\"");
    return r == "mean";
}

// The labels, checked against the row and class counts.
const int64_t* class_labels(const KernelArgs& args, const dsk_tensor_desc& labels, int64_t rows,
                            int64_t classes) {
    if (labels.ndim != 1 || labels.shape[0] != rows)
        args.fail("labels " + shape_text(shape_of(labels)) + " must have shape [" +
                  std::to_string(rows) + "] (one class index per row of the scores)");
    const int64_t* label = data_of<const int64_t>(labels);
    for (int64_t n = 0; n < rows; ++n)
        if (label[n] < 0 || label[n] >= classes)
            args.fail("label " + std::to_string(label[n]) + " of row " + std::to_string(n) +
                      " is outside [0, " + std::to_string(classes) + ")");
    return label;
}

void softmax_cross_entropy(const KernelArgs& args) {
    const dsk_tensor_desc& scores = args.input(0);
    args.expect_rank(scores, 2, "scores");
    const int64_t rows = scores.shape[0];
    const int64_t classes = scores.shape[1];
    const bool mean = mean_reduction(args);
    const int64_t* label = class_labels(args, args.input(1), rows, classes);
    args.expect_output_shape(0, {});
    const bool keep_log_prob = args.has_output(1);
    if (keep_log_prob) args.expect_output_shape(1, {rows, classes});

    const float* x = args.in(0);
    float* log_prob_out = keep_log_prob ? args.out(1) : nullptr;
    std::vector<float> row_loss(static_cast<size_t>(rows), 0.0f);
    parallel_for(static_cast<size_t>(rows), softmax_work(classes), [&](size_t b, size_t e) {
        Scratch scratch(keep_log_prob ? 0 : static_cast<size_t>(classes));
        for (int64_t n = static_cast<int64_t>(b); n < static_cast<int64_t>(e); ++n) {
            float* log_prob = keep_log_prob ? log_prob_out + n * classes : scratch.data();
            softmax_row(x + n * classes, log_prob, classes, true);
            row_loss[static_cast<size_t>(n)] = -log_prob[label[n]];
        }
    });
    double total = 0.0;  // in row order
    for (float l : row_loss) total += l;
    if (mean) total /= static_cast<double>(rows);
    args.out(0)[0] = static_cast<float>(total);
}

// dscores = (exp(log_prob) - onehot(label)) * dloss, / N for "mean".
void softmax_cross_entropy_grad(const KernelArgs& args) {
    const dsk_tensor_desc& log_prob_desc = args.input(1);
    args.expect_rank(log_prob_desc, 2, "log_prob");
    const int64_t rows = log_prob_desc.shape[0];
    const int64_t classes = log_prob_desc.shape[1];
    const bool mean = mean_reduction(args);
    const int64_t* label = class_labels(args, args.input(2), rows, classes);
    if (numel(args.input(0)) != 1)
        args.fail("dloss " + shape_text(shape_of(args.input(0))) + " must be a scalar");
    args.expect_output_shape(0, {rows, classes});
    const float* log_prob = args.in(1);
    float* d = args.out(0);
    const float factor = args.in(0)[0] * (mean ? 1.0f / static_cast<float>(rows) : 1.0f);
    parallel_for(static_cast<size_t>(rows), softmax_work(classes), [&](size_t b, size_t e) {
        for (int64_t n = static_cast<int64_t>(b); n < static_cast<int64_t>(e); ++n) {
            const float* lp = log_prob + n * classes;
            float* out = d + n * classes;
            for (int64_t c = 0; c < classes; ++c) out[c] = exp_approx(lp[c]) * factor;
            out[label[n]] = (exp_approx(lp[label[n]]) - 1.0f) * factor;
        }
    });
}

bool scores_are_2d(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    (void)node;
    return tensors[0].ndim == 2 && tensors[1].ndim == 1;
}

bool log_prob_is_2d(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    (void)node;
    return tensors[1].ndim == 2 && tensors[2].ndim == 1;
}

const KernelDef kSoftmaxKernels[] = {
    kernel("Softmax", {F32}, {F32}, softmax),
    kernel("LogSoftmax", {F32}, {F32}, softmax),
    kernel("SoftmaxGrad", {F32, F32}, {F32}, softmax_grad),
    kernel("LogSoftmaxGrad", {F32, F32}, {F32}, softmax_grad),
    kernel("SoftmaxCrossEntropyLoss", {F32, I64}, {F32, F32}, softmax_cross_entropy,
           scores_are_2d) |
        optional_outputs_from(1),
    kernel("SoftmaxCrossEntropyLossGrad", {F32, F32, I64}, {F32}, softmax_cross_entropy_grad,
           log_prob_is_2d),
};

}  // namespace

std::span<const KernelDef> softmax_kernels() {
    return kSoftmaxKernels;
}

}  // namespace dsk::cpu
