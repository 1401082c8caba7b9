// im2col.h - the column matrix of a convolution and back, for one image and group: `channels`
// input planes <-> [channels * kH * kW, oH * oW] (row (c * kH + kh) * kW + kw holds, for every
// output position, the input value under that tap, 0 in the padding). Conv multiplies the
// weights by it (conv_kernels.cpp); ConvGradInput adds the columns of W^T dY back (col2im).
//
// Both are pure data movement, done row by row of the output: with AVX-512 and stride 1 (the
// usual 3x3 "same" convolutions), each output row is one masked vector load and store per 16
// values, the masks doing the padding, instead of a memcpy and two fills (im2col) or a short
// scalar loop (col2im). The results are the same either way: col2im adds each value in the
// same order.
#ifndef DSK_CPU_KERNELS_IM2COL_H_
#define DSK_CPU_KERNELS_IM2COL_H_

#include <cstdint>

#include "window_geometry.h"

namespace dsk::cpu {

// col = the column matrix of `channels` planes of x; row r of it starts at col + r * ld
// (ld >= oH * oW: several images side by side).
void im2col(const float* x, const Window2d& w, int64_t channels, float* col, int64_t ld);

// x += the columns added back into the input planes (x must be zeroed by the caller); row r of
// the columns starts at col + r * ld.
void col2im(const float* col, const Window2d& w, int64_t channels, float* x, int64_t ld);

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_IM2COL_H_
