// transpose_8x8.h - an 8 x 8 float transpose in AVX registers, shared by the SGEMM's transposing
// packs (gemm.cpp) and the direct convolution's transposed dY (conv_direct.cpp). x86-64 with GCC
// only; callers compile it into AVX (or wider) functions.
#ifndef DSK_CPU_KERNELS_TRANSPOSE_8X8_H_
#define DSK_CPU_KERNELS_TRANSPOSE_8X8_H_

#include <immintrin.h>

#include <cstdint>

namespace dsk::cpu {

// dst[i * ld_dst + r] = src[r * ld_src + i] for r, i in [0, 8): unpack, shuffle and lane permute
// instead of 64 scattered scalar stores.
__attribute__((target("avx"))) inline void transpose_8x8(const float* src, int64_t ld_src, float* dst,
                                                         int64_t ld_dst) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ld_src);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(dst + i * ld_dst, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(dst + (i + 4) * ld_dst, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_TRANSPOSE_8X8_H_
