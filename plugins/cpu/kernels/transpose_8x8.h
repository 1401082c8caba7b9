// transpose_8x8.h - an 8 x 8 float transpose in AVX registers, shared by the SGEMM's transposing
// packs (gemm.cpp) and the direct convolution's transposed dY (conv_direct.cpp). x86-64 with GCC
// only; callers compile it into AVX (or wider) functions.
#ifndef DSK_CPU_KERNELS_TRANSPOSE_8X8_H_
#define DSK_CPU_KERNELS_TRANSPOSE_8X8_H_

#include <immintrin.h>

#include <cstdint>

namespace dsk::cpu {

// dst[i * ld_dst + r] = src[r * ld_src + i] for r, i in [0, 8). Each row is loaded as two halves
// of 4, each already in the 128-bit lane where it ends up, so that the only steps across lanes
// are the loads (Zen 1 runs vperm2f128 as 8 micro-ops, vinsertf128 from memory as 2); in-lane
// unpacks and shuffles do the rest.
__attribute__((target("avx"))) inline void transpose_8x8(const float* src, int64_t ld_src, float* dst,
                                                         int64_t ld_dst) {
    __m256 r[8];
    for (int i = 0; i < 4; ++i)
        for (int half = 0; half < 2; ++half)
            r[4 * half + i] = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(src + i * ld_src + 4 * half)),
                                                   _mm_loadu_ps(src + (i + 4) * ld_src + 4 * half), 1);
    // r[4 * half + i]: row i (low lane) and row i + 4 (high lane), columns 4 * half to 4 * half + 3.
    for (int h = 0; h < 8; h += 4) {
        const __m256 t0 = _mm256_unpacklo_ps(r[h], r[h + 1]);
        const __m256 t1 = _mm256_unpackhi_ps(r[h], r[h + 1]);
        const __m256 t2 = _mm256_unpacklo_ps(r[h + 2], r[h + 3]);
        const __m256 t3 = _mm256_unpackhi_ps(r[h + 2], r[h + 3]);
        _mm256_storeu_ps(dst + h * ld_dst, _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)));
        _mm256_storeu_ps(dst + (h + 1) * ld_dst, _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)));
        _mm256_storeu_ps(dst + (h + 2) * ld_dst, _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)));
        _mm256_storeu_ps(dst + (h + 3) * ld_dst, _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2)));
    }
}

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_TRANSPOSE_8X8_H_
