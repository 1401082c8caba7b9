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
// V_xi [tiles, in] x U_xi [in, out]: 16 products per block of tiles in place of the direct
// convolution's 9 taps x 4 positions, 2.25x fewer multiply-adds. The transforms are additions
// (and halvings in G), done 16 channels per vector (one AVX-512 register, or two AVX2 ones) on the
// block's input rows transposed to [position][channel].
//
// The weight gradient runs the same algebra backwards: dU_xi [in, out] = sum over tiles of
// V_xi^T dM_xi with dM = A dY A^T, then dW = G^T dU G per channel pair.
//
// Rounding differs from the direct sums (the transforms add before they multiply); the errors
// stay near float epsilon times the size of the terms (tests: against double sums, 1e-5 relative).
// Each tile's sums run in a fixed order, so results do not depend on the thread count or on how an
// image is cut into blocks.
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

// Whether this CPU runs the Winograd kernels: AVX-512 (F and VL) or AVX2 with FMA. Both compute
// the same sums in the same order (conv_winograd_isa.inc, compiled for each): the same bits.
bool winograd_available();

// True when winograd_available() and `window` is 3x3, stride 1, dilation 1, pad 1 on every side,
// with in and out channels (per group) multiples of 16.
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

// An image goes in blocks of tile rows (2 output rows each): a block's transformed input,
// products and output tiles sit in its thread's scratch at once. winograd_block_rows gives the
// most tile rows whose scratch stays within kWinogradBlockFloats (1 MiB, one core's L2): the
// CNN's 14x14 plane with 32 -> 64 channels goes as one block, 56x56 with 64 -> 64 in blocks of
// 3 of its 28 tile rows. Results do not depend on the blocks: each tile's sums are the same.
constexpr int64_t kWinogradBlockFloats = int64_t{1} << 18;
int64_t winograd_block_rows(const WinogradConv& c);

// Floats of scratch for a block of `tile_rows` tile rows (64-byte aligned where it is used).
int64_t winograd_scratch_floats(const WinogradConv& c, int64_t tile_rows);

// Tile rows [first, first + rows) of one image: output rows [2 first, min(h, 2 (first + rows)))
// of y [out_channels][h][w] from x [in_channels][h][w], with `output`'s bias and Relu applied
// before the store. `next_x` (may be null): the input of the image this thread does next,
// fetched into the cache meanwhile.
void winograd_conv_rows(const WinogradWeights& weights, const float* x, float* y, const DirectConvOutput& output,
                        int64_t first, int64_t rows, float* scratch, const float* next_x = nullptr);

// The same block's share of the weight gradient: du [16][in_channels][out_channels] =
// (first_sum) or += the sums of V_xi^T dM_xi over its tiles, for x [in][h][w] and dy
// [out][h][w]. `next_x`, `next_dy`: as above.
void winograd_weight_grad_rows(const WinogradConv& c, const float* x, const float* dy, float* du, bool first_sum,
                               int64_t first, int64_t rows, float* scratch, const float* next_x = nullptr,
                               const float* next_dy = nullptr);

// dw [out_channels][in_channels][3][3] = G^T dU G of du [16][in_channels][out_channels].
void winograd_weight_grad_filters(const WinogradConv& c, const float* du, float* dw);

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_CONV_WINOGRAD_H_
