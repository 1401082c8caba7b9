// avx512_sum.h - the sum of a 16-lane register in one fixed order, shared by the SGEMM's
// few-rows path (gemm.cpp) and the direct convolution's weight gradient (conv_direct.cpp), so
// that both round alike. x86-64 with GCC only; callers compile it into AVX-512 functions.
#ifndef DSK_CPU_KERNELS_AVX512_SUM_H_
#define DSK_CPU_KERNELS_AVX512_SUM_H_

#include <immintrin.h>

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

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_AVX512_SUM_H_
