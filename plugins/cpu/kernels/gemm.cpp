// gemm.cpp - the blocked SGEMM behind gemm.h.
//
// Loop nest (BLIS): for each NC-wide block of columns, for each KC-deep slice of K, pack that
// slice of op(B) into NR-wide column panels; for each MC-high block of rows, pack op(A) into
// MR-high row panels; then run the MR x NR micro-kernel over every tile of the block. The packed
// B block stays in L2 and one B micro-panel in L1 while the micro-kernel walks down the A panels.
// In the last K slice, each tile goes through the caller's epilogue (gemm.h) as soon as the
// micro-kernel has stored it.
//
// Threads: as many as the product's work pays for (dsk::threads_for: a small product runs on the
// calling thread); C is cut into that many rectangles (along M, N or both, whichever packs least
// and balances best); each thread runs the serial loop nest on its rectangle with its
// own packing buffers. Every element of C is computed by one thread, with its sum over K in the
// same order whatever the split, so the result does not depend on the thread count.
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "simd_lanes.h"
#include "transpose_8x8.h"
#define DSK_GEMM_X86 1
#endif

#include <dsk/dsk_plugin.hpp>

#include "cpu_features.h"
#include "scratch.h"

namespace dsk::cpu {
namespace {

// C = alpha * op(A) * op(B) + beta * C, as sgemm was given it.
struct Problem {
    bool trans_a, trans_b;
    int64_t m, n, k;
    float alpha, beta;
    const float* a;
    int64_t lda;
    const float* b;
    int64_t ldb;
    float* c;
    int64_t ldc;
    const GemmEpilogue* epilogue;  // null: none
    const float* packed_b;         // null: pack op(B) per K slice and NC block (else PackedB's layout)
};

// What a micro-kernel does to its tile in registers before the store: add bias[0:NR] (null:
// nothing), then Relu (x < 0 ? 0 : x) when `relu`. The tile's epilogue when that is all it is
// (GemmEpilogue::column_bias).
struct TileFinish {
    const float* bias = nullptr;
    bool relu = false;
};

// c[0:MR, 0:NR] = finish(alpha * (packed a panel) * (packed b panel) + beta * c), beta == 0: c
// unread.
using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                             float alpha, float beta, TileFinish finish);
// The same on MR rows of op(A) read in place (A not transposed): row i of the tile at a + i * lda.
using RowsKernel = void (*)(int64_t kc, const float* a, int64_t lda, const float* b, float* c,
                            int64_t ldc, float alpha, float beta, TileFinish finish);
using PackA = void (*)(const float* a, int64_t lda, bool trans, int64_t i0, int64_t mc, int64_t p0,
                       int64_t kc, float* dst);
using PackB = void (*)(const float* b, int64_t ldb, bool trans, int64_t p0, int64_t kc, int64_t j0,
                       int64_t nc, float* dst);

// Columns [n0, n1) of C for a problem of at most kFewRows rows, from op(A) copied to `a_rows`
// (m rows of K contiguous values), epilogue included.
using FewRows = void (*)(const Problem& p, const float* a_rows, int64_t n0, int64_t n1);

struct GemmConfig {
    const char* name;
    int mr, nr;          // micro-tile
    int64_t kc, mc, nc;  // cache blocks (mc a multiple of mr, nc of nr)
    MicroKernel kernel;
    RowsKernel rows_kernel;  // null: A is always packed
    PackA pack_a;
    PackB pack_b;
    FewRows few_rows;  // null: few rows take the blocked path too
};

//----------------------------------------------------------------------------------------------
// Packing: op(A) rows [i0, i0+mc) x K slice [p0, p0+kc) into panels of MR rows, each stored
// k-major (MR values per k) and zero-padded; op(B) K slice x columns [j0, j0+nc) into panels of
// NR columns, each k-major (NR values per k).
//----------------------------------------------------------------------------------------------

// `kAvx`: the configuration only runs on CPUs with AVX, so the transposing packs may use
// transpose_8x8 (for panels whose width is a multiple of 8).
template <int MR, bool kAvx>
void pack_a(const float* a, int64_t lda, bool trans, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
            float* dst) {
    for (int64_t ip = 0; ip < mc; ip += MR, dst += MR * kc) {
        const int64_t rows = std::min<int64_t>(MR, mc - ip);
        if (!trans) {
            // A is M x K: row r of the panel is contiguous in k.
            const float* src = a + (i0 + ip) * lda + p0;
            if (rows == MR) {
                int64_t k0 = 0;
#if DSK_GEMM_X86
                if constexpr (kAvx && MR % 8 == 0) {
                    for (; k0 + 8 <= kc; k0 += 8)
                        for (int r = 0; r < MR; r += 8)
                            transpose_8x8(src + r * lda + k0, lda, dst + k0 * MR + r, MR);
                }
#endif
                for (; k0 < kc; k0 += 16) {
                    const int64_t k1 = std::min<int64_t>(kc, k0 + 16);
                    for (int r = 0; r < MR; ++r) {
                        const float* s = src + r * lda;
                        for (int64_t k = k0; k < k1; ++k) dst[k * MR + r] = s[k];
                    }
                }
            } else {
                for (int64_t k = 0; k < kc; ++k) {
                    for (int64_t r = 0; r < rows; ++r) dst[k * MR + r] = src[r * lda + k];
                    for (int64_t r = rows; r < MR; ++r) dst[k * MR + r] = 0.0f;
                }
            }
        } else {
            // A is K x M: one panel row per k is contiguous.
            const float* src = a + p0 * lda + i0 + ip;
            for (int64_t k = 0; k < kc; ++k) {
                const float* s = src + k * lda;
                float* d = dst + k * MR;
                if (rows == MR) {
                    for (int r = 0; r < MR; ++r) d[r] = s[r];
                } else {
                    for (int64_t r = 0; r < rows; ++r) d[r] = s[r];
                    for (int64_t r = rows; r < MR; ++r) d[r] = 0.0f;
                }
            }
        }
    }
}

template <int NR, bool kAvx>
void pack_b(const float* b, int64_t ldb, bool trans, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
            float* dst) {
    for (int64_t jp = 0; jp < nc; jp += NR, dst += NR * kc) {
        const int64_t cols = std::min<int64_t>(NR, nc - jp);
        if (!trans) {
            // B is K x N: NR consecutive values of a row per k.
            const float* src = b + p0 * ldb + j0 + jp;
            for (int64_t k = 0; k < kc; ++k) {
                const float* s = src + k * ldb;
                float* d = dst + k * NR;
                if (cols == NR) {
                    for (int c = 0; c < NR; ++c) d[c] = s[c];
                } else {
                    for (int64_t c = 0; c < cols; ++c) d[c] = s[c];
                    for (int64_t c = cols; c < NR; ++c) d[c] = 0.0f;
                }
            }
        } else {
            // B is N x K: each panel column is a contiguous row of B. Transposed in 8 x 8
            // blocks in registers where possible, else in 16-deep slices of k so that reads and
            // writes both stay in a few cache lines.
            const float* src = b + (j0 + jp) * ldb + p0;
            int64_t k0 = 0;
#if DSK_GEMM_X86
            if constexpr (kAvx && NR % 8 == 0) {
                if (cols == NR) {
                    for (; k0 + 8 <= kc; k0 += 8)
                        for (int c = 0; c < NR; c += 8)
                            transpose_8x8(src + c * ldb + k0, ldb, dst + k0 * NR + c, NR);
                }
            }
#endif
            for (; k0 < kc; k0 += 16) {
                const int64_t k1 = std::min<int64_t>(kc, k0 + 16);
                for (int64_t c = 0; c < cols; ++c) {
                    const float* s = src + c * ldb;
                    for (int64_t k = k0; k < k1; ++k) dst[k * NR + c] = s[k];
                }
                for (int64_t c = cols; c < NR; ++c)
                    for (int64_t k = k0; k < k1; ++k) dst[k * NR + c] = 0.0f;
            }
        }
    }
}

//----------------------------------------------------------------------------------------------
// Micro-kernels
//----------------------------------------------------------------------------------------------

// Portable: plain loops over a small accumulator array, which the compiler vectorizes with
// whatever the baseline ISA offers.
constexpr int kGenericMr = 4;
constexpr int kGenericNr = 16;

void micro_kernel_generic(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                          float alpha, float beta, TileFinish finish) {
    float acc[kGenericMr][kGenericNr] = {};
    for (int64_t k = 0; k < kc; ++k, a += kGenericMr, b += kGenericNr) {
        for (int i = 0; i < kGenericMr; ++i) {
            const float ai = a[i];
            for (int j = 0; j < kGenericNr; ++j) acc[i][j] += ai * b[j];
        }
    }
    for (int i = 0; i < kGenericMr; ++i) {
        float* row = c + i * ldc;
        if (beta == 0.0f) {
            for (int j = 0; j < kGenericNr; ++j) row[j] = alpha * acc[i][j];
        } else {
            for (int j = 0; j < kGenericNr; ++j) row[j] = alpha * acc[i][j] + beta * row[j];
        }
        if (finish.bias)
            for (int j = 0; j < kGenericNr; ++j) row[j] += finish.bias[j];
        if (finish.relu)
            for (int j = 0; j < kGenericNr; ++j) row[j] = row[j] < 0.0f ? 0.0f : row[j];
    }
}

#if DSK_GEMM_X86

// Where a micro-kernel reads A: a packed panel (MR values per k), or MR rows of op(A) where they
// are (A not transposed), lda apart. The second skips packing A, which cost 3-5% of the MLP's
// batch-256 layers on Zen 1; the broadcasts then come from MR rows instead of one panel, as fast
// from L1 and L2 (measured at 96% of the FMA peak either way).
template <int MR>
struct PanelA {
    const float* a;
    const float* at(int i) const { return a + i; }
    void next() { a += MR; }
};
struct RowsA {
    const float* a;
    int64_t lda;
    const float* at(int i) const { return a + i * lda; }
    void next() { ++a; }
};

// AVX2: 6 rows x 16 columns = 12 ymm accumulators, 2 for B, 1 broadcast.
constexpr int kAvx2Mr = 6;
constexpr int kAvx2Nr = 16;

template <class A>
__attribute__((target("avx2,fma"))) inline void micro_kernel_avx2_of(int64_t kc, A a, const float* b,
                                                                    float* c, int64_t ldc, float alpha,
                                                                    float beta, TileFinish finish) {
    __m256 c0[kAvx2Mr], c1[kAvx2Mr];
#pragma GCC unroll 6
    for (int i = 0; i < kAvx2Mr; ++i) c0[i] = c1[i] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; ++k, a.next(), b += kAvx2Nr) {
        const __m256 b0 = _mm256_load_ps(b);
        const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < kAvx2Mr; ++i) {
            const __m256 ai = _mm256_broadcast_ss(a.at(i));
            c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
        }
    }
    const __m256 va = _mm256_set1_ps(alpha);
    const __m256 vb = _mm256_set1_ps(beta);
    const __m256 zero = _mm256_setzero_ps();
    const __m256 bias0 = finish.bias ? _mm256_loadu_ps(finish.bias) : zero;
    const __m256 bias1 = finish.bias ? _mm256_loadu_ps(finish.bias + 8) : zero;
#pragma GCC unroll 6
    for (int i = 0; i < kAvx2Mr; ++i) {
        float* row = c + i * ldc;
        __m256 r0 = _mm256_mul_ps(va, c0[i]);
        __m256 r1 = _mm256_mul_ps(va, c1[i]);
        if (beta != 0.0f) {
            r0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row), r0);
            r1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(row + 8), r1);
        }
        if (finish.bias) {
            r0 = _mm256_add_ps(r0, bias0);
            r1 = _mm256_add_ps(r1, bias1);
        }
        if (finish.relu) {  // zero where r < 0 (NaN and -0 kept)
            r0 = _mm256_andnot_ps(_mm256_cmp_ps(r0, zero, _CMP_LT_OQ), r0);
            r1 = _mm256_andnot_ps(_mm256_cmp_ps(r1, zero, _CMP_LT_OQ), r1);
        }
        _mm256_storeu_ps(row, r0);
        _mm256_storeu_ps(row + 8, r1);
    }
}

__attribute__((target("avx2,fma"))) void micro_kernel_avx2(int64_t kc, const float* a, const float* b,
                                                           float* c, int64_t ldc, float alpha, float beta,
                                                           TileFinish finish) {
    micro_kernel_avx2_of(kc, PanelA<kAvx2Mr>{a}, b, c, ldc, alpha, beta, finish);
}

__attribute__((target("avx2,fma"))) void micro_kernel_avx2_rows(int64_t kc, const float* a, int64_t lda,
                                                                const float* b, float* c, int64_t ldc,
                                                                float alpha, float beta, TileFinish finish) {
    micro_kernel_avx2_of(kc, RowsA{a, lda}, b, c, ldc, alpha, beta, finish);
}

// AVX-512: MR rows x (16 * NV) columns of zmm accumulators, NV loads of B and one broadcast of
// A per k. Zen 4 and Skylake-X retire one 512-bit FMA per cycle per port pair; with MR * NV >= 16
// independent chains the FMA latency is hidden.
// 8 x 32 measured best on Zen 4 against 6..16 x 16..48, also because the layers' sizes are
// multiples of 8 (fewer partial tiles than with 14 or 12 rows).
constexpr int kAvx512Mr = 8;
constexpr int kAvx512Nv = 2;
constexpr int kAvx512Nr = 16 * kAvx512Nv;

template <int MR, int NV>
__attribute__((target("avx512f,fma"))) void micro_kernel_avx512(int64_t kc, const float* a,
                                                                const float* b, float* c,
                                                                int64_t ldc, float alpha,
                                                                float beta, TileFinish finish) {
    __m512 acc[MR][NV];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; ++k, a += MR, b += 16 * NV) {
        __m512 bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(b + 16 * v);
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha);
    const __m512 vb = _mm512_set1_ps(beta);
    const __m512 zero = _mm512_setzero_ps();
    __m512 bias[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bias[v] = finish.bias ? _mm512_loadu_ps(finish.bias + 16 * v) : zero;
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
        float* row = c + i * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) {
            __m512 r = _mm512_mul_ps(va, acc[i][v]);
            if (beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_loadu_ps(row + 16 * v), r);
            if (finish.bias) r = _mm512_add_ps(r, bias[v]);
            // Kept where !(r < 0): NaN and -0 too.
            if (finish.relu) r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, zero, _CMP_NLT_UQ), r);
            _mm512_storeu_ps(row + 16 * v, r);
        }
    }
}

#endif  // DSK_GEMM_X86

//----------------------------------------------------------------------------------------------
// Few rows (inference at batch 1 to 4): op(B) is read where it is, without packing. With so few
// rows, packing B costs more than the product, and the MR-row micro-kernel would mostly multiply
// padding. Each element of C is still one sum in an order fixed by K alone.
//----------------------------------------------------------------------------------------------

constexpr int64_t kFewRows = 4;

#if DSK_GEMM_X86

// Columns [j, j + cols) of C from the dot products' sums (sums[i][c]: row i, column j + c), alpha
// and beta applied; then the epilogue on each finished block of 64 columns from n0 (fewer calls,
// still in L1) and on the last one. Shared by the instruction sets' few_rows_dots.
template <int M, int kCols>
inline void finish_dots(const Problem& p, const float (&sums)[M][kCols], int64_t j, int64_t cols, int64_t n0,
                        int64_t n1) {
    constexpr int64_t kEpilogueCols = 64;
    for (int i = 0; i < M; ++i) {
        float* row = p.c + i * p.ldc + j;
        for (int64_t c = 0; c < cols; ++c) {
            const float sum = p.alpha * sums[i][c];
            row[c] = p.beta == 0.0f ? sum : sum + p.beta * row[c];
        }
    }
    const int64_t done = j + cols;
    if (p.epilogue && (done == n1 || (done - n0) % kEpilogueCols == 0)) {
        const int64_t from = done - 1 - (done - 1 - n0) % kEpilogueCols;
        p.epilogue->apply(p.epilogue->context, 0, from, M, done - from, p.c + from, p.ldc);
    }
}

// op(B) = B^T, B stored N x K: each element of C is a dot product of two contiguous rows. Four
// columns at a time share the loads of A; the 16 lanes of each sum are added by sum_lanes.
template <int M>
__attribute__((target("avx512f,fma"))) void few_rows_dots(const Problem& p, const float* a,
                                                          int64_t n0, int64_t n1) {
    constexpr int kCols = 4;
    const int64_t k = p.k;
    const __mmask16 tail = static_cast<__mmask16>((1u << (k % 16)) - 1);
    for (int64_t j = n0; j < n1; j += kCols) {
        const int64_t cols = std::min<int64_t>(kCols, n1 - j);
        const float* b[kCols];
        for (int c = 0; c < kCols; ++c) b[c] = p.b + (j + std::min<int64_t>(c, cols - 1)) * p.ldb;
        __m512 acc[M][kCols];
#pragma GCC unroll 4
        for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
            for (int c = 0; c < kCols; ++c) acc[i][c] = _mm512_setzero_ps();
        int64_t l = 0;
        for (; l + 16 <= k; l += 16) {
            __m512 bv[kCols];
#pragma GCC unroll 4
            for (int c = 0; c < kCols; ++c) bv[c] = _mm512_loadu_ps(b[c] + l);
#pragma GCC unroll 4
            for (int i = 0; i < M; ++i) {
                const __m512 av = _mm512_loadu_ps(a + i * k + l);
#pragma GCC unroll 4
                for (int c = 0; c < kCols; ++c) acc[i][c] = _mm512_fmadd_ps(av, bv[c], acc[i][c]);
            }
        }
        if (l < k) {
            __m512 bv[kCols];
#pragma GCC unroll 4
            for (int c = 0; c < kCols; ++c) bv[c] = _mm512_maskz_loadu_ps(tail, b[c] + l);
#pragma GCC unroll 4
            for (int i = 0; i < M; ++i) {
                const __m512 av = _mm512_maskz_loadu_ps(tail, a + i * k + l);
#pragma GCC unroll 4
                for (int c = 0; c < kCols; ++c) acc[i][c] = _mm512_fmadd_ps(av, bv[c], acc[i][c]);
            }
        }
        float sums[M][kCols];
        for (int i = 0; i < M; ++i)
            for (int64_t c = 0; c < cols; ++c) sums[i][c] = sum_lanes(acc[i][c]);
        finish_dots<M, kCols>(p, sums, j, cols, n0, n1);
    }
}

// op(B) = B, stored K x N: each row of C is a sum of rows of B scaled by A, 64 columns at a time
// in registers, k in order.
template <int M>
__attribute__((target("avx512f,fma"))) void few_rows_axpys(const Problem& p, const float* a,
                                                           int64_t n0, int64_t n1) {
    constexpr int kVectors = 4;
    for (int64_t j = n0; j < n1; j += 16 * kVectors) {
        const int64_t cols = std::min<int64_t>(16 * kVectors, n1 - j);
        __mmask16 mask[kVectors];
        for (int v = 0; v < kVectors; ++v) {
            const int64_t width = std::clamp<int64_t>(cols - 16 * v, 0, 16);
            mask[v] = static_cast<__mmask16>((1u << width) - 1);
        }
        __m512 acc[M][kVectors];
#pragma GCC unroll 4
        for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
            for (int v = 0; v < kVectors; ++v) acc[i][v] = _mm512_setzero_ps();
        const float* b = p.b + j;
        for (int64_t l = 0; l < p.k; ++l, b += p.ldb) {
            __m512 bv[kVectors];
#pragma GCC unroll 4
            for (int v = 0; v < kVectors; ++v) bv[v] = _mm512_maskz_loadu_ps(mask[v], b + 16 * v);
#pragma GCC unroll 4
            for (int i = 0; i < M; ++i) {
                const __m512 av = _mm512_set1_ps(a[i * p.k + l]);
#pragma GCC unroll 4
                for (int v = 0; v < kVectors; ++v)
                    acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
            }
        }
        const __m512 va = _mm512_set1_ps(p.alpha);
        const __m512 vb = _mm512_set1_ps(p.beta);
        for (int i = 0; i < M; ++i) {
            float* row = p.c + i * p.ldc + j;
            for (int v = 0; v < kVectors; ++v) {
                __m512 r = _mm512_mul_ps(va, acc[i][v]);
                if (p.beta != 0.0f)
                    r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask[v], row + 16 * v), r);
                _mm512_mask_storeu_ps(row + 16 * v, mask[v], r);
            }
        }
        if (p.epilogue) p.epilogue->apply(p.epilogue->context, 0, j, M, cols, p.c + j, p.ldc);
    }
}

// The same two loops with AVX2's 8 lanes (CPUs without AVX-512: Zen 1 to 3, most Intel
// clients). Sixteen vector registers: with 3 or 4 rows, two columns (dots) or two vectors of
// columns (axpys) at a time, so that the accumulators stay in registers.

template <int M>
__attribute__((target("avx2,fma"))) void few_rows_dots_avx2(const Problem& p, const float* a, int64_t n0,
                                                            int64_t n1) {
    constexpr int kCols = M <= 2 ? 4 : 2;
    const int64_t k = p.k;
    const __m256i tail = lanes_avx2(k % 8);
    for (int64_t j = n0; j < n1; j += kCols) {
        const int64_t cols = std::min<int64_t>(kCols, n1 - j);
        const float* b[kCols];
#pragma GCC unroll 4
        for (int c = 0; c < kCols; ++c) b[c] = p.b + (j + std::min<int64_t>(c, cols - 1)) * p.ldb;
        __m256 acc[M][kCols];
#pragma GCC unroll 4
        for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
            for (int c = 0; c < kCols; ++c) acc[i][c] = _mm256_setzero_ps();
        int64_t l = 0;
        for (; l + 8 <= k; l += 8) {
            __m256 bv[kCols];
#pragma GCC unroll 4
            for (int c = 0; c < kCols; ++c) bv[c] = _mm256_loadu_ps(b[c] + l);
#pragma GCC unroll 4
            for (int i = 0; i < M; ++i) {
                const __m256 av = _mm256_loadu_ps(a + i * k + l);
#pragma GCC unroll 4
                for (int c = 0; c < kCols; ++c) acc[i][c] = _mm256_fmadd_ps(av, bv[c], acc[i][c]);
            }
        }
        if (l < k) {
            __m256 bv[kCols];
#pragma GCC unroll 4
            for (int c = 0; c < kCols; ++c) bv[c] = _mm256_maskload_ps(b[c] + l, tail);
#pragma GCC unroll 4
            for (int i = 0; i < M; ++i) {
                const __m256 av = _mm256_maskload_ps(a + i * k + l, tail);
#pragma GCC unroll 4
                for (int c = 0; c < kCols; ++c) acc[i][c] = _mm256_fmadd_ps(av, bv[c], acc[i][c]);
            }
        }
        float sums[M][kCols];
        for (int i = 0; i < M; ++i)
            for (int64_t c = 0; c < cols; ++c) sums[i][c] = sum_lanes_avx2(acc[i][c]);
        finish_dots<M, kCols>(p, sums, j, cols, n0, n1);
    }
}

template <int M>
__attribute__((target("avx2,fma"))) void few_rows_axpys_avx2(const Problem& p, const float* a, int64_t n0,
                                                             int64_t n1) {
    constexpr int kVectors = M <= 2 ? 4 : 2;
    for (int64_t j = n0; j < n1; j += 8 * kVectors) {
        const int64_t cols = std::min<int64_t>(8 * kVectors, n1 - j);
        __m256i mask[kVectors];
#pragma GCC unroll 4
        for (int v = 0; v < kVectors; ++v) mask[v] = lanes_avx2(std::clamp<int64_t>(cols - 8 * v, 0, 8));
        __m256 acc[M][kVectors];
#pragma GCC unroll 4
        for (int i = 0; i < M; ++i)
#pragma GCC unroll 4
            for (int v = 0; v < kVectors; ++v) acc[i][v] = _mm256_setzero_ps();
        const float* b = p.b + j;
        if (cols == 8 * kVectors) {
            for (int64_t l = 0; l < p.k; ++l, b += p.ldb) {
                __m256 bv[kVectors];
#pragma GCC unroll 4
                for (int v = 0; v < kVectors; ++v) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 4
                for (int i = 0; i < M; ++i) {
                    const __m256 av = _mm256_broadcast_ss(a + i * p.k + l);
#pragma GCC unroll 4
                    for (int v = 0; v < kVectors; ++v) acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
                }
            }
        } else {
            for (int64_t l = 0; l < p.k; ++l, b += p.ldb) {
                __m256 bv[kVectors];
#pragma GCC unroll 4
                for (int v = 0; v < kVectors; ++v) bv[v] = _mm256_maskload_ps(b + 8 * v, mask[v]);
#pragma GCC unroll 4
                for (int i = 0; i < M; ++i) {
                    const __m256 av = _mm256_broadcast_ss(a + i * p.k + l);
#pragma GCC unroll 4
                    for (int v = 0; v < kVectors; ++v) acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
                }
            }
        }
        const __m256 va = _mm256_set1_ps(p.alpha);
        const __m256 vb = _mm256_set1_ps(p.beta);
#pragma GCC unroll 4
        for (int i = 0; i < M; ++i) {
            float* row = p.c + i * p.ldc + j;
#pragma GCC unroll 4
            for (int v = 0; v < kVectors; ++v) {
                __m256 r = _mm256_mul_ps(va, acc[i][v]);
                if (p.beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_maskload_ps(row + 8 * v, mask[v]), r);
                _mm256_maskstore_ps(row + 8 * v, mask[v], r);
            }
        }
        if (p.epilogue) p.epilogue->apply(p.epilogue->context, 0, j, M, cols, p.c + j, p.ldc);
    }
}

// An instruction set's two loops, for few_rows.
struct Avx512Loops {
    template <int M>
    static void dots(const Problem& p, const float* a, int64_t n0, int64_t n1) { few_rows_dots<M>(p, a, n0, n1); }
    template <int M>
    static void axpys(const Problem& p, const float* a, int64_t n0, int64_t n1) { few_rows_axpys<M>(p, a, n0, n1); }
};
struct Avx2Loops {
    template <int M>
    static void dots(const Problem& p, const float* a, int64_t n0, int64_t n1) { few_rows_dots_avx2<M>(p, a, n0, n1); }
    template <int M>
    static void axpys(const Problem& p, const float* a, int64_t n0, int64_t n1) { few_rows_axpys_avx2<M>(p, a, n0, n1); }
};

template <class Loops, int M>
void few_rows_of(const Problem& p, const float* a, int64_t n0, int64_t n1) {
    if (p.trans_b)
        Loops::template dots<M>(p, a, n0, n1);
    else
        Loops::template axpys<M>(p, a, n0, n1);
}

// The GemmConfig::few_rows of an instruction set: its loops for 1 to 4 rows.
template <class Loops>
void few_rows(const Problem& p, const float* a, int64_t n0, int64_t n1) {
    switch (p.m) {
        case 1:
            return few_rows_of<Loops, 1>(p, a, n0, n1);
        case 2:
            return few_rows_of<Loops, 2>(p, a, n0, n1);
        case 3:
            return few_rows_of<Loops, 3>(p, a, n0, n1);
        default:
            return few_rows_of<Loops, kFewRows>(p, a, n0, n1);
    }
}

#endif  // DSK_GEMM_X86

//----------------------------------------------------------------------------------------------
// Configurations and selection
//----------------------------------------------------------------------------------------------

// KC x NR floats of B (a micro-panel) fit L1 with room for the A panel; MC x KC of A and
// KC x NC of B fit L2.
const GemmConfig kGenericConfig = {.name = "generic",
                                   .mr = kGenericMr,
                                   .nr = kGenericNr,
                                   .kc = 256,
                                   .mc = 64,
                                   .nc = 512,
                                   .kernel = &micro_kernel_generic,
                                   .rows_kernel = nullptr,
                                   .pack_a = &pack_a<kGenericMr, false>,
                                   .pack_b = &pack_b<kGenericNr, false>,
                                   .few_rows = nullptr};
#if DSK_GEMM_X86
const GemmConfig kAvx2Config = {.name = "avx2",
                                .mr = kAvx2Mr,
                                .nr = kAvx2Nr,
                                .kc = 256,
                                .mc = 72,
                                .nc = 512,
                                .kernel = &micro_kernel_avx2,
                                .rows_kernel = &micro_kernel_avx2_rows,
                                .pack_a = &pack_a<kAvx2Mr, true>,
                                .pack_b = &pack_b<kAvx2Nr, true>,
                                .few_rows = &few_rows<Avx2Loops>};
const GemmConfig kAvx512Config = {.name = "avx512",
                                  .mr = kAvx512Mr,
                                  .nr = kAvx512Nr,
                                  .kc = 256,
                                  .mc = 128,
                                  .nc = 384,
                                  .kernel = &micro_kernel_avx512<kAvx512Mr, kAvx512Nv>,
                                  .rows_kernel = nullptr,  // not measured on an AVX-512 machine yet
                                  .pack_a = &pack_a<kAvx512Mr, true>,
                                  .pack_b = &pack_b<kAvx512Nr, true>,
                                  .few_rows = &few_rows<Avx512Loops>};
#endif

bool cpu_has(GemmIsa isa) {
#if DSK_GEMM_X86
    switch (isa) {
        case GemmIsa::avx512:
            return cpu_has_avx512f();
        case GemmIsa::avx2:
            return cpu_has_avx2_fma();
        default:
            return true;
    }
#else
    return isa == GemmIsa::generic || isa == GemmIsa::automatic;
#endif
}

const GemmConfig* config_for(GemmIsa isa) {
    switch (isa) {
#if DSK_GEMM_X86
        case GemmIsa::avx512:
            return &kAvx512Config;
        case GemmIsa::avx2:
            return &kAvx2Config;
#endif
        case GemmIsa::generic:
            return &kGenericConfig;
        default:
            break;
    }
    if (cpu_has(GemmIsa::avx512)) return config_for(GemmIsa::avx512);
    if (cpu_has(GemmIsa::avx2)) return config_for(GemmIsa::avx2);
    return &kGenericConfig;
}

std::atomic<const GemmConfig*>& selected_config() {
    static std::atomic<const GemmConfig*> selected{config_for(GemmIsa::automatic)};
    return selected;
}

// The largest micro-tile of any configuration (the partial-tile buffer).
constexpr int kMaxTile = 32 * 32;
static_assert(kGenericMr * kGenericNr <= kMaxTile);
#if DSK_GEMM_X86
static_assert(kAvx2Mr * kAvx2Nr <= kMaxTile && kAvx512Mr * kAvx512Nr <= kMaxTile);
#endif

//----------------------------------------------------------------------------------------------
// The serial loop nest over one rectangle of C
//----------------------------------------------------------------------------------------------

int64_t round_up(int64_t value, int64_t multiple) {
    return (value + multiple - 1) / multiple * multiple;
}

// The depth of each K slice: K split into equal slices of at most cfg.kc (a function of K only,
// so the order of the sum never depends on the thread split).
int64_t k_slice(const GemmConfig& cfg, int64_t k) {
    const int64_t slices = (k + cfg.kc - 1) / cfg.kc;
    return std::min<int64_t>(k, round_up((k + slices - 1) / slices, 8));
}

// C = beta * C on rows [m0, m1) x columns [n0, n1) (the whole answer when alpha or K is 0).
void scale_c(const Problem& p, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    for (int64_t i = m0; i < m1; ++i) {
        float* row = p.c + i * p.ldc;
        if (p.beta == 0.0f) {
            std::fill(row + n0, row + n1, 0.0f);
        } else if (p.beta != 1.0f) {
            for (int64_t j = n0; j < n1; ++j) row[j] *= p.beta;
        }
    }
}

void gemm_rectangle(const GemmConfig& cfg, const Problem& p, int64_t m0, int64_t m1, int64_t n0,
                    int64_t n1) {
    if (m0 >= m1 || n0 >= n1) return;
    const int64_t kc_max = k_slice(cfg, p.k);
    const int64_t mc_max = std::min(cfg.mc, round_up(m1 - m0, cfg.mr));
    const int64_t nc_max = std::min(cfg.nc, round_up(n1 - n0, cfg.nr));
    Scratch packed_a(static_cast<size_t>(mc_max * kc_max));
    std::optional<Scratch> packed_b;
    if (!p.packed_b) packed_b.emplace(static_cast<size_t>(nc_max * kc_max));
    const int64_t n_padded = round_up(p.n, cfg.nr);
    alignas(64) float edge[kMaxTile];  // one partial tile
    // Not when A's rows are a multiple of 4 KB apart: the MR rows then share one L1 set, and a
    // block of MC rows overfills L2's sets (2048 floats apart: 72 rows on 8 sets of 8 ways), which
    // took 2048^3 from 35.1 to 33.5 GFLOP/s on one Zen 1 core.
    const bool a_in_place = cfg.rows_kernel && !p.trans_a && p.lda * sizeof(float) % 4096 != 0;

    for (int64_t jc = n0; jc < n1; jc += cfg.nc) {
        const int64_t nc = std::min(cfg.nc, n1 - jc);
        for (int64_t pc = 0; pc < p.k; pc += kc_max) {
            const int64_t kc = std::min(kc_max, p.k - pc);
            // The first slice applies beta; later ones add to what is there. After the last one
            // each tile is final and goes through the epilogue at once.
            const float beta = pc == 0 ? p.beta : 1.0f;
            const GemmEpilogue* epilogue = pc + kc == p.k ? p.epilogue : nullptr;
            // A packed block: NR-wide panels of kc values per column, in column order (PackedB
            // holds every K slice that way, slice after slice).
            const float* b_block = p.packed_b ? p.packed_b + pc * n_padded + jc * kc : packed_b->data();
            if (!p.packed_b) cfg.pack_b(p.b, p.ldb, p.trans_b, pc, kc, jc, nc, packed_b->data());
            for (int64_t ic = m0; ic < m1; ic += cfg.mc) {
                const int64_t mc = std::min(cfg.mc, m1 - ic);
                // Bands [0, in_place) are read where they are; the rest (all of them, or a last
                // band of fewer than MR rows) packed, each at its place in packed_a.
                const int64_t in_place = a_in_place ? mc / cfg.mr * cfg.mr : 0;
                if (in_place < mc)
                    cfg.pack_a(p.a, p.lda, p.trans_a, ic + in_place, mc - in_place, pc, kc,
                               packed_a.data() + in_place * kc);
                for (int64_t jr = 0; jr < nc; jr += cfg.nr) {
                    const int64_t cols = std::min<int64_t>(cfg.nr, nc - jr);
                    const float* b_panel = b_block + jr * kc;
                    for (int64_t ir = 0; ir < mc; ir += cfg.mr) {
                        const int64_t rows = std::min<int64_t>(cfg.mr, mc - ir);
                        float* c_tile = p.c + (ic + ir) * p.ldc + jc + jr;
                        const auto tile = [&](float* c, int64_t ldc, float alpha, float beta_k,
                                              TileFinish finish) {
                            if (ir < in_place)
                                cfg.rows_kernel(kc, p.a + (ic + ir) * p.lda + pc, p.lda, b_panel, c, ldc,
                                                alpha, beta_k, finish);
                            else
                                cfg.kernel(kc, packed_a.data() + ir * kc, b_panel, c, ldc, alpha, beta_k,
                                           finish);
                        };
                        if (rows == cfg.mr && cols == cfg.nr) {
                            // The epilogue in the micro-kernel's registers where it is only a
                            // column bias and Relu, else on the stored tile.
                            const bool in_registers = epilogue && epilogue->column_bias;
                            tile(c_tile, p.ldc, p.alpha, beta,
                                 in_registers ? TileFinish{epilogue->column_bias + jc + jr, epilogue->relu}
                                              : TileFinish{});
                            if (epilogue && !in_registers)
                                epilogue->apply(epilogue->context, ic + ir, jc + jr, rows, cols,
                                                c_tile, p.ldc);
                            continue;
                        }
                        // A partial tile: compute it whole, then merge the part that exists.
                        tile(edge, cfg.nr, 1.0f, 0.0f, {});
                        for (int64_t i = 0; i < rows; ++i) {
                            float* row = c_tile + i * p.ldc;
                            const float* e = edge + i * cfg.nr;
                            if (beta == 0.0f) {
                                for (int64_t j = 0; j < cols; ++j) row[j] = p.alpha * e[j];
                            } else {
                                for (int64_t j = 0; j < cols; ++j)
                                    row[j] = p.alpha * e[j] + beta * row[j];
                            }
                        }
                        if (epilogue)
                            epilogue->apply(epilogue->context, ic + ir, jc + jr, rows, cols, c_tile,
                                            p.ldc);
                    }
                }
            }
        }
    }
}

//----------------------------------------------------------------------------------------------
// The split over threads
//----------------------------------------------------------------------------------------------

// Tiles [t0, t1) of C, numbered row by row (band of MR rows, then panel of NR columns): the tail
// of a band, whole bands, the head of a band, each a rectangle.
void gemm_tiles(const GemmConfig& cfg, const Problem& p, int64_t t0, int64_t t1) {
    const int64_t panels = (p.n + cfg.nr - 1) / cfg.nr;
    while (t0 < t1) {
        const int64_t band = t0 / panels, first = t0 % panels;
        const int64_t bands = first == 0 ? (t1 - t0) / panels : 0;  // whole bands from t0
        if (bands > 0) {
            gemm_rectangle(cfg, p, band * cfg.mr, std::min(p.m, (band + bands) * cfg.mr), 0, p.n);
            t0 += bands * panels;
            continue;
        }
        const int64_t last = std::min(panels, first + (t1 - t0));
        gemm_rectangle(cfg, p, band * cfg.mr, std::min(p.m, (band + 1) * cfg.mr), first * cfg.nr,
                       std::min(p.n, last * cfg.nr));
        t0 += last - first;
    }
}

// The product's work for dsk::threads_for, which decides whether a split pays: its multiply-adds,
// and A, B and C read (and C written) once. With few rows, reading B is most of the time.
dsk::Work product_work(const Problem& p) {
    const double m = static_cast<double>(p.m), n = static_cast<double>(p.n),
                 k = static_cast<double>(p.k);
    return {2.0 * m * n * k, 4.0 * (m * k + k * n + (p.beta == 0.0f ? 1.0 : 2.0) * m * n)};
}

struct Split {
    int64_t parts_m, parts_n;  // rectangles along M and N
    int64_t rows, cols;        // size of each (multiples of mr / nr; the last may be smaller)
};

// Picks parts_m x parts_n == threads minimising an estimate of the slowest thread's time: its
// multiply-adds (32 per cycle) plus the packing it does (about 4 values per cycle; A is packed
// once per NC block of its columns, B once).
Split choose_split(const GemmConfig& cfg, const Problem& p, int64_t threads) {
    Split best{1, 1, p.m, p.n};
    double best_cost = -1;
    for (int64_t parts_m = 1; parts_m <= threads; ++parts_m) {
        if (threads % parts_m != 0) continue;
        const int64_t parts_n = threads / parts_m;
        const int64_t rows = round_up((p.m + parts_m - 1) / parts_m, cfg.mr);
        const int64_t cols = round_up((p.n + parts_n - 1) / parts_n, cfg.nr);
        const double macs = static_cast<double>(rows) * cols * p.k;
        const double packs = static_cast<double>(rows) * p.k * ((cols + cfg.nc - 1) / cfg.nc) +
                             (p.packed_b ? 0.0 : static_cast<double>(cols) * p.k);
        const double cost = macs / 32.0 + packs / 4.0;
        // Ties go to more parts along M: each thread then writes whole rows of C, and the next
        // layer, split the same way, reads its rows from its own core's cache.
        if (best_cost < 0 || cost <= best_cost) {
            best_cost = cost;
            best = {parts_m, parts_n, rows, cols};
        }
    }
    return best;
}

// op(A) copied to m rows of K contiguous values, then the columns of C in blocks of 64 split over
// the threads (every element is computed the same way whatever the split).
void run_few_rows(const GemmConfig& cfg, const Problem& p, int64_t threads) {
    // op(A) as it is when its rows are already contiguous (A not transposed, lda == K: the
    // usual case), else a copy.
    const bool in_place = !p.trans_a && (p.lda == p.k || p.m == 1);
    std::optional<Scratch> a_rows;
    if (!in_place) {
        a_rows.emplace(static_cast<size_t>(p.m * p.k));
        float* rows = a_rows->data();
        for (int64_t i = 0; i < p.m; ++i)
            for (int64_t l = 0; l < p.k; ++l)
                rows[i * p.k + l] = p.trans_a ? p.a[l * p.lda + i] : p.a[i * p.lda + l];
    }
    const float* a = in_place ? p.a : a_rows->data();
    if (threads <= 1) {
        cfg.few_rows(p, a, 0, p.n);
        return;
    }
    // `threads` equal runs of blocks, each thread reading its share of B (in its own core's
    // cache when the product runs again).
    constexpr int64_t kBlock = 64;
    const size_t blocks = static_cast<size_t>((p.n + kBlock - 1) / kBlock);
    const size_t per_thread = (blocks + static_cast<size_t>(threads) - 1) / static_cast<size_t>(threads);
    parallel_for(blocks, per_thread, [&](size_t b, size_t e) {
        cfg.few_rows(p, a, static_cast<int64_t>(b) * kBlock,
                     std::min(p.n, static_cast<int64_t>(e) * kBlock));
    });
}

void run(Problem p, const PackedB* packed_b, bool parallel) {
    if (p.m <= 0 || p.n <= 0) return;
    if (p.k <= 0 || p.alpha == 0.0f) {
        scale_c(p, 0, p.m, 0, p.n);
        if (p.epilogue) p.epilogue->apply(p.epilogue->context, 0, 0, p.m, p.n, p.c, p.ldc);
        return;
    }
    const GemmConfig& cfg = *selected_config().load(std::memory_order_relaxed);
    if (packed_b && packed_b->holds(p.trans_b, p.n, p.k)) p.packed_b = packed_b->data();
    // As many threads as the work pays for (dsk_work.hpp): a batch-1 layer of a few hundred
    // thousand multiply-adds runs on the calling thread.
    const int64_t threads = parallel ? static_cast<int64_t>(threads_for(product_work(p))) : 1;
    if (p.m <= kFewRows && cfg.few_rows) {
        run_few_rows(cfg, p, threads);
        return;
    }
    if (threads <= 1) {
        gemm_rectangle(cfg, p, 0, p.m, 0, p.n);
        return;
    }
    const Split split = choose_split(cfg, p, threads);
    if (split.parts_n == 1) {
        // Along M: equal runs of tiles rather than of rows (rows rounded to MR left one thread a
        // band more: 22 against 21 for the MLP's 256 rows).
        const int64_t tiles = (p.m + cfg.mr - 1) / cfg.mr * ((p.n + cfg.nr - 1) / cfg.nr);
        parallel_for(static_cast<size_t>(threads), 1, [&](size_t begin, size_t end) {
            for (size_t part = begin; part < end; ++part)
                gemm_tiles(cfg, p, tiles * static_cast<int64_t>(part) / threads,
                           tiles * static_cast<int64_t>(part + 1) / threads);
        });
        return;
    }
    parallel_for(static_cast<size_t>(split.parts_m * split.parts_n), 1,
                 [&](size_t begin, size_t end) {
                     for (size_t part = begin; part < end; ++part) {
                         const int64_t pm = static_cast<int64_t>(part) / split.parts_n;
                         const int64_t pn = static_cast<int64_t>(part) % split.parts_n;
                         const int64_t m0 = std::min(p.m, pm * split.rows);
                         const int64_t n0 = std::min(p.n, pn * split.cols);
                         gemm_rectangle(cfg, p, m0, std::min(p.m, m0 + split.rows), n0,
                                        std::min(p.n, n0 + split.cols));
                     }
                 });
}

}  // namespace

PackedB::~PackedB() {
    delete static_cast<Scratch*>(scratch_);
}

bool PackedB::holds(bool trans_b, int64_t n, int64_t k) const {
    return data_ && config_ == selected_config().load(std::memory_order_relaxed) && trans_b == trans_b_ &&
           n == n_ && k == k_;
}

bool sgemm_reads_packed_b(int64_t m) {
    return m > kFewRows || !selected_config().load(std::memory_order_relaxed)->few_rows;
}

void PackedB::pack(bool trans_b, int64_t n, int64_t k, const float* b, int64_t ldb) {
    const GemmConfig& cfg = *selected_config().load(std::memory_order_relaxed);
    const int64_t n_padded = round_up(n, cfg.nr), kc_max = k_slice(cfg, k);
    const size_t count = static_cast<size_t>(n_padded * k);
    auto* scratch = static_cast<Scratch*>(scratch_);
    if (!scratch || scratch->size() < count) {
        delete scratch;
        scratch_ = nullptr;
        data_ = nullptr;
        scratch = new Scratch(count);
        scratch_ = scratch;
    }
    // Slice after slice (the loop nest's K slices, a function of K only), each as pack_b lays out
    // an NC block: NR-wide panels of kc values per column.
    for (int64_t pc = 0; pc < k; pc += kc_max) {
        const int64_t kc = std::min(kc_max, k - pc);
        cfg.pack_b(b, ldb, trans_b, pc, kc, 0, n, scratch->data() + pc * n_padded);
    }
    data_ = scratch->data();
    config_ = &cfg;
    trans_b_ = trans_b;
    n_ = n;
    k_ = k;
}

void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
           const GemmEpilogue* epilogue, const PackedB* packed_b) {
    run({trans_a, trans_b, m, n, k, alpha, beta, a, lda, b, ldb, c, ldc, epilogue, nullptr}, packed_b, true);
}

void sgemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc, const GemmEpilogue* epilogue) {
    run({trans_a, trans_b, m, n, k, alpha, beta, a, lda, b, ldb, c, ldc, epilogue, nullptr}, nullptr, false);
}

bool sgemm_select_isa(GemmIsa isa) {
    if (!cpu_has(isa)) return false;
    selected_config().store(config_for(isa), std::memory_order_relaxed);
    return true;
}

const char* sgemm_isa_name() {
    return selected_config().load(std::memory_order_relaxed)->name;
}

}  // namespace dsk::cpu
