// conv_shape.h - the output shape of a 2-D convolution, shared by Conv and its backward ops
// (conv_ops.cpp) and ConvInteger (integer_ops.cpp).
#pragma once

#include "op_definition.h"

namespace dsk::ops {

// [N, M, oH, oW] for X [N, C, H, W] and W [M, C/group, kH, kW] under the node's strides, pads,
// dilations and group. `x_name`/`w_name` say where the two shapes come from (an input or an
// attribute of a backward op).
Shape conv_output_shape(const ShapeContext& ctx, const Shape& x, const char* x_name, const Shape& w,
                        const char* w_name);

}  // namespace dsk::ops
