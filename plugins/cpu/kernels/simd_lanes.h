// simd_lanes.h - the sum of a register's lanes in one fixed order (16 for AVX-512, 8 for AVX2)
// and a mask of an AVX2 register's first lanes, shared by the SGEMM's few-rows path (gemm.cpp)
// and the direct convolution's weight gradient (conv_direct.cpp), so that both round alike.
// x86-64 with GCC only; callers compile them into AVX-512 or AVX2 functions.
#ifndef DSK_CPU_KERNELS_SIMD_LANES_H_
#define DSK_CPU_KERNELS_SIMD_LANES_H_

#include <immintrin.h>

#include <cstdint>

namespace dsk::cpu {

// The sum of the 16 lanes, as a tree of halves. All AVX-512F; the masked forms with every lane
// set, because GCC 12's unmasked ones (and _mm512_reduce_add_ps) start from an undefined vector
// that trips -Wmaybe-uninitialized.
__attribute__((target("avx512f"))) inline float sum_lanes(__m512 v) {
    constexpr __mmask16 kAll = 0xffff;
    v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, kAll, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, kAll, v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, kAll, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, kAll, v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_cvtss_f32(v);
}

// The sum of the 8 lanes, as a tree of halves.
__attribute__((target("avx2"))) inline float sum_lanes_avx2(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

// Lanes [0, width) set, width in [0, 8].
__attribute__((target("avx2"))) inline __m256i lanes_avx2(int64_t width) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(width)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_SIMD_LANES_H_
