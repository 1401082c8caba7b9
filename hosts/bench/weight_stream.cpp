// weight_stream.cpp - the `dsk_bench weights` case: how long merely reading the MLP's weights
// takes, the floor under its batch-1 latency for any fp32 kernel (each weight is used once per
// image, so a matrix-vector product is bound by how fast its matrix streams from cache).
//
// One timed call reads fc1's 256 x 784 weights split over the kernel's thread pool
// (host->parallel_for, as the cpu Gemm kernel splits them: one fork and join included), then
// fc2's 128 x 256 and fc3's 10 x 128 on the calling thread, as the kernel runs layers that small.
// Each thread keeps its share in its own core's cache from one call to the next.
#include "weight_stream.h"

#include <algorithm>
#include <cstddef>
#include <new>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace dsk_bench {
namespace {

#if defined(__x86_64__)
__attribute__((target("avx512f"))) float sum_avx512(const float* p, size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + i + 48));
    }
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    float s = 0;
    for (float v : lanes) s += v;
    return s;
}
#endif

float sum_portable(const float* p, size_t n) {
    float s[8] = {};
    for (size_t i = 0; i < n; i += 8)
        for (int j = 0; j < 8; ++j) s[j] += p[i + j];
    float total = 0;
    for (float v : s) total += v;
    return total;
}

// The sum of n floats, n a multiple of 64 (every layer and every share of fc1 here is).
float sum(const float* p, size_t n) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return sum_avx512(p, n);
#endif
    return sum_portable(p, n);
}

// fc1's rows split into `parts` equal slices, one per thread of the pool.
struct Split {
    const float* w;
    size_t rows, cols, parts;
    std::vector<float> sums;  // per part
};

}  // namespace

constexpr size_t kFc1 = 256 * 784, kFc2 = 128 * 256, kFc3 = 10 * 128;

WeightStream::Weights WeightStream::filled(size_t count) {
    Weights w(static_cast<float*>(std::aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64)));
    if (!w) throw std::bad_alloc();
    std::fill(w.get(), w.get() + count, 1e-3f);
    return w;
}

WeightStream::WeightStream() : fc1_(filled(kFc1)), fc2_(filled(kFc2)), fc3_(filled(kFc3)) {}

float WeightStream::read_once(const dsk_host_api& host) const {
    const size_t parts = host.thread_count();
    Split split{fc1_.get(), 256, 784, parts, std::vector<float>(parts)};
    host.parallel_for(
        parts, 1,
        [](void* user, size_t begin, size_t end) {
            auto& s = *static_cast<Split*>(user);
            for (size_t part = begin; part < end; ++part) {
                const size_t r0 = s.rows * part / s.parts, r1 = s.rows * (part + 1) / s.parts;
                s.sums[part] = sum(s.w + r0 * s.cols, (r1 - r0) * s.cols);
            }
        },
        &split);
    float total = 0;
    for (float v : split.sums) total += v;
    return total + sum(fc2_.get(), kFc2) + sum(fc3_.get(), kFc3);
}

}  // namespace dsk_bench
