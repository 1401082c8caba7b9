// conv_winograd.h - Winograd's minimal filtering F(2x2, 3x3) for 3x3, stride-1, pad-1 convolutions
// with 16 or more (a multiple of 16) input and output channels: Conv, ConvGradInput (the same
// convolution of dY with the flipped, transposed weights) and ConvGradWeight.
//
// Each 2x2 block of output positions (a tile) is computed from the 4x4 input block under it:
//
//     Y = A^T [ sum over input channels of U (.) V ] A,   U = G g G^T (4x4, per channel pair),
//                                                          V = B^T d B (4x4, per tile and channel)
//
// (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016). The sum over input
// channels at each of the 16 positions xi of the 4x4 is a matrix product M_xi [tiles, out] =
// V_xi [tiles, in] x U_xi [in, out]: 16 products per image in place of the direct convolution's
// 9 taps x 4 positions, 2.25x fewer multiply-adds. The transforms are additions (and halvings in
// G), done 16 channels per vector on the image transposed to [position][channel] once.
//
// The weight gradient runs the same algebra backwards: dU_xi [in, out] = sum over tiles of
// V_xi^T dM_xi with dM = A dY A^T, then dW = G^T dU G per channel pair.
//
// Rounding differs from the direct sums (the transforms add before they multiply); the errors
// stay near float epsilon times the size of the terms (tests: against double sums, 1e-5 relative).
// Each image's sums run in a fixed order, so results do not depend on the thread count.
#ifndef DSK_CPU_KERNELS_CONV_WINOGRAD_H_
#define DSK_CPU_KERNELS_CONV_WINOGRAD_H_

#include <cstdint>
#include <vector>

#include "conv_direct.h"
#include "window_geometry.h"

namespace dsk::cpu {

// One group of a 3x3 pad-1 stride-1 convolution: `in_channels` planes of h x w in, `out_channels`
// planes of h x w out.
struct WinogradConv {
    int64_t in_channels = 0, out_channels = 0;
    int64_t h = 0, w = 0;

    int64_t tiles_h() const { return (h + 1) / 2; }
    int64_t tiles_w() const { return (w + 1) / 2; }
    int64_t tiles() const { return tiles_h() * tiles_w(); }
    bool operator==(const WinogradConv&) const = default;
};

// An image's transformed input and products live in its thread's scratch at once; planes whose
// scratch would pass this (4 MiB: 14x14 with 32 -> 64 channels takes 102K floats, 28x28 with
// 64 -> 64 560K, 56x56 with 64 -> 64 2.2M) keep the direct path, whose memory does not grow with
// the plane. Larger planes would need their tiles in blocks of rows.
constexpr int64_t kWinogradMaxScratchFloats = int64_t{1} << 20;

// True when the CPU has AVX-512 and `window` is 3x3, stride 1, dilation 1, pad 1 on every side,
// with in and out channels (per group) multiples of 16 and at most kWinogradMaxScratchFloats of
// scratch.
bool winograd_applies(const Window2d& window, int64_t in_channels, int64_t out_channels);

// U = G g G^T for one 3x3 filter g (row-major) into u[16] (row-major 4x4).
void winograd_filter(const float* g, float* u);

// The transformed weights of one group: u[(xi * in_channels + c) * out_channels + m].
struct WinogradWeights {
    WinogradConv conv;
    std::vector<float> u;

    // `weight(m, c, tap)`: the weight of output channel m, input channel c, tap (kh * 3 + kw).
    template <class Weight>
    WinogradWeights(const WinogradConv& c, Weight&& weight) : conv(c) {
        u.resize(static_cast<size_t>(16 * c.in_channels * c.out_channels));
        float g[9], t[16];
        for (int64_t ci = 0; ci < c.in_channels; ++ci)  // m innermost: u is written in runs
            for (int64_t m = 0; m < c.out_channels; ++m) {
                for (int64_t tap = 0; tap < 9; ++tap) g[tap] = weight(m, ci, tap);
                winograd_filter(g, t);
                for (int64_t xi = 0; xi < 16; ++xi)
                    u[static_cast<size_t>((xi * c.in_channels + ci) * c.out_channels + m)] = t[xi];
            }
    }
};

// Floats of scratch each thread needs for winograd_conv_image / winograd_weight_grad_image.
int64_t winograd_scratch_floats(const WinogradConv& c);

// One image: y [out_channels][h][w] from x [in_channels][h][w], with `output`'s bias and Relu
// applied before the store. `scratch`: winograd_scratch_floats, 64-byte aligned. `next_x` (may be
// null): the input of the image this thread does next, fetched into the cache meanwhile.
void winograd_conv_image(const WinogradWeights& weights, const float* x, float* y, const DirectConvOutput& output,
                         float* scratch, const float* next_x = nullptr);

// winograd_conv_image in two steps, so that threads can share one image: input channels [c0, c1)
// transformed into `scratch`, then, once all are, output channels [m0, m1) of y from it; each
// step any number of disjoint ranges (multiples of 16) at once. Bitwise winograd_conv_image.
void winograd_transform_image(const WinogradConv& c, const float* x, float* scratch, int64_t c0, int64_t c1);
void winograd_output_channels(const WinogradWeights& weights, float* scratch, int64_t m0, int64_t m1, float* y,
                              const DirectConvOutput& output, const float* next_x = nullptr);

// One image's share of the weight gradient: du [16][in_channels][out_channels] = (first) or +=
// the sums of V_xi^T dM_xi for x [in][h][w] and dy [out][h][w]. `next_x`, `next_dy`: as above.
void winograd_weight_grad_image(const WinogradConv& c, const float* x, const float* dy, float* du, bool first,
                                float* scratch, const float* next_x = nullptr, const float* next_dy = nullptr);

// dw [out_channels][in_channels][3][3] = G^T dU G of du [16][in_channels][out_channels].
void winograd_weight_grad_filters(const WinogradConv& c, const float* du, float* dw);

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_CONV_WINOGRAD_H_
