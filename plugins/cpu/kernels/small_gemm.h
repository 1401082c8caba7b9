// small_gemm.h - matrix products with few rows (batch-1 inference), where the blocked SGEMM
// of gemm.h wastes its time: it pads M up to the micro-kernel's 8 rows and packs (transposes)
// the whole of B on every call. Here each output is one pass over a row or column of B,
// straight from where it is stored.
//
//     C = alpha * A * op(B) + beta * C      A is M x K (M <= kSmallGemmRows), row-major
//
// Each output element is summed by one thread in a fixed order (16-lane partial sums, then a
// fixed reduction), so results do not depend on the thread count. They differ in the last bits
// from gemm.h's, which sums in another order.
#ifndef DSK_CPU_KERNELS_SMALL_GEMM_H_
#define DSK_CPU_KERNELS_SMALL_GEMM_H_

#include <cstdint>

namespace dsk::cpu {

constexpr int64_t kSmallGemmRows = 4;

void small_gemm(bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_SMALL_GEMM_H_
