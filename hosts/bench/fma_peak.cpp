// fma_peak.cpp - the `dsk_bench peak` case: FMA chains in registers on every thread of the pool.
#include "fma_peak.h"

#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace dsk_bench {
namespace {

constexpr int kChains = 12;

int lanes() {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return 16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 8;
#endif
    return 1;
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) float burst_avx512(int64_t iterations, float seed) {
    __m512 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(seed + static_cast<float>(c));
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int64_t i = 0; i < iterations; ++i)
#pragma GCC unroll 12
        for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    alignas(64) float out[16];
    __m512 sum = acc[0];
    for (int c = 1; c < kChains; ++c) sum = _mm512_add_ps(sum, acc[c]);
    _mm512_store_ps(out, sum);
    float s = 0;
    for (float v : out) s += v;
    return s;
}

__attribute__((target("avx2,fma"))) float burst_avx2(int64_t iterations, float seed) {
    __m256 acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(seed + static_cast<float>(c));
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int64_t i = 0; i < iterations; ++i)
#pragma GCC unroll 12
        for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    alignas(32) float out[8];
    __m256 sum = acc[0];
    for (int c = 1; c < kChains; ++c) sum = _mm256_add_ps(sum, acc[c]);
    _mm256_store_ps(out, sum);
    float s = 0;
    for (float v : out) s += v;
    return s;
}
#endif

float burst_scalar(int64_t iterations, float seed) {
    float acc[kChains];
    for (int c = 0; c < kChains; ++c) acc[c] = seed + static_cast<float>(c);
    for (int64_t i = 0; i < iterations; ++i)
        for (float& v : acc) v = v * 0.999999f + 1e-7f;
    float s = 0;
    for (float v : acc) s += v;
    return s;
}

float burst(int64_t iterations, float seed) {
#if defined(__x86_64__)
    if (lanes() == 16) return burst_avx512(iterations, seed);
    if (lanes() == 8) return burst_avx2(iterations, seed);
#endif
    return burst_scalar(iterations, seed);
}

struct Parts {
    int64_t iterations;
    std::vector<float> results;
};

}  // namespace

double fma_burst_flops(int64_t iterations) {
    return 2.0 * kChains * lanes() * static_cast<double>(iterations);
}

float fma_burst(const dsk_host_api& host, int64_t iterations) {
    Parts parts{iterations, std::vector<float>(host.thread_count())};
    host.parallel_for(
        parts.results.size(), 1,
        [](void* user, size_t begin, size_t end) {
            auto& p = *static_cast<Parts*>(user);
            for (size_t part = begin; part < end; ++part) p.results[part] = burst(p.iterations, static_cast<float>(part));
        },
        &parts);
    float total = 0;
    for (float v : parts.results) total += v;
    return total;
}

const char* fma_isa() {
    const int n = lanes();
    return n == 16 ? "avx512" : n == 8 ? "avx2" : "scalar";
}

}  // namespace dsk_bench
