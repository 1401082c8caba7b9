// conv_winograd.cpp - F(2x2, 3x3) of conv_winograd.h.
#include "conv_winograd.h"

#include <algorithm>

#include "cpu_features.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "transpose_8x8.h"
#define DSK_CONV_WINOGRAD_X86 1
#else
#define DSK_CONV_WINOGRAD_X86 0
#endif

namespace dsk::cpu {
namespace {

constexpr int64_t kLanes = 16;

// Where a block of `rows` tile rows of an image works in the scratch: its input rows transposed
// to [row][column][channel] with a zero border (xt: input rows 2 * first - 1 to 2 * (first +
// rows), the last tile row's), the same without the border (flat), the tiles transformed (v
// [16][tiles][in]), the products or the output gradient's tiles transformed (m
// [16][tiles][out]), and the output tiles (yt [2 * rows][2 * tiles_w][out], also the transposed
// dY of the weight gradient).
struct Layout {
    int64_t rows, wp, tiles;
    int64_t xt, flat, v, m, yt, total;

    Layout(const WinogradConv& c, int64_t tile_rows) {
        rows = tile_rows;
        wp = 2 * c.tiles_w() + 2;
        tiles = rows * c.tiles_w();
        xt = 0;
        flat = xt + (2 * rows + 2) * wp * c.in_channels;
        v = flat + (2 * rows + 2) * c.w * c.in_channels;
        m = v + 16 * tiles * c.in_channels;
        yt = m + 16 * tiles * c.out_channels;
        total = yt + 4 * tiles * c.out_channels;
    }
};

#if DSK_CONV_WINOGRAD_X86
// Asks for `count` floats at p in cache, 64 bytes a line: the transposes read 8 rows at a time
// in 32-byte pieces, which the hardware prefetchers do not run ahead of.
inline void prefetch(const float* p, int64_t count) {
    for (int64_t i = 0; i < count; i += 16)
        _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T0);
}

// Part `part` of 16 of prefetch(p, count) (nothing when p is null): spread over the 16 products
// of an image, the next image's planes arrive while the FMAs run.
inline void prefetch_part(const float* p, int64_t count, int64_t part) {
    if (!p) return;
    const int64_t lines = (count + 15) / 16, begin = lines * part / 16,
                  end = lines * (part + 1) / 16;
    prefetch(p + begin * 16, (end - begin) * 16);
}

// The kernels (conv_winograd_isa.inc), once per instruction set.

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,fma")
namespace avx512 {

struct Vec {
    __m512 v;
    static constexpr int kMaxVectors = 4;
    // 24 accumulators or fewer. Two vectors (ConvGradInput at the CNN's layer): 8 rows ran 3%
    // faster than 12 (5.45-5.66 against 5.72-5.75 ms, `OMP_NUM_THREADS=1 dsk_cpu_conv_benchmark
    // --cpu-time 128 "32->64" ConvGradInput`).
    static constexpr int tile_rows(int vectors) { return vectors == 4 ? 6 : vectors >= 2 ? 8 : 16; }
    static Vec load(const float* p) { return {_mm512_loadu_ps(p)}; }
    static void store(float* p, Vec a) { _mm512_storeu_ps(p, a.v); }
    static Vec zero() { return {_mm512_setzero_ps()}; }
    static Vec set1(float x) { return {_mm512_set1_ps(x)}; }
    static Vec add(Vec a, Vec b) { return {_mm512_add_ps(a.v, b.v)}; }
    static Vec sub(Vec a, Vec b) { return {_mm512_sub_ps(a.v, b.v)}; }
    static Vec fmadd(Vec a, Vec b, Vec c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
    // max(0, x): NaN stays NaN, -0 stays -0, as the direct path's Relu. The masked form, because
    // GCC 12's unmasked one starts from an undefined vector that trips -Wmaybe-uninitialized.
    static Vec relu(Vec a) {
        return {_mm512_mask_max_ps(a.v, static_cast<__mmask16>(0xffff), _mm512_setzero_ps(), a.v)};
    }
};

// dst[j * ld_dst + i] = src[i * ld_src + j] for a block of `rows` x `cols` (both at most 8), an
// edge of `transpose`: through an 8x8 tile on the stack, read and written with masks, so that it
// costs about what a full block does (scalar stores, each to another row of the destination,
// stalled the whole transpose on their misses).
void transpose_partial(const float* src, int64_t ld_src, int64_t rows, int64_t cols, float* dst,
                       int64_t ld_dst) {
    const __mmask8 row_mask = static_cast<__mmask8>((1u << cols) - 1),
                   column_mask = static_cast<__mmask8>((1u << rows) - 1);
    alignas(32) float in[8][8], out[8][8];
    for (int i = 0; i < 8; ++i)
        _mm256_store_ps(in[i], i < rows ? _mm256_maskz_loadu_ps(row_mask, src + i * ld_src)
                                        : _mm256_setzero_ps());
    transpose_8x8(&in[0][0], 8, &out[0][0], 8);
    for (int i = 0; i < cols; ++i)
        _mm256_mask_storeu_ps(dst + i * ld_dst, column_mask, _mm256_load_ps(out[i]));
}

#include "conv_winograd_isa.inc"

}  // namespace avx512
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {

// Two registers of 8. Sixteen registers: a product tile holds one vector of columns (2
// registers) for 6 rows, with the loads of B and A.
struct Vec {
    __m256 lo, hi;
    static constexpr int kMaxVectors = 1;
    static constexpr int tile_rows(int) { return 6; }
    static Vec load(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
    static void store(float* p, Vec a) {
        _mm256_storeu_ps(p, a.lo);
        _mm256_storeu_ps(p + 8, a.hi);
    }
    static Vec zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
    static Vec set1(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
    static Vec add(Vec a, Vec b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
    static Vec sub(Vec a, Vec b) { return {_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)}; }
    static Vec fmadd(Vec a, Vec b, Vec c) {
        return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
    }
    // max(0, x), as avx512's: the second operand when either is NaN or both are zeros.
    static Vec relu(Vec a) {
        return {_mm256_max_ps(_mm256_setzero_ps(), a.lo), _mm256_max_ps(_mm256_setzero_ps(), a.hi)};
    }
};

// As avx512's, with AVX2's masked loads and stores.
void transpose_partial(const float* src, int64_t ld_src, int64_t rows, int64_t cols, float* dst,
                       int64_t ld_dst) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i row_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(cols)), lane);
    const __m256i column_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rows)), lane);
    alignas(32) float in[8][8], out[8][8];
    for (int i = 0; i < 8; ++i)
        _mm256_store_ps(
            in[i], i < rows ? _mm256_maskload_ps(src + i * ld_src, row_mask) : _mm256_setzero_ps());
    transpose_8x8(&in[0][0], 8, &out[0][0], 8);
    for (int i = 0; i < cols; ++i)
        _mm256_maskstore_ps(dst + i * ld_dst, column_mask, _mm256_load_ps(out[i]));
}

#include "conv_winograd_isa.inc"

}  // namespace avx2
#pragma GCC pop_options
#endif  // DSK_CONV_WINOGRAD_X86

}  // namespace

bool winograd_applies(const Window2d& w, int64_t in_channels, int64_t out_channels) {
    return winograd_available() && w.kernel_h == 3 && w.kernel_w == 3 && w.stride_h == 1 &&
           w.stride_w == 1 && w.dilation_h == 1 && w.dilation_w == 1 && w.pad_top == 1 &&
           w.pad_left == 1 && w.pad_bottom == 1 && w.pad_right == 1 && w.in_h == w.out_h &&
           w.in_w == w.out_w && w.in_h > 0 && w.in_w > 0 && in_channels > 0 && out_channels > 0 &&
           in_channels % kLanes == 0 && out_channels % kLanes == 0;
}

void winograd_filter(const float* g, float* u) {
    // G g: rows g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2; then the same on the columns.
    float gg[4][3];
    for (int s = 0; s < 3; ++s) {
        gg[0][s] = g[s];
        gg[1][s] = 0.5f * (g[s] + g[3 + s] + g[6 + s]);
        gg[2][s] = 0.5f * (g[s] - g[3 + s] + g[6 + s]);
        gg[3][s] = g[6 + s];
    }
    for (int i = 0; i < 4; ++i) {
        u[i * 4 + 0] = gg[i][0];
        u[i * 4 + 1] = 0.5f * (gg[i][0] + gg[i][1] + gg[i][2]);
        u[i * 4 + 2] = 0.5f * (gg[i][0] - gg[i][1] + gg[i][2]);
        u[i * 4 + 3] = gg[i][2];
    }
}

int64_t winograd_scratch_floats(const WinogradConv& c, int64_t tile_rows) {
    return Layout(c, tile_rows).total;
}

int64_t winograd_block_rows(const WinogradConv& c) {
    int64_t rows = 1;
    while (rows < c.tiles_h() && winograd_scratch_floats(c, rows + 1) <= kWinogradBlockFloats)
        ++rows;
    return rows;
}

bool winograd_available() {
#if DSK_CONV_WINOGRAD_X86
    return (cpu_has_avx512f() && cpu_has_avx512vl()) || cpu_has_avx2_fma();
#else
    return false;
#endif
}

void winograd_conv_rows(const WinogradWeights& weights, const float* x, float* y,
                        const DirectConvOutput& output, int64_t first, int64_t rows, float* scratch,
                        const float* next_x) {
#if DSK_CONV_WINOGRAD_X86
    if (cpu_has_avx512f() && cpu_has_avx512vl())
        return avx512::conv_rows(weights, x, y, output, first, rows, scratch, next_x);
    return avx2::conv_rows(weights, x, y, output, first, rows, scratch, next_x);
#else
    (void)weights, (void)x, (void)y, (void)output, (void)first, (void)rows, (void)scratch,
        (void)next_x;
#endif
}

void winograd_weight_grad_rows(const WinogradConv& c, const float* x, const float* dy, float* du,
                               bool first_sum, int64_t first, int64_t rows, float* scratch,
                               const float* next_x, const float* next_dy) {
#if DSK_CONV_WINOGRAD_X86
    if (cpu_has_avx512f() && cpu_has_avx512vl())
        return avx512::weight_grad_rows(c, x, dy, du, first_sum, first, rows, scratch, next_x,
                                        next_dy);
    return avx2::weight_grad_rows(c, x, dy, du, first_sum, first, rows, scratch, next_x, next_dy);
#else
    (void)c, (void)x, (void)dy, (void)du, (void)first_sum, (void)first, (void)rows, (void)scratch,
        (void)next_x, (void)next_dy;
#endif
}

void winograd_weight_grad_filters(const WinogradConv& c, const float* du, float* dw) {
    const int64_t in = c.in_channels, out = c.out_channels;
    for (int64_t m = 0; m < out; ++m)
        for (int64_t ci = 0; ci < in; ++ci) {
            float d[4][4], h[3][4];
            for (int xi = 0; xi < 16; ++xi) d[xi / 4][xi % 4] = du[(xi * in + ci) * out + m];
            // G^T dU G: rows d0 + (d1 + d2) / 2, (d1 - d2) / 2, (d1 + d2) / 2 + d3; then the
            // columns.
            for (int j = 0; j < 4; ++j) {
                h[0][j] = d[0][j] + 0.5f * (d[1][j] + d[2][j]);
                h[1][j] = 0.5f * (d[1][j] - d[2][j]);
                h[2][j] = 0.5f * (d[1][j] + d[2][j]) + d[3][j];
            }
            float* g = dw + (m * in + ci) * 9;
            for (int r = 0; r < 3; ++r) {
                g[r * 3 + 0] = h[r][0] + 0.5f * (h[r][1] + h[r][2]);
                g[r * 3 + 1] = 0.5f * (h[r][1] - h[r][2]);
                g[r * 3 + 2] = 0.5f * (h[r][1] + h[r][2]) + h[r][3];
            }
        }
}

}  // namespace dsk::cpu
