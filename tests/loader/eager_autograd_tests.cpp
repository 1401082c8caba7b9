// Eager autograd (dsk_eager_backward, dsk::grad) with the real ops and cpu plugins: gradients
// equal those of a session built with graph_gradients, and finite differences; the tape is
// consumed by backward and misuse is named; a traced training step (forward, backward, Adam)
// replays as one compiled graph with the eager results.
#include <doctest/doctest.h>

#include <dsk/dsk.h>
#include <dsk/dsk_eager.hpp>
#include <dsk/dsk_op.hpp>
#include <dsk/dsk_tensor.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace {

struct Fixture {
    dsk::Kernel kernel;
    Fixture() {
        dsk::detail::host_slot().store(dsk_host());
        kernel.add_plugin_path(DSK_PLUGIN_DIR);
    }
};

// Deterministic values in [-scale, scale], different per `salt`.
std::vector<float> values(size_t n, float scale, uint32_t salt) {
    std::vector<float> v(n);
    uint32_t s = 2463534242u ^ (salt * 2654435761u);
    for (float& x : v) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        x = scale * (static_cast<float>(s % 20001) / 10000.0f - 1.0f);
    }
    return v;
}

size_t count(const std::vector<int64_t>& shape) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return n;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

void check_close(const std::vector<float>& got, const std::vector<float>& expected, float tolerance, const std::string& what) {
    REQUIRE(got.size() == expected.size());
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i)
        if (!(std::abs(got[i] - expected[i]) <= tolerance * std::max(1.0f, std::abs(expected[i])))) ++bad;
    CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << got.size() << " values differ by more than " << tolerance);
}

// An MLP with softmax cross-entropy: 2 Gemm layers with bias, Relu between.
struct Mlp {
    static constexpr int64_t kBatch = 8, kIn = 12, kHidden = 16, kClasses = 5;
    std::vector<std::vector<int64_t>> shapes = {{kIn, kHidden}, {kHidden}, {kHidden, kClasses}, {kClasses}};
    std::vector<std::vector<float>> weights;
    std::vector<float> x = values(kBatch * kIn, 1.0f, 99);
    std::vector<int64_t> labels;

    Mlp() {
        for (size_t i = 0; i < shapes.size(); ++i) weights.push_back(values(count(shapes[i]), 0.5f, static_cast<uint32_t>(i)));
        for (int64_t n = 0; n < kBatch; ++n) labels.push_back((n * 3) % kClasses);
    }
};

dsk::Tensor mlp_loss(const dsk::Tensor& x, const dsk::Tensor& labels, const std::vector<dsk::Tensor>& w) {
    dsk::Tensor h = relu(gemm(x, w[0], w[1]));
    return softmax_cross_entropy(gemm(h, w[2], w[3]), labels);
}

// The same MLP as a graph, differentiated by graph_gradients and run by a cpu session.
std::vector<std::vector<float>> session_gradients(dsk::Kernel& kernel, const Mlp& m) {
    dsk_graph* raw = nullptr;
    REQUIRE(dsk_kernel_graph_create(kernel.raw(), &raw) == DSK_OK);
    dsk::Graph g(raw);
    const dsk_value_id x = g.input("x", DSK_DTYPE_F32, {Mlp::kBatch, Mlp::kIn});
    const dsk_value_id labels = g.input("labels", DSK_DTYPE_I64, {Mlp::kBatch});
    std::vector<dsk_value_id> w;
    for (size_t i = 0; i < m.shapes.size(); ++i) w.push_back(g.input("w" + std::to_string(i), DSK_DTYPE_F32, m.shapes[i]));
    const dsk_value_id h = g.node("Relu", {g.node("Gemm", {x, w[0], w[1]})});
    const dsk_value_id loss = g.nodes("SoftmaxCrossEntropyLoss", {g.node("Gemm", {h, w[2], w[3]}), labels}, {}, 2)[0];
    std::vector<dsk_value_id> grads(w.size());
    REQUIRE(dsk_host()->graph_gradients(raw, loss, w.data(), w.size(), grads.data()) == nullptr);
    dsk_session* s = nullptr;
    REQUIRE(dsk_kernel_session_create(kernel.raw(), raw, "cpu", 0, &s) == DSK_OK);
    dsk_host()->graph_destroy(raw);
    auto write = [&](dsk_value_id v, uint32_t dtype, const std::vector<int64_t>& shape, const void* data) {
        const dsk_tensor_desc d = dsk::host_tensor(dtype, shape, const_cast<void*>(data));
        REQUIRE(dsk_host()->session_write(s, v, &d) == nullptr);
    };
    write(x, DSK_DTYPE_F32, {Mlp::kBatch, Mlp::kIn}, m.x.data());
    write(labels, DSK_DTYPE_I64, {Mlp::kBatch}, m.labels.data());
    for (size_t i = 0; i < w.size(); ++i) write(w[i], DSK_DTYPE_F32, m.shapes[i], m.weights[i].data());
    REQUIRE(dsk_host()->session_run(s, grads.data(), grads.size()) == nullptr);
    std::vector<std::vector<float>> result;
    for (size_t i = 0; i < grads.size(); ++i) {
        result.emplace_back(count(m.shapes[i]));
        const dsk_tensor_desc d = dsk::host_tensor(DSK_DTYPE_F32, m.shapes[i], result.back().data());
        REQUIRE(dsk_host()->session_read(s, grads[i], &d) == nullptr);
    }
    dsk_host()->session_destroy(s);
    return result;
}

}  // namespace

TEST_CASE("eager gradients of an MLP with softmax cross-entropy equal graph_gradients' in a session") {
    Fixture f;
    dsk::Eager eager(f.kernel);
    const Mlp m;
    dsk::Tensor x = eager.tensor({Mlp::kBatch, Mlp::kIn}, m.x);
    dsk::Tensor labels = eager.tensor({Mlp::kBatch}, m.labels);
    std::vector<dsk::Tensor> w;
    for (size_t i = 0; i < m.shapes.size(); ++i) w.push_back(eager.tensor(m.shapes[i], m.weights[i]));
    for (const dsk::Tensor& t : w) t.requires_grad();
    CHECK(!x.tracks_grad());

    dsk::Tensor loss = mlp_loss(x, labels, w);
    CHECK(loss.tracks_grad());
    const std::vector<dsk::Tensor> grads = dsk::grad(loss, w);
    const auto expected = session_gradients(f.kernel, m);
    for (size_t i = 0; i < w.size(); ++i) {
        REQUIRE(grads[i].defined());
        CHECK(grads[i].shape() == m.shapes[i]);
        check_close(grads[i].values<float>(), expected[i], 1e-5f, "gradient of w" + std::to_string(i));
    }
    // The tape was consumed: nothing requires a gradient any more, and new ops are not recorded.
    CHECK(!w[0].tracks_grad());
    CHECK(!loss.tracks_grad());
    CHECK(!relu(w[0]).tracks_grad());
}

TEST_CASE("eager gradients match central finite differences") {
    Fixture f;
    dsk::Eager eager(f.kernel);
    const std::vector<float> a0 = values(6, 1.0f, 7), b0 = values(6, 1.0f, 8);
    // f(a, b) = sum(tanh(a * b) + a * a / b')  with b' = b + 3 (away from 0)
    auto loss_of = [&](const dsk::Tensor& a, const dsk::Tensor& b) {
        dsk::Tensor shifted = b + eager.tensor({1}, std::vector<float>{3.0f});
        dsk::Tensor y = eager.run1("Tanh", {a * b}) + eager.run1("Div", {a * a, shifted});
        return eager.run1("ReduceSum", {y}, {dsk::OpAttr::integer("keepdims", 0)});
    };
    dsk::Tensor a = eager.tensor({2, 3}, a0), b = eager.tensor({2, 3}, b0);
    a.requires_grad();
    b.requires_grad();
    const std::vector<dsk::Tensor> g = dsk::grad(loss_of(a, b), {a, b});
    const float eps = 1e-2f;
    for (int which = 0; which < 2; ++which) {
        const std::vector<float> analytic = g[which].values<float>();
        for (size_t i = 0; i < 6; ++i) {
            std::vector<float> plus = which == 0 ? a0 : b0, minus = plus;
            plus[i] += eps;
            minus[i] -= eps;
            auto at = [&](const std::vector<float>& v) {
                return loss_of(which == 0 ? eager.tensor({2, 3}, v) : eager.tensor({2, 3}, a0),
                               which == 1 ? eager.tensor({2, 3}, v) : eager.tensor({2, 3}, b0))
                    .values<float>()[0];
            };
            const float numeric = (at(plus) - at(minus)) / (2 * eps);
            CHECK_MESSAGE(std::abs(analytic[i] - numeric) <= 2e-3f * std::max(1.0f, std::abs(numeric)),
                          (which == 0 ? "a" : "b") << "[" << i << "]: analytic " << analytic[i] << ", numeric " << numeric);
        }
    }
}

TEST_CASE("the tape is consumed by backward, kept with retain_tape, and misuse is named") {
    Fixture f;
    dsk::Eager eager(f.kernel);
    dsk::Tensor w = eager.tensor({2, 2}, std::vector<float>{1, 2, 3, 4});
    dsk::Tensor v = eager.tensor({2, 2}, std::vector<float>{1, 1, 1, 1});
    auto sum = [&](const dsk::Tensor& t) { return eager.run1("ReduceSum", {t}, {dsk::OpAttr::integer("keepdims", 0)}); };
    auto error_of = [](auto&& call) {
        try {
            call();
        } catch (const dsk::Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };

    w.requires_grad();
    dsk::Tensor loss = sum(w * w * v);
    // v is read by a recorded op but was never marked: no gradient for it.
    CHECK(has(error_of([&] { dsk::grad(loss, {v}); }), "is not on the tape (mark it with dsk_eager_tensor_set_requires_grad"));
    w.requires_grad(false);  // a leaf can be unmarked, a tensor computed from it cannot
    CHECK(has(error_of([&] { loss.requires_grad(false); }), "only a tensor made outside the tape"));
    w.requires_grad();

    // retain_tape: the same ops differentiated twice.
    CHECK(dsk::grad(loss, {w}, true)[0].values<float>() == std::vector<float>{2, 4, 6, 8});
    CHECK(dsk::grad(loss, {w})[0].values<float>() == std::vector<float>{2, 4, 6, 8});
    const std::string twice = error_of([&] { dsk::grad(loss, {w}); });
    CHECK(has(twice, "already consumed"));
    CHECK(has(twice, "DSK_EAGER_RETAIN_TAPE"));

    // A loss computed from nothing marked, and a loss that is not a scalar.
    CHECK(has(error_of([&] { dsk::grad(sum(v), {v}); }), "not computed from any tensor that requires a gradient"));
    v.requires_grad();
    CHECK(has(error_of([&] { dsk::grad(v * v, {v}); }), "the loss must be a scalar f32"));
    // After that failure the tape is consumed as well, and a new one starts cleanly.
    w.requires_grad();
    dsk::Tensor other = eager.tensor({2, 2}, std::vector<float>{5, 5, 5, 5});
    const std::vector<dsk::Tensor> g = dsk::grad(sum(w * other), {w});
    CHECK(g[0].values<float>() == std::vector<float>{5, 5, 5, 5});

    // A marked tensor the loss does not depend on gets no gradient.
    w.requires_grad();
    v.requires_grad();
    const std::vector<dsk::Tensor> partial = dsk::grad(sum(w), {w, v});
    CHECK(partial[0].defined());
    CHECK(!partial[1].defined());

    // clear_tape drops what was recorded.
    w.requires_grad();
    dsk::Tensor dropped = sum(w);
    eager.clear_tape();
    CHECK(!dropped.tracks_grad());
    CHECK(has(error_of([&] { dsk::grad(dropped, {w}); }), "already consumed"));
}

TEST_CASE("tensors made after others are released reuse their objects and buffers, with nothing of their state") {
    Fixture f;
    dsk::Eager eager(f.kernel);
    dsk::Tensor w = eager.tensor({2, 2}, std::vector<float>{1, 2, 3, 4});
    dsk::Tensor v = eager.tensor({2, 2}, std::vector<float>{1, 1, 1, 1});
    auto data_of = [](const dsk::Tensor& t) {
        dsk_tensor_desc d{};
        d.struct_size = sizeof d;
        REQUIRE(dsk_eager_tensor_desc(t.raw(), &d) == DSK_OK);
        return d.data;
    };
    w.requires_grad();
    const dsk::Tensor on_tape = w * w;
    CHECK(on_tape.tracks_grad());
    std::vector<const void*> buffers;
    for (int i = 0; i < 4; ++i) {
        // Each released tensor gives back its buffer (and its object, with one reference again),
        // so every sum gets the same buffer.
        const dsk::Tensor sum = v + v;
        CHECK(!sum.tracks_grad());
        CHECK(sum.values<float>() == std::vector<float>{2, 2, 2, 2});
        CHECK(sum.shape() == std::vector<int64_t>{2, 2});
        buffers.push_back(data_of(sum));
        const dsk::Tensor row = eager.run1("ReduceSum", {sum}, {dsk::OpAttr::integer("keepdims", 0)});
        CHECK(row.shape().empty());
    }
    CHECK(std::count(buffers.begin(), buffers.end(), buffers.front()) == 4);
}

TEST_CASE("a jit-traced training step (forward, backward, Adam) equals the eager step") {
    Fixture f;
    dsk::Eager eager(f.kernel);
    const Mlp m;
    dsk::Tensor x = eager.tensor({Mlp::kBatch, Mlp::kIn}, m.x);
    dsk::Tensor labels = eager.tensor({Mlp::kBatch}, m.labels);

    // in: constants, x, labels, then the weights, then Adam's m and v per weight.
    // out: the new weights, m and v, and the loss.
    const size_t n = m.shapes.size();
    auto step = [&](const std::vector<dsk::Tensor>& in) {
        std::vector<dsk::Tensor> w(in.begin() + 3, in.begin() + 3 + static_cast<std::ptrdiff_t>(n));
        for (const dsk::Tensor& t : w) t.requires_grad();
        dsk::Tensor loss = mlp_loss(in[1], in[2], w);
        const std::vector<dsk::Tensor> g = dsk::grad(loss, w);
        std::vector<dsk::Tensor> out(3 * n + 1);
        for (size_t i = 0; i < n; ++i) {
            const std::vector<dsk::Tensor> next = adam_step(in[0], w[i], g[i], in[3 + n + i], in[3 + 2 * n + i]);
            out[i] = next[0];
            out[n + i] = next[1];
            out[2 * n + i] = next[2];
        }
        out[3 * n] = loss;
        return out;
    };
    auto compiled = dsk::jit(eager, step);

    std::vector<dsk::Tensor> eager_state, jit_state;
    for (size_t i = 0; i < n; ++i) eager_state.push_back(eager.tensor(m.shapes[i], m.weights[i]));
    for (size_t i = 0; i < 2 * n; ++i)
        eager_state.push_back(eager.tensor(m.shapes[i % n], std::vector<float>(count(m.shapes[i % n]), 0.0f)));
    jit_state = eager_state;
    std::vector<float> losses;
    const double lr = 0.05, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    for (int t = 1; t <= 4; ++t) {
        const std::vector<float> c = {float(beta1), float(1 - beta1), float(beta2), float(1 - beta2), float(eps), 0.0f,
                                      1.0f, float(lr / (1 - std::pow(beta1, t))), float(std::sqrt(1 - std::pow(beta2, t)))};
        std::vector<dsk::Tensor> in = {eager.tensor({9}, c), x, labels};
        std::vector<dsk::Tensor> eager_in = in, jit_in = in;
        eager_in.insert(eager_in.end(), eager_state.begin(), eager_state.end());
        jit_in.insert(jit_in.end(), jit_state.begin(), jit_state.end());
        const std::vector<float> w0_before = eager_state[0].values<float>();
        const std::vector<dsk::Tensor> e = step(eager_in), j = compiled(jit_in);
        REQUIRE(j.size() == e.size());
        for (size_t i = 0; i < e.size(); ++i)
            check_close(j[i].values<float>(), e[i].values<float>(), 1e-5f, "step " + std::to_string(t) + " output " + std::to_string(i));
        CHECK(eager_state[0].values<float>() == w0_before);  // the functional Adam left its inputs alone
        CHECK(e[0].values<float>() != w0_before);
        losses.push_back(e[3 * n].values<float>()[0]);
        eager_state.assign(e.begin(), e.begin() + static_cast<std::ptrdiff_t>(3 * n));
        jit_state.assign(j.begin(), j.begin() + static_cast<std::ptrdiff_t>(3 * n));
    }
    CHECK(compiled.traces() == 1);
    CHECK(losses.back() < losses.front());  // it trains
}

TEST_CASE("the functional forms of AdamUpdate and SGDUpdate give the in-place results and leave their inputs alone") {
    Fixture f;
    dsk::Eager eager(f.kernel);
    const size_t n = 40000;  // over the size the cpu kernel splits across the pool
    const std::vector<float> x0 = values(n, 1.0f, 1), g0 = values(n, 1.0f, 2), m0 = values(n, 0.1f, 3);
    std::vector<float> v0 = values(n, 0.1f, 4);
    for (float& v : v0) v = std::abs(v);  // a second moment
    auto t = [&](const std::vector<float>& v) { return eager.tensor({int64_t(n)}, v); };

    // Adam (with AdamW's decay): 4 outputs are the token, new X, M, V.
    dsk::Tensor adam_c = eager.tensor({9}, std::vector<float>{0.9f, 0.1f, 0.999f, 0.001f, 1e-8f, 0.0f, 0.99f, 0.01f, 0.3f});
    dsk::Tensor x = t(x0), g = t(g0), m = t(m0), v = t(v0);
    const std::vector<dsk::Tensor> fresh = eager.run("AdamUpdate", {adam_c, x, g, m, v}, {}, 4);
    CHECK(x.values<float>() == x0);
    CHECK(m.values<float>() == m0);
    CHECK(v.values<float>() == v0);
    dsk::Tensor xi = t(x0), mi = t(m0), vi = t(v0);
    eager.run("AdamUpdate", {adam_c, xi, g, mi, vi}, {}, 1);  // in place (what sessions do on variables)
    CHECK(fresh[1].values<float>() == xi.values<float>());
    CHECK(fresh[2].values<float>() == mi.values<float>());
    CHECK(fresh[3].values<float>() == vi.values<float>());
    CHECK(fresh[1].values<float>() != x0);

    // SGD with momentum: token, new X, new B.
    dsk::Tensor sgd_c = eager.tensor({6}, std::vector<float>{0.1f, 0.9f, 1.0f, 0.01f, 0.0f, 1.0f});
    const std::vector<dsk::Tensor> sgd = eager.run("SGDUpdate", {sgd_c, x, g, m}, {}, 3);
    CHECK(m.values<float>() == m0);
    xi = t(x0);
    mi = t(m0);
    eager.run("SGDUpdate", {sgd_c, xi, g, mi}, {}, 1);
    CHECK(sgd[1].values<float>() == xi.values<float>());
    CHECK(sgd[2].values<float>() == mi.values<float>());

    try {
        eager.run("AdamUpdate", {adam_c, x, g, m, v}, {}, 2);
        FAIL("2 outputs are neither form");
    } catch (const dsk::Error& e) {
        CHECK(has(e.what(), "has 1 output (the token: updates in place) or 4"));
    }
}
