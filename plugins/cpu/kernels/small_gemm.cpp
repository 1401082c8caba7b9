#include "small_gemm.h"

#include <algorithm>

#include "kernel_table.h"
#include "vector_math.h"

namespace dsk::cpu {
namespace {

// Outputs per parallel chunk: about 64K multiply-adds, so batch-1 layers of a few hundred
// units stay on the calling thread (a fork costs more than they do).
constexpr int64_t kWorkPerChunk = 1 << 16;

// sum_i x[i] * y[i] with 64 partial sums (four 16-lane vectors: enough independent chains to
// keep the FMA units busy), reduced in a fixed order. Loops have constant trip counts so that
// the compiler keeps each group of 16 in one vector register.
DSK_CPU_VECTOR_CLONES
float dot(const float* x, const float* y, int64_t k) {
    float a0[16] = {}, a1[16] = {}, a2[16] = {}, a3[16] = {};
    int64_t i = 0;
    for (; i + 64 <= k; i += 64)
        for (int j = 0; j < 16; ++j) {
            a0[j] += x[i + j] * y[i + j];
            a1[j] += x[i + 16 + j] * y[i + 16 + j];
            a2[j] += x[i + 32 + j] * y[i + 32 + j];
            a3[j] += x[i + 48 + j] * y[i + 48 + j];
        }
    for (; i + 16 <= k; i += 16)
        for (int j = 0; j < 16; ++j) a0[j] += x[i + j] * y[i + j];
    for (int j = 0; j < 16; ++j) a0[j] = (a0[j] + a1[j]) + (a2[j] + a3[j]);
    for (int j = 0; j < 8; ++j) a0[j] += a0[j + 8];
    for (int j = 0; j < 4; ++j) a0[j] += a0[j + 4];
    float sum = (a0[0] + a0[2]) + (a0[1] + a0[3]);
    for (; i < k; ++i) sum += x[i] * y[i];
    return sum;
}

// c[j] += s * row[j] for j < n.
DSK_CPU_VECTOR_CLONES
void axpy(float s, const float* row, float* c, int64_t n) {
    for (int64_t j = 0; j < n; ++j) c[j] += s * row[j];
}

}  // namespace

void small_gemm(bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
    if (trans_b) {
        // B is N x K: every output is a dot product of a row of A with a row of B.
        const int64_t per_chunk = std::max<int64_t>(1, kWorkPerChunk / std::max<int64_t>(1, m * k));
        parallel_for(static_cast<size_t>(n), static_cast<size_t>(per_chunk), [&](size_t lo, size_t hi) {
            for (int64_t i = 0; i < m; ++i)
                for (int64_t j = static_cast<int64_t>(lo); j < static_cast<int64_t>(hi); ++j) {
                    const float s = alpha * dot(a + i * lda, b + j * ldb, k);
                    float& out = c[i * ldc + j];
                    out = beta == 0.0f ? s : s + beta * out;
                }
        });
        return;
    }
    // B is K x N: each row of C accumulates the rows of B weighted by a row of A, over column
    // blocks so that threads never share an output.
    const int64_t block = 256;
    const int64_t blocks = (n + block - 1) / block;
    const int64_t per_chunk = std::max<int64_t>(1, kWorkPerChunk / std::max<int64_t>(1, m * k * block));
    parallel_for(static_cast<size_t>(blocks), static_cast<size_t>(per_chunk), [&](size_t lo, size_t hi) {
        for (int64_t bl = static_cast<int64_t>(lo); bl < static_cast<int64_t>(hi); ++bl) {
            const int64_t j0 = bl * block, width = std::min(block, n - j0);
            for (int64_t i = 0; i < m; ++i) {
                float* row = c + i * ldc + j0;
                float acc[block];
                std::fill(acc, acc + width, 0.0f);
                for (int64_t p = 0; p < k; ++p) axpy(a[i * lda + p], b + p * ldb + j0, acc, width);
                for (int64_t j = 0; j < width; ++j) row[j] = beta == 0.0f ? alpha * acc[j] : alpha * acc[j] + beta * row[j];
            }
        }
    });
}

}  // namespace dsk::cpu
