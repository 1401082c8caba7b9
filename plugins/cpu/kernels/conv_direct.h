// conv_direct.h - a direct convolution for the common "same" case: stride 1 and an output plane
// the size of the input plane (3x3 pad 1, 5x5 pad 2, ...; dilations allowed). Conv's forward pass
// runs on it, and so does ConvGradInput, which for stride 1 is itself such a convolution: of dY
// with the weights flipped in space and transposed between channels. ConvGradWeight multiplies
// dY by the columns: with 8 or more input and at most 64 output channels per group, from dY
// transposed and x padded once per call, the output channels in the vector lanes (each position
// one aligned load of its dY row and a broadcast per column, no horizontal sums: dW^T comes
// out); otherwise with the columns read by the masked loads, dot products over the positions
// kept in 16 lanes.
//
// No column matrix and no packing of it: the output plane is vectorized flat, 16 positions per
// AVX-512 register, and each tap of each input channel is one masked load of 16 input values at a
// constant offset from the output positions (the same flat index, shifted by the tap), the mask
// zeroing the padding and the positions whose tap would wrap into the next or previous row.
// A register tile of 8 output channels x 48 positions takes 8 weight broadcasts and 3 such loads
// per (tap, channel) for 24 FMAs, so the loop runs at the FMA rate. Taps are the outer loop and
// input channels the inner one, so a tap's masks stay in mask registers while the loads step
// through the channels, and each block of 8 output channels reads its weights as one contiguous
// run. A plane that ends in a short vector (14x14: 196 positions, 4 past the last full vector)
// takes its last few positions with the 8 output channels in the lanes instead, each position's
// input value broadcast, so those positions waste no lanes. The bias and a Relu are applied in
// registers before the store (DirectConvOutput); anything else leaves through the caller's
// GemmEpilogue while the tile is in L1. The im2col path of an SGEMM packs every column value for
// only out_channels multiply-adds; here nothing is packed but the weights (once per call, or,
// where the weights keep their version across a session's runs, once per version:
// conv_kernels.cpp's kept_direct_plans).
//
// Without AVX-512 (AVX2 and FMA: 8 lanes, 16 vector registers, no mask registers, and masked
// loads and stores that are slow on AMD's cores), the tiles are 3 output channels x up to 4
// vectors of 8 positions of one output row, over a copy of the input with its padding written
// out as zeros (once per call, in the caller's scratch), so every (tap, channel) is a plain load
// at a constant offset; the lanes past a row's end are stored into the next row, which is stored
// after it (masked only at the plane's end). ConvGradWeight's direct sums go the same way, by
// rows of the padded input (dW in rows, not transposed, on AVX2).
//
// Each output is one sum over (tap, input channel) in that order, whatever the threads (the short
// tail keeps even and odd channels in two sums, added last): results are reproducible, though
// not bitwise those of the SGEMM path (which sums K in slices).
#ifndef DSK_CPU_KERNELS_CONV_DIRECT_H_
#define DSK_CPU_KERNELS_CONV_DIRECT_H_

#include <cstdint>
#include <vector>

#include "gemm.h"
#include "window_geometry.h"

namespace dsk::cpu {

// One group of a same-size convolution: `in_channels` planes of h x w in, `out_channels` out.
struct DirectConv {
    int64_t in_channels = 0, out_channels = 0;
    int64_t h = 0, w = 0;
    int64_t kernel_h = 0, kernel_w = 0, dilation_h = 1, dilation_w = 1, pad_top = 0, pad_left = 0;

    int64_t plane() const { return h * w; }
    int64_t taps() const { return kernel_h * kernel_w; }
    bool operator==(const DirectConv&) const = default;
};

// True when the CPU has a direct path: AVX-512 (F and VL), or AVX2 and FMA.
bool direct_conv_available();

// True when `window` is a same-size, stride-1 window and direct_conv_available().
bool direct_conv_applies(const Window2d& window);

// True when the CPU has the direct weight-gradient sums for `c`: AVX-512, or AVX2 and FMA for
// planes 8 or more wide (a row's last vector overlaps the one before).
bool direct_conv_weight_grad_applies(const DirectConv& c);
// True where those sums read x padded (direct_pad_x): the AVX2 form, which has no masked loads.
bool direct_conv_weight_grad_padded();

// Conv's window as a DirectConv (direct_conv_applies must hold).
DirectConv direct_conv_of(const Window2d& window, int64_t in_channels, int64_t out_channels);

// ConvGradInput's: dX is the DirectConv of dY with the flipped window (pads mirrored).
// (ConvGradWeight uses Conv's own window: its sums are over the same products.)
DirectConv direct_conv_transposed(const Window2d& window, int64_t in_channels, int64_t out_channels);

// Where each output vector's taps read: the input index minus the output index of each tap,
// and for each vector of 16 output positions and tap, which lanes read inside the input.
struct DirectConvTaps {
    DirectConv conv;
    std::vector<uint16_t> masks;   // [vector * taps + tap]
    std::vector<int64_t> offsets;  // [tap]

    explicit DirectConvTaps(const DirectConv& c);
    int64_t vectors() const { return (conv.plane() + 15) / 16; }
};

// What a call shares between images: the taps, and the weights in blocks of 8 output channels
// (zero-padded past out_channels), each block [taps][in_channels][8].
struct DirectConvPlan : DirectConvTaps {
    std::vector<float> weights;  // [m / 8][tap][c][m % 8]
    int64_t m_padded = 0;

    // `weight(m, c, tap)`: the weight of output channel m, input channel c, tap (kh * kW + kw).
    template <class Weight>
    DirectConvPlan(const DirectConv& c, Weight&& weight) : DirectConvTaps(c) {
        m_padded = (c.out_channels + 7) / 8 * 8;
        weights.assign(static_cast<size_t>(c.in_channels * c.taps() * m_padded), 0.0f);
        for (int64_t m = 0; m < c.out_channels; ++m)
            for (int64_t t = 0; t < c.taps(); ++t)
                for (int64_t ci = 0; ci < c.in_channels; ++ci)
                    weights[static_cast<size_t>(((m / 8 * c.taps() + t) * c.in_channels + ci) * 8 + m % 8)] =
                        weight(m, ci, t);
    }
    // The weights of the block of output channels m0 .. m0 + 7 (m0 a multiple of 8).
    const float* block_weights(int64_t m0) const { return weights.data() + m0 * conv.taps() * conv.in_channels; }
};

// What each tile does to its sums in registers before the store: z = sum + bias[m] (no bias:
// null), then z = max(0, z) when `relu` (x < 0 ? 0 : x, NaN kept: activation_map's Relu, bitwise).
struct DirectConvOutput {
    const float* bias = nullptr;  // indexed by the output channel of the plan
    bool relu = false;
};

// The floats conv_direct_channels needs in `scratch`: none with AVX-512; with AVX2, the input
// planes with their padding written out (the row tiles have no masked loads), and 8 more.
int64_t direct_conv_scratch_floats(const DirectConv& c);

// Output channels [m0, m0 + count) of one image (m0 a multiple of 8): z[m * plane + p] = the sums
// after `output`; each finished tile (channels x positions) then goes through `epilogue` (may be
// null) as rows m, columns p of a [out_channels, plane] matrix at z. x: the image's input planes;
// scratch: direct_conv_scratch_floats(plan.conv) floats of the caller's.
void conv_direct_channels(const DirectConvPlan& plan, const float* x, int64_t m0, int64_t count,
                          float* z, const DirectConvOutput& output, const GemmEpilogue* epilogue, float* scratch);

// ConvGradWeight's layouts for conv_direct_weight_grad_t: dY of one image transposed to
// [position][out_channels padded to 16] (dyt), and x with its padding written out as zeros
// ([channel][h + pads][w + pads], xp), so that every tap is a plain offset.
int64_t direct_padded_plane(const DirectConv& c);
void direct_transpose_dy(const DirectConv& c, const float* dy, float* dyt);
void direct_pad_x(const DirectConv& c, const float* x, float* xp);

// dWt [k][out_channels] (k = c * taps + tap, rows [k0, k0 + count)) = the sums over `images`
// images (their dyt and xp `dyt_stride` / `xp_stride` floats apart): 16 output channels per
// vector, each position's dY row one aligned load and each (channel, tap) one broadcast.
void conv_direct_weight_grad_t(const DirectConv& c, const float* dyt, int64_t dyt_stride,
                               const float* xp, int64_t xp_stride, int64_t images, int64_t k0,
                               int64_t count, float* dwt);

// ConvGradWeight's sums for rows [m0, m0 + count) of dW [out_channels, in_channels * taps]:
// dw[m][(c * taps + t)] = the sum over `images` images of dY[m] times the input of channel c
// under tap t (each image's planes `dy_stride` / `x_stride` floats after the last; x padded by
// direct_pad_x where direct_conv_weight_grad_padded()). Each sum is kept in 16 lanes (8 on AVX2)
// over every image and position, in that order, then the lanes are added.
void conv_direct_weight_grad(const DirectConvTaps& taps, const float* dy, int64_t dy_stride,
                             const float* x, int64_t x_stride, int64_t images, int64_t m0,
                             int64_t count, float* dw);

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_CONV_DIRECT_H_
