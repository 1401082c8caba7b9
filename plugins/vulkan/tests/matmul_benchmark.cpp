// GFLOP/s of the vulkan matmul at 1024^3 (and the MLP's shapes), through the backend and the
// Gemm kernel as a session would call them; several dispatches per submission, timed from
// submit to fence. Not registered with ctest: run `build/bin/dsk_vulkan_matmul_benchmark`
// (DSK_BENCH_N=1024 DSK_BENCH_REPEATS=5; DSK_VULKAN_MATMUL=blocked:<TM>x<TN> | tiled picks a
// shader variant).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "vulkan_test_support.h"

using namespace vulkan_test;

TEST_CASE("vulkan matmul GFLOP/s") {
    const char* n_env = std::getenv("DSK_BENCH_N");
    const char* repeats_env = std::getenv("DSK_BENCH_REPEATS");
    const int64_t n = n_env ? std::atoll(n_env) : 1024;
    const int repeats = repeats_env ? std::atoi(repeats_env) : 5;
    Device dev;
    if (!dev.ok) return;
    Tensor a(dev, DSK_DTYPE_F32, {n, n});
    Tensor b(dev, DSK_DTYPE_F32, {n, n});
    Tensor y(dev, DSK_DTYPE_F32, {n, n});
    fill_random(a, 1);
    fill_random(b, 2);
    a.upload();
    b.upload();
    dev.finish();
    // Warm-up: builds the pipeline.
    REQUIRE(record(dev, "MatMul", {}, {&a, &b}, {&y}).code == DSK_OK);
    dev.finish();
    const auto start = std::chrono::steady_clock::now();
    for (int r = 0; r < repeats; ++r) record(dev, "MatMul", {}, {&a, &b}, {&y});
    dev.finish();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double gflops = 2.0 * n * n * n * repeats / seconds / 1e9;
    const char* variant = std::getenv("DSK_VULKAN_MATMUL");
    std::printf("vulkan matmul %lldx%lldx%lld on %s (%s): %.2f GFLOP/s (%.1f ms per matmul)\n",
                static_cast<long long>(n), static_cast<long long>(n), static_cast<long long>(n),
                dev.object().label().c_str(), variant ? variant : "default variant", gflops,
                seconds * 1e3 / repeats);
}
