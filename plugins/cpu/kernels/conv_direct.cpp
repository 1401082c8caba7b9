// conv_direct.cpp - the direct same-size convolution of conv_direct.h.
#include "conv_direct.h"

#include <algorithm>

#include "cpu_features.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "simd_lanes.h"
#include "transpose_8x8.h"
#define DSK_CONV_DIRECT_AVX512 1
#else
#define DSK_CONV_DIRECT_AVX512 0
#endif

namespace dsk::cpu {
namespace {

constexpr int64_t kLanes = 16;      // output positions per vector
constexpr int64_t kTileRows = 8;    // output channels per register tile
constexpr int64_t kTileVectors = 3; // vectors of positions per register tile
constexpr int64_t kRowLanes = 8;    // output positions per vector of the AVX2 row tiles

// The AVX-512 tiles (masked loads) run where the CPU has AVX-512 F and VL; the AVX2 row tiles
// elsewhere.
bool direct_conv_masked() {
    return DSK_CONV_DIRECT_AVX512 && cpu_has_avx512f() && cpu_has_avx512vl();
}

#if DSK_CONV_DIRECT_AVX512
// One tap of a tile: acc[i][j] += w[ci][i] * x[ci][vector j, shifted by the tap] over the input
// channels (w advanced past them). kMasked: the loads zero the lanes `live` leaves out (padding,
// a wrap into the next row); without it (every lane inside, as for the interior vectors of the
// taps in the kernel's middle column) they are plain loads, which run faster.
template <int NV, bool kMasked>
__attribute__((target("avx512f,fma"), always_inline)) inline void accumulate_tap(__m512 (&acc)[kTileRows][NV],
                                                                               const float* in, const float*& w,
                                                                               int64_t channels, int64_t plane,
                                                                               const __mmask16 (&live)[NV]) {
    for (int64_t ci = 0; ci < channels; ++ci, in += plane, w += kTileRows) {
        __m512 b[NV];
#pragma GCC unroll 3
        for (int j = 0; j < NV; ++j)
            b[j] = kMasked ? _mm512_maskz_loadu_ps(live[j], in + j * kLanes) : _mm512_loadu_ps(in + j * kLanes);
#pragma GCC unroll 8
        for (int i = 0; i < kTileRows; ++i) {
            const __m512 a = _mm512_set1_ps(w[i]);
#pragma GCC unroll 3
            for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_fmadd_ps(a, b[j], acc[i][j]);
        }
    }
}

// Output channels [m0, m0 + rows) (rows <= 8; the weights are zero-padded to 8) x vectors
// [v0, v0 + NV) of one image: the sums in registers over every (tap, input channel), in that
// order, then `output` applied, stored to z and handed to the epilogue.
template <int NV>
__attribute__((target("avx512f,fma"))) void tile(const DirectConvPlan& plan, const float* x, int64_t m0,
                                                 int64_t rows, int64_t v0, float* z,
                                                 const DirectConvOutput& output, const GemmEpilogue* epilogue) {
    const DirectConv& c = plan.conv;
    const int64_t plane = c.plane(), taps = c.taps(), channels = c.in_channels;
    __m512 acc[kTileRows][NV];
#pragma GCC unroll 8
    for (int i = 0; i < kTileRows; ++i)
#pragma GCC unroll 3
        for (int j = 0; j < NV; ++j) acc[i][j] = _mm512_setzero_ps();
    const float* w = plan.block_weights(m0);
    const uint16_t* masks = plan.masks.data() + v0 * taps;
    for (int64_t t = 0; t < taps; ++t) {
        __mmask16 live[NV];
        bool all = true;
#pragma GCC unroll 3
        for (int j = 0; j < NV; ++j) {
            live[j] = masks[j * taps + t];
            all = all && live[j] == 0xffff;
        }
        const float* in = x + v0 * kLanes + plan.offsets[static_cast<size_t>(t)];
        if (all)
            accumulate_tap<NV, false>(acc, in, w, channels, plane, live);
        else
            accumulate_tap<NV, true>(acc, in, w, channels, plane, live);
    }
    // Everything below runs over constant indices only, so that acc stays in registers.
    const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < kTileRows; ++i) {
        const __m512 bias = output.bias && i < rows ? _mm512_set1_ps(output.bias[m0 + i]) : zero;
#pragma GCC unroll 3
        for (int j = 0; j < NV; ++j) {
            if (output.bias) acc[i][j] = _mm512_add_ps(acc[i][j], bias);
            if (output.relu)  // max(0, x): NaN stays NaN (the masked form: g++ 12 warns on the plain one)
                acc[i][j] = _mm512_mask_max_ps(acc[i][j], static_cast<__mmask16>(0xffff), zero, acc[i][j]);
        }
    }
    const int64_t p0 = v0 * kLanes;
    const int64_t cols = std::min(NV * kLanes, plane - p0);
    float* out = z + m0 * plane + p0;
    __mmask16 store[NV];
#pragma GCC unroll 3
    for (int j = 0; j < NV; ++j) {
        const int64_t n = std::clamp<int64_t>(cols - j * kLanes, 0, kLanes);
        store[j] = static_cast<__mmask16>((1u << n) - 1u);
    }
#pragma GCC unroll 8
    for (int i = 0; i < kTileRows; ++i) {
        if (i < rows) {
#pragma GCC unroll 3
            for (int j = 0; j < NV; ++j) _mm512_mask_storeu_ps(out + i * plane + j * kLanes, store[j], acc[i][j]);
        }
    }
    if (epilogue) epilogue->apply(epilogue->context, m0, p0, rows, cols, out, plane);
}

// The last R positions of the plane (R = plane % 16, 1 to 8: the short vector at its end) for
// output channels [m0, m0 + rows): the 8 channels in the lanes of a 256-bit vector, one sum per
// position, each (tap, channel) one weight load and, per position, one broadcast of its input
// (merge-masked off where the tap falls outside the input). Even and odd input channels go to
// two sums, so that 2R chains of FMAs hide their latency.
template <int R>
__attribute__((target("avx512f,avx512vl,fma"))) void tail_tile(const DirectConvPlan& plan, const float* x,
                                                               int64_t m0, int64_t rows, float* z,
                                                               const DirectConvOutput& output,
                                                               const GemmEpilogue* epilogue) {
    const DirectConv& c = plan.conv;
    const int64_t plane = c.plane(), taps = c.taps(), channels = c.in_channels, p0 = plane - R;
    __m256 even[R], odd[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) even[r] = odd[r] = _mm256_setzero_ps();
    const float* w = plan.block_weights(m0);
    const uint16_t* masks = plan.masks.data() + (plan.vectors() - 1) * taps;
    for (int64_t t = 0; t < taps; ++t) {
        if ((masks[t] & ((1u << R) - 1u)) == 0) {  // the tap reads only padding (the last row's below)
            w += channels * 8;
            continue;
        }
        // Position p0 + r reads x[ci * plane + from[r]] under tap t; outside the input, k[r] is
        // empty and from[r] points at the position itself (read, never used).
        __mmask8 k[R];
        int64_t from[R];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
            const bool inside = (masks[t] >> r & 1u) != 0;
            k[r] = inside ? 0xff : 0;
            from[r] = p0 + r + (inside ? plan.offsets[static_cast<size_t>(t)] : 0);
        }
        const float* in = x;
        int64_t ci = 0;
        for (; ci + 1 < channels; ci += 2, in += 2 * plane, w += 16) {
            const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
                even[r] = _mm256_mask3_fmadd_ps(_mm256_set1_ps(in[from[r]]), w0, even[r], k[r]);
                odd[r] = _mm256_mask3_fmadd_ps(_mm256_set1_ps(in[plane + from[r]]), w1, odd[r], k[r]);
            }
        }
        if (ci < channels) {
            const __m256 w0 = _mm256_loadu_ps(w);
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r)
                even[r] = _mm256_mask3_fmadd_ps(_mm256_set1_ps(in[from[r]]), w0, even[r], k[r]);
            w += 8;
        }
    }
    const __mmask8 live = static_cast<__mmask8>((1u << rows) - 1u);
    const __m256 bias = output.bias ? _mm256_maskz_loadu_ps(live, output.bias + m0) : _mm256_setzero_ps();
    alignas(32) float sums[R][8];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
        __m256 v = _mm256_add_ps(even[r], odd[r]);
        if (output.bias) v = _mm256_add_ps(v, bias);
        if (output.relu) v = _mm256_max_ps(_mm256_setzero_ps(), v);  // NaN stays NaN
        _mm256_store_ps(sums[r], v);
    }
    float* out = z + m0 * plane + p0;
    for (int64_t i = 0; i < rows; ++i)
        for (int r = 0; r < R; ++r) out[i * plane + r] = sums[r][i];
    if (epilogue) epilogue->apply(epilogue->context, m0, p0, rows, R, out, plane);
}

// AVX2 (no mask registers, 16 vector registers): output rows in tiles of up to 3 channels x 4
// vectors of 8 positions, over a copy of the input with its padding written out as zeros
// (direct_pad_x), so that every tap of every channel is a plain load at a constant offset. The
// lanes past the end of a row read on into the padded row (or the slack after the last one). A
// row's last vector is stored whole, into the start of the next row, which is computed and
// stored after it (rows go in order); only a vector that would pass the end of the plane is
// stored masked (vmaskmovps stores are slow on AMD's cores). The sums run in the AVX-512 tile's
// order: taps outer, input channels inner.
constexpr int kRowTileVectors = 4;

// Output channels m .. m + rows - 1 (rows <= R; weights: theirs, the plan's block from m's
// lane on) of output rows [oh0, oh1), columns [8 * v0, 8 * v0 + cols) (cols <= 8 * NV); what
// follows each row's columns in the plane may be overwritten, up to 8 * NV positions from the
// first. Several rows per call only where a row is one chunk (the next row's columns are then
// stored after).
template <int R, int NV>
__attribute__((target("avx2,fma"))) void row_tile(const DirectConv& c, const float* weights, const float* xp,
                                                  int64_t oh0, int64_t oh1, int64_t v0, int64_t rows, int64_t cols,
                                                  float* z, const DirectConvOutput& output, const float* bias) {
    const int64_t wp = c.w + c.dilation_w * (c.kernel_w - 1), hp_plane = direct_padded_plane(c);
    const int64_t plane = c.plane(), channels = c.in_channels;
    const __m256 zero = _mm256_setzero_ps();
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t oh = oh0; oh < oh1; ++oh) {
        const float* w = weights;
        __m256 acc[R][NV];
#pragma GCC unroll 3
        for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
            for (int j = 0; j < NV; ++j) acc[i][j] = _mm256_setzero_ps();
        const float* row = xp + oh * wp + v0 * kRowLanes;
        for (int64_t kh = 0; kh < c.kernel_h; ++kh)
            for (int64_t kw = 0; kw < c.kernel_w; ++kw) {
                const float* in = row + kh * c.dilation_h * wp + kw * c.dilation_w;
                for (int64_t ci = 0; ci < channels; ++ci, in += hp_plane, w += kTileRows) {
                    __m256 a[R];
#pragma GCC unroll 3
                    for (int i = 0; i < R; ++i) a[i] = _mm256_broadcast_ss(w + i);
#pragma GCC unroll 4
                    for (int j = 0; j < NV; ++j) {
                        const __m256 b = _mm256_loadu_ps(in + j * kRowLanes);
#pragma GCC unroll 3
                        for (int i = 0; i < R; ++i) acc[i][j] = _mm256_fmadd_ps(a[i], b, acc[i][j]);
                    }
                }
            }
        float* out = z + oh * c.w + v0 * kRowLanes;
        const int64_t room = plane - (oh * c.w + v0 * kRowLanes);  // positions left in the plane
#pragma GCC unroll 3
        for (int i = 0; i < R; ++i) {
            if (i >= rows) break;
            const __m256 b = bias ? _mm256_set1_ps(bias[i]) : zero;
#pragma GCC unroll 4
            for (int j = 0; j < NV; ++j) {
                __m256 v = acc[i][j];
                if (bias) v = _mm256_add_ps(v, b);
                if (output.relu) v = _mm256_max_ps(zero, v);  // max(0, x): NaN stays NaN
                const int64_t n = cols - j * kRowLanes;
                if (n >= kRowLanes || (n > 0 && room - j * kRowLanes >= kRowLanes))
                    _mm256_storeu_ps(out + i * plane + j * kRowLanes, v);
                else if (n > 0)
                    _mm256_maskstore_ps(out + i * plane + j * kRowLanes,
                                        _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lane), v);
            }
        }
    }
}

using RowTile = void (*)(const DirectConv&, const float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t,
                         float*, const DirectConvOutput&, const float*);

template <int R>
RowTile row_tile_of(int64_t vectors) {
    switch (vectors) {
        case 1: return row_tile<R, 1>;
        case 2: return row_tile<R, 2>;
        case 3: return row_tile<R, 3>;
        default: return row_tile<R, 4>;
    }
}

void conv_direct_channels_avx2(const DirectConvPlan& plan, const float* x, int64_t m0, int64_t count, float* z,
                               const DirectConvOutput& output, const GemmEpilogue* epilogue, float* scratch) {
    const DirectConv& c = plan.conv;
    const int64_t padded = c.in_channels * direct_padded_plane(c);
    direct_pad_x(c, x, scratch);
    std::fill(scratch + padded, scratch + padded + kRowLanes, 0.0f);
    // Each row in chunks of at most 4 vectors, as even as they go (5 vectors: 3 + 2).
    const int64_t vectors = (c.w + kRowLanes - 1) / kRowLanes;
    const int64_t chunks = (vectors + kRowTileVectors - 1) / kRowTileVectors;
    for (int64_t block = m0; block < m0 + count; block += kTileRows) {
        // The block's 8 channels as tiles of 3, 3 and 2: every weight a tile reads is in the block.
        for (int64_t lane = 0; lane < kTileRows && block + lane < m0 + count; lane += 3) {
            const int64_t m = block + lane, rows = std::min<int64_t>({3, kTileRows - lane, m0 + count - m});
            const float* w = plan.block_weights(block) + lane;
            const float* bias = output.bias ? output.bias + m : nullptr;
            float* out = z + m * c.plane();
            // Rows in order; rows of one chunk all in one call.
            const int64_t rows_per_call = chunks == 1 ? c.h : 1;
            for (int64_t oh = 0; oh < c.h; oh += rows_per_call)
                for (int64_t chunk = 0, v0 = 0; chunk < chunks; ++chunk) {
                    const int64_t nv = (vectors - v0) / (chunks - chunk);
                    const RowTile tile = lane + 3 <= kTileRows ? row_tile_of<3>(nv) : row_tile_of<2>(nv);
                    tile(c, w, scratch, oh, oh + rows_per_call, v0, rows,
                         std::min(nv * kRowLanes, c.w - v0 * kRowLanes), out, output, bias);
                    v0 += nv;
                }
            if (epilogue) epilogue->apply(epilogue->context, m, 0, rows, c.plane(), out, c.plane());
        }
    }
}

constexpr int kGradRows = 4;     // dW rows (output channels) per register tile
constexpr int kGradColumns = 6;  // dW columns (input channel, tap) per register tile

// dw[m0 + i][k0 + j] (row stride `ld`) = the sums of tile (i < rows, j < cols).
__attribute__((target("avx512f,fma"))) void weight_grad_tile(const DirectConvTaps& taps, const float* dy,
                                                             int64_t dy_stride, const float* x, int64_t x_stride,
                                                             int64_t images, int64_t m0, int64_t rows, int64_t k0,
                                                             int64_t cols, float* dw, int64_t ld) {
    const DirectConv& c = taps.conv;
    const int64_t plane = c.plane(), tap_count = c.taps(), vectors = taps.vectors();
    // Column j: the input of channel (k0 + j) / taps at tap (k0 + j) % taps; past `cols`, nothing.
    static const uint16_t kNone = 0;
    int64_t from[kGradColumns], step[kGradColumns];
    const uint16_t* masks[kGradColumns];
    for (int j = 0; j < kGradColumns; ++j) {
        const int64_t k = k0 + std::min<int64_t>(j, cols - 1), t = k % tap_count;
        from[j] = k / tap_count * plane + taps.offsets[static_cast<size_t>(t)];
        masks[j] = j < cols ? taps.masks.data() + t : &kNone;
        step[j] = j < cols ? tap_count : 0;
    }
    const __mmask16 tail = static_cast<__mmask16>((1u << (plane - (vectors - 1) * kLanes)) - 1u);
    __m512 acc[kGradRows][kGradColumns];
#pragma GCC unroll 4
    for (int i = 0; i < kGradRows; ++i)
#pragma GCC unroll 6
        for (int j = 0; j < kGradColumns; ++j) acc[i][j] = _mm512_setzero_ps();
    for (int64_t n = 0; n < images; ++n) {
        const float* g = dy + n * dy_stride + m0 * plane;
        const float* in = x + n * x_stride;
        for (int64_t v = 0; v < vectors; ++v) {
            const __mmask16 live = v + 1 < vectors ? static_cast<__mmask16>(0xffff) : tail;
            __m512 a[kGradRows];
#pragma GCC unroll 4
            for (int i = 0; i < kGradRows; ++i)
                a[i] = _mm512_maskz_loadu_ps(i < rows ? live : 0, g + (i < rows ? i : 0) * plane + v * kLanes);
#pragma GCC unroll 6
            for (int j = 0; j < kGradColumns; ++j) {
                const __m512 b = _mm512_maskz_loadu_ps(masks[j][v * step[j]], in + from[j] + v * kLanes);
#pragma GCC unroll 4
                for (int i = 0; i < kGradRows; ++i) acc[i][j] = _mm512_fmadd_ps(a[i], b, acc[i][j]);
            }
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < kGradRows; ++i)
#pragma GCC unroll 6
        for (int j = 0; j < kGradColumns; ++j)
            if (i < rows && j < cols) dw[(m0 + i) * ld + k0 + j] = sum_lanes(acc[i][j]);
}

constexpr int kGradTColumns = 6;  // (channel, tap) columns per register tile of the transposed sums

int64_t m_vectors(const DirectConv& c) {
    return (c.out_channels + kLanes - 1) / kLanes;
}

// Rows [k0, k0 + cols) of dWt (cols <= 6) for MV vectors of output channels.
template <int MV>
__attribute__((target("avx512f,fma"))) void weight_grad_t_tile(const DirectConv& c, const float* dyt,
                                                               int64_t dyt_stride, const float* xp,
                                                               int64_t xp_stride, int64_t images, int64_t k0,
                                                               int64_t cols, float* dwt) {
    const int64_t taps = c.taps(), wp = c.w + c.dilation_w * (c.kernel_w - 1);
    const int64_t hp_plane = direct_padded_plane(c), row = MV * kLanes;
    int64_t from[kGradTColumns];
    for (int j = 0; j < kGradTColumns; ++j) {
        const int64_t k = k0 + std::min<int64_t>(j, cols - 1), t = k % taps;
        from[j] = k / taps * hp_plane + t / c.kernel_w * c.dilation_h * wp + t % c.kernel_w * c.dilation_w;
    }
    __m512 acc[kGradTColumns][MV];
#pragma GCC unroll 6
    for (int j = 0; j < kGradTColumns; ++j)
#pragma GCC unroll 4
        for (int v = 0; v < MV; ++v) acc[j][v] = _mm512_setzero_ps();
    for (int64_t n = 0; n < images; ++n) {
        const float* g = dyt + n * dyt_stride;
        const float* in = xp + n * xp_stride;
        for (int64_t oh = 0; oh < c.h; ++oh)
            for (int64_t ow = 0; ow < c.w; ++ow, g += row) {
                const float* at = in + oh * wp + ow;
                __m512 a[MV];
#pragma GCC unroll 4
                for (int v = 0; v < MV; ++v) a[v] = _mm512_load_ps(g + v * kLanes);
#pragma GCC unroll 6
                for (int j = 0; j < kGradTColumns; ++j) {
                    const __m512 b = _mm512_set1_ps(at[from[j]]);
#pragma GCC unroll 4
                    for (int v = 0; v < MV; ++v) acc[j][v] = _mm512_fmadd_ps(b, a[v], acc[j][v]);
                }
            }
    }
    for (int j = 0; j < kGradTColumns; ++j) {
        if (j >= cols) break;
        float* out = dwt + (k0 + j) * c.out_channels;
        for (int v = 0; v < MV; ++v) {
            const int64_t n = std::clamp<int64_t>(c.out_channels - v * kLanes, 0, kLanes);
            _mm512_mask_storeu_ps(out + v * kLanes, static_cast<__mmask16>((1u << n) - 1u), acc[j][v]);
        }
    }
}

// The AVX2 form of weight_grad_tile, over x padded (direct_pad_x) instead of masked loads: a
// register tile of kGradRowsAvx2 output channels x kGradColumnsAvx2 (channel, tap) columns, the
// sums kept in 8 lanes over every image, output row and vector of 8 positions of the row, in
// that order. A row's last vector overlaps the one before (w >= 8) with the lanes already summed
// zeroed in dY, so no lane is read past the plane.
constexpr int kGradRowsAvx2 = 4;
constexpr int kGradColumnsAvx2 = 3;

__attribute__((target("avx2,fma"))) void weight_grad_tile_avx2(const DirectConv& c, const float* dy,
                                                               int64_t dy_stride, const float* xp, int64_t xp_stride,
                                                               int64_t images, int64_t m0, int64_t rows, int64_t k0,
                                                               int64_t cols, float* dw, int64_t ld) {
    constexpr int R = kGradRowsAvx2, C = kGradColumnsAvx2;
    const int64_t plane = c.plane(), taps = c.taps(), wp = c.w + c.dilation_w * (c.kernel_w - 1);
    // Column j: the padded input of channel (k0 + j) / taps at tap (k0 + j) % taps, from output
    // position (0, 0); past `cols`, the last column again (summed, not stored). Rows likewise.
    int64_t from[C], row_at[R];
    for (int j = 0; j < C; ++j) {
        const int64_t k = k0 + std::min<int64_t>(j, cols - 1), t = k % taps;
        from[j] = k / taps * direct_padded_plane(c) + t / c.kernel_w * c.dilation_h * wp + t % c.kernel_w * c.dilation_w;
    }
    for (int i = 0; i < R; ++i) row_at[i] = std::min<int64_t>(i, rows - 1) * plane;
    const int64_t last = c.w - kRowLanes;  // the row's last vector
    const int64_t done = c.w % kRowLanes == 0 ? 0 : kRowLanes - c.w % kRowLanes;  // of its lanes, summed before
    const __m256 fresh = _mm256_castsi256_ps(_mm256_xor_si256(lanes_avx2(done), _mm256_set1_epi32(-1)));
    __m256 acc[R][C];
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < C; ++j) acc[i][j] = _mm256_setzero_ps();
    const __m256 all = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    for (int64_t n = 0; n < images; ++n)
        for (int64_t oh = 0; oh < c.h; ++oh) {
            const float* g = dy + n * dy_stride + m0 * plane + oh * c.w;
            const float* in = xp + n * xp_stride + oh * wp;
            for (int64_t next = 0; next < c.w;) {
                const int64_t ow = std::min(next, last);
                const __m256 keep = ow == next ? all : fresh;
                next = ow + kRowLanes;
                __m256 a[R];
                for (int i = 0; i < R; ++i) a[i] = _mm256_and_ps(_mm256_loadu_ps(g + row_at[i] + ow), keep);
                for (int j = 0; j < C; ++j) {
                    const __m256 b = _mm256_loadu_ps(in + from[j] + ow);
                    for (int i = 0; i < R; ++i) acc[i][j] = _mm256_fmadd_ps(a[i], b, acc[i][j]);
                }
            }
        }
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < C; ++j)
            if (i < rows && j < cols) dw[(m0 + i) * ld + k0 + j] = sum_lanes_avx2(acc[i][j]);
}
#endif

}  // namespace

int64_t direct_padded_plane(const DirectConv& c) {
    return (c.h + c.dilation_h * (c.kernel_h - 1)) * (c.w + c.dilation_w * (c.kernel_w - 1));
}

void direct_transpose_dy(const DirectConv& c, const float* dy, float* dyt) {
    const int64_t row = (c.out_channels + kLanes - 1) / kLanes * kLanes, plane = c.plane();
    int64_t p0 = 0;
#if DSK_CONV_DIRECT_AVX512
    // Blocks of 8 positions x 8 channels in registers (the direct path runs on AVX-512 CPUs only).
    const int64_t channels8 = c.out_channels / 8 * 8;
    for (; p0 + 8 <= plane; p0 += 8)
        for (int64_t m = 0; m < channels8; m += 8) transpose_8x8(dy + m * plane + p0, plane, dyt + p0 * row + m, row);
    for (int64_t p = 0; p < p0; ++p)
        for (int64_t m = channels8; m < c.out_channels; ++m) dyt[p * row + m] = dy[m * plane + p];
    for (int64_t p = 0; p < p0; ++p) std::fill(dyt + p * row + c.out_channels, dyt + (p + 1) * row, 0.0f);
#endif
    for (int64_t p = p0; p < plane; ++p) {
        float* out = dyt + p * row;
        for (int64_t m = 0; m < c.out_channels; ++m) out[m] = dy[m * plane + p];
        std::fill(out + c.out_channels, out + row, 0.0f);
    }
}

void direct_pad_x(const DirectConv& c, const float* x, float* xp) {
    const int64_t hp = c.h + c.dilation_h * (c.kernel_h - 1), wp = c.w + c.dilation_w * (c.kernel_w - 1);
    std::fill(xp, xp + c.in_channels * hp * wp, 0.0f);
    for (int64_t ci = 0; ci < c.in_channels; ++ci)
        for (int64_t ih = 0; ih < c.h; ++ih)
            std::copy(x + (ci * c.h + ih) * c.w, x + (ci * c.h + ih + 1) * c.w,
                      xp + (ci * hp + ih + c.pad_top) * wp + c.pad_left);
}

void conv_direct_weight_grad_t(const DirectConv& c, const float* dyt, int64_t dyt_stride,
                               const float* xp, int64_t xp_stride, int64_t images, int64_t k0,
                               int64_t count, float* dwt) {
#if DSK_CONV_DIRECT_AVX512
    for (int64_t k = k0; k < k0 + count; k += kGradTColumns) {
        const int64_t cols = std::min<int64_t>(kGradTColumns, k0 + count - k);
        switch (m_vectors(c)) {
            case 1: weight_grad_t_tile<1>(c, dyt, dyt_stride, xp, xp_stride, images, k, cols, dwt); break;
            case 2: weight_grad_t_tile<2>(c, dyt, dyt_stride, xp, xp_stride, images, k, cols, dwt); break;
            case 3: weight_grad_t_tile<3>(c, dyt, dyt_stride, xp, xp_stride, images, k, cols, dwt); break;
            default: weight_grad_t_tile<4>(c, dyt, dyt_stride, xp, xp_stride, images, k, cols, dwt); break;
        }
    }
#else
    (void)c, (void)dyt, (void)dyt_stride, (void)xp, (void)xp_stride, (void)images, (void)k0, (void)count, (void)dwt;
#endif
}

bool direct_conv_available() {
#if DSK_CONV_DIRECT_AVX512
    return direct_conv_masked() || cpu_has_avx2_fma();
#else
    return false;
#endif
}

bool direct_conv_weight_grad_applies(const DirectConv& c) {
    return direct_conv_masked() || (DSK_CONV_DIRECT_AVX512 && c.w >= kRowLanes && cpu_has_avx2_fma());
}

bool direct_conv_weight_grad_padded() {
    return !direct_conv_masked();
}

bool direct_conv_applies(const Window2d& window) {
    return direct_conv_available() && window.stride_h == 1 && window.stride_w == 1 && window.out_h == window.in_h &&
           window.out_w == window.in_w && window.in_h * window.in_w > 0;
}

int64_t direct_conv_scratch_floats(const DirectConv& c) {
    return direct_conv_masked() ? 0 : c.in_channels * direct_padded_plane(c) + kRowLanes;
}

DirectConv direct_conv_of(const Window2d& window, int64_t in_channels, int64_t out_channels) {
    return {.in_channels = in_channels,
            .out_channels = out_channels,
            .h = window.in_h,
            .w = window.in_w,
            .kernel_h = window.kernel_h,
            .kernel_w = window.kernel_w,
            .dilation_h = window.dilation_h,
            .dilation_w = window.dilation_w,
            .pad_top = window.pad_top,
            .pad_left = window.pad_left};
}

DirectConv direct_conv_transposed(const Window2d& window, int64_t in_channels, int64_t out_channels) {
    DirectConv c = direct_conv_of(window, in_channels, out_channels);
    c.pad_top = window.dilation_h * (window.kernel_h - 1) - window.pad_top;
    c.pad_left = window.dilation_w * (window.kernel_w - 1) - window.pad_left;
    return c;
}

DirectConvTaps::DirectConvTaps(const DirectConv& c) : conv(c) {
    const int64_t taps = c.taps(), vectors = this->vectors();
    offsets.resize(static_cast<size_t>(taps));
    masks.assign(static_cast<size_t>(vectors * taps), 0);
    for (int64_t kh = 0; kh < c.kernel_h; ++kh)
        for (int64_t kw = 0; kw < c.kernel_w; ++kw) {
            const int64_t t = kh * c.kernel_w + kw;
            const int64_t dh = kh * c.dilation_h - c.pad_top, dw = kw * c.dilation_w - c.pad_left;
            offsets[static_cast<size_t>(t)] = dh * c.w + dw;
            // The output rows and columns whose tap reads inside the input (no division per
            // position: this runs on every call that is not cached, batch-1 inference included).
            const int64_t row_begin = std::max<int64_t>(0, -dh), row_end = std::min(c.h, c.h - dh);
            const int64_t col_begin = std::max<int64_t>(0, -dw), col_end = std::min(c.w, c.w - dw);
            for (int64_t oh = row_begin; oh < row_end; ++oh)
                for (int64_t p = oh * c.w + col_begin; p < oh * c.w + col_end; ++p)
                    masks[static_cast<size_t>(p / kLanes * taps + t)] |= static_cast<uint16_t>(1u << (p % kLanes));
        }
}

void conv_direct_channels(const DirectConvPlan& plan, const float* x, int64_t m0, int64_t count,
                          float* z, const DirectConvOutput& output, const GemmEpilogue* epilogue, float* scratch) {
#if DSK_CONV_DIRECT_AVX512
    if (!direct_conv_masked()) {
        conv_direct_channels_avx2(plan, x, m0, count, z, output, epilogue, scratch);
        return;
    }
    // A short last vector (1 to 8 of its 16 positions in the plane) goes to tail_tile.
    const int64_t tail = plan.conv.plane() % kLanes <= 8 ? plan.conv.plane() % kLanes : 0;
    const int64_t vectors = plan.vectors() - (tail > 0 ? 1 : 0);
    for (int64_t m = m0; m < m0 + count; m += kTileRows) {
        const int64_t rows = std::min(kTileRows, m0 + count - m);
        int64_t v = 0;
        for (; v + kTileVectors <= vectors; v += kTileVectors)
            tile<kTileVectors>(plan, x, m, rows, v, z, output, epilogue);
        if (vectors - v == 2) tile<2>(plan, x, m, rows, v, z, output, epilogue);
        if (vectors - v == 1) tile<1>(plan, x, m, rows, v, z, output, epilogue);
        switch (tail) {
            case 1: tail_tile<1>(plan, x, m, rows, z, output, epilogue); break;
            case 2: tail_tile<2>(plan, x, m, rows, z, output, epilogue); break;
            case 3: tail_tile<3>(plan, x, m, rows, z, output, epilogue); break;
            case 4: tail_tile<4>(plan, x, m, rows, z, output, epilogue); break;
            case 5: tail_tile<5>(plan, x, m, rows, z, output, epilogue); break;
            case 6: tail_tile<6>(plan, x, m, rows, z, output, epilogue); break;
            case 7: tail_tile<7>(plan, x, m, rows, z, output, epilogue); break;
            case 8: tail_tile<8>(plan, x, m, rows, z, output, epilogue); break;
            default: break;
        }
    }
#else
    (void)plan, (void)x, (void)m0, (void)count, (void)z, (void)output, (void)epilogue, (void)scratch;
#endif
}

void conv_direct_weight_grad(const DirectConvTaps& taps, const float* dy, int64_t dy_stride,
                             const float* x, int64_t x_stride, int64_t images, int64_t m0,
                             int64_t count, float* dw) {
#if DSK_CONV_DIRECT_AVX512
    const int64_t k = taps.conv.in_channels * taps.conv.taps();
    if (direct_conv_weight_grad_padded()) {
        for (int64_t m = m0; m < m0 + count; m += kGradRowsAvx2)
            for (int64_t k0 = 0; k0 < k; k0 += kGradColumnsAvx2)
                weight_grad_tile_avx2(taps.conv, dy, dy_stride, x, x_stride, images, m,
                                      std::min<int64_t>(kGradRowsAvx2, m0 + count - m), k0,
                                      std::min<int64_t>(kGradColumnsAvx2, k - k0), dw, k);
        return;
    }
    for (int64_t m = m0; m < m0 + count; m += kGradRows)
        for (int64_t k0 = 0; k0 < k; k0 += kGradColumns)
            weight_grad_tile(taps, dy, dy_stride, x, x_stride, images, m, std::min<int64_t>(kGradRows, m0 + count - m),
                             k0, std::min<int64_t>(kGradColumns, k - k0), dw, k);
#else
    (void)taps, (void)dy, (void)dy_stride, (void)x, (void)x_stride, (void)images, (void)m0, (void)count, (void)dw;
#endif
}

}  // namespace dsk::cpu
