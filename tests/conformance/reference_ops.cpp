// The float64 reference of the forward ops (see reference_ops.h). Each op is written out from
// docs/ops.md with plain loops over multi-indices; nothing here is shared with plugins/.
#include "reference_ops.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>

namespace dsk::conformance::ref {

//==============================================================================================
// Tensors and attributes
//==============================================================================================

int64_t element_count(const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

Shape unravel(int64_t flat, const Shape& shape) {
    Shape index(shape.size(), 0);
    for (size_t k = shape.size(); k-- > 0;) {
        index[k] = flat % shape[k];
        flat /= shape[k];
    }
    return index;
}

std::string shape_text(const Shape& shape) {
    std::string s = "[";
    for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
    return s + "]";
}

Tensor::Tensor(Shape s, double fill) : shape(std::move(s)) {
    data.assign(static_cast<size_t>(element_count(shape)), fill);
}

Tensor::Tensor(Shape s, std::vector<double> values) : shape(std::move(s)), data(std::move(values)) {
    if (static_cast<int64_t>(data.size()) != element_count(shape))
        throw std::invalid_argument("reference tensor " + shape_text(shape) + " given " +
                                    std::to_string(data.size()) + " values");
}

int64_t Tensor::offset(const Shape& index) const {
    int64_t flat = 0;
    for (size_t k = 0; k < shape.size(); ++k) flat = flat * shape[k] + index[k];
    return flat;
}

int64_t Tensor::offset(std::initializer_list<int64_t> index) const {
    int64_t flat = 0;
    size_t k = 0;
    for (int64_t i : index) flat = flat * shape[k++] + i;
    return flat;
}

Attr Attr::integer(const char* name, int64_t value) {
    Attr a;
    a.name = name;
    a.type = DSK_ATTR_INT;
    a.i = value;
    return a;
}

Attr Attr::real(const char* name, double value) {
    Attr a;
    a.name = name;
    a.type = DSK_ATTR_FLOAT;
    a.f = value;
    return a;
}

Attr Attr::text(const char* name, const char* value) {
    Attr a;
    a.name = name;
    a.type = DSK_ATTR_STRING;
    a.s = value;
    return a;
}

Attr Attr::ints(const char* name, std::vector<int64_t> values) {
    Attr a;
    a.name = name;
    a.type = DSK_ATTR_INTS;
    a.list = std::move(values);
    return a;
}

dsk_attr Attr::view() const {
    dsk_attr v{};
    v.struct_size = sizeof v;
    v.type = type;
    v.name = name.c_str();
    v.i = i;
    v.f = f;
    v.s = s.c_str();
    v.ints = list.data();
    v.count = list.size();
    return v;
}

std::string Attr::to_string() const {
    switch (type) {
        case DSK_ATTR_INT: return name + "=" + std::to_string(i);
        case DSK_ATTR_FLOAT: return name + "=" + std::to_string(f);
        case DSK_ATTR_STRING: return name + "=\"" + s + "\"";
        default: return name + "=" + shape_text(list);
    }
}

namespace {

[[noreturn]] void fail(const std::string& op, const std::string& message) {
    throw std::invalid_argument("reference " + op + ": " + message);
}

const Attr* find(const Attrs& attrs, const char* name) {
    for (const Attr& a : attrs)
        if (a.name == name) return &a;
    return nullptr;
}

int64_t get_int(const Attrs& attrs, const char* name, int64_t fallback) {
    const Attr* a = find(attrs, name);
    return a ? a->i : fallback;
}

double get_float(const Attrs& attrs, const char* name, double fallback) {
    const Attr* a = find(attrs, name);
    if (!a) return fallback;
    return a->type == DSK_ATTR_INT ? static_cast<double>(a->i) : a->f;
}

std::string get_string(const Attrs& attrs, const char* name, const std::string& fallback) {
    const Attr* a = find(attrs, name);
    return a ? a->s : fallback;
}

Shape get_ints(const Attrs& attrs, const char* name, const Shape& fallback) {
    const Attr* a = find(attrs, name);
    return a ? a->list : fallback;
}

int64_t positive_axis(const std::string& op, int64_t axis, int64_t rank) {
    const int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) fail(op, "axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
    return a;
}

void expect_inputs(const std::string& op, const std::vector<Tensor>& in, size_t low, size_t high) {
    if (in.size() < low || in.size() > high)
        fail(op, "takes " + std::to_string(low) + ".." + std::to_string(high) + " inputs, given " +
                     std::to_string(in.size()));
}

//==============================================================================================
// Gemm, MatMul
//==============================================================================================

// The index into `from` (numpy-broadcast to `to`) of position `index` of `to`.
int64_t broadcast_offset(const Tensor& from, const Shape& to, const Shape& index) {
    const size_t lead = to.size() - from.rank();
    int64_t flat = 0;
    for (size_t k = 0; k < from.rank(); ++k) {
        const int64_t i = from.shape[k] == 1 ? 0 : index[lead + k];
        flat = flat * from.shape[k] + i;
    }
    return flat;
}

std::vector<Tensor> gemm(const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs("Gemm", in, 2, 3);
    const Tensor& a = in[0];
    const Tensor& b = in[1];
    const bool ta = get_int(attrs, "transA", 0) != 0;
    const bool tb = get_int(attrs, "transB", 0) != 0;
    const double alpha = get_float(attrs, "alpha", 1.0);
    const double beta = get_float(attrs, "beta", 1.0);
    const int64_t m = ta ? a.shape[1] : a.shape[0];
    const int64_t k = ta ? a.shape[0] : a.shape[1];
    const int64_t n = tb ? b.shape[0] : b.shape[1];
    if ((tb ? b.shape[1] : b.shape[0]) != k) fail("Gemm", "inner dimensions differ");
    Tensor y({m, n});
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
            double sum = 0;
            for (int64_t p = 0; p < k; ++p) {
                const double av = ta ? a.at({p, i}) : a.at({i, p});
                const double bv = tb ? b.at({j, p}) : b.at({p, j});
                sum += av * bv;
            }
            double value = alpha * sum;
            if (in.size() > 2) value += beta * in[2].data[static_cast<size_t>(broadcast_offset(in[2], {m, n}, {i, j}))];
            y.at({i, j}) = value;
        }
    return {y};
}

std::vector<Tensor> matmul(const std::vector<Tensor>& in, const Attrs&) {
    expect_inputs("MatMul", in, 2, 2);
    const Tensor& a = in[0];
    const Tensor& b = in[1];
    if (a.rank() != 2 || b.rank() != 2 || a.shape[1] != b.shape[0]) fail("MatMul", "needs [M, K] x [K, N]");
    Tensor y({a.shape[0], b.shape[1]});
    for (int64_t i = 0; i < a.shape[0]; ++i)
        for (int64_t j = 0; j < b.shape[1]; ++j) {
            double sum = 0;
            for (int64_t p = 0; p < a.shape[1]; ++p) sum += a.at({i, p}) * b.at({p, j});
            y.at({i, j}) = sum;
        }
    return {y};
}

//==============================================================================================
// Conv and pools (2-D, NCHW)
//==============================================================================================

struct Window {
    int64_t kh, kw, sh, sw, dh, dw, top, left, bottom, right;
    int64_t out_h(int64_t h) const { return (h + top + bottom - dh * (kh - 1) - 1) / sh + 1; }
    int64_t out_w(int64_t w) const { return (w + left + right - dw * (kw - 1) - 1) / sw + 1; }
};

Window window(const Attrs& attrs, int64_t kh, int64_t kw) {
    const Shape strides = get_ints(attrs, "strides", {1, 1});
    const Shape pads = get_ints(attrs, "pads", {0, 0, 0, 0});
    const Shape dilations = get_ints(attrs, "dilations", {1, 1});
    return {kh, kw, strides[0], strides[1], dilations[0], dilations[1], pads[0], pads[1], pads[2], pads[3]};
}

std::vector<Tensor> conv(const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs("Conv", in, 2, 3);
    const Tensor& x = in[0];
    const Tensor& w = in[1];
    const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3];
    const int64_t m = w.shape[0], cg = w.shape[1];
    const int64_t group = get_int(attrs, "group", 1);
    if (cg * group != c || m % group != 0) fail("Conv", "channels do not fit the group");
    const Window win = window(attrs, w.shape[2], w.shape[3]);
    const int64_t oh = win.out_h(h), ow = win.out_w(wd);
    const int64_t m_per_group = m / group;
    Tensor y({n, m, oh, ow});
    for (int64_t b = 0; b < n; ++b)
        for (int64_t o = 0; o < m; ++o) {
            const int64_t g = o / m_per_group;
            for (int64_t i = 0; i < oh; ++i)
                for (int64_t j = 0; j < ow; ++j) {
                    double sum = in.size() > 2 ? in[2].data[static_cast<size_t>(o)] : 0.0;
                    for (int64_t ci = 0; ci < cg; ++ci)
                        for (int64_t p = 0; p < win.kh; ++p)
                            for (int64_t q = 0; q < win.kw; ++q) {
                                const int64_t ih = i * win.sh - win.top + p * win.dh;
                                const int64_t iw = j * win.sw - win.left + q * win.dw;
                                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                                sum += x.at({b, g * cg + ci, ih, iw}) * w.at({o, ci, p, q});
                            }
                    y.at({b, o, i, j}) = sum;
                }
        }
    return {y};
}

// MaxPool (`is_max`) or AveragePool: only positions inside X take part; the average divides by
// their count, or by the window size when count_include_pad = 1.
std::vector<Tensor> pool(const std::vector<Tensor>& in, const Attrs& attrs, bool is_max) {
    const char* op = is_max ? "MaxPool" : "AveragePool";
    expect_inputs(op, in, 1, 1);
    const Tensor& x = in[0];
    const Shape kernel = get_ints(attrs, "kernel_shape", {});
    if (kernel.size() != 2) fail(op, "kernel_shape must have 2 values");
    const Window win = window(attrs, kernel[0], kernel[1]);
    const bool include_pad = get_int(attrs, "count_include_pad", 0) != 0;
    const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3];
    const int64_t oh = win.out_h(h), ow = win.out_w(wd);
    Tensor y({n, c, oh, ow});
    for (int64_t b = 0; b < n; ++b)
        for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t i = 0; i < oh; ++i)
                for (int64_t j = 0; j < ow; ++j) {
                    double best = -std::numeric_limits<double>::infinity();
                    double sum = 0;
                    int64_t count = 0;
                    for (int64_t p = 0; p < win.kh; ++p)
                        for (int64_t q = 0; q < win.kw; ++q) {
                            const int64_t ih = i * win.sh - win.top + p;
                            const int64_t iw = j * win.sw - win.left + q;
                            if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                            const double v = x.at({b, ch, ih, iw});
                            best = std::max(best, v);
                            sum += v;
                            ++count;
                        }
                    const double divisor = include_pad ? static_cast<double>(win.kh * win.kw) : static_cast<double>(count);
                    y.at({b, ch, i, j}) = is_max ? best : sum / divisor;
                }
    return {y};
}

std::vector<Tensor> global_average_pool(const std::vector<Tensor>& in, const Attrs&) {
    expect_inputs("GlobalAveragePool", in, 1, 1);
    const Tensor& x = in[0];
    const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
    Tensor y({n, c, 1, 1});
    for (int64_t b = 0; b < n; ++b)
        for (int64_t ch = 0; ch < c; ++ch) {
            double sum = 0;
            for (int64_t i = 0; i < h; ++i)
                for (int64_t j = 0; j < w; ++j) sum += x.at({b, ch, i, j});
            y.at({b, ch, 0, 0}) = sum / static_cast<double>(h * w);
        }
    return {y};
}

//==============================================================================================
// Normalization
//==============================================================================================

std::vector<Tensor> batch_normalization(std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs("BatchNormalization", in, 5, 5);
    const Tensor& x = in[0];
    const Tensor& scale = in[1];
    const Tensor& bias = in[2];
    Tensor& running_mean = in[3];
    Tensor& running_var = in[4];
    const double epsilon = get_float(attrs, "epsilon", 1e-5);
    const double momentum = get_float(attrs, "momentum", 0.9);
    const bool training = get_int(attrs, "training_mode", 0) != 0;
    const int64_t n = x.shape[0], c = x.shape[1];
    const int64_t spatial = element_count(x.shape) / (n * c);
    // X viewed as [N, C, spatial].
    auto element = [&](int64_t b, int64_t ch, int64_t s) { return static_cast<size_t>((b * c + ch) * spatial + s); };

    Tensor y(x.shape);
    Tensor saved_mean({c}), saved_invstd({c});
    for (int64_t ch = 0; ch < c; ++ch) {
        double mean = running_mean.data[static_cast<size_t>(ch)];
        double var = running_var.data[static_cast<size_t>(ch)];
        if (training) {
            const double count = static_cast<double>(n * spatial);
            double sum = 0;
            for (int64_t b = 0; b < n; ++b)
                for (int64_t s = 0; s < spatial; ++s) sum += x.data[element(b, ch, s)];
            mean = sum / count;
            double squares = 0;
            for (int64_t b = 0; b < n; ++b)
                for (int64_t s = 0; s < spatial; ++s) {
                    const double d = x.data[element(b, ch, s)] - mean;
                    squares += d * d;
                }
            var = squares / count;  // biased: what the batch is normalised with
            const double unbiased = count > 1 ? squares / (count - 1) : var;
            running_mean.data[static_cast<size_t>(ch)] = running_mean.data[static_cast<size_t>(ch)] * momentum + mean * (1 - momentum);
            running_var.data[static_cast<size_t>(ch)] = running_var.data[static_cast<size_t>(ch)] * momentum + unbiased * (1 - momentum);
        }
        const double invstd = 1.0 / std::sqrt(var + epsilon);
        saved_mean.data[static_cast<size_t>(ch)] = mean;
        saved_invstd.data[static_cast<size_t>(ch)] = invstd;
        for (int64_t b = 0; b < n; ++b)
            for (int64_t s = 0; s < spatial; ++s) {
                const size_t e = element(b, ch, s);
                y.data[e] = (x.data[e] - mean) * invstd * scale.data[static_cast<size_t>(ch)] + bias.data[static_cast<size_t>(ch)];
            }
    }
    return {y, saved_mean, saved_invstd};
}

std::vector<Tensor> layer_normalization(const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs("LayerNormalization", in, 2, 3);
    const Tensor& x = in[0];
    const int64_t axis = positive_axis("LayerNormalization", get_int(attrs, "axis", -1), static_cast<int64_t>(x.rank()));
    const double epsilon = get_float(attrs, "epsilon", 1e-5);
    const Shape normalized(x.shape.begin() + axis, x.shape.end());
    const int64_t inner = element_count(normalized);
    const int64_t outer = element_count(x.shape) / inner;
    Shape stats_shape = x.shape;
    for (size_t k = static_cast<size_t>(axis); k < stats_shape.size(); ++k) stats_shape[k] = 1;

    Tensor y(x.shape), saved_mean(stats_shape), saved_invstd(stats_shape);
    for (int64_t o = 0; o < outer; ++o) {
        double sum = 0;
        for (int64_t i = 0; i < inner; ++i) sum += x.data[static_cast<size_t>(o * inner + i)];
        const double mean = sum / static_cast<double>(inner);
        double squares = 0;
        for (int64_t i = 0; i < inner; ++i) {
            const double d = x.data[static_cast<size_t>(o * inner + i)] - mean;
            squares += d * d;
        }
        const double invstd = 1.0 / std::sqrt(squares / static_cast<double>(inner) + epsilon);
        saved_mean.data[static_cast<size_t>(o)] = mean;
        saved_invstd.data[static_cast<size_t>(o)] = invstd;
        for (int64_t i = 0; i < inner; ++i) {
            const size_t e = static_cast<size_t>(o * inner + i);
            double v = (x.data[e] - mean) * invstd * in[1].data[static_cast<size_t>(i)];
            if (in.size() > 2) v += in[2].data[static_cast<size_t>(i)];
            y.data[e] = v;
        }
    }
    return {y, saved_mean, saved_invstd};
}

//==============================================================================================
// Elementwise
//==============================================================================================

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::vector<Tensor> unary(const std::string& op, const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs(op, in, 1, 1);
    std::function<double(double)> f;
    if (op == "Relu") f = [](double x) { return x > 0 ? x : 0.0; };
    else if (op == "Sigmoid") f = sigmoid;
    else if (op == "Tanh") f = [](double x) { return std::tanh(x); };
    else if (op == "Silu") f = [](double x) { return x * sigmoid(x); };
    else if (op == "Neg") f = [](double x) { return -x; };
    else if (op == "HardSwish") f = [](double x) { return x * std::max(0.0, std::min(1.0, x / 6.0 + 0.5)); };
    else if (op == "HardSigmoid") {
        const double alpha = get_float(attrs, "alpha", 0.2), beta = get_float(attrs, "beta", 0.5);
        f = [alpha, beta](double x) { return std::max(0.0, std::min(1.0, alpha * x + beta)); };
    } else if (op == "Gelu") {
        const std::string approximate = get_string(attrs, "approximate", "none");
        if (approximate == "tanh") {
            f = [](double x) {
                const double k = std::sqrt(2.0 / M_PI);
                return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
            };
        } else {
            f = [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); };
        }
    } else {
        fail(op, "not an elementwise activation");
    }
    Tensor y(in[0].shape);
    for (size_t e = 0; e < y.data.size(); ++e) y.data[e] = f(in[0].data[e]);
    return {y};
}

std::vector<Tensor> binary(const std::string& op, const std::vector<Tensor>& in, const Attrs&) {
    expect_inputs(op, in, 2, 2);
    const Tensor& a = in[0];
    const Tensor& b = in[1];
    const size_t rank = std::max(a.rank(), b.rank());
    Shape out(rank);
    for (size_t k = 0; k < rank; ++k) {
        const int64_t da = k < rank - a.rank() ? 1 : a.shape[k - (rank - a.rank())];
        const int64_t db = k < rank - b.rank() ? 1 : b.shape[k - (rank - b.rank())];
        if (da != db && da != 1 && db != 1) fail(op, "shapes do not broadcast");
        out[k] = da == 1 ? db : da;
    }
    Tensor c(out);
    for (int64_t e = 0; e < c.numel(); ++e) {
        const Shape index = unravel(e, out);
        const double x = a.data[static_cast<size_t>(broadcast_offset(a, out, index))];
        const double y = b.data[static_cast<size_t>(broadcast_offset(b, out, index))];
        double v = 0;
        if (op == "Add") v = x + y;
        else if (op == "Sub") v = x - y;
        else if (op == "Mul") v = x * y;
        else v = x / y;
        c.data[static_cast<size_t>(e)] = v;
    }
    return {c};
}

//==============================================================================================
// Softmax family
//==============================================================================================

// Softmax or LogSoftmax of `x` along `axis`, computed stably (max subtracted).
Tensor softmax_along(const Tensor& x, int64_t axis, bool log) {
    int64_t outer = 1, inner = 1;
    for (int64_t k = 0; k < axis; ++k) outer *= x.shape[static_cast<size_t>(k)];
    for (size_t k = static_cast<size_t>(axis) + 1; k < x.rank(); ++k) inner *= x.shape[k];
    const int64_t length = x.shape[static_cast<size_t>(axis)];
    Tensor y(x.shape);
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
            auto at = [&](int64_t j) { return static_cast<size_t>((o * length + j) * inner + i); };
            double top = -std::numeric_limits<double>::infinity();
            for (int64_t j = 0; j < length; ++j) top = std::max(top, x.data[at(j)]);
            double sum = 0;
            for (int64_t j = 0; j < length; ++j) sum += std::exp(x.data[at(j)] - top);
            for (int64_t j = 0; j < length; ++j) {
                const double shifted = x.data[at(j)] - top;
                y.data[at(j)] = log ? shifted - std::log(sum) : std::exp(shifted) / sum;
            }
        }
    return y;
}

std::vector<Tensor> softmax(const std::string& op, const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs(op, in, 1, 1);
    const int64_t axis = positive_axis(op, get_int(attrs, "axis", -1), static_cast<int64_t>(in[0].rank()));
    return {softmax_along(in[0], axis, op == "LogSoftmax")};
}

std::vector<Tensor> softmax_cross_entropy(const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs("SoftmaxCrossEntropyLoss", in, 2, 2);
    const Tensor& scores = in[0];
    const Tensor& labels = in[1];
    const std::string reduction = get_string(attrs, "reduction", "mean");
    const int64_t n = scores.shape[0], c = scores.shape[1];
    Tensor log_prob = softmax_along(scores, 1, true);
    double loss = 0;
    for (int64_t b = 0; b < n; ++b) {
        const int64_t label = static_cast<int64_t>(labels.data[static_cast<size_t>(b)]);
        if (label < 0 || label >= c) fail("SoftmaxCrossEntropyLoss", "label out of range");
        loss -= log_prob.at({b, label});
    }
    if (reduction == "mean") loss /= static_cast<double>(n);
    return {Tensor({}, {loss}), log_prob};
}

//==============================================================================================
// Shape ops
//==============================================================================================

std::vector<Tensor> reshape(const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs("Reshape", in, 1, 1);
    const Tensor& x = in[0];
    Shape shape = get_ints(attrs, "shape", {});
    int64_t known = 1;
    size_t inferred = shape.size();
    for (size_t k = 0; k < shape.size(); ++k) {
        if (shape[k] == 0) shape[k] = x.shape[k];
        if (shape[k] == -1) inferred = k;
        else known *= shape[k];
    }
    if (inferred < shape.size()) shape[inferred] = x.numel() / known;
    if (element_count(shape) != x.numel()) fail("Reshape", "element counts differ");
    return {Tensor(shape, x.data)};
}

std::vector<Tensor> flatten(const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs("Flatten", in, 1, 1);
    const Tensor& x = in[0];
    const int64_t rank = static_cast<int64_t>(x.rank());
    int64_t axis = get_int(attrs, "axis", 1);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis > rank) fail("Flatten", "axis out of range");
    int64_t front = 1;
    for (int64_t k = 0; k < axis; ++k) front *= x.shape[static_cast<size_t>(k)];
    return {Tensor({front, x.numel() / front}, x.data)};
}

std::vector<Tensor> transpose(const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs("Transpose", in, 1, 1);
    const Tensor& x = in[0];
    Shape reversed(x.rank());
    for (size_t k = 0; k < x.rank(); ++k) reversed[k] = static_cast<int64_t>(x.rank() - 1 - k);
    const Shape perm = get_ints(attrs, "perm", reversed);
    Shape out(x.rank());
    for (size_t k = 0; k < x.rank(); ++k) out[k] = x.shape[static_cast<size_t>(perm[k])];
    Tensor y(out);
    for (int64_t e = 0; e < y.numel(); ++e) {
        const Shape yi = unravel(e, out);
        Shape xi(x.rank());
        for (size_t k = 0; k < x.rank(); ++k) xi[static_cast<size_t>(perm[k])] = yi[k];
        y.data[static_cast<size_t>(e)] = x.at(xi);
    }
    return {y};
}

std::vector<Tensor> concat(const std::vector<Tensor>& in, const Attrs& attrs) {
    if (in.empty()) fail("Concat", "needs inputs");
    const int64_t axis = positive_axis("Concat", get_int(attrs, "axis", 0), static_cast<int64_t>(in[0].rank()));
    Shape out = in[0].shape;
    out[static_cast<size_t>(axis)] = 0;
    for (const Tensor& t : in) out[static_cast<size_t>(axis)] += t.shape[static_cast<size_t>(axis)];
    Tensor y(out);
    int64_t offset = 0;
    for (const Tensor& t : in) {
        for (int64_t e = 0; e < t.numel(); ++e) {
            Shape index = unravel(e, t.shape);
            index[static_cast<size_t>(axis)] += offset;
            y.at(index) = t.data[static_cast<size_t>(e)];
        }
        offset += t.shape[static_cast<size_t>(axis)];
    }
    return {y};
}

std::vector<Tensor> slice(const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs("Slice", in, 1, 1);
    const Tensor& x = in[0];
    const Shape starts = get_ints(attrs, "starts", {});
    const Shape ends = get_ints(attrs, "ends", {});
    Shape all_axes(starts.size());
    for (size_t k = 0; k < starts.size(); ++k) all_axes[k] = static_cast<int64_t>(k);
    const Shape axes = get_ints(attrs, "axes", all_axes);
    const Shape steps = get_ints(attrs, "steps", Shape(starts.size(), 1));
    // Per dimension: first index and step (whole dimension by default).
    Shape first(x.rank(), 0), step(x.rank(), 1), out = x.shape;
    for (size_t i = 0; i < starts.size(); ++i) {
        const size_t axis = static_cast<size_t>(positive_axis("Slice", axes[i], static_cast<int64_t>(x.rank())));
        const int64_t dim = x.shape[axis];
        const int64_t start = std::clamp<int64_t>(starts[i] < 0 ? starts[i] + dim : starts[i], 0, dim);
        const int64_t end = std::clamp<int64_t>(ends[i] < 0 ? ends[i] + dim : ends[i], 0, dim);
        first[axis] = start;
        step[axis] = steps[i];
        out[axis] = end > start ? (end - start + steps[i] - 1) / steps[i] : 0;
    }
    Tensor y(out);
    for (int64_t e = 0; e < y.numel(); ++e) {
        const Shape yi = unravel(e, out);
        Shape xi(x.rank());
        for (size_t k = 0; k < x.rank(); ++k) xi[k] = first[k] + yi[k] * step[k];
        y.data[static_cast<size_t>(e)] = x.at(xi);
    }
    return {y};
}

//==============================================================================================
// Dropout, Gather, reductions
//==============================================================================================

std::vector<Tensor> dropout(const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs("Dropout", in, 1, 1);
    if (get_int(attrs, "training_mode", 0) != 0)
        fail("Dropout", "training mode is random: the suite checks it against the mask instead");
    return {in[0], Tensor(in[0].shape, 1.0)};
}

std::vector<Tensor> gather(const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs("Gather", in, 2, 2);
    if (get_int(attrs, "axis", 0) != 0) fail("Gather", "only axis 0");
    const Tensor& data = in[0];
    const Tensor& indices = in[1];
    const int64_t rows = data.shape[0];
    const int64_t row = data.numel() / rows;  // elements per row
    Shape out = indices.shape;
    out.insert(out.end(), data.shape.begin() + 1, data.shape.end());
    Tensor y(out);
    for (int64_t i = 0; i < indices.numel(); ++i) {
        int64_t r = static_cast<int64_t>(indices.data[static_cast<size_t>(i)]);
        if (r < 0) r += rows;
        if (r < 0 || r >= rows) fail("Gather", "index out of range");
        for (int64_t d = 0; d < row; ++d) y.data[static_cast<size_t>(i * row + d)] = data.data[static_cast<size_t>(r * row + d)];
    }
    return {y};
}

std::vector<Tensor> reduce(const std::string& op, const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs(op, in, 1, 1);
    const Tensor& x = in[0];
    const Shape given = get_ints(attrs, "axes", {});
    const bool keepdims = get_int(attrs, "keepdims", 1) != 0;
    std::vector<bool> reduced(x.rank(), given.empty());
    for (int64_t a : given) reduced[static_cast<size_t>(positive_axis(op, a, static_cast<int64_t>(x.rank())))] = true;
    Shape kept_shape;  // X's shape with reduced dims set to 1
    Shape out;
    int64_t count = 1;
    for (size_t k = 0; k < x.rank(); ++k) {
        kept_shape.push_back(reduced[k] ? 1 : x.shape[k]);
        if (reduced[k]) count *= x.shape[k];
        if (!reduced[k]) out.push_back(x.shape[k]);
        else if (keepdims) out.push_back(1);
    }
    const bool is_max = op == "ReduceMax";
    Tensor acc(kept_shape, is_max ? -std::numeric_limits<double>::infinity() : 0.0);
    for (int64_t e = 0; e < x.numel(); ++e) {
        Shape index = unravel(e, x.shape);
        for (size_t k = 0; k < x.rank(); ++k)
            if (reduced[k]) index[k] = 0;
        double& slot = acc.at(index);
        const double v = x.data[static_cast<size_t>(e)];
        slot = is_max ? std::max(slot, v) : slot + v;
    }
    if (op == "ReduceMean")
        for (double& v : acc.data) v /= static_cast<double>(count);
    return {Tensor(out, acc.data)};
}

//==============================================================================================
// Quantized: MatMulInteger, ConvInteger
//==============================================================================================
// `t` minus its zero point `z` (a scalar or [1], or one per index of `axis` of t).
Tensor minus_zero_point(const char* op, const Tensor& t, const Tensor& z, size_t axis) {
    Tensor shifted = t;
    for (int64_t e = 0; e < t.numel(); ++e) {
        const int64_t k = z.numel() == 1 ? 0 : unravel(e, t.shape)[axis];
        if (k >= z.numel()) fail(op, "zero point " + shape_text(z.shape) + " does not fit " + shape_text(t.shape));
        shifted.data[static_cast<size_t>(e)] -= z.data[static_cast<size_t>(k)];
    }
    return shifted;
}

// (A - a_zero_point [per row]) x (B - b_zero_point [per column]).
std::vector<Tensor> matmul_integer(const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs("MatMulInteger", in, 2, 4);
    const Tensor a = in.size() > 2 ? minus_zero_point("MatMulInteger", in[0], in[2], 0) : in[0];
    const Tensor b = in.size() > 3 ? minus_zero_point("MatMulInteger", in[1], in[3], 1) : in[1];
    return matmul({a, b}, attrs);
}

// Conv(X - x_zero_point, W - w_zero_point [per output channel]); the padding, skipped by
// conv(), contributes nothing, as if it held x_zero_point.
std::vector<Tensor> conv_integer(const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs("ConvInteger", in, 2, 4);
    const Tensor x = in.size() > 2 ? minus_zero_point("ConvInteger", in[0], in[2], 0) : in[0];
    const Tensor w = in.size() > 3 ? minus_zero_point("ConvInteger", in[1], in[3], 0) : in[1];
    return conv({x, w}, attrs);
}

//==============================================================================================
// FusedGemm, FusedConv: the reference Gemm or Conv, then the reference activation (and for
// FusedConvMaxPool the reference MaxPool)
//==============================================================================================

// FoldConvBatchNorm(W, scale, B, mean, var, [conv_B]) -> W', B'.
std::vector<Tensor> fold_conv_batch_norm(const std::vector<Tensor>& in, const Attrs& attrs) {
    expect_inputs("FoldConvBatchNorm", in, 5, 6);
    const Tensor& w = in[0];
    const int64_t m = w.shape[0];
    const int64_t per = w.numel() / m;
    const double epsilon = get_float(attrs, "epsilon", 1e-5);
    Tensor folded(w.shape), bias({m});
    for (int64_t c = 0; c < m; ++c) {
        const size_t k = static_cast<size_t>(c);
        const double s = in[1].data[k] / std::sqrt(in[4].data[k] + epsilon);
        for (int64_t i = 0; i < per; ++i) folded.data[static_cast<size_t>(c * per + i)] = w.data[static_cast<size_t>(c * per + i)] * s;
        const double b0 = in.size() > 5 ? in[5].data[k] : 0.0;
        bias.data[k] = (b0 - in[3].data[k]) * s + in[2].data[k];
    }
    return {folded, bias};
}

std::vector<Tensor> fused(const std::string& op, const std::vector<Tensor>& in, const Attrs& attrs) {
    const Tensor z = (op == "FusedConv" ? conv(in, attrs) : gemm(in, attrs))[0];
    const std::string activation = get_string(attrs, "activation", "");
    if (activation.empty()) return {z, z};
    if (activation == "Neg") fail(op, "Neg is not an activation it fuses");
    const Attrs hard_sigmoid = {Attr::real("alpha", get_float(attrs, "activation_alpha", 0.2)),
                                Attr::real("beta", get_float(attrs, "activation_beta", 0.5))};
    return {unary(activation, {z}, hard_sigmoid)[0], z};
}

// FusedGemmChain: layer after layer, the reference Gemm with the layer's transB and bias, then
// its activation ("" none).
std::vector<Tensor> fused_gemm_chain(const std::vector<Tensor>& in, const Attrs& attrs) {
    if (in.size() < 5 || in.size() % 2 == 0) fail("FusedGemmChain", "needs A, then B and C of 2 or more layers");
    const size_t layers = (in.size() - 1) / 2;
    const Shape trans_b = get_ints(attrs, "transB", Shape(layers, 0));
    std::vector<std::string> activations;
    std::stringstream list(get_string(attrs, "activations", ""));
    for (std::string item; std::getline(list, item, ',');) activations.push_back(item);
    if (activations.size() + 1 == layers) activations.emplace_back();  // getline drops a last empty item
    if (trans_b.size() != layers || activations.size() != layers) fail("FusedGemmChain", "one transB and activation per layer");
    Tensor h = in[0];
    for (size_t l = 0; l < layers; ++l) {
        h = gemm({h, in[1 + 2 * l], in[2 + 2 * l]}, {Attr::integer("transB", trans_b[l])})[0];
        if (!activations[l].empty()) h = unary(activations[l], {h}, {})[0];
    }
    return {h};
}

// FusedConvMaxPool: FusedConv's Y, then MaxPool's 2x2 window at stride 2.
std::vector<Tensor> fused_conv_max_pool(const std::vector<Tensor>& in, const Attrs& attrs) {
    const Tensor y = fused("FusedConv", in, attrs)[0];
    return pool({y}, {Attr::ints("kernel_shape", {2, 2}), Attr::ints("strides", {2, 2})}, true);
}

// FusedElementwise: its program (docs/ops.md) read here on its own terms, each instruction by
// the reference of its op; ActivationGrad as dY times the central difference of the f64
// activation (h = 1e-6: about 1e-10 off away from kinks, which the cases avoid).
Tensor activation_grad(const Tensor& dy, const Tensor& x, const Attrs& attrs) {
    const std::string activation = get_string(attrs, "activation", "");
    const double h = 1e-6;
    Tensor plus = x, minus = x;
    for (double& v : plus.data) v += h;
    for (double& v : minus.data) v -= h;
    const Tensor up = unary(activation, {plus}, attrs)[0], down = unary(activation, {minus}, attrs)[0];
    Tensor dx(x.shape);
    for (size_t e = 0; e < dx.data.size(); ++e) dx.data[e] = dy.data[e] * (up.data[e] - down.data[e]) / (2 * h);
    return dx;
}

std::vector<Tensor> fused_elementwise(const std::vector<Tensor>& in, const Attrs& attrs) {
    const std::string program = get_string(attrs, "program", "");
    std::vector<Tensor> t;
    size_t at = 0;
    while (at < program.size()) {
        size_t end = program.find(';', at);
        if (end == std::string::npos) end = program.size();
        const std::string text = program.substr(at, end - at);
        at = end + 1;
        const size_t open = text.find('('), bracket = text.find('[');
        const std::string op = text.substr(0, std::min(open, bracket));
        Attrs op_attrs;
        if (bracket < open) {
            std::stringstream list(text.substr(bracket + 1, text.find(']') - bracket - 1));
            for (std::string item; std::getline(list, item, ',');) {
                const std::string name = item.substr(0, item.find('=')), value = item.substr(item.find('=') + 1);
                if (name == "alpha" || name == "beta") op_attrs.push_back(Attr::real(name.c_str(), std::stod(value)));
                else op_attrs.push_back(Attr::text(name.c_str(), value.c_str()));
            }
        }
        std::vector<Tensor> operands;
        std::stringstream list(text.substr(open + 1, text.find(')') - open - 1));
        for (std::string item; std::getline(list, item, ',');) {
            const size_t k = std::stoul(item.substr(1));
            operands.push_back(item[0] == 'x' ? in.at(k) : t.at(k));
        }
        if (op == "ActivationGrad") t.push_back(activation_grad(operands.at(0), operands.at(1), op_attrs));
        else if (operands.size() == 2) t.push_back(binary(op, operands, op_attrs)[0]);
        else t.push_back(unary(op, operands, op_attrs)[0]);
    }
    if (t.empty()) fail("FusedElementwise", "empty program");
    return {t.back()};
}

using Forward = std::function<std::vector<Tensor>(std::vector<Tensor>&, const Attrs&)>;

// AdamUpdate(constants, X, G, M, V) in place; the token output is 0.
std::vector<Tensor> adam_update(std::vector<Tensor>& in) {
    expect_inputs("AdamUpdate", in, 5, 5);
    const auto& c = in[0].data;
    for (size_t j = 0; j < in[1].data.size(); ++j) {
        double& p = in[1].data[j];
        double grad = in[2].data[j];
        double& m = in[3].data[j];
        double& v = in[4].data[j];
        if (c[5] != 0) grad += c[5] * p;
        if (c[6] != 1) p *= c[6];
        m = c[0] * m + c[1] * grad;
        v = c[2] * v + c[3] * grad * grad;
        p -= c[7] * m / (std::sqrt(v) / c[8] + c[4]);
    }
    return {Tensor({}, 0.0)};
}

// SGDUpdate(constants, X, G, [B]) in place; the token output is 0.
std::vector<Tensor> sgd_update(std::vector<Tensor>& in) {
    expect_inputs("SGDUpdate", in, 3, 4);
    const auto& c = in[0].data;
    for (size_t j = 0; j < in[1].data.size(); ++j) {
        double& p = in[1].data[j];
        double d = in[2].data[j];
        if (c[3] != 0) d += c[3] * p;
        if (in.size() == 4) {
            double& b = in[3].data[j];
            b = c[4] != 0 ? d : c[1] * b + c[2] * d;
            d = c[5] != 0 ? d + c[1] * b : b;
        }
        p -= c[0] * d;
    }
    return {Tensor({}, 0.0)};
}

const std::map<std::string, Forward>& table() {
    static const std::map<std::string, Forward> ops = [] {
        std::map<std::string, Forward> t;
        t["Gemm"] = [](std::vector<Tensor>& in, const Attrs& a) { return gemm(in, a); };
        t["MatMul"] = [](std::vector<Tensor>& in, const Attrs& a) { return matmul(in, a); };
        t["Conv"] = [](std::vector<Tensor>& in, const Attrs& a) { return conv(in, a); };
        for (const char* op : {"FusedGemm", "FusedConv"})
            t[op] = [name = std::string(op)](std::vector<Tensor>& in, const Attrs& a) { return fused(name, in, a); };
        t["FusedConvMaxPool"] = [](std::vector<Tensor>& in, const Attrs& a) { return fused_conv_max_pool(in, a); };
        t["FusedGemmChain"] = [](std::vector<Tensor>& in, const Attrs& a) { return fused_gemm_chain(in, a); };
        t["MaxPool"] = [](std::vector<Tensor>& in, const Attrs& a) { return pool(in, a, true); };
        t["AveragePool"] = [](std::vector<Tensor>& in, const Attrs& a) { return pool(in, a, false); };
        t["GlobalAveragePool"] = [](std::vector<Tensor>& in, const Attrs& a) { return global_average_pool(in, a); };
        t["BatchNormalization"] = [](std::vector<Tensor>& in, const Attrs& a) { return batch_normalization(in, a); };
        t["FoldConvBatchNorm"] = [](std::vector<Tensor>& in, const Attrs& a) { return fold_conv_batch_norm(in, a); };
        t["AdamUpdate"] = [](std::vector<Tensor>& in, const Attrs&) { return adam_update(in); };
        t["SGDUpdate"] = [](std::vector<Tensor>& in, const Attrs&) { return sgd_update(in); };
        t["LayerNormalization"] = [](std::vector<Tensor>& in, const Attrs& a) { return layer_normalization(in, a); };
        t["FusedElementwise"] = [](std::vector<Tensor>& in, const Attrs& a) { return fused_elementwise(in, a); };
        for (const char* op : {"Relu", "Sigmoid", "Tanh", "Gelu", "Silu", "HardSwish", "HardSigmoid", "Neg"})
            t[op] = [name = std::string(op)](std::vector<Tensor>& in, const Attrs& a) { return unary(name, in, a); };
        for (const char* op : {"Add", "Sub", "Mul", "Div"})
            t[op] = [name = std::string(op)](std::vector<Tensor>& in, const Attrs& a) { return binary(name, in, a); };
        for (const char* op : {"Softmax", "LogSoftmax"})
            t[op] = [name = std::string(op)](std::vector<Tensor>& in, const Attrs& a) { return softmax(name, in, a); };
        t["SoftmaxCrossEntropyLoss"] = [](std::vector<Tensor>& in, const Attrs& a) { return softmax_cross_entropy(in, a); };
        t["Reshape"] = [](std::vector<Tensor>& in, const Attrs& a) { return reshape(in, a); };
        t["Flatten"] = [](std::vector<Tensor>& in, const Attrs& a) { return flatten(in, a); };
        t["Transpose"] = [](std::vector<Tensor>& in, const Attrs& a) { return transpose(in, a); };
        t["Concat"] = [](std::vector<Tensor>& in, const Attrs& a) { return concat(in, a); };
        t["Slice"] = [](std::vector<Tensor>& in, const Attrs& a) { return slice(in, a); };
        t["Dropout"] = [](std::vector<Tensor>& in, const Attrs& a) { return dropout(in, a); };
        t["Gather"] = [](std::vector<Tensor>& in, const Attrs& a) { return gather(in, a); };
        t["MatMulInteger"] = [](std::vector<Tensor>& in, const Attrs& a) { return matmul_integer(in, a); };
        t["ConvInteger"] = [](std::vector<Tensor>& in, const Attrs& a) { return conv_integer(in, a); };
        for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax"})
            t[op] = [name = std::string(op)](std::vector<Tensor>& in, const Attrs& a) { return reduce(name, in, a); };
        return t;
    }();
    return ops;
}

}  // namespace

std::vector<Tensor> run(const std::string& op, std::vector<Tensor>& inputs, const Attrs& attrs) {
    auto it = table().find(op);
    if (it == table().end()) fail(op, "no reference for this op");
    return it->second(inputs, attrs);
}

const std::vector<std::string>& forward_ops() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> n;
        for (const auto& [name, f] : table()) n.push_back(name);
        return n;
    }();
    return names;
}

}  // namespace dsk::conformance::ref
