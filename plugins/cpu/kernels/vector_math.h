// vector_math.h - float math written so that loops over it vectorize (no calls, no branches),
// and sums in a fixed order, for the elementwise kernels.
//
// exp_approx is the Cephes expf polynomial (about 2 ulp over the clamped range); sigmoid and
// tanh build on it. DSK_CPU_VECTOR_CLONES compiles a hot loop for AVX-512, AVX2 and the
// baseline, picked at load time by the CPU (GCC function multiversioning), so the plugin runs
// on any x86-64 and uses the wide units where they exist.
#ifndef DSK_CPU_KERNELS_VECTOR_MATH_H_
#define DSK_CPU_KERNELS_VECTOR_MATH_H_

#include <bit>
#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define DSK_CPU_VECTOR_CLONES \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DSK_CPU_VECTOR_CLONES
#endif

namespace dsk::cpu {

// e^x for x in [-87.3, 88.7] (clamped outside: tiny or about FLT_MAX, never inf or NaN for a
// finite x).
inline float exp_approx(float x) {
    x = x < -87.33654f ? -87.33654f : x;
    x = x > 88.72283f ? 88.72283f : x;
    // x = n ln2 + r, |r| <= ln2/2; n rounded to nearest by the 1.5 * 2^23 trick.
    const float t = x * 1.44269504088896341f + 12582912.0f;
    const float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    // 2^n, with n in [-126, 128): scaled in two steps so that n = 128 does not overflow early.
    const int32_t e = static_cast<int32_t>(n);
    const float half = std::bit_cast<float>((e / 2 + 127) << 23);
    const float rest = std::bit_cast<float>((e - e / 2 + 127) << 23);
    return p * half * rest;
}

inline float sigmoid_approx(float x) {
    return 1.0f / (1.0f + exp_approx(-x));
}

// tanh: the Cephes odd polynomial for |x| < 0.625, 1 - 2 / (e^2|x| + 1) beyond (a few ulp; exactly
// +-1 once that rounds to 1, from |x| of about 9).
inline float tanh_approx(float x) {
    const float ax = x < 0.0f ? -x : x;
    const float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    const float small = x + x * z * p;
    const float big_abs = 1.0f - 2.0f / (exp_approx(2.0f * ax) + 1.0f);
    const float big = x < 0.0f ? -big_abs : big_abs;
    return ax < 0.625f ? small : big;
}

// Sums term(0) + ... + term(n - 1) in 16 interleaved lanes, then the lanes in order: a fixed
// order (bitwise reproducible) that the compiler can still vectorize.
constexpr int kSumLanes = 16;

template <class Term>
inline float sum_fixed_order_of(int64_t n, Term term) {
    float lanes[kSumLanes] = {};
    int64_t i = 0;
    for (; i + kSumLanes <= n; i += kSumLanes)
        for (int j = 0; j < kSumLanes; ++j) lanes[j] += term(i + j);
    for (int j = 0; i < n; ++i, ++j) lanes[j] += term(i);
    float total = 0.0f;
    for (int j = 0; j < kSumLanes; ++j) total += lanes[j];
    return total;
}

inline float sum_fixed_order(const float* x, int64_t n) {
    return sum_fixed_order_of(n, [x](int64_t i) { return x[i]; });
}

inline float dot_fixed_order(const float* a, const float* b, int64_t n) {
    return sum_fixed_order_of(n, [a, b](int64_t i) { return a[i] * b[i]; });
}

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_VECTOR_MATH_H_
