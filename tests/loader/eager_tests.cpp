// Eager execution and dsk::jit (dsk_eager.hpp over dsk.h's dsk_eager_*), with the real ops and
// cpu plugins: ops run as called, a traced function replays as a compiled session with the
// eager results (within 1e-5), it is traced once per input signature, and errors are named.
#include <doctest/doctest.h>

#include <dsk/dsk_eager.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace {

struct Fixture {
    dsk::Kernel kernel;
    Fixture() { kernel.add_plugin_path(DSK_PLUGIN_DIR); }
};

std::vector<float> ramp(size_t n, float scale) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>(static_cast<int>(i % 7) - 3);
    return v;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("eager ops run as they are called - with the kernels' results") {
    Fixture f;
    dsk::Eager eager(f.kernel);
    dsk::Tensor x = eager.tensor({2, 3}, std::vector<float>{1, -2, 3, -4, 5, -6});
    dsk::Tensor w = eager.tensor({3, 2}, std::vector<float>{1, 0, 0, 1, 1, 1});
    dsk::Tensor y = relu(matmul(x, w));
    CHECK(y.shape() == std::vector<int64_t>{2, 2});
    CHECK(y.values<float>() == std::vector<float>{4, 1, 0, 0});  // [1+3, -2+3] and [-4-6, 5-6] clamped
    dsk::Tensor z = y + y * y;
    CHECK(z.values<float>() == std::vector<float>{20, 2, 0, 0});
}

TEST_CASE("an elementwise op's result takes its input's shape, row-major") {
    // Unary ops infer their outputs' dtype and shape without building a Shape
    // (ShapeContext::set_output_like); the strides are the eager context's, row-major.
    Fixture f;
    dsk::Eager eager(f.kernel);
    dsk::Tensor x = eager.tensor({2, 3, 4}, ramp(24, 0.5f));
    for (const dsk::Tensor& y : {relu(x), eager.run1("Softmax", {x})}) {
        dsk_tensor_desc d{};
        d.struct_size = sizeof d;
        REQUIRE(dsk_eager_tensor_desc(y.raw(), &d) == DSK_OK);
        CHECK(d.dtype == DSK_DTYPE_F32);
        CHECK(std::vector<int64_t>(d.shape, d.shape + d.ndim) == std::vector<int64_t>{2, 3, 4});
        CHECK(std::vector<int64_t>(d.strides, d.strides + d.ndim) == std::vector<int64_t>{12, 4, 1});
    }
}

TEST_CASE("jit traces once per signature and replays the compiled graph with the eager results") {
    Fixture f;
    dsk::Eager eager(f.kernel);
    dsk::Tensor w1 = eager.tensor({784, 64}, ramp(784 * 64, 0.01f));
    dsk::Tensor b1 = eager.tensor({64}, ramp(64, 0.1f));
    dsk::Tensor w2 = eager.tensor({64, 10}, ramp(640, 0.02f));
    auto mlp = [&](const std::vector<dsk::Tensor>& in) {
        dsk::Tensor h = relu(matmul(in[0], w1) + b1);
        return std::vector<dsk::Tensor>{matmul(h, w2)};
    };
    auto compiled = dsk::jit(eager, mlp);
    for (int64_t batch : {1, 32}) {
        dsk::Tensor x = eager.tensor({batch, 784}, ramp(static_cast<size_t>(batch) * 784, 0.05f));
        const std::vector<float> expected = mlp({x})[0].values<float>();
        for (int call = 0; call < 3; ++call) {  // the first call traces, the others replay
            const std::vector<float> got = compiled({x})[0].values<float>();
            REQUIRE(got.size() == expected.size());
            for (size_t i = 0; i < got.size(); ++i)
                CHECK(std::abs(got[i] - expected[i]) <= 1e-5f * std::max(1.0f, std::abs(expected[i])));
        }
    }
    CHECK(compiled.traces() == 2);  // batch 1 and batch 32
}

TEST_CASE("eager errors name the op and what is wrong - a failed trace leaves no trace behind") {
    Fixture f;
    dsk::Eager eager(f.kernel);
    dsk::Tensor x = eager.tensor({2, 2}, std::vector<float>{1, 2, 3, 4});
    try {
        eager.run1("Rleu", {x});
        FAIL("an unknown op must be refused");
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_NOT_FOUND);
        CHECK(has(e.what(), "did you mean 'Relu'?"));
    }
    try {
        eager.run1("Gemm", {x});
        FAIL("Gemm needs two inputs");
    } catch (const dsk::Error& e) {
        CHECK(has(e.what(), "Gemm takes 2..3 inputs, given 1"));
    }
    auto failing = dsk::jit(eager, [&](const std::vector<dsk::Tensor>& in) {
        return std::vector<dsk::Tensor>{eager.run1("MatMul", {in[0], eager.tensor({3, 1}, std::vector<float>{1, 2, 3})})};
    });
    CHECK_THROWS_AS(failing({x}), dsk::Error);
    // The trace was cancelled: a new one starts cleanly.
    auto ok = dsk::jit(eager, [&](const std::vector<dsk::Tensor>& in) { return std::vector<dsk::Tensor>{relu(in[0])}; });
    CHECK(ok({x})[0].values<float>() == std::vector<float>{1, 2, 3, 4});
    CHECK(ok({x})[0].values<float>() == std::vector<float>{1, 2, 3, 4});
}
