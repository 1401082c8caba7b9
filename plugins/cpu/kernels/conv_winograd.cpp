// conv_winograd.cpp - F(2x2, 3x3) of conv_winograd.h.
#include "conv_winograd.h"

#include <algorithm>

#include "cpu_features.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "transpose_8x8.h"
#define DSK_CONV_WINOGRAD_AVX512 1
#else
#define DSK_CONV_WINOGRAD_AVX512 0
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

#if DSK_CONV_WINOGRAD_AVX512
// dst[j * ld_dst + i] = src[i * ld_src + j] for a block of `rows` x `cols` (both at most 8), an
// edge of `transpose`: through an 8x8 tile on the stack, read and written with masks, so that it
// costs about what a full block does (scalar stores, each to another row of the destination,
// stalled the whole transpose on their misses).
__attribute__((target("avx512f,avx512vl"))) void transpose_partial(const float* src, int64_t ld_src, int64_t rows,
                                                                   int64_t cols, float* dst, int64_t ld_dst) {
    const __mmask8 row_mask = static_cast<__mmask8>((1u << cols) - 1), column_mask = static_cast<__mmask8>((1u << rows) - 1);
    alignas(32) float in[8][8], out[8][8];
    for (int i = 0; i < 8; ++i)
        _mm256_store_ps(in[i], i < rows ? _mm256_maskz_loadu_ps(row_mask, src + i * ld_src) : _mm256_setzero_ps());
    transpose_8x8(&in[0][0], 8, &out[0][0], 8);
    for (int i = 0; i < cols; ++i) _mm256_mask_storeu_ps(dst + i * ld_dst, column_mask, _mm256_load_ps(out[i]));
}

// dst[j * ld_dst + i] = src[i * ld_src + j] for i < rows, j < cols: 8x8 blocks in registers.
__attribute__((target("avx512f,avx512vl,fma"))) void transpose(const float* src, int64_t ld_src, int64_t rows,
                                                               int64_t cols, float* dst, int64_t ld_dst) {
    for (int64_t i = 0; i < rows; i += 8) {
        const int64_t block_rows = std::min<int64_t>(8, rows - i);
        for (int64_t j = 0; j < cols; j += 8) {
            const int64_t block_cols = std::min<int64_t>(8, cols - j);
            if (block_rows == 8 && block_cols == 8)
                transpose_8x8(src + i * ld_src + j, ld_src, dst + j * ld_dst + i, ld_dst);
            else
                transpose_partial(src + i * ld_src + j, ld_src, block_rows, block_cols, dst + j * ld_dst + i, ld_dst);
        }
    }
}

// Asks for `count` floats at p in cache, 64 bytes a line: the transposes read 8 rows at a time
// in 32-byte pieces, which the hardware prefetchers do not run ahead of.
inline void prefetch(const float* p, int64_t count) {
    for (int64_t i = 0; i < count; i += 16) _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T0);
}

// Part `part` of 16 of prefetch(p, count) (nothing when p is null): spread over the 16 products
// of an image, the next image's planes arrive while the FMAs run.
inline void prefetch_part(const float* p, int64_t count, int64_t part) {
    if (!p) return;
    const int64_t lines = (count + 15) / 16, begin = lines * part / 16, end = lines * (part + 1) / 16;
    prefetch(p + begin * 16, (end - begin) * 16);
}

// c [R rows][NV vectors] (+)= the sums over kk < k of a(r, kk) * b[kk][...]: a(r, kk) at
// a[r * a_rs + kk * a_ks] (broadcast), b's rows ldb apart, c's rows ldc apart. The sums over kk
// run in order, in registers.
template <int R, int NV>
__attribute__((target("avx512f,fma"))) void product_tile(const float* a, int64_t a_rs, int64_t a_ks, int64_t k,
                                                         const float* b, int64_t ldb, float* c, int64_t ldc,
                                                         bool accumulate) {
    __m512 acc[R][NV];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j)
            acc[r][j] = accumulate ? _mm512_loadu_ps(c + r * ldc + j * kLanes) : _mm512_setzero_ps();
    for (int64_t kk = 0; kk < k; ++kk, a += a_ks, b += ldb) {
        __m512 bv[NV];
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) bv[j] = _mm512_loadu_ps(b + j * kLanes);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
            const __m512 av = _mm512_set1_ps(a[r * a_rs]);
#pragma GCC unroll 4
            for (int j = 0; j < NV; ++j) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) _mm512_storeu_ps(c + r * ldc + j * kLanes, acc[r][j]);
}

// Rows of R at a time (24 accumulators or fewer), then one at a time.
template <int NV>
void product_columns(const float* a, int64_t a_rs, int64_t a_ks, int64_t rows, int64_t k, const float* b,
                     int64_t ldb, float* c, int64_t ldc, bool accumulate) {
    // Two vectors (ConvGradInput at the CNN's layer): 8 rows ran 3% faster than 12 (5.45-5.66 against
    // 5.72-5.75 ms, `OMP_NUM_THREADS=1 dsk_cpu_conv_benchmark --cpu-time 128 "32->64" ConvGradInput`).
    constexpr int R = NV == 4 ? 6 : NV >= 2 ? 8 : 16;
    int64_t r = 0;
    for (; r + R <= rows; r += R) product_tile<R, NV>(a + r * a_rs, a_rs, a_ks, k, b, ldb, c + r * ldc, ldc, accumulate);
    for (; r < rows; ++r) product_tile<1, NV>(a + r * a_rs, a_rs, a_ks, k, b, ldb, c + r * ldc, ldc, accumulate);
}

// c [rows][cols] (+)= a x b (cols a multiple of 16), 64 columns at a time.
void product(const float* a, int64_t a_rs, int64_t a_ks, int64_t rows, int64_t k, const float* b, int64_t ldb,
             int64_t cols, float* c, int64_t ldc, bool accumulate) {
    for (int64_t j = 0; j < cols; j += 4 * kLanes) {
        switch (std::min<int64_t>(4, (cols - j) / kLanes)) {
            case 1: product_columns<1>(a, a_rs, a_ks, rows, k, b + j, ldb, c + j, ldc, accumulate); break;
            case 2: product_columns<2>(a, a_rs, a_ks, rows, k, b + j, ldb, c + j, ldc, accumulate); break;
            case 3: product_columns<3>(a, a_rs, a_ks, rows, k, b + j, ldb, c + j, ldc, accumulate); break;
            default: product_columns<4>(a, a_rs, a_ks, rows, k, b + j, ldb, c + j, ldc, accumulate); break;
        }
    }
}

// xt: input rows 2 * first - 1 to 2 * (first + l.rows) of the image (the rows the block's tiles
// read) transposed to [row][column + 1][channel], zeros outside the plane. The rows go through
// `flat` ([position][channel]) first: one transpose of all their positions at once leaves 8x8
// blocks for all but the last few positions, where a transpose per row would do w % 8 of every
// w columns with scalars.
__attribute__((target("avx512f,fma"))) void transpose_input(const WinogradConv& c, const Layout& l, const float* x,
                                                            int64_t first, float* flat, float* xt) {
    const int64_t channels = c.in_channels, plane = c.h * c.w, top = 2 * first - 1;
    const int64_t r0 = std::max<int64_t>(top, 0), r1 = std::min<int64_t>(top + 2 * l.rows + 2, c.h);
    for (int64_t ch = 0; ch < channels; ++ch) prefetch(x + ch * plane + r0 * c.w, (r1 - r0) * c.w);
    transpose(x + r0 * c.w, plane, channels, (r1 - r0) * c.w, flat, channels);
    const int64_t row = l.wp * channels;
    for (int64_t ih = top; ih < top + 2 * l.rows + 2; ++ih) {
        float* out = xt + (ih - top) * row;
        if (ih < r0 || ih >= r1) {
            std::fill(out, out + row, 0.0f);
            continue;
        }
        std::fill(out, out + channels, 0.0f);
        std::copy_n(flat + (ih - r0) * c.w * channels, c.w * channels, out + channels);
        std::fill(out + (c.w + 1) * channels, out + row, 0.0f);
    }
}

// v[xi][t][channel] = (B^T d B)[xi] of each tile's 4x4 input block d, 16 channels per vector.
__attribute__((target("avx512f,fma"))) void transform_input(const WinogradConv& c, const Layout& l, const float* xt,
                                                            float* v) {
    const int64_t channels = c.in_channels, tw = c.tiles_w(), step = l.tiles * channels;
    for (int64_t t = 0; t < l.tiles; ++t) {
        const float* block = xt + (t / tw * 2 * l.wp + t % tw * 2) * channels;
        for (int64_t c0 = 0; c0 < channels; c0 += kLanes) {
            __m512 r[4][4];
            for (int j = 0; j < 4; ++j) {
                const __m512 d0 = _mm512_loadu_ps(block + (0 * l.wp + j) * channels + c0);
                const __m512 d1 = _mm512_loadu_ps(block + (1 * l.wp + j) * channels + c0);
                const __m512 d2 = _mm512_loadu_ps(block + (2 * l.wp + j) * channels + c0);
                const __m512 d3 = _mm512_loadu_ps(block + (3 * l.wp + j) * channels + c0);
                r[0][j] = _mm512_sub_ps(d0, d2);
                r[1][j] = _mm512_add_ps(d1, d2);
                r[2][j] = _mm512_sub_ps(d2, d1);
                r[3][j] = _mm512_sub_ps(d1, d3);
            }
            float* out = v + t * channels + c0;
            for (int i = 0; i < 4; ++i) {
                _mm512_storeu_ps(out + (i * 4 + 0) * step, _mm512_sub_ps(r[i][0], r[i][2]));
                _mm512_storeu_ps(out + (i * 4 + 1) * step, _mm512_add_ps(r[i][1], r[i][2]));
                _mm512_storeu_ps(out + (i * 4 + 2) * step, _mm512_sub_ps(r[i][2], r[i][1]));
                _mm512_storeu_ps(out + (i * 4 + 3) * step, _mm512_sub_ps(r[i][1], r[i][3]));
            }
        }
    }
}

// yt[2 * ty + a][2 * tx + b][channel] = (A^T M A)[a][b] of each tile, plus the bias, then the Relu
// (max(0, x): NaN stays NaN, -0 stays -0, as the direct path's).
__attribute__((target("avx512f,fma"))) void transform_output(const WinogradConv& c, const Layout& l, const float* m,
                                                             const DirectConvOutput& output, float* yt) {
    const int64_t channels = c.out_channels, tw = c.tiles_w(), step = l.tiles * channels, row = 2 * tw * channels;
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t t = 0; t < l.tiles; ++t) {
        float* block = yt + t / tw * 2 * row + t % tw * 2 * channels;
        const float* in = m + t * channels;
        for (int64_t c0 = 0; c0 < channels; c0 += kLanes) {
            __m512 s[2][4];
            for (int j = 0; j < 4; ++j) {
                const __m512 p0 = _mm512_loadu_ps(in + (0 * 4 + j) * step + c0);
                const __m512 p1 = _mm512_loadu_ps(in + (1 * 4 + j) * step + c0);
                const __m512 p2 = _mm512_loadu_ps(in + (2 * 4 + j) * step + c0);
                const __m512 p3 = _mm512_loadu_ps(in + (3 * 4 + j) * step + c0);
                s[0][j] = _mm512_add_ps(_mm512_add_ps(p0, p1), p2);
                s[1][j] = _mm512_sub_ps(_mm512_sub_ps(p1, p2), p3);
            }
            const __m512 bias = output.bias ? _mm512_loadu_ps(output.bias + c0) : zero;
            for (int a = 0; a < 2; ++a) {
                __m512 y0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[a][0], s[a][1]), s[a][2]), bias);
                __m512 y1 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[a][1], s[a][2]), s[a][3]), bias);
                if (output.relu) {
                    y0 = _mm512_mask_max_ps(y0, static_cast<__mmask16>(0xffff), zero, y0);
                    y1 = _mm512_mask_max_ps(y1, static_cast<__mmask16>(0xffff), zero, y1);
                }
                _mm512_storeu_ps(block + a * row + c0, y0);
                _mm512_storeu_ps(block + a * row + channels + c0, y1);
            }
        }
    }
}

// m[xi][t][channel] = (A dY A^T)[xi] of each tile's 2x2 block of dY (yt as transform_output
// writes it, zeros past the plane's edges).
__attribute__((target("avx512f,fma"))) void transform_output_grad(const WinogradConv& c, const Layout& l,
                                                                  const float* yt, float* m) {
    const int64_t channels = c.out_channels, tw = c.tiles_w(), step = l.tiles * channels, row = 2 * tw * channels;
    for (int64_t t = 0; t < l.tiles; ++t) {
        const float* block = yt + t / tw * 2 * row + t % tw * 2 * channels;
        float* out = m + t * channels;
        for (int64_t c0 = 0; c0 < channels; c0 += kLanes) {
            __m512 r[4][2];
            for (int j = 0; j < 2; ++j) {
                const __m512 p = _mm512_loadu_ps(block + j * channels + c0);
                const __m512 q = _mm512_loadu_ps(block + row + j * channels + c0);
                r[0][j] = p;
                r[1][j] = _mm512_add_ps(p, q);
                r[2][j] = _mm512_sub_ps(p, q);
                r[3][j] = _mm512_sub_ps(_mm512_setzero_ps(), q);
            }
            for (int i = 0; i < 4; ++i) {
                _mm512_storeu_ps(out + (i * 4 + 0) * step + c0, r[i][0]);
                _mm512_storeu_ps(out + (i * 4 + 1) * step + c0, _mm512_add_ps(r[i][0], r[i][1]));
                _mm512_storeu_ps(out + (i * 4 + 2) * step + c0, _mm512_sub_ps(r[i][0], r[i][1]));
                _mm512_storeu_ps(out + (i * 4 + 3) * step + c0, _mm512_sub_ps(_mm512_setzero_ps(), r[i][1]));
            }
        }
    }
}
#endif

}  // namespace

bool winograd_applies(const Window2d& w, int64_t in_channels, int64_t out_channels) {
    return DSK_CONV_WINOGRAD_AVX512 && cpu_has_avx512f() && cpu_has_avx512vl() && w.kernel_h == 3 && w.kernel_w == 3 &&
           w.stride_h == 1 && w.stride_w == 1 && w.dilation_h == 1 && w.dilation_w == 1 && w.pad_top == 1 &&
           w.pad_left == 1 && w.pad_bottom == 1 && w.pad_right == 1 && w.in_h == w.out_h && w.in_w == w.out_w &&
           w.in_h > 0 && w.in_w > 0 && in_channels > 0 && out_channels > 0 && in_channels % kLanes == 0 &&
           out_channels % kLanes == 0;
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
    while (rows < c.tiles_h() && winograd_scratch_floats(c, rows + 1) <= kWinogradBlockFloats) ++rows;
    return rows;
}

void winograd_conv_rows(const WinogradWeights& weights, const float* x, float* y, const DirectConvOutput& output,
                        int64_t first, int64_t rows, float* scratch, const float* next_x) {
#if DSK_CONV_WINOGRAD_AVX512
    const WinogradConv& c = weights.conv;
    const Layout l(c, rows);
    const int64_t in = c.in_channels, out = c.out_channels, plane = c.h * c.w;
    float *v = scratch + l.v, *m = scratch + l.m, *yt = scratch + l.yt;
    transpose_input(c, l, x, first, scratch + l.flat, scratch + l.xt);
    transform_input(c, l, scratch + l.xt, v);
    for (int64_t xi = 0; xi < 16; ++xi) {
        prefetch_part(next_x, in * plane, xi);
        product(v + xi * l.tiles * in, in, 1, l.tiles, in, weights.u.data() + xi * in * out, out, out,
                m + xi * l.tiles * out, out, false);
    }
    transform_output(c, l, m, output, yt);
    const int64_t oh0 = 2 * first, oh1 = std::min(c.h, 2 * (first + rows));
    if (c.w % 2 == 0)  // yt's rows are the plane's: its positions are those of output rows oh0.. transposed
        transpose(yt, out, (oh1 - oh0) * c.w, out, y + oh0 * c.w, plane);
    else
        for (int64_t oh = oh0; oh < oh1; ++oh)
            transpose(yt + (oh - oh0) * 2 * c.tiles_w() * out, out, c.w, out, y + oh * c.w, plane);
#else
    (void)weights, (void)x, (void)y, (void)output, (void)first, (void)rows, (void)scratch, (void)next_x;
#endif
}

void winograd_weight_grad_rows(const WinogradConv& c, const float* x, const float* dy, float* du, bool first_sum,
                               int64_t first, int64_t rows, float* scratch, const float* next_x,
                               const float* next_dy) {
#if DSK_CONV_WINOGRAD_AVX512
    const Layout l(c, rows);
    const int64_t in = c.in_channels, out = c.out_channels, plane = c.h * c.w, row = 2 * c.tiles_w() * out;
    float *v = scratch + l.v, *m = scratch + l.m, *yt = scratch + l.yt;
    transpose_input(c, l, x, first, scratch + l.flat, scratch + l.xt);
    transform_input(c, l, scratch + l.xt, v);
    // dY's rows of the block transposed to [row][column][channel], zeros past the plane's edges.
    const int64_t oh0 = 2 * first, oh1 = std::min(c.h, 2 * (first + rows));
    for (int64_t ch = 0; ch < out; ++ch) prefetch(dy + ch * plane + oh0 * c.w, (oh1 - oh0) * c.w);
    if (c.w % 2 == 0) {
        transpose(dy + oh0 * c.w, plane, out, (oh1 - oh0) * c.w, yt, out);
        std::fill(yt + (oh1 - oh0) * c.w * out, yt + 4 * l.tiles * out, 0.0f);
    } else {
        std::fill(yt, yt + 4 * l.tiles * out, 0.0f);
        for (int64_t oh = oh0; oh < oh1; ++oh) transpose(dy + oh * c.w, plane, out, c.w, yt + (oh - oh0) * row, out);
    }
    transform_output_grad(c, l, yt, m);
    for (int64_t xi = 0; xi < 16; ++xi) {
        prefetch_part(next_x, in * plane, xi);
        prefetch_part(next_dy, out * plane, xi);
        product(v + xi * l.tiles * in, 1, in, in, l.tiles, m + xi * l.tiles * out, out, out, du + xi * in * out, out,
                !first_sum);
    }
#else
    (void)c, (void)x, (void)dy, (void)du, (void)first_sum, (void)first, (void)rows, (void)scratch, (void)next_x,
        (void)next_dy;
#endif
}

void winograd_weight_grad_filters(const WinogradConv& c, const float* du, float* dw) {
    const int64_t in = c.in_channels, out = c.out_channels;
    for (int64_t m = 0; m < out; ++m)
        for (int64_t ci = 0; ci < in; ++ci) {
            float d[4][4], h[3][4];
            for (int xi = 0; xi < 16; ++xi) d[xi / 4][xi % 4] = du[(xi * in + ci) * out + m];
            // G^T dU G: rows d0 + (d1 + d2) / 2, (d1 - d2) / 2, (d1 + d2) / 2 + d3; then the columns.
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
