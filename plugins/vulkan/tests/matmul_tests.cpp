// Gemm and MatMul on the vulkan device against a double-precision host reference: every
// transA/transB combination, every broadcast form of C, alpha/beta, edge sizes that are not
// multiples of the blocks, and both shader variants (register-blocked and shared-memory tiled).
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "vulkan_test_support.h"

using namespace vulkan_test;

namespace {

// Y = alpha * op(A) op(B) + beta * C, with C broadcast from `c_shape`.
std::vector<double> gemm_reference(const Tensor& a, const Tensor& b, const Tensor* c, bool ta, bool tb,
                                   double alpha, double beta, int64_t m, int64_t n, int64_t k) {
    std::vector<double> y(static_cast<size_t>(m * n));
    for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
            double s = 0;
            for (int64_t p = 0; p < k; ++p) {
                const double av = ta ? a.f[static_cast<size_t>(p * m + i)] : a.f[static_cast<size_t>(i * k + p)];
                const double bv = tb ? b.f[static_cast<size_t>(j * k + p)] : b.f[static_cast<size_t>(p * n + j)];
                s += av * bv;
            }
            double v = alpha * s;
            if (c != nullptr) {
                const Shape& cs = c->shape;
                const int64_t rows = cs.size() == 2 ? cs[0] : 1;
                const int64_t cols = cs.empty() ? 1 : cs.back();
                v += beta * c->f[static_cast<size_t>((rows == 1 ? 0 : i) * cols + (cols == 1 ? 0 : j))];
            }
            y[static_cast<size_t>(i * n + j)] = v;
        }
    return y;
}

void check_gemm(const Device& dev, int64_t m, int64_t n, int64_t k, bool ta, bool tb, const Shape* c_shape,
                double alpha = 1.0, double beta = 1.0) {
    CAPTURE(m);
    CAPTURE(n);
    CAPTURE(k);
    CAPTURE(ta);
    CAPTURE(tb);
    Tensor a(dev, DSK_DTYPE_F32, ta ? Shape{k, m} : Shape{m, k});
    Tensor b(dev, DSK_DTYPE_F32, tb ? Shape{n, k} : Shape{k, n});
    Tensor y(dev, DSK_DTYPE_F32, {m, n});
    fill_random(a, 11);
    fill_random(b, 12);
    std::vector<dsk::Attr> attrs = {dsk::Attr("transA", ta ? 1 : 0), dsk::Attr("transB", tb ? 1 : 0),
                                    dsk::Attr("alpha", alpha), dsk::Attr("beta", beta)};
    if (c_shape != nullptr) {
        Tensor c(dev, DSK_DTYPE_F32, *c_shape);
        fill_random(c, 13);
        run(dev, "Gemm", attrs, {&a, &b, &c}, {&y});
        check_close(y.f, gemm_reference(a, b, &c, ta, tb, alpha, beta, m, n, k));
    } else {
        run(dev, "Gemm", attrs, {&a, &b}, {&y});
        check_close(y.f, gemm_reference(a, b, nullptr, ta, tb, alpha, beta, m, n, k));
    }
}

// Unsets an environment variable when it goes out of scope, also when a REQUIRE throws.
struct ScopedEnv {
    const char* name;
    explicit ScopedEnv(const char* n) : name(n) {}
    void set(const char* value) const { setenv(name, value, 1); }
    ~ScopedEnv() { unsetenv(name); }
};

// Runs `body` once per matmul shader variant.
template <class F>
void for_each_variant(F body) {
    const ScopedEnv env("DSK_VULKAN_MATMUL");
    for (const char* variant : {"blocked", "blocked:4x4", "blocked:16x16", "tiled", "tiled:128x128", "tiled:64x128", "tiled:64x64"}) {
        const std::string name = variant;
        CAPTURE(name);
        env.set(variant);
        body();
    }
}

}  // namespace

TEST_CASE("vulkan Gemm matches the reference for every transpose combination") {
    Device dev;
    if (!dev.ok) return;
    for_each_variant([&] {
        for (bool ta : {false, true})
            for (bool tb : {false, true}) check_gemm(dev, 37, 29, 53, ta, tb, nullptr);
        check_gemm(dev, 128, 256, 784, false, true, nullptr);  // the quickstart's first layer
        check_gemm(dev, 1, 1, 1, false, false, nullptr);
        check_gemm(dev, 65, 70, 0, false, false, nullptr);  // K = 0: zeros
    });
}

TEST_CASE("vulkan Gemm broadcasts C and applies alpha and beta") {
    Device dev;
    if (!dev.ok) return;
    const int64_t m = 19, n = 23;
    for_each_variant([&] {
        for (const Shape& c : {Shape{n}, Shape{1, n}, Shape{m, 1}, Shape{m, n}, Shape{}, Shape{1}}) {
            CAPTURE(c.size());
            check_gemm(dev, m, n, 17, false, true, &c, 0.5, -2.0);
        }
    });
}

TEST_CASE("vulkan MatMul multiplies 2-D matrices and supports_op refuses other ranks") {
    Device dev;
    if (!dev.ok) return;
    Tensor a(dev, DSK_DTYPE_F32, {5, 7});
    Tensor b(dev, DSK_DTYPE_F32, {7, 3});
    Tensor y(dev, DSK_DTYPE_F32, {5, 3});
    fill_random(a, 1);
    fill_random(b, 2);
    run(dev, "MatMul", {}, {&a, &b}, {&y});
    check_close(y.f, gemm_reference(a, b, nullptr, false, false, 1, 1, 5, 3, 7));

    Tensor a3(dev, DSK_DTYPE_F32, {2, 5, 7});
    Tensor y3(dev, DSK_DTYPE_F32, {2, 5, 3});
    Call call("MatMul", {}, {&a3, &b}, {&y3});
    CHECK(backend().supports_op(dev.device, &call.node, call.tensors.data()) == 0);
    Call ok("MatMul", {}, {&a, &b}, {&y});
    CHECK(backend().supports_op(dev.device, &ok.node, ok.tensors.data()) == 1);
    Tensor wrong(dev, DSK_DTYPE_F32, {5, 4});
    const fake_host::Outcome out = record(dev, "MatMul", {}, {&a, &b}, {&wrong});
    CHECK(out.code == DSK_INVALID_ARGUMENT);
    CHECK(out.message.find("vulkan kernel MatMul: output 0 has shape [5, 4]") == 0);
}

TEST_CASE("vulkan MatMul refuses a DSK_VULKAN_MATMUL that names no variant, and says what would do") {
    Device dev;
    if (!dev.ok) return;
    Tensor a(dev, DSK_DTYPE_F32, {8, 8});
    Tensor b(dev, DSK_DTYPE_F32, {8, 8});
    Tensor y(dev, DSK_DTYPE_F32, {8, 8});
    fill_random(a, 1);
    fill_random(b, 2);
    // 128x64 and 12x64 are not compiled tiles.
    const ScopedEnv env("DSK_VULKAN_MATMUL");
    for (const char* bad : {"tiled:128x64", "tiled:12x64", "fast", "blocked:0x4"}) {
        CAPTURE(bad);
        env.set(bad);
        const auto outcome = record(dev, "MatMul", {}, {&a, &b}, {&y});
        CHECK(outcome.code == DSK_INVALID_ARGUMENT);
        CHECK(outcome.message.find(std::string("DSK_VULKAN_MATMUL=") + bad) != std::string::npos);
        CHECK(outcome.message.find("tiled:<BM>x<BN>") != std::string::npos);
    }
}

TEST_CASE("vulkan results arrive whether the wait polls the fence or blocks on it") {
    Device dev;
    if (!dev.ok) return;
    const ScopedEnv env("DSK_VULKAN_SPIN_US");
    for (const char* spin : {"0", "200000"}) {  // block at once; poll up to 200 ms first
        CAPTURE(spin);
        env.set(spin);
        check_gemm(dev, 96, 80, 300, false, false, nullptr);
    }
}
