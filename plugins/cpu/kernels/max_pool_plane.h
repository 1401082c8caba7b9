// max_pool_plane.h - MaxPool's 2x2, stride-2, unpadded window over one plane, for a kernel that
// pools what it has just computed while it is in cache (FusedConvMaxPool, conv_kernels.cpp). It
// runs MaxPool's own code for that window, so the results are bitwise those of the unfused pair.
#ifndef DSK_CPU_KERNELS_MAX_POOL_PLANE_H_
#define DSK_CPU_KERNELS_MAX_POOL_PLANE_H_

#include <cstdint>

namespace dsk::cpu {

// y [h / 2, w / 2] = the maxima of the 2x2 windows of x [h, w] (an odd last row or column is not
// read, as MaxPool leaves it); a NaN in a window wins, as in MaxPool.
void max_pool_plane_2x2(const float* x, int64_t h, int64_t w, float* y);

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_MAX_POOL_PLANE_H_
