// The MLP's kernels on the vulkan device against straightforward host references written out
// here: broadcasting arithmetic (including shapes the merging of dimensions cannot reduce),
// activations and their gradients, reductions, softmax and cross-entropy, data movement; plus
// supports_op and recording many nodes into one submission.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "vulkan_test_support.h"

using namespace vulkan_test;
using dsk::Attr;

namespace {

// Index of the element of `shape` (broadcast from the right) at out index `flat` of `out`.
size_t broadcast_index(const Shape& out, const Shape& shape, int64_t flat) {
    int64_t index = 0, stride = 1;
    for (size_t d = out.size(); d-- > 0;) {
        const int64_t coordinate = flat % out[d];
        flat /= out[d];
        const int64_t k = static_cast<int64_t>(d) - static_cast<int64_t>(out.size() - shape.size());
        if (k < 0) continue;
        const int64_t extent = shape[static_cast<size_t>(k)];
        if (extent != 1) index += coordinate * stride;
        stride *= extent;
    }
    return static_cast<size_t>(index);
}

void check_binary(const Device& dev, const char* op, const Shape& sa, const Shape& sb, const Shape& so) {
    const std::string name = op;
    CAPTURE(name);
    CAPTURE(dsk::shape_text(sa));
    CAPTURE(dsk::shape_text(sb));
    Tensor a(dev, DSK_DTYPE_F32, sa), b(dev, DSK_DTYPE_F32, sb), y(dev, DSK_DTYPE_F32, so);
    fill_random(a, 3);
    fill_random(b, 4, 0.5f, 2.0f);
    run(dev, op, {}, {&a, &b}, {&y});
    std::vector<double> expected(y.f.size());
    for (int64_t i = 0; i < y.size(); ++i) {
        const double va = a.f[broadcast_index(so, sa, i)], vb = b.f[broadcast_index(so, sb, i)];
        expected[static_cast<size_t>(i)] = name == "Add" ? va + vb : name == "Sub" ? va - vb : name == "Mul" ? va * vb : va / vb;
    }
    check_close(y.f, expected);
}

}  // namespace

TEST_CASE("vulkan Add Sub Mul Div broadcast like numpy") {
    Device dev;
    if (!dev.ok) return;
    for (const char* op : {"Add", "Sub", "Mul", "Div"}) check_binary(dev, op, {7, 5, 3}, {7, 5, 3}, {7, 5, 3});
    check_binary(dev, "Add", {128, 10}, {10}, {128, 10});          // Gemm bias style
    check_binary(dev, "Mul", {4, 1, 6}, {5, 1}, {4, 5, 6});        // both broadcast
    check_binary(dev, "Div", {}, {3, 4}, {3, 4});                  // scalar
    check_binary(dev, "Sub", {2, 1, 3, 5}, {2, 4, 1, 5}, {2, 4, 3, 5});  // nothing merges: 4 dims
    // Alternating broadcasts that do not merge below five dimensions: supports_op says no.
    Tensor a(dev, DSK_DTYPE_F32, {2, 1, 3, 1, 5}), b(dev, DSK_DTYPE_F32, {2, 4, 1, 6, 1});
    Tensor y(dev, DSK_DTYPE_F32, {2, 4, 3, 6, 5});
    Call call("Add", {}, {&a, &b}, {&y});
    CHECK(backend().supports_op(dev.device, &call.node, call.tensors.data()) == 0);
}

TEST_CASE("vulkan activations and ActivationGrad match their formulas") {
    Device dev;
    if (!dev.ok) return;
    struct Case {
        const char* op;
        std::vector<Attr> attrs;
        double (*f)(double);
        double (*df)(double);
    };
    const std::vector<Case> cases = {
        {"Relu", {}, [](double x) { return x < 0 ? 0.0 : x; }, [](double x) { return x <= 0 ? 0.0 : 1.0; }},
        {"Sigmoid", {}, [](double x) { return 1 / (1 + std::exp(-x)); },
         [](double x) { const double s = 1 / (1 + std::exp(-x)); return s * (1 - s); }},
        {"Tanh", {}, [](double x) { return std::tanh(x); }, [](double x) { return 1 - std::tanh(x) * std::tanh(x); }},
        {"Gelu", {}, [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); },
         [](double x) { return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI); }},
        {"Silu", {}, [](double x) { return x / (1 + std::exp(-x)); },
         [](double x) { const double s = 1 / (1 + std::exp(-x)); return s * (1 + x * (1 - s)); }},
        {"HardSwish", {}, [](double x) { return x * std::min(1.0, std::max(0.0, x / 6 + 0.5)); },
         [](double x) { return x < -3 ? 0.0 : x <= 3 ? x / 3 + 0.5 : 1.0; }},
        {"Neg", {}, [](double x) { return -x; }, nullptr},
    };
    for (const Case& c : cases) {
        const std::string name = c.op;
        CAPTURE(name);
        Tensor x(dev, DSK_DTYPE_F32, {1001}), y(dev, DSK_DTYPE_F32, {1001});
        fill_random(x, 5, -5.0f, 5.0f);
        run(dev, c.op, c.attrs, {&x}, {&y});
        std::vector<double> expected;
        for (float v : x.f) expected.push_back(c.f(v));
        check_close(y.f, expected);
        if (c.df == nullptr) continue;
        Tensor dy(dev, DSK_DTYPE_F32, {1001}), dx(dev, DSK_DTYPE_F32, {1001});
        fill_random(dy, 6);
        run(dev, "ActivationGrad", {Attr("activation", c.op)}, {&dy, &x}, {&dx});
        std::vector<double> grad;
        for (size_t k = 0; k < x.f.size(); ++k) grad.push_back(dy.f[k] * c.df(x.f[k]));
        check_close(dx.f, grad);
    }
    Tensor x(dev, DSK_DTYPE_F32, {4}), y(dev, DSK_DTYPE_F32, {4});
    Call bad("Gelu", {Attr("approximate", "erf")}, {&x}, {&y});
    CHECK(backend().supports_op(dev.device, &bad.node, bad.tensors.data()) == 0);
}

TEST_CASE("vulkan ReduceSum ReduceMean ReduceMax SumToShape and ReduceGrad") {
    Device dev;
    if (!dev.ok) return;
    const Shape shape = {6, 5, 4, 3};
    Tensor x(dev, DSK_DTYPE_F32, shape);
    fill_random(x, 7);
    // Over axes 0 and 2 (kept: 1 and 3), keepdims 0.
    auto at = [&](int64_t a, int64_t b, int64_t c, int64_t d) { return static_cast<double>(x.f[static_cast<size_t>(((a * 5 + b) * 4 + c) * 3 + d)]); };
    for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax"}) {
        const std::string name = op;
        CAPTURE(name);
        Tensor y(dev, DSK_DTYPE_F32, {5, 3});
        run(dev, op, {Attr("axes", std::vector<int64_t>{0, -2}), Attr("keepdims", 0)}, {&x}, {&y});
        std::vector<double> expected;
        for (int64_t b = 0; b < 5; ++b)
            for (int64_t d = 0; d < 3; ++d) {
                double s = 0, m = -INFINITY;
                for (int64_t a = 0; a < 6; ++a)
                    for (int64_t c = 0; c < 4; ++c) {
                        s += at(a, b, c, d);
                        m = std::max(m, at(a, b, c, d));
                    }
                expected.push_back(std::string(op) == "ReduceSum" ? s : std::string(op) == "ReduceMean" ? s / 24 : m);
            }
        check_close(y.f, expected);
    }
    Tensor all(dev, DSK_DTYPE_F32, {1, 1, 1, 1});
    run(dev, "ReduceSum", {}, {&x}, {&all});
    double total = 0;
    for (float v : x.f) total += v;
    check_close(all.f, {total});

    Tensor to(dev, DSK_DTYPE_F32, {4, 1});
    run(dev, "SumToShape", {Attr("shape", std::vector<int64_t>{4, 1})}, {&x}, {&to});
    std::vector<double> expected(4, 0.0);
    for (int64_t a = 0; a < 6; ++a)
        for (int64_t b = 0; b < 5; ++b)
            for (int64_t c = 0; c < 4; ++c)
                for (int64_t d = 0; d < 3; ++d) expected[static_cast<size_t>(c)] += at(a, b, c, d);
    check_close(to.f, expected);

    // ReduceGrad mean over axes [1, 3] with keepdims 1: dX[a, b, c, d] = dY[a, 0, c, 0] / 15.
    Tensor dy(dev, DSK_DTYPE_F32, {6, 1, 4, 1}), ydummy(dev, DSK_DTYPE_F32, {6, 1, 4, 1}), dx(dev, DSK_DTYPE_F32, shape);
    fill_random(dy, 8);
    run(dev, "ReduceGrad", {Attr("mode", "mean"), Attr("axes", std::vector<int64_t>{1, 3})}, {&dy, &x, &ydummy}, {&dx});
    std::vector<double> grad;
    for (int64_t a = 0; a < 6; ++a)
        for (int64_t b = 0; b < 5; ++b)
            for (int64_t c = 0; c < 4; ++c)
                for (int64_t d = 0; d < 3; ++d) grad.push_back(dy.f[static_cast<size_t>(a * 4 + c)] / 15.0);
    check_close(dx.f, grad);
    Call bad_mode("ReduceGrad", {Attr("mode", "min")}, {&dy, &x, &ydummy}, {&dx});
    CHECK(backend().supports_op(dev.device, &bad_mode.node, bad_mode.tensors.data()) == 0);
}

TEST_CASE("vulkan Softmax LogSoftmax their gradients and the cross-entropy loss") {
    Device dev;
    if (!dev.ok) return;
    const int64_t n = 13, c = 10;
    Tensor x(dev, DSK_DTYPE_F32, {n, c});
    fill_random(x, 9, -4.0f, 4.0f);
    std::vector<double> log_prob(static_cast<size_t>(n * c));
    for (int64_t r = 0; r < n; ++r) {
        double m = -INFINITY, s = 0;
        for (int64_t k = 0; k < c; ++k) m = std::max(m, static_cast<double>(x.f[static_cast<size_t>(r * c + k)]));
        for (int64_t k = 0; k < c; ++k) s += std::exp(x.f[static_cast<size_t>(r * c + k)] - m);
        for (int64_t k = 0; k < c; ++k) log_prob[static_cast<size_t>(r * c + k)] = x.f[static_cast<size_t>(r * c + k)] - m - std::log(s);
    }
    Tensor lsm(dev, DSK_DTYPE_F32, {n, c}), sm(dev, DSK_DTYPE_F32, {n, c});
    run(dev, "LogSoftmax", {Attr("axis", 1)}, {&x}, {&lsm});
    check_close(lsm.f, log_prob);
    run(dev, "Softmax", {}, {&x}, {&sm});
    std::vector<double> prob;
    for (double v : log_prob) prob.push_back(std::exp(v));
    check_close(sm.f, prob);

    // Softmax over axis 0 of a [4, 3, 2]: rows strided by 6.
    Tensor x3(dev, DSK_DTYPE_F32, {4, 3, 2}), y3(dev, DSK_DTYPE_F32, {4, 3, 2});
    fill_random(x3, 10);
    run(dev, "Softmax", {Attr("axis", 0)}, {&x3}, {&y3});
    std::vector<double> expected3(24);
    for (int64_t i = 0; i < 6; ++i) {
        double s = 0;
        for (int64_t k = 0; k < 4; ++k) s += std::exp(x3.f[static_cast<size_t>(k * 6 + i)]);
        for (int64_t k = 0; k < 4; ++k) expected3[static_cast<size_t>(k * 6 + i)] = std::exp(x3.f[static_cast<size_t>(k * 6 + i)]) / s;
    }
    check_close(y3.f, expected3);

    Tensor dy(dev, DSK_DTYPE_F32, {n, c}), dx(dev, DSK_DTYPE_F32, {n, c});
    fill_random(dy, 11);
    run(dev, "SoftmaxGrad", {}, {&dy, &sm}, {&dx});
    std::vector<double> grad(static_cast<size_t>(n * c));
    for (int64_t r = 0; r < n; ++r) {
        double s = 0;
        for (int64_t k = 0; k < c; ++k) s += dy.f[static_cast<size_t>(r * c + k)] * sm.f[static_cast<size_t>(r * c + k)];
        for (int64_t k = 0; k < c; ++k) {
            const size_t e = static_cast<size_t>(r * c + k);
            grad[e] = sm.f[e] * (dy.f[e] - s);
        }
    }
    check_close(dx.f, grad);
    run(dev, "LogSoftmaxGrad", {}, {&dy, &lsm}, {&dx});
    for (int64_t r = 0; r < n; ++r) {
        double s = 0;
        for (int64_t k = 0; k < c; ++k) s += dy.f[static_cast<size_t>(r * c + k)];
        for (int64_t k = 0; k < c; ++k) {
            const size_t e = static_cast<size_t>(r * c + k);
            grad[e] = dy.f[e] - std::exp(lsm.f[e]) * s;
        }
    }
    check_close(dx.f, grad);

    Tensor labels(dev, DSK_DTYPE_I64, {n});
    for (int64_t r = 0; r < n; ++r) labels.i[static_cast<size_t>(r)] = (r * 7) % c;
    for (const char* reduction : {"mean", "sum"}) {
        const std::string name = reduction;
        CAPTURE(name);
        const double scale = std::string(reduction) == "mean" ? 1.0 / n : 1.0;
        double loss = 0;
        for (int64_t r = 0; r < n; ++r) loss -= log_prob[static_cast<size_t>(r * c + labels.i[static_cast<size_t>(r)])];
        Tensor l1(dev, DSK_DTYPE_F32, {});
        run(dev, "SoftmaxCrossEntropyLoss", {Attr("reduction", reduction)}, {&x, &labels}, {&l1});  // loss only
        check_close(l1.f, {loss * scale});
        Tensor l2(dev, DSK_DTYPE_F32, {}), lp(dev, DSK_DTYPE_F32, {n, c});
        run(dev, "SoftmaxCrossEntropyLoss", {Attr("reduction", reduction)}, {&x, &labels}, {&l2, &lp});
        check_close(l2.f, {loss * scale});
        check_close(lp.f, log_prob);

        Tensor dloss(dev, DSK_DTYPE_F32, {}), ds(dev, DSK_DTYPE_F32, {n, c});
        dloss.f[0] = 2.5f;
        run(dev, "SoftmaxCrossEntropyLossGrad", {Attr("reduction", reduction)}, {&dloss, &lp, &labels}, {&ds});
        std::vector<double> dscores;
        for (int64_t r = 0; r < n; ++r)
            for (int64_t k = 0; k < c; ++k)
                dscores.push_back((std::exp(lp.f[static_cast<size_t>(r * c + k)]) - (k == labels.i[static_cast<size_t>(r)] ? 1 : 0)) * 2.5 * scale);
        check_close(ds.f, dscores);
    }
    // A label out of range cannot fail a shader: the loss is NaN.
    labels.i[3] = c;
    Tensor bad(dev, DSK_DTYPE_F32, {});
    run(dev, "SoftmaxCrossEntropyLoss", {}, {&x, &labels}, {&bad});
    CHECK(std::isnan(bad.f[0]));
}

TEST_CASE("vulkan Reshape Flatten and Transpose move the elements") {
    Device dev;
    if (!dev.ok) return;
    Tensor x(dev, DSK_DTYPE_F32, {2, 3, 4, 5});
    fill_random(x, 12);
    Tensor flat(dev, DSK_DTYPE_F32, {2, 60});
    run(dev, "Flatten", {Attr("axis", 1)}, {&x}, {&flat});
    CHECK(flat.f == x.f);
    Tensor t(dev, DSK_DTYPE_F32, {5, 2, 4, 3});
    run(dev, "Transpose", {Attr("perm", std::vector<int64_t>{3, 0, 2, 1})}, {&x}, {&t});
    std::vector<double> expected;
    for (int64_t d = 0; d < 5; ++d)
        for (int64_t a = 0; a < 2; ++a)
            for (int64_t c = 0; c < 4; ++c)
                for (int64_t b = 0; b < 3; ++b) expected.push_back(x.f[static_cast<size_t>(((a * 3 + b) * 4 + c) * 5 + d)]);
    check_close(t.f, expected, 0.0);
}

TEST_CASE("vulkan records a chain of nodes into one submission") {
    Device dev;
    if (!dev.ok) return;
    // y = relu(x W^T + b), loss = sum(y): five nodes, one flush.
    Tensor x(dev, DSK_DTYPE_F32, {32, 16}), w(dev, DSK_DTYPE_F32, {8, 16}), b(dev, DSK_DTYPE_F32, {8});
    Tensor h(dev, DSK_DTYPE_F32, {32, 8}), y(dev, DSK_DTYPE_F32, {32, 8}), loss(dev, DSK_DTYPE_F32, {});
    fill_random(x, 13);
    fill_random(w, 14);
    fill_random(b, 15);
    x.upload();
    w.upload();
    b.upload();
    REQUIRE(record(dev, "Gemm", {Attr("transB", 1)}, {&x, &w, &b}, {&h}).code == DSK_OK);
    REQUIRE(record(dev, "Relu", {}, {&h}, {&y}).code == DSK_OK);
    REQUIRE(record(dev, "ReduceSum", {Attr("keepdims", 0)}, {&y}, {&loss}).code == DSK_OK);
    CHECK(dev.object().device_memory().bytes_in_use() > 0);
    CHECK(dsk::vulkan::from_handle(dev.queue)->recorded_dispatches() == 3);
    loss.download();
    double expected = 0;
    for (int64_t i = 0; i < 32; ++i)
        for (int64_t j = 0; j < 8; ++j) {
            double s = b.f[static_cast<size_t>(j)];
            for (int64_t k = 0; k < 16; ++k) s += x.f[static_cast<size_t>(i * 16 + k)] * w.f[static_cast<size_t>(j * 16 + k)];
            expected += std::max(0.0, s);
        }
    check_close(loss.f, {expected});
}

TEST_CASE("vulkan ReduceGrad max sends the gradient to the first maximum of each group") {
    Device dev;
    if (!dev.ok) return;
    // Rows reduced over axis 1, with ties: the first of the equal maxima gets dY.
    Tensor x(dev, DSK_DTYPE_F32, {3, 4}), y(dev, DSK_DTYPE_F32, {3, 1}), dy(dev, DSK_DTYPE_F32, {3, 1});
    Tensor dx(dev, DSK_DTYPE_F32, {3, 4});
    x.f = {1, 5, 5, 2, 7, 0, 7, 7, -1, -3, -1, -2};
    y.f = {5, 7, -1};
    dy.f = {10, 20, 30};
    run(dev, "ReduceGrad", {Attr("mode", "max"), Attr("axes", std::vector<int64_t>{1})}, {&dy, &x, &y}, {&dx});
    check_close(dx.f, {0, 10, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0}, 0.0);
}

TEST_CASE("vulkan AdamUpdate and SGDUpdate: the functional form leaves its inputs and equals the in-place form bitwise") {
    Device dev;
    if (!dev.ok) return;
    const Shape shape{3, 70};
    // AdamW with L2 at step 2 (the constants of docs/ops.md), then SGD with nesterov momentum.
    const float bc2 = std::sqrt(1.0f - 0.999f * 0.999f);
    struct Case {
        const char* op;
        std::vector<float> constants;
        size_t states;
    };
    for (const Case& k : {Case{"AdamUpdate", {0.9f, 0.1f, 0.999f, 0.001f, 1e-8f, 0.01f, 0.999f, 0.01f / 0.19f, bc2}, 2},
                          Case{"SGDUpdate", {0.1f, 0.9f, 1.0f, 0.001f, 0.0f, 1.0f}, 1}}) {
        CAPTURE(k.op);
        Tensor c(dev, DSK_DTYPE_F32, {static_cast<int64_t>(k.constants.size())});
        c.f = k.constants;
        Tensor x(dev, DSK_DTYPE_F32, shape), g(dev, DSK_DTYPE_F32, shape), m(dev, DSK_DTYPE_F32, shape), v(dev, DSK_DTYPE_F32, shape);
        fill_random(x, 1);
        fill_random(g, 2);
        fill_random(m, 3, -0.1f, 0.1f);
        fill_random(v, 4, 0.0f, 0.05f);
        std::vector<Tensor*> inputs{&c, &x, &g, &m};
        if (k.states == 2) inputs.push_back(&v);
        const std::vector<float> x0 = x.f, m0 = m.f, v0 = v.f;
        // Functional: token, X', and one output per state input.
        Tensor token(dev, DSK_DTYPE_F32, {}), x1(dev, DSK_DTYPE_F32, shape), m1(dev, DSK_DTYPE_F32, shape), v1(dev, DSK_DTYPE_F32, shape);
        std::vector<Tensor*> outputs{&token, &x1, &m1};
        if (k.states == 2) outputs.push_back(&v1);
        run(dev, k.op, {}, inputs, outputs);
        for (Tensor* t : inputs) t->download();
        CHECK(x.f == x0);  // the inputs are as they were
        CHECK(m.f == m0);
        CHECK(v.f == v0);
        CHECK(x1.f != x0);
        // In place on the same inputs: bitwise the same new values.
        Tensor in_place_token(dev, DSK_DTYPE_F32, {});
        run(dev, k.op, {}, inputs, {&in_place_token});
        for (Tensor* t : inputs) t->download();
        CHECK(x.f == x1.f);
        CHECK(m.f == m1.f);
        if (k.states == 2) CHECK(v.f == v1.f);
        CHECK(token.f == std::vector<float>{0.0f});
        // Any other output count names both forms.
        const fake_host::Outcome wrong = record(dev, k.op, {}, inputs, {&token, &x1});
        CHECK(wrong.code == DSK_INVALID_ARGUMENT);
        CHECK(wrong.message.find("the functional form " + std::to_string(2 + k.states) + " (the token, X' and the new state)") !=
              std::string::npos);
    }
}
