// gemm_benchmark - GFLOP/s of the cpu backend's SGEMM at the shapes that matter (1024^3, the
// MLP's and the CNN's layers), on an OpenMP thread pool like the kernel's (host->parallel_for).
// Not a test: run it by hand on a quiet machine, e.g.
//
//     OMP_NUM_THREADS=2 build/bin/dsk_cpu_gemm_benchmark            # every shape
//     OMP_NUM_THREADS=2 build/bin/dsk_cpu_gemm_benchmark 1024 1024 1024 0 0
//     OMP_NUM_THREADS=2 build/bin/dsk_cpu_gemm_benchmark 256 256 784 0 1 packed
//                                     # B packed once (PackedB), as an inference session's weights
//
// Each shape runs 15 timed rounds of a few milliseconds; the best round is reported (the build
// machines are shared VMs, where the median mostly measures the neighbours).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "openmp_host.h"

namespace {

struct Shape {
    int64_t m, n, k;
    bool trans_a, trans_b;
    const char* what;
};

void measure(const Shape& s, bool packed = false) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> a(static_cast<size_t>(s.m * s.k)), b(static_cast<size_t>(s.k * s.n)),
        c(static_cast<size_t>(s.m * s.n));
    for (float& v : a) v = u(rng);
    for (float& v : b) v = u(rng);
    const int64_t lda = s.trans_a ? s.m : s.k, ldb = s.trans_b ? s.k : s.n;
    const double flops =
        2.0 * static_cast<double>(s.m) * static_cast<double>(s.n) * static_cast<double>(s.k);
    const int reps = std::max(1, static_cast<int>(6e8 / flops));  // rounds of about 5 ms or more
    dsk::cpu::PackedB packed_b;
    if (packed) packed_b.pack(s.trans_b, s.n, s.k, b.data(), ldb);
    auto run = [&] {
        dsk::cpu::sgemm(s.trans_a, s.trans_b, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb,
                        0.0f, c.data(), s.n, nullptr, packed ? &packed_b : nullptr);
    };
    run();
    double best = 1e30;
    for (int round = 0; round < 15; ++round) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < reps; ++r) run();
        const double t =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
        best = std::min(best, t);
    }
    std::printf("%6lld %6lld %6lld  tA=%d tB=%d  %7.1f GFLOP/s  %9.1f us  %s\n",
                static_cast<long long>(s.m), static_cast<long long>(s.n),
                static_cast<long long>(s.k), s.trans_a, s.trans_b, flops / best * 1e-9, best * 1e6,
                s.what);
}

}  // namespace

int main(int argc, char** argv) {
    openmp_host::install();
    std::printf("micro-kernel %s, %d threads\n", dsk::cpu::sgemm_isa_name(), omp_get_max_threads());
    std::printf("     M      N      K\n");
    if (argc == 6 || (argc == 7 && std::string(argv[6]) == "packed")) {
        measure({std::atoll(argv[1]), std::atoll(argv[2]), std::atoll(argv[3]),
                 std::atoi(argv[4]) != 0, std::atoi(argv[5]) != 0, argc == 7 ? "B packed" : ""},
                argc == 7);
        return 0;
    }
    const Shape shapes[] = {
        {1024, 1024, 1024, false, false, "square"},
        {1024, 1024, 1024, false, true, "square"},
        {1024, 1024, 1024, true, false, "square"},
        {128, 256, 784, false, true, "MLP fc1 forward (X W^T)"},
        {128, 784, 256, false, false, "MLP fc1 dX (dY W)"},
        {256, 784, 128, true, false, "MLP fc1 dW (dY^T X)"},
        {128, 128, 256, false, true, "MLP fc2 forward"},
        {128, 10, 128, false, true, "MLP fc3 forward"},
        {64, 196, 288, false, false, "CNN conv2 forward, one image"},
        {288, 196, 64, true, false, "CNN conv2 dX, one image"},
        {64, 288, 196, false, true, "CNN conv2 dW, one image"},
    };
    for (const Shape& s : shapes) measure(s);
    return 0;
}
