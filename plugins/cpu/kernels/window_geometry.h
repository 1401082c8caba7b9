// window_geometry.h - the sliding-window arithmetic that Conv and pooling share: kernel size,
// strides, pads (top, left, bottom, right), dilations, and the output size they give.
#ifndef DSK_CPU_KERNELS_WINDOW_GEOMETRY_H_
#define DSK_CPU_KERNELS_WINDOW_GEOMETRY_H_

#include <cstdint>
#include <string>

#include <dsk/dsk_window.hpp>

#include "kernel_table.h"

namespace dsk::cpu {

using dsk::Window2d;

// The window of the node (dsk_window.hpp), or fails naming the attribute.
inline Window2d window_2d(const KernelArgs& args, int64_t in_h, int64_t in_w, int64_t kernel_h,
                          int64_t kernel_w, bool dilations_allowed = true) {
    Window2d w;
    const std::string why = read_window_2d(args.attrs(), in_h, in_w, kernel_h, kernel_w, dilations_allowed, &w);
    if (!why.empty()) args.fail(why);
    return w;
}

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_WINDOW_GEOMETRY_H_
