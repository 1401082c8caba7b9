// window.h - the sliding-window attributes that Conv and pooling share (strides, pads as top,
// left, bottom, right, dilations) and the output size they give, as in docs/ops.md.
#ifndef DSK_VULKAN_KERNELS_WINDOW_H_
#define DSK_VULKAN_KERNELS_WINDOW_H_

#include <cstdint>
#include <string>
#include <vector>

#include <dsk/dsk_window.hpp>

namespace dsk::vulkan {

using Window = dsk::Window2d;

// The window of a node over an in_h x in_w input (dsk_window.hpp): "" on success, else what is
// wrong, naming the attribute.
inline std::string read_window(const Attrs& attrs, int64_t in_h, int64_t in_w, int64_t kernel_h,
                               int64_t kernel_w, bool dilations_allowed, Window* out) {
    return read_window_2d(attrs, in_h, in_w, kernel_h, kernel_w, dilations_allowed, out);
}

}  // namespace dsk::vulkan

#endif  // DSK_VULKAN_KERNELS_WINDOW_H_
