// im2col.cpp - im2col and col2im (im2col.h), with AVX-512 rows for stride 1.
#include "im2col.h"

#include <algorithm>
#include <cstring>

#include "cpu_features.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define DSK_IM2COL_AVX512 1
#else
#define DSK_IM2COL_AVX512 0
#endif

namespace dsk::cpu {
namespace {

// One output row of a tap, stride 1: out[o] = in[o + shift] for o in [begin, end), 0 for the
// other o < n.
void shifted_row(const float* in, int64_t shift, int64_t begin, int64_t end, int64_t n, float* out) {
    std::fill(out, out + begin, 0.0f);
    std::memcpy(out + begin, in + begin + shift, static_cast<size_t>(end - begin) * sizeof(float));
    std::fill(out + end, out + n, 0.0f);
}

// col2im's step for one row, stride 1: out[o + shift] += in[o] for o in [begin, end).
void add_shifted_row(const float* in, int64_t shift, int64_t begin, int64_t end, float* out) {
    for (int64_t o = begin; o < end; ++o) out[o + shift] += in[o];
}

#if DSK_IM2COL_AVX512
// Lanes [lo, hi) of 16 (none when hi <= lo).
inline __mmask16 lanes(int64_t lo, int64_t hi) {
    if (hi <= lo) return 0;
    return static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

// shifted_row, 16 values per masked load and store: the load's mask leaves the padding 0 and
// never reads outside [begin, end) + shift.
__attribute__((target("avx512f"))) void shifted_row_avx512(const float* in, int64_t shift,
                                                           int64_t begin, int64_t end, int64_t n,
                                                           float* out) {
    for (int64_t o = 0; o < n; o += 16) {
        const int64_t count = std::min<int64_t>(16, n - o);
        const __mmask16 load =
            lanes(std::clamp<int64_t>(begin - o, 0, count), std::clamp<int64_t>(end - o, 0, count));
        _mm512_mask_storeu_ps(out + o, lanes(0, count), _mm512_maskz_loadu_ps(load, in + shift + o));
    }
}

// add_shifted_row, 16 values at a time (each sum as the scalar loop's).
__attribute__((target("avx512f"))) void add_shifted_row_avx512(const float* in, int64_t shift,
                                                               int64_t begin, int64_t end,
                                                               float* out) {
    float* dst = out + shift;
    for (int64_t o = begin; o < end; o += 16) {
        const __mmask16 m = lanes(0, std::min<int64_t>(16, end - o));
        _mm512_mask_storeu_ps(dst + o, m,
                              _mm512_add_ps(_mm512_maskz_loadu_ps(m, dst + o), _mm512_maskz_loadu_ps(m, in + o)));
    }
}
#endif

}  // namespace

void im2col(const float* x, const Window2d& w, int64_t channels, float* col, int64_t ld) {
    const int64_t out_plane = w.out_h * w.out_w;
    const bool rows_avx512 = DSK_IM2COL_AVX512 && w.stride_w == 1 && cpu_has_avx512f();
    for (int64_t c = 0; c < channels; ++c) {
        const float* plane = x + c * w.in_h * w.in_w;
        for (int64_t kh = 0; kh < w.kernel_h; ++kh) {
            int64_t oh0, oh1;
            w.valid_rows(kh, &oh0, &oh1);
            for (int64_t kw = 0; kw < w.kernel_w; ++kw) {
                float* row = col + ((c * w.kernel_h + kh) * w.kernel_w + kw) * ld;
                int64_t ow0, ow1;
                w.valid_columns(kw, &ow0, &ow1);
                const int64_t shift = kw * w.dilation_w - w.pad_left;
                std::fill(row, row + oh0 * w.out_w, 0.0f);
                for (int64_t oh = oh0; oh < oh1; ++oh) {
                    const float* in =
                        plane + (oh * w.stride_h - w.pad_top + kh * w.dilation_h) * w.in_w;
                    float* out = row + oh * w.out_w;
#if DSK_IM2COL_AVX512
                    if (rows_avx512) {
                        shifted_row_avx512(in, shift, ow0, ow1, w.out_w, out);
                        continue;
                    }
#endif
                    if (w.stride_w == 1) {
                        shifted_row(in, shift, ow0, ow1, w.out_w, out);
                        continue;
                    }
                    std::fill(out, out + ow0, 0.0f);
                    for (int64_t ow = ow0; ow < ow1; ++ow) out[ow] = in[ow * w.stride_w + shift];
                    std::fill(out + ow1, out + w.out_w, 0.0f);
                }
                std::fill(row + oh1 * w.out_w, row + out_plane, 0.0f);
            }
        }
    }
}

void col2im(const float* col, const Window2d& w, int64_t channels, float* x, int64_t ld) {
    const bool rows_avx512 = DSK_IM2COL_AVX512 && w.stride_w == 1 && cpu_has_avx512f();
    for (int64_t c = 0; c < channels; ++c) {
        float* plane = x + c * w.in_h * w.in_w;
        for (int64_t kh = 0; kh < w.kernel_h; ++kh) {
            int64_t oh0, oh1;
            w.valid_rows(kh, &oh0, &oh1);
            for (int64_t kw = 0; kw < w.kernel_w; ++kw) {
                const float* row = col + ((c * w.kernel_h + kh) * w.kernel_w + kw) * ld;
                int64_t ow0, ow1;
                w.valid_columns(kw, &ow0, &ow1);
                const int64_t shift = kw * w.dilation_w - w.pad_left;
                for (int64_t oh = oh0; oh < oh1; ++oh) {
                    float* out = plane + (oh * w.stride_h - w.pad_top + kh * w.dilation_h) * w.in_w;
                    const float* in = row + oh * w.out_w;
#if DSK_IM2COL_AVX512
                    if (rows_avx512) {
                        add_shifted_row_avx512(in, shift, ow0, ow1, out);
                        continue;
                    }
#endif
                    if (w.stride_w == 1) {
                        add_shifted_row(in, shift, ow0, ow1, out);
                        continue;
                    }
                    for (int64_t ow = ow0; ow < ow1; ++ow) out[ow * w.stride_w + shift] += in[ow];
                }
            }
        }
    }
}

}  // namespace dsk::cpu
