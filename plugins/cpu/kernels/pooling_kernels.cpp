// pooling_kernels.cpp - MaxPool, AveragePool, GlobalAveragePool (2-D, NCHW) and their
// gradients, and MaxPoolReluGrad (MaxPoolGrad and the gradient of the Relu before the pool in
// one pass: the plan's fusion of MaxPoolGrad -> ActivationGrad[Relu]).
//
// Every (image, channel) plane is independent: planes are split over the thread pool, and the
// gradients, which add into overlapping windows, do so within their plane in output order, so
// results never depend on the split. 2x2 windows at stride 2 without padding (the usual
// downsampling) take a vectorized path, AVX-512 where the CPU has it (tiles_2x2).
#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "activation_functions.h"
#include "cpu_features.h"
#include "kernel_table.h"
#include "max_pool_plane.h"
#include "vector_math.h"
#include "window_geometry.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#if defined(__SSE2__)
#include <emmintrin.h>
#define DSK_POOL_SSE 1
#else
#define DSK_POOL_SSE 0
#endif

namespace dsk::cpu {
namespace {


struct PoolShape {
    int64_t planes;  // N * C
    Window2d window;
};

// The pooled window of a MaxPool/AveragePool node over an NCHW input shape.
PoolShape pool_shape(const KernelArgs& args, const std::vector<int64_t>& x_shape) {
    if (x_shape.size() != 4)
        args.fail("X " + shape_text(x_shape) +
                  " must be 4-D (N, C, H, W): only 2-D pooling is implemented");
    const std::vector<int64_t> kernel_shape = args.attrs().require_ints("kernel_shape");
    if (kernel_shape.size() != 2) args.fail("attribute 'kernel_shape' must have 2 values");
    if (args.attrs().get_int("ceil_mode", 0) != 0) args.fail("ceil_mode = 1 is not supported");
    PoolShape p;
    p.planes = x_shape[0] * x_shape[1];
    p.window = window_2d(args, x_shape[2], x_shape[3], kernel_shape[0], kernel_shape[1]);
    return p;
}

std::vector<int64_t> pooled_shape(const std::vector<int64_t>& x_shape, const Window2d& w) {
    return {x_shape[0], x_shape[1], w.out_h, w.out_w};
}

// The work of one plane: `ops` comparisons or additions over `floats` floats read and written.
dsk::Work plane_work(int64_t ops, int64_t floats) {
    return {static_cast<double>(ops), 4.0 * static_cast<double>(floats)};
}

// Runs body(plane) for every plane, split over the thread pool when the work pays for it.
template <class Body>
void for_each_plane(int64_t planes, const dsk::Work& per_plane, Body&& body) {
    parallel_for(static_cast<size_t>(planes), per_plane, [&](size_t begin, size_t end) {
        for (size_t plane = begin; plane < end; ++plane) body(static_cast<int64_t>(plane));
    });
}

// Runs body(plane, floats, ints) for every plane, with per-thread scratch of `floats` floats and
// `ints` 32-bit integers.
template <class Body>
void for_each_plane_with_scratch(int64_t planes, const dsk::Work& per_plane, int64_t floats,
                                 int64_t ints, Body&& body) {
    parallel_for(static_cast<size_t>(planes), per_plane, [&](size_t begin, size_t end) {
        std::vector<float> float_scratch(static_cast<size_t>(floats));
        std::vector<int32_t> int_scratch(static_cast<size_t>(ints));
        for (size_t plane = begin; plane < end; ++plane)
            body(static_cast<int64_t>(plane), float_scratch.data(), int_scratch.data());
    });
}

// What every row of every plane shares, computed once per call: the output columns each kernel
// column reaches inside the input, and how many window rows / columns of each output are real
// (not padding).
struct TapRanges {
    std::vector<int64_t> column_begin, column_end;   // per kernel column
    std::vector<int64_t> valid_rows, valid_columns;  // per output row / column

    explicit TapRanges(const Window2d& w)
        : column_begin(static_cast<size_t>(w.kernel_w)),
          column_end(static_cast<size_t>(w.kernel_w)),
          valid_rows(static_cast<size_t>(w.out_h), 0),
          valid_columns(static_cast<size_t>(w.out_w), 0) {
        for (int64_t kw = 0; kw < w.kernel_w; ++kw) {
            w.valid_columns(kw, &column_begin[static_cast<size_t>(kw)],
                            &column_end[static_cast<size_t>(kw)]);
            for (int64_t ow = column_begin[static_cast<size_t>(kw)];
                 ow < column_end[static_cast<size_t>(kw)]; ++ow)
                ++valid_columns[static_cast<size_t>(ow)];
        }
        for (int64_t kh = 0; kh < w.kernel_h; ++kh) {
            int64_t oh0, oh1;
            w.valid_rows(kh, &oh0, &oh1);
            for (int64_t oh = oh0; oh < oh1; ++oh) ++valid_rows[static_cast<size_t>(oh)];
        }
    }
};

// y (one output plane) = the maximum of each window of x (one input plane), each row vectorized
// across its outputs: the window's taps in order, each a strided pass. Padding never wins (-inf
// when a window holds no input); a NaN does (PyTorch).
DSK_CPU_VECTOR_CLONES
void plane_max(const float* x, const Window2d& w, const int64_t* column_begin,
               const int64_t* column_end, float* y) {
    const int64_t sw = w.stride_w;
    for (int64_t oh = 0; oh < w.out_h; ++oh) {
        float* best = y + oh * w.out_w;
        std::fill(best, best + w.out_w, -std::numeric_limits<float>::infinity());
        for (int64_t kh = 0; kh < w.kernel_h; ++kh) {
            const int64_t ih = oh * w.stride_h - w.pad_top + kh * w.dilation_h;
            if (ih < 0 || ih >= w.in_h) continue;
            const float* row = x + ih * w.in_w;
            for (int64_t kw = 0; kw < w.kernel_w; ++kw) {
                const int64_t shift = kw * w.dilation_w - w.pad_left;
                for (int64_t ow = column_begin[kw]; ow < column_end[kw]; ++ow) {
                    const float v = row[ow * sw + shift];
                    best[ow] = v > best[ow] || v != v ? v : best[ow];
                }
            }
        }
    }
}

// The same, with index[o] = ih * W + iw of the first maximum in tap order (-1: none); a NaN wins
// over numbers, the first NaN is kept. 32-bit indices (planes of fewer than 2^31 values, checked
// by the callers) keep the selects in the vector lanes of the floats.
DSK_CPU_VECTOR_CLONES
void plane_argmax(const float* x, const Window2d& w, const int64_t* column_begin,
                  const int64_t* column_end, float* y, int32_t* index) {
    const int64_t sw = w.stride_w;
    for (int64_t oh = 0; oh < w.out_h; ++oh) {
        float* best = y + oh * w.out_w;
        int32_t* at = index + oh * w.out_w;
        std::fill(best, best + w.out_w, -std::numeric_limits<float>::infinity());
        std::fill(at, at + w.out_w, -1);
        for (int64_t kh = 0; kh < w.kernel_h; ++kh) {
            const int64_t ih = oh * w.stride_h - w.pad_top + kh * w.dilation_h;
            if (ih < 0 || ih >= w.in_h) continue;
            const float* row = x + ih * w.in_w;
            for (int64_t kw = 0; kw < w.kernel_w; ++kw) {
                const int64_t shift = kw * w.dilation_w - w.pad_left;
                const int32_t base = static_cast<int32_t>(ih * w.in_w + shift);
                const int32_t step = static_cast<int32_t>(sw);
                for (int64_t ow = column_begin[kw]; ow < column_end[kw]; ++ow) {
                    const float v = row[ow * sw + shift];
                    const float b = best[ow];
                    const bool take = (at[ow] < 0) | (v > b) | ((v != v) & (b == b));
                    best[ow] = take ? v : b;
                    at[ow] = take ? base + static_cast<int32_t>(ow) * step : at[ow];
                }
            }
        }
    }
}

// The fast path for the usual windows (2x2, 3x3): the taps are unrolled and every output whose
// window lies inside the input is computed branch-free in registers; outputs touching the padding
// go through the scalar window_argmax_at. Same results as plane_max / plane_argmax.

// Max and first argmax (ih * W + iw, -1 when the window is all padding) of one window.
inline void window_argmax_at(const float* x, const Window2d& w, int64_t oh, int64_t ow, float* best,
                             int32_t* index) {
    float b = -std::numeric_limits<float>::infinity();
    int32_t at = -1;
    for (int64_t kh = 0; kh < w.kernel_h; ++kh) {
        const int64_t ih = oh * w.stride_h - w.pad_top + kh * w.dilation_h;
        if (ih < 0 || ih >= w.in_h) continue;
        for (int64_t kw = 0; kw < w.kernel_w; ++kw) {
            const int64_t iw = ow * w.stride_w - w.pad_left + kw * w.dilation_w;
            if (iw < 0 || iw >= w.in_w) continue;
            const float v = x[ih * w.in_w + iw];
            if (at < 0 || v > b || (v != v && b == b)) {
                b = v;
                at = static_cast<int32_t>(ih * w.in_w + iw);
            }
        }
    }
    *best = b;
    if (index) *index = at;
}

// [begin, end) of the outputs along one axis whose whole window lies inside the input.
void interior_range(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad,
                    int64_t dilation, int64_t* begin, int64_t* end) {
    const int64_t span = dilation * (kernel - 1);
    const int64_t lo = (pad + stride - 1) / stride;
    const int64_t hi = in - 1 - span + pad < 0 ? 0 : (in - 1 - span + pad) / stride + 1;
    *begin = std::min(lo, out);
    *end = std::max(*begin, std::min(hi, out));
}

template <int KH, int KW, bool kIndex>
__attribute__((always_inline)) inline void plane_max_fixed(const float* x, const Window2d& w,
                                                           float* y, int32_t* index) {
    int64_t oh0, oh1, ow0, ow1;
    interior_range(w.in_h, w.out_h, KH, w.stride_h, w.pad_top, w.dilation_h, &oh0, &oh1);
    interior_range(w.in_w, w.out_w, KW, w.stride_w, w.pad_left, w.dilation_w, &ow0, &ow1);
    const int64_t sw = w.stride_w;
    const int64_t row_step = w.dilation_h * w.in_w, col_step = w.dilation_w;
    for (int64_t oh = 0; oh < w.out_h; ++oh) {
        float* out = y + oh * w.out_w;
        int32_t* at = kIndex ? index + oh * w.out_w : nullptr;
        const bool inside_rows = oh >= oh0 && oh < oh1;
        const int64_t begin = inside_rows ? ow0 : w.out_w, end = inside_rows ? ow1 : w.out_w;
        for (int64_t ow = 0; ow < begin; ++ow)
            window_argmax_at(x, w, oh, ow, out + ow, kIndex ? at + ow : nullptr);
        const int64_t corner = (oh * w.stride_h - w.pad_top) * w.in_w - w.pad_left;
        for (int64_t ow = begin; ow < end; ++ow) {
            const int64_t first = corner + ow * sw;
            const float* window = x + first;
            int32_t tap = 0;
            bool nan;
#if DSK_POOL_SSE
            // Scalar SSE: max and compare masks, so that nothing branches on the data.
            __m128 b = _mm_load_ss(window);
            __m128 unordered = _mm_cmpunord_ss(b, b);
            __m128i taps = _mm_setzero_si128();
#pragma GCC unroll 9
            for (int t = 1; t < KH * KW; ++t) {
                const int32_t offset =
                    static_cast<int32_t>((t / KW) * row_step + (t % KW) * col_step);
                const __m128 v = _mm_load_ss(window + offset);
                unordered = _mm_or_ps(unordered, _mm_cmpunord_ss(v, v));
                if (kIndex) {
                    const __m128i take = _mm_castps_si128(_mm_cmpgt_ss(v, b));
                    taps = _mm_or_si128(_mm_and_si128(take, _mm_cvtsi32_si128(offset)),
                                        _mm_andnot_si128(take, taps));
                }
                b = _mm_max_ss(v, b);  // v > b ? v : b
            }
            out[ow] = _mm_cvtss_f32(b);
            tap = _mm_cvtsi128_si32(taps);
            nan = _mm_movemask_ps(unordered) & 1;
#else
            float b = window[0];
            nan = b != b;
            for (int t = 1; t < KH * KW; ++t) {
                const int32_t offset =
                    static_cast<int32_t>((t / KW) * row_step + (t % KW) * col_step);
                const float v = window[offset];
                nan |= v != v;
                if (v > b) b = v, tap = offset;
            }
            out[ow] = b;
#endif
            if (kIndex) at[ow] = static_cast<int32_t>(first) + tap;
            if (nan) window_argmax_at(x, w, oh, ow, out + ow, kIndex ? at + ow : nullptr);  // rare
        }
        for (int64_t ow = end; ow < w.out_w; ++ow)
            window_argmax_at(x, w, oh, ow, out + ow, kIndex ? at + ow : nullptr);
    }
}

DSK_CPU_VECTOR_CLONES
void plane_max_2x2(const float* x, const Window2d& w, float* y, int32_t* index) {
    if (index)
        plane_max_fixed<2, 2, true>(x, w, y, index);
    else
        plane_max_fixed<2, 2, false>(x, w, y, nullptr);
}

DSK_CPU_VECTOR_CLONES
void plane_max_3x3(const float* x, const Window2d& w, float* y, int32_t* index) {
    if (index)
        plane_max_fixed<3, 3, true>(x, w, y, index);
    else
        plane_max_fixed<3, 3, false>(x, w, y, nullptr);
}

// 2x2 windows at stride 2 without padding or dilation, the usual downsampling pool: the windows
// tile the input, so a row of outputs reads two input rows straight through, vectorized across
// the row. The first maximum in tap order wins, as everywhere; a row holding a NaN is redone by
// window_argmax_at, which lets the NaN win.
bool tiles_2x2(const Window2d& w) {
    return w.kernel_h == 2 && w.kernel_w == 2 && w.stride_h == 2 && w.stride_w == 2 &&
           w.pad_top == 0 && w.pad_left == 0 && w.pad_bottom == 0 && w.pad_right == 0 &&
           w.dilation_h == 1 && w.dilation_w == 1;
}

// y[o] = the maximum of r0[2o], r0[2o+1], r1[2o], r1[2o+1] for o < n; tap[o] (kTap) = which of
// the four comes first among the maxima (0..3). Returns whether any of them is a NaN. Branch-free
// selects over restrict pointers, so that the loop vectorizes.
template <bool kTap>
__attribute__((always_inline)) inline bool row_max_2x2_of(const float* __restrict r0,
                                                          const float* __restrict r1, int64_t n,
                                                          float* __restrict y,
                                                          int32_t* __restrict tap) {
    int32_t nan = 0;
    for (int64_t o = 0; o < n; ++o) {
        const float a = r0[2 * o], b = r0[2 * o + 1], c = r1[2 * o], d = r1[2 * o + 1];
        nan |= (a != a) | (b != b) | (c != c) | (d != d);
        float m = a;
        int32_t t = 0;
        t = b > m ? 1 : t;
        m = b > m ? b : m;
        t = c > m ? 2 : t;
        m = c > m ? c : m;
        t = d > m ? 3 : t;
        m = d > m ? d : m;
        y[o] = m;
        if constexpr (kTap) tap[o] = t;
    }
    return nan != 0;
}

DSK_CPU_VECTOR_CLONES
bool row_max_2x2(const float* r0, const float* r1, int64_t n, float* y) {
    return row_max_2x2_of<false>(r0, r1, n, y, nullptr);
}

DSK_CPU_VECTOR_CLONES
bool row_argmax_2x2(const float* r0, const float* r1, int64_t n, float* y, int32_t* tap) {
    return row_max_2x2_of<true>(r0, r1, n, y, tap);
}

// dx rows 2oh and 2oh+1 (first 2n values) = g[o] at the tap of each window that won, 0 elsewhere.
DSK_CPU_VECTOR_CLONES
void row_scatter_2x2(const int32_t* __restrict tap, const float* __restrict g, int64_t n,
                     float* __restrict dx0, float* __restrict dx1) {
    for (int64_t o = 0; o < n; ++o) {
        const int32_t t = tap[o];
        const float v = g[o];
        dx0[2 * o] = t == 0 ? v : 0.0f;
        dx0[2 * o + 1] = t == 1 ? v : 0.0f;
        dx1[2 * o] = t == 2 ? v : 0.0f;
        dx1[2 * o + 1] = t == 3 ? v : 0.0f;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define DSK_POOL_AVX512 1
// The same three loops in AVX-512, 16 windows at a time (GCC does not vectorize the stride-2
// accesses above): the even and odd columns of 32 input values are split by permutes, and the
// four values of each window of dx interleaved back the same way. Same results as the loops.
__attribute__((target("avx512f"))) inline void split_2x2(const float* r, int64_t count,
                                                         __m512* even, __m512* odd) {
    const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odds = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    // count (<= 16) windows: 2 * count values.
    const __mmask16 lo = count >= 8 ? 0xffff : static_cast<__mmask16>((1u << (2 * count)) - 1);
    const __mmask16 hi =
        count <= 8 ? 0 : count >= 16 ? 0xffff : static_cast<__mmask16>((1u << (2 * count - 16)) - 1);
    const __m512 v0 = _mm512_maskz_loadu_ps(lo, r), v1 = _mm512_maskz_loadu_ps(hi, r + 16);
    *even = _mm512_permutex2var_ps(v0, evens, v1);
    *odd = _mm512_permutex2var_ps(v0, odds, v1);
}

// Maxima and taps of one row of windows (without taps, whole planes go to plane_max_2x2_avx512).
__attribute__((target("avx512f"))) bool row_argmax_2x2_avx512(const float* r0, const float* r1,
                                                              int64_t n, float* y, int32_t* tap) {
    __mmask16 nan = 0;
    for (int64_t o = 0; o < n; o += 16) {
        const int64_t count = std::min<int64_t>(16, n - o);
        const __mmask16 live = count == 16 ? 0xffff : static_cast<__mmask16>((1u << count) - 1);
        __m512 a, b, c, d;
        split_2x2(r0 + 2 * o, count, &a, &b);
        split_2x2(r1 + 2 * o, count, &c, &d);
        nan |= _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(c, d, _CMP_UNORD_Q);
        __m512 m = a;
        __m512i t = _mm512_setzero_si512();
        __mmask16 k = _mm512_cmp_ps_mask(b, m, _CMP_GT_OQ);
        m = _mm512_mask_blend_ps(k, m, b);
        t = _mm512_mask_blend_epi32(k, t, _mm512_set1_epi32(1));
        k = _mm512_cmp_ps_mask(c, m, _CMP_GT_OQ);
        m = _mm512_mask_blend_ps(k, m, c);
        t = _mm512_mask_blend_epi32(k, t, _mm512_set1_epi32(2));
        k = _mm512_cmp_ps_mask(d, m, _CMP_GT_OQ);
        m = _mm512_mask_blend_ps(k, m, d);
        t = _mm512_mask_blend_epi32(k, t, _mm512_set1_epi32(3));
        _mm512_mask_storeu_epi32(tap + o, live, t);
        _mm512_mask_storeu_ps(y + o, live, m);
        nan &= live;
        if (nan) return true;
    }
    return false;
}

// `keep_if_positive` (MaxPoolReluGrad; may be null): a window's gradient passes only where this
// value (its maximum, the Relu's output) is not <= 0, as ActivationGrad[Relu] would let it.
__attribute__((target("avx512f"))) void row_scatter_2x2_avx512(const int32_t* tap, const float* g,
                                                               const float* keep_if_positive,
                                                               int64_t n, float* dx0, float* dx1) {
    const __m512i low = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i high =
        _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    for (int64_t o = 0; o < n; o += 16) {
        const int64_t count = std::min<int64_t>(16, n - o);
        const __mmask16 live = count == 16 ? 0xffff : static_cast<__mmask16>((1u << count) - 1);
        const __m512i t = _mm512_maskz_loadu_epi32(live, tap + o);
        __m512 v = _mm512_maskz_loadu_ps(live, g + o);
        if (keep_if_positive)  // x <= 0 ? 0 : g; NaN keeps g
            v = _mm512_maskz_mov_ps(
                _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(live, keep_if_positive + o), _mm512_setzero_ps(), _CMP_NLE_UQ), v);
        const __m512 w[4] = {
            _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(t, _mm512_set1_epi32(0)), v),
            _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(t, _mm512_set1_epi32(1)), v),
            _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(t, _mm512_set1_epi32(2)), v),
            _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(t, _mm512_set1_epi32(3)), v)};
        const __mmask16 lo = count >= 8 ? 0xffff : static_cast<__mmask16>((1u << (2 * count)) - 1);
        const __mmask16 hi = count <= 8   ? 0
                             : count >= 16 ? 0xffff
                                           : static_cast<__mmask16>((1u << (2 * count - 16)) - 1);
        float* rows[2] = {dx0 + 2 * o, dx1 + 2 * o};
        for (int r = 0; r < 2; ++r) {
            _mm512_mask_storeu_ps(rows[r], lo, _mm512_permutex2var_ps(w[2 * r], low, w[2 * r + 1]));
            _mm512_mask_storeu_ps(rows[r] + 16, hi,
                                  _mm512_permutex2var_ps(w[2 * r], high, w[2 * r + 1]));
        }
    }
}

// The loops in AVX2: 8 windows a step (Lanes8), or 4 in its 128-bit form where a row has 4 to 7
// windows (Lanes4: the CNN's second pool, 7 wide). A row's last vector overlaps the one before:
// no masked loads or stores, which are slow on AMD's cores. Each loop is written once over the
// operations below; the gradient's argmax and scatter are one pass (rows_max_grad_2x2_avx2).
// Same results as the loops above.
#define DSK_AVX2_INLINE __attribute__((target("avx2"), always_inline)) static inline
struct Lanes8 {
    using F = __m256;
    static constexpr int64_t lanes = 8;
    DSK_AVX2_INLINE F load(const float* p) { return _mm256_loadu_ps(p); }
    DSK_AVX2_INLINE void store(float* p, F v) { _mm256_storeu_ps(p, v); }
    DSK_AVX2_INLINE F zero() { return _mm256_setzero_ps(); }
    DSK_AVX2_INLINE F max(F a, F b) { return _mm256_max_ps(a, b); }
    DSK_AVX2_INLINE F mask_and(F mask, F v) { return _mm256_and_ps(mask, v); }
    DSK_AVX2_INLINE F either(F a, F b) { return _mm256_or_ps(a, b); }
    DSK_AVX2_INLINE F blend(F a, F b, F mask) { return _mm256_blendv_ps(a, b, mask); }
    DSK_AVX2_INLINE F greater(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
    DSK_AVX2_INLINE F unordered(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_UNORD_Q); }
    DSK_AVX2_INLINE F positive_or_nan(F x) { return _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_NLE_UQ); }
    DSK_AVX2_INLINE bool any(F mask) { return _mm256_movemask_ps(mask) != 0; }
    // Tap q in every lane (int32 bits), and where the taps t equal q (t: int32 bits).
    DSK_AVX2_INLINE F tap(int q) { return _mm256_castsi256_ps(_mm256_set1_epi32(q)); }
    DSK_AVX2_INLINE F tap_is(F t, int q) {
        return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(q)));
    }
    // The even and odd values of 16 floats. vshufps works within 128-bit halves, so the windows
    // come in the order 0, 1, 4, 5, 2, 3, 6, 7; in_order puts a vector of them back.
    DSK_AVX2_INLINE void split(const float* r, F* even, F* odd) {
        const F v0 = _mm256_loadu_ps(r), v1 = _mm256_loadu_ps(r + 8);
        *even = _mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(2, 0, 2, 0));
        *odd = _mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 1, 3, 1));
    }
    DSK_AVX2_INLINE F in_order(F v) {
        return _mm256_castsi256_ps(_mm256_permute4x64_epi64(_mm256_castps_si256(v), _MM_SHUFFLE(3, 1, 2, 0)));
    }
    // row[2i] = even[i], row[2i + 1] = odd[i]: 8 windows in order back to 16 floats.
    DSK_AVX2_INLINE void store_interleaved(float* row, F even, F odd) {
        const F lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);
        _mm256_storeu_ps(row, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(row + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
};

struct Lanes4 {
    using F = __m128;
    static constexpr int64_t lanes = 4;
    DSK_AVX2_INLINE F load(const float* p) { return _mm_loadu_ps(p); }
    DSK_AVX2_INLINE void store(float* p, F v) { _mm_storeu_ps(p, v); }
    DSK_AVX2_INLINE F zero() { return _mm_setzero_ps(); }
    DSK_AVX2_INLINE F max(F a, F b) { return _mm_max_ps(a, b); }
    DSK_AVX2_INLINE F mask_and(F mask, F v) { return _mm_and_ps(mask, v); }
    DSK_AVX2_INLINE F either(F a, F b) { return _mm_or_ps(a, b); }
    DSK_AVX2_INLINE F blend(F a, F b, F mask) { return _mm_blendv_ps(a, b, mask); }
    DSK_AVX2_INLINE F greater(F a, F b) { return _mm_cmp_ps(a, b, _CMP_GT_OQ); }
    DSK_AVX2_INLINE F unordered(F a, F b) { return _mm_cmp_ps(a, b, _CMP_UNORD_Q); }
    DSK_AVX2_INLINE F positive_or_nan(F x) { return _mm_cmp_ps(x, _mm_setzero_ps(), _CMP_NLE_UQ); }
    DSK_AVX2_INLINE bool any(F mask) { return _mm_movemask_ps(mask) != 0; }
    DSK_AVX2_INLINE F tap(int q) { return _mm_castsi128_ps(_mm_set1_epi32(q)); }
    DSK_AVX2_INLINE F tap_is(F t, int q) {
        return _mm_castsi128_ps(_mm_cmpeq_epi32(_mm_castps_si128(t), _mm_set1_epi32(q)));
    }
    // In 128 bits the windows come in order.
    DSK_AVX2_INLINE void split(const float* r, F* even, F* odd) {
        const F v0 = _mm_loadu_ps(r), v1 = _mm_loadu_ps(r + 4);
        *even = _mm_shuffle_ps(v0, v1, _MM_SHUFFLE(2, 0, 2, 0));
        *odd = _mm_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 1, 3, 1));
    }
    DSK_AVX2_INLINE F in_order(F v) { return v; }
    DSK_AVX2_INLINE void store_interleaved(float* row, F even, F odd) {
        _mm_storeu_ps(row, _mm_unpacklo_ps(even, odd));
        _mm_storeu_ps(row + 4, _mm_unpackhi_ps(even, odd));
    }
};
#undef DSK_AVX2_INLINE

// The maxima m and taps t (int32 bits) of the V::lanes windows from column o of rows r0 and r1,
// both in window order; nan gains a lane where a window has a NaN.
template <class V>
__attribute__((target("avx2"), always_inline)) inline void windows_argmax(const float* r0, const float* r1, int64_t o,
                                                                         typename V::F* m, typename V::F* t,
                                                                         typename V::F* nan) {
    typename V::F v[4];  // a, b, c, d: the four values of each window
    V::split(r0 + 2 * o, &v[0], &v[1]);
    V::split(r1 + 2 * o, &v[2], &v[3]);
    *nan = V::either(*nan, V::either(V::unordered(v[0], v[1]), V::unordered(v[2], v[3])));
    typename V::F best = v[0], tap = V::zero();
    for (int q = 1; q < 4; ++q) {
        const typename V::F k = V::greater(v[q], best);
        best = V::blend(best, v[q], k);
        tap = V::blend(tap, V::tap(q), k);
    }
    *m = V::in_order(best);
    *t = V::in_order(tap);
}

template <class V>
__attribute__((target("avx2"))) bool row_argmax_2x2_avx2(const float* r0, const float* r1, int64_t n, float* y,
                                                         int32_t* tap) {
    typename V::F nan = V::zero();
    for (int64_t next = 0; next < n;) {  // n >= V::lanes; the last vector overlaps the one before
        const int64_t o = std::min(next, n - V::lanes);
        next = o + V::lanes;
        typename V::F m, t;
        windows_argmax<V>(r0, r1, o, &m, &t, &nan);
        V::store(y + o, m);
        V::store(reinterpret_cast<float*>(tap + o), t);
    }
    return V::any(nan);
}

// dx of the two rows under row oh of windows (a plane of MaxPoolGrad, or with `relu`
// MaxPoolReluGrad: dy where the maximum is > 0 or NaN): dy at each window's tap, 0 at the other
// three, the argmax and the scatter in one pass. Returns whether the rows have a NaN (then dx0
// and dx1 are to be done again). The column that no window covers is the caller's.
template <class V>
__attribute__((target("avx2"))) bool rows_max_grad_2x2_avx2(const float* r0, const float* r1, const float* g,
                                                            int64_t n, bool relu, float* dx0, float* dx1) {
    typename V::F nan = V::zero();
    for (int64_t next = 0; next < n;) {
        const int64_t o = std::min(next, n - V::lanes);
        next = o + V::lanes;
        typename V::F m, t;
        windows_argmax<V>(r0, r1, o, &m, &t, &nan);
        typename V::F v = V::load(g + o);
        if (relu) v = V::mask_and(V::positive_or_nan(m), v);  // m <= 0 ? 0 : g
        V::store_interleaved(dx0 + 2 * o, V::mask_and(V::tap_is(t, 0), v), V::mask_and(V::tap_is(t, 1), v));
        V::store_interleaved(dx1 + 2 * o, V::mask_and(V::tap_is(t, 2), v), V::mask_and(V::tap_is(t, 3), v));
    }
    return V::any(nan);
}

#else
#define DSK_POOL_AVX512 0
#endif

// The loops above, or their AVX-512 form where the CPU has it.
bool row_max_2x2_best(const float* r0, const float* r1, int64_t n, float* y, int32_t* tap) {
#if DSK_POOL_AVX512
    if (tap && cpu_has_avx512f()) return row_argmax_2x2_avx512(r0, r1, n, y, tap);
    if (tap && n >= 8 && cpu_has_avx2()) return row_argmax_2x2_avx2<Lanes8>(r0, r1, n, y, tap);
    if (tap && n >= 4 && cpu_has_avx2()) return row_argmax_2x2_avx2<Lanes4>(r0, r1, n, y, tap);
#endif
    return tap ? row_argmax_2x2(r0, r1, n, y, tap) : row_max_2x2(r0, r1, n, y);
}

// With `keep_if_positive` (not null; scratch of n values): g masked by it first, as
// ActivationGrad[Relu] would (its own loop where there is no AVX-512).
void row_scatter_2x2_best(const int32_t* tap, const float* g, float* keep_if_positive, int64_t n,
                          float* dx0, float* dx1) {
#if DSK_POOL_AVX512
    if (cpu_has_avx512f()) return row_scatter_2x2_avx512(tap, g, keep_if_positive, n, dx0, dx1);
#endif
    if (keep_if_positive) {
        activation_grad_map({.kind = Activation::relu}, g, keep_if_positive, keep_if_positive, n);
        g = keep_if_positive;
    }
    row_scatter_2x2(tap, g, n, dx0, dx1);
}

// dx of the two input rows under a row of n windows, as rows_max_grad_2x2_avx2 does; on AVX-512
// and below 4 windows, the argmax loop then the scatter. Returns whether the rows have a NaN.
// `best` and `tap`: scratch of n values.
bool rows_max_grad_2x2_best(const float* r0, const float* r1, const float* g, int64_t n, bool relu, float* best,
                            int32_t* tap, float* dx0, float* dx1) {
#if DSK_POOL_AVX512
    if (n >= 4 && !cpu_has_avx512f() && cpu_has_avx2())
        return n >= 8 ? rows_max_grad_2x2_avx2<Lanes8>(r0, r1, g, n, relu, dx0, dx1)
                      : rows_max_grad_2x2_avx2<Lanes4>(r0, r1, g, n, relu, dx0, dx1);
#endif
    if (row_max_2x2_best(r0, r1, n, best, tap)) return true;
    row_scatter_2x2_best(tap, g, relu ? best : nullptr, n, dx0, dx1);
    return false;
}

#if DSK_POOL_AVX512
// A plane without indices in one AVX-512 loop, with the NaN test once per plane (a call, a CPU
// check and a branch on the compare per row of 7 or 14 windows cost more than the row's work).
// Returns whether the plane has a NaN: the caller does it again by window_argmax_at.
// vmaxps(x, m) is x > m ? x : m, m on a tie (so of two zeros the first keeps its sign, as the
// first-maximum rule wants).
__attribute__((target("avx512f"))) bool plane_max_2x2_avx512(const float* x, const Window2d& w, float* y) {
    __mmask16 nan = 0;
    for (int64_t o = 0; o < w.out_w; o += 16) {
        const int64_t count = std::min<int64_t>(16, w.out_w - o);
        const __mmask16 live = count == 16 ? 0xffff : static_cast<__mmask16>((1u << count) - 1);
        for (int64_t oh = 0; oh < w.out_h; ++oh) {
            const float* r0 = x + 2 * oh * w.in_w + 2 * o;
            __m512 a, b, c, d;
            split_2x2(r0, count, &a, &b);
            split_2x2(r0 + w.in_w, count, &c, &d);
            nan |= (_mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(c, d, _CMP_UNORD_Q)) & live;
            _mm512_mask_storeu_ps(y + oh * w.out_w + o, live, _mm512_max_ps(d, _mm512_max_ps(c, _mm512_max_ps(b, a))));
        }
    }
    return nan != 0;
}

// The same plane loop in AVX2 (Lanes8, or Lanes4 for rows of 4 to 7 windows); whether the plane
// has a NaN, for the caller to do it again by window_argmax_at.
template <class V>
__attribute__((target("avx2"))) bool plane_max_2x2_avx2(const float* x, const Window2d& w, float* y) {
    typename V::F nan = V::zero();
    for (int64_t next = 0; next < w.out_w;) {  // the last vector overlaps the one before
        const int64_t o = std::min(next, w.out_w - V::lanes);
        next = o + V::lanes;
        for (int64_t oh = 0; oh < w.out_h; ++oh) {
            const float* r0 = x + 2 * oh * w.in_w + 2 * o;
            typename V::F a, b, c, d;
            V::split(r0, &a, &b);
            V::split(r0 + w.in_w, &c, &d);
            nan = V::either(nan, V::either(V::unordered(a, b), V::unordered(c, d)));
            V::store(y + oh * w.out_w + o, V::in_order(V::max(d, V::max(c, V::max(b, a)))));
        }
    }
    return V::any(nan);
}
#endif

// One plane of a tiles_2x2 pool: y = the maxima, index (when not null) = ih * W + iw of each.
void plane_max_tiled_2x2(const float* x, const Window2d& w, float* y, int32_t* index) {
#if DSK_POOL_AVX512
    const bool avx512 = cpu_has_avx512f(), avx2 = w.out_w >= 4 && cpu_has_avx2();
    if (!index && (avx512 || avx2)) {
        const bool nan = avx512           ? plane_max_2x2_avx512(x, w, y)
                         : w.out_w >= 8   ? plane_max_2x2_avx2<Lanes8>(x, w, y)
                                          : plane_max_2x2_avx2<Lanes4>(x, w, y);
        if (nan)  // the plane again, window by window
            for (int64_t oh = 0; oh < w.out_h; ++oh)
                for (int64_t ow = 0; ow < w.out_w; ++ow) window_argmax_at(x, w, oh, ow, y + oh * w.out_w + ow, nullptr);
        return;
    }
#endif
    for (int64_t oh = 0; oh < w.out_h; ++oh) {
        const float* r0 = x + 2 * oh * w.in_w;
        float* out = y + oh * w.out_w;
        int32_t* at = index ? index + oh * w.out_w : nullptr;
        if (row_max_2x2_best(r0, r0 + w.in_w, w.out_w, out, at)) {
            for (int64_t ow = 0; ow < w.out_w; ++ow)
                window_argmax_at(x, w, oh, ow, out + ow, at ? at + ow : nullptr);
            continue;
        }
        if (!at) continue;
        const int32_t base = static_cast<int32_t>(2 * oh * w.in_w);
        const int32_t width = static_cast<int32_t>(w.in_w);
        for (int64_t ow = 0; ow < w.out_w; ++ow) {
            const int32_t t = at[ow];
            at[ow] = base + (t >> 1) * width + static_cast<int32_t>(2 * ow) + (t & 1);
        }
    }
}

// dx = ActivationGrad[Relu](dx, x) over n values: MaxPoolReluGrad's Relu, with the Relu
// gradient's own loop, so that the fused kernel gives bitwise MaxPoolGrad then ActivationGrad.
void relu_grad_in_place(const float* x, float* dx, int64_t n) {
    activation_grad_map({.kind = Activation::relu}, dx, x, dx, n);
}

// dx of the two input rows under row oh of windows, window by window (a row with a NaN). `best`:
// scratch of out_w values.
void rows_max_grad_by_window(const float* x, const float* dy, const Window2d& w, int64_t oh, bool relu,
                             float* best, float* dx) {
    float* dx0 = dx + 2 * oh * w.in_w;
    std::fill(dx0, dx0 + 2 * w.in_w, 0.0f);
    for (int64_t ow = 0; ow < w.out_w; ++ow) {
        int32_t at;
        window_argmax_at(x, w, oh, ow, best + ow, &at);
        if (at >= 0) dx[at] += dy[oh * w.out_w + ow];
    }
    if (relu) relu_grad_in_place(x + 2 * oh * w.in_w, dx0, 2 * w.in_w);
}

// dx of one plane of a tiles_2x2 pool: dy at the first maximum of each window, 0 elsewhere
// (including a last row or column that no window covers). `best` and `tap` are scratch of out_w
// values. `relu`: x is a Relu's output and the gradient goes through it too (MaxPoolReluGrad):
// only a window's maximum receives anything, so dy is masked by the maxima in the scatter.
void plane_max_grad_tiled_2x2(const float* x, const float* dy, const Window2d& w, bool relu,
                              float* best, int32_t* tap, float* dx) {
    for (int64_t oh = 0; oh < w.out_h; ++oh) {
        const float* r0 = x + 2 * oh * w.in_w;
        float* dx0 = dx + 2 * oh * w.in_w;
        float* dx1 = dx0 + w.in_w;
        if (rows_max_grad_2x2_best(r0, r0 + w.in_w, dy + oh * w.out_w, w.out_w, relu, best, tap, dx0, dx1)) {
            rows_max_grad_by_window(x, dy, w, oh, relu, best, dx);
            continue;
        }
        for (int64_t iw = 2 * w.out_w; iw < w.in_w; ++iw) dx0[iw] = dx1[iw] = 0.0f;
    }
    std::fill(dx + 2 * w.out_h * w.in_w, dx + w.in_h * w.in_w, 0.0f);
}

// y = the window maxima of one plane; index (when not null) = their first argmax.
void pool_plane_max(const float* x, const Window2d& w, const TapRanges& taps, float* y,
                    int32_t* index) {
    if (tiles_2x2(w)) return plane_max_tiled_2x2(x, w, y, index);
    if (w.kernel_h == 2 && w.kernel_w == 2) return plane_max_2x2(x, w, y, index);
    if (w.kernel_h == 3 && w.kernel_w == 3) return plane_max_3x3(x, w, y, index);
    if (index)
        plane_argmax(x, w, taps.column_begin.data(), taps.column_end.data(), y, index);
    else
        plane_max(x, w, taps.column_begin.data(), taps.column_end.data(), y);
}

void expect_small_planes(const KernelArgs& args, const Window2d& w) {
    if (w.in_h * w.in_w >= (int64_t{1} << 31))
        args.fail("planes of 2^31 or more values are not supported");
}

void max_pool(const KernelArgs& args) {
    const std::vector<int64_t> x_shape = shape_of(args.input(0));
    const PoolShape p = pool_shape(args, x_shape);
    const Window2d& w = p.window;
    args.expect_output_shape(0, pooled_shape(x_shape, w));
    if (args.has_output(1)) {
        args.expect_output_shape(1, pooled_shape(x_shape, w));
        if (args.attrs().get_int("storage_order", 0) != 0)
            args.fail("storage_order = 1 (column-major indices) is not supported");
        expect_small_planes(args, w);
    }
    const TapRanges taps(w);
    const float* x = args.in(0);
    float* y = args.out(0);
    int64_t* indices = args.has_output(1) ? data_of<int64_t>(args.output(1)) : nullptr;
    const int64_t in_plane = w.in_h * w.in_w;
    const int64_t out_plane = w.out_h * w.out_w;
    const dsk::Work work =
        plane_work(out_plane * w.kernel_h * w.kernel_w, in_plane + out_plane * (indices ? 3 : 1));
    for_each_plane_with_scratch(
        p.planes, work, 0, indices ? out_plane : 0, [&](int64_t plane, float*, int32_t* index) {
            const float* xp = x + plane * in_plane;
            float* yp = y + plane * out_plane;
            if (!indices) {
                pool_plane_max(xp, w, taps, yp, nullptr);
                return;
            }
            pool_plane_max(xp, w, taps, yp, index);
            int64_t* at = indices + plane * out_plane;
            for (int64_t o = 0; o < out_plane; ++o)  // ONNX: the flat NCHW index
                at[o] = index[o] >= 0 ? plane * in_plane + index[o] : -1;
        });
}

// MaxPoolGrad, or with `relu` MaxPoolReluGrad: ActivationGrad[Relu] of MaxPoolGrad, where X is
// the Relu's output (a Relu's gradient needs only its output: docs/ops.md). Fused, the gradient
// takes one pass over the planes instead of two.
void max_pool_grad_of(const KernelArgs& args, bool relu) {
    const std::vector<int64_t> x_shape = shape_of(args.input(1));
    const PoolShape p = pool_shape(args, x_shape);
    const Window2d& w = p.window;
    if (shape_of(args.input(0)) != pooled_shape(x_shape, w))
        args.fail("dY " + shape_text(shape_of(args.input(0))) +
                  " does not match the pooled shape " + shape_text(pooled_shape(x_shape, w)));
    args.expect_output_shape(0, x_shape);
    expect_small_planes(args, w);
    const TapRanges taps(w);
    const float* dy = args.in(0);
    const float* x = args.in(1);
    float* dx = args.out(0);
    const int64_t in_plane = w.in_h * w.in_w;
    const int64_t out_plane = w.out_h * w.out_w;
    const dsk::Work work = plane_work(out_plane * w.kernel_h * w.kernel_w, 2 * in_plane + out_plane);
    // Scratch per thread: one plane of maxima and their 32-bit argmax indices.
    for_each_plane_with_scratch(p.planes, work, out_plane, out_plane,
                                [&](int64_t plane, float* best, int32_t* index) {
                                    float* dxp = dx + plane * in_plane;
                                    const float* dyp = dy + plane * out_plane;
                                    const float* xp = x + plane * in_plane;
                                    if (tiles_2x2(w)) {
                                        plane_max_grad_tiled_2x2(xp, dyp, w, relu, best, index,
                                                                 dxp);
                                        return;
                                    }
                                    pool_plane_max(xp, w, taps, best, index);
                                    std::fill(dxp, dxp + in_plane, 0.0f);
                                    for (int64_t o = 0; o < out_plane; ++o)
                                        if (index[o] >= 0) dxp[index[o]] += dyp[o];
                                    if (relu) relu_grad_in_place(xp, dxp, in_plane);
                                });
}

void max_pool_grad(const KernelArgs& args) {
    max_pool_grad_of(args, false);
}

void max_pool_relu_grad(const KernelArgs& args) {
    max_pool_grad_of(args, true);
}

// inverse[o] = 1 / the divisor of output o: the window's size with count_include_pad, else the
// number of input elements it covers (0 when it covers none).
void average_inverses(const Window2d& w, const TapRanges& taps, bool include_pad, float* inverse) {
    for (int64_t oh = 0; oh < w.out_h; ++oh)
        for (int64_t ow = 0; ow < w.out_w; ++ow) {
            const int64_t divisor = include_pad ? w.kernel_h * w.kernel_w
                                                : taps.valid_rows[static_cast<size_t>(oh)] *
                                                      taps.valid_columns[static_cast<size_t>(ow)];
            inverse[oh * w.out_w + ow] = divisor > 0 ? 1.0f / static_cast<float>(divisor) : 0.0f;
        }
}

// y (one output plane) = the sum of each window of x, times inverse.
DSK_CPU_VECTOR_CLONES
void plane_average(const float* x, const Window2d& w, const int64_t* column_begin,
                   const int64_t* column_end, const float* inverse, float* y) {
    const int64_t sw = w.stride_w;
    for (int64_t oh = 0; oh < w.out_h; ++oh) {
        float* out = y + oh * w.out_w;
        std::fill(out, out + w.out_w, 0.0f);
        for (int64_t kh = 0; kh < w.kernel_h; ++kh) {
            const int64_t ih = oh * w.stride_h - w.pad_top + kh * w.dilation_h;
            if (ih < 0 || ih >= w.in_h) continue;
            const float* row = x + ih * w.in_w;
            for (int64_t kw = 0; kw < w.kernel_w; ++kw) {
                const int64_t shift = kw * w.dilation_w - w.pad_left;
                for (int64_t ow = column_begin[kw]; ow < column_end[kw]; ++ow)
                    out[ow] += row[ow * sw + shift];
            }
        }
        const float* inv = inverse + oh * w.out_w;
        for (int64_t ow = 0; ow < w.out_w; ++ow) out[ow] *= inv[ow];
    }
}

// dx (one input plane, zeroed here) = each output's dy times inverse, added over its window.
DSK_CPU_VECTOR_CLONES
void plane_average_grad(const float* dy, const Window2d& w, const int64_t* column_begin,
                        const int64_t* column_end, const float* inverse, float* dx) {
    const int64_t sw = w.stride_w;
    std::fill(dx, dx + w.in_h * w.in_w, 0.0f);
    for (int64_t oh = 0; oh < w.out_h; ++oh) {
        const float* g = dy + oh * w.out_w;
        const float* inv = inverse + oh * w.out_w;
        for (int64_t kh = 0; kh < w.kernel_h; ++kh) {
            const int64_t ih = oh * w.stride_h - w.pad_top + kh * w.dilation_h;
            if (ih < 0 || ih >= w.in_h) continue;
            float* row = dx + ih * w.in_w;
            for (int64_t kw = 0; kw < w.kernel_w; ++kw) {
                const int64_t shift = kw * w.dilation_w - w.pad_left;
                for (int64_t ow = column_begin[kw]; ow < column_end[kw]; ++ow)
                    row[ow * sw + shift] += g[ow] * inv[ow];
            }
        }
    }
}

void average_pool(const KernelArgs& args) {
    const std::vector<int64_t> x_shape = shape_of(args.input(0));
    const PoolShape p = pool_shape(args, x_shape);
    const Window2d& w = p.window;
    const bool include_pad = args.attrs().get_int("count_include_pad", 0) != 0;
    args.expect_output_shape(0, pooled_shape(x_shape, w));
    const TapRanges taps(w);
    std::vector<float> inverse(static_cast<size_t>(w.out_h * w.out_w));
    average_inverses(w, taps, include_pad, inverse.data());
    const float* x = args.in(0);
    float* y = args.out(0);
    const int64_t in_plane = w.in_h * w.in_w;
    const int64_t out_plane = w.out_h * w.out_w;
    for_each_plane(p.planes, plane_work(out_plane * w.kernel_h * w.kernel_w, in_plane + out_plane),
                   [&](int64_t plane) {
        plane_average(x + plane * in_plane, w, taps.column_begin.data(), taps.column_end.data(),
                      inverse.data(), y + plane * out_plane);
    });
}

void average_pool_grad(const KernelArgs& args) {
    const std::vector<int64_t> x_shape = args.attrs().require_ints("input_shape");
    const PoolShape p = pool_shape(args, x_shape);
    const Window2d& w = p.window;
    const bool include_pad = args.attrs().get_int("count_include_pad", 0) != 0;
    if (shape_of(args.input(0)) != pooled_shape(x_shape, w))
        args.fail("dY " + shape_text(shape_of(args.input(0))) +
                  " does not match the pooled shape " + shape_text(pooled_shape(x_shape, w)));
    args.expect_output_shape(0, x_shape);
    const TapRanges taps(w);
    std::vector<float> inverse(static_cast<size_t>(w.out_h * w.out_w));
    average_inverses(w, taps, include_pad, inverse.data());
    const float* dy = args.in(0);
    float* dx = args.out(0);
    const int64_t in_plane = w.in_h * w.in_w;
    const int64_t out_plane = w.out_h * w.out_w;
    for_each_plane(p.planes, plane_work(out_plane * w.kernel_h * w.kernel_w, in_plane + out_plane),
                   [&](int64_t plane) {
        plane_average_grad(dy + plane * out_plane, w, taps.column_begin.data(),
                           taps.column_end.data(), inverse.data(), dx + plane * in_plane);
    });
}

// [N, C, spatial...] -> [N, C, 1, ...]: the mean of each plane.
std::vector<int64_t> global_pooled_shape(const KernelArgs& args,
                                         const std::vector<int64_t>& x_shape) {
    if (x_shape.size() < 2)
        args.fail("X " + shape_text(x_shape) + " must have at least 2 dimensions (N, C, ...)");
    std::vector<int64_t> shape = x_shape;
    std::fill(shape.begin() + 2, shape.end(), 1);
    return shape;
}

void global_average_pool(const KernelArgs& args) {
    const std::vector<int64_t> x_shape = shape_of(args.input(0));
    args.expect_output_shape(0, global_pooled_shape(args, x_shape));
    const int64_t planes = x_shape[0] * x_shape[1];
    const int64_t plane_size = planes == 0 ? 0 : numel(args.input(0)) / planes;
    const float* x = args.in(0);
    float* y = args.out(0);
    for_each_plane(planes, plane_work(plane_size, plane_size + 1), [&](int64_t plane) {
        const float sum = sum_fixed_order(x + plane * plane_size, plane_size);
        y[plane] = sum / static_cast<float>(plane_size);
    });
}

void global_average_pool_grad(const KernelArgs& args) {
    const std::vector<int64_t> x_shape = args.attrs().require_ints("input_shape");
    const std::vector<int64_t> y_shape = global_pooled_shape(args, x_shape);
    if (shape_of(args.input(0)) != y_shape)
        args.fail("dY " + shape_text(shape_of(args.input(0))) + " must have shape " +
                  shape_text(y_shape));
    args.expect_output_shape(0, x_shape);
    const int64_t planes = x_shape[0] * x_shape[1];
    const int64_t plane_size = numel(args.output(0)) / std::max<int64_t>(planes, 1);
    const float* dy = args.in(0);
    float* dx = args.out(0);
    for_each_plane(planes, plane_work(plane_size, plane_size + 1), [&](int64_t plane) {
        const float g = dy[plane] / static_cast<float>(plane_size);
        std::fill(dx + plane * plane_size, dx + (plane + 1) * plane_size, g);
    });
}

bool is_nchw(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    (void)node;
    return tensors[0].ndim == 4;
}

bool x_is_nchw(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    (void)node;
    return tensors[1].ndim == 4;
}

const KernelDef kPoolingKernels[] = {
    kernel("MaxPool", {F32}, {F32, I64}, max_pool, is_nchw) | optional_outputs_from(1),
    kernel("MaxPoolGrad", {F32, F32}, {F32}, max_pool_grad, x_is_nchw),
    kernel("MaxPoolReluGrad", {F32, F32}, {F32}, max_pool_relu_grad, x_is_nchw),
    kernel("AveragePool", {F32}, {F32}, average_pool, is_nchw),
    kernel("AveragePoolGrad", {F32}, {F32}, average_pool_grad),
    kernel("GlobalAveragePool", {F32}, {F32}, global_average_pool),
    kernel("GlobalAveragePoolGrad", {F32}, {F32}, global_average_pool_grad),
};

}  // namespace

void max_pool_plane_2x2(const float* x, int64_t h, int64_t w, float* y) {
    Window2d window;
    window.in_h = h;
    window.in_w = w;
    window.kernel_h = window.kernel_w = window.stride_h = window.stride_w = 2;
    window.out_h = h / 2;
    window.out_w = w / 2;
    plane_max_tiled_2x2(x, window, y, nullptr);
}

std::span<const KernelDef> pooling_kernels() {
    return kPoolingKernels;
}

}  // namespace dsk::cpu
