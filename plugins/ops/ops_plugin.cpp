// The ops plugin: descriptor and registration only. Every op of docs/ops.md is defined in the
// file of its family (linear_ops.cpp, conv_ops.cpp, ...).
#include "op_families.h"

static void register_ops(dsk::Registrar& reg) {
    dsk::ops::register_linear_ops(reg);
    dsk::ops::register_conv_ops(reg);
    dsk::ops::register_pooling_ops(reg);
    dsk::ops::register_normalization_ops(reg);
    dsk::ops::register_activation_ops(reg);
    dsk::ops::register_elementwise_ops(reg);
    dsk::ops::register_softmax_ops(reg);
    dsk::ops::register_shape_ops(reg);
    dsk::ops::register_reduce_ops(reg);
    dsk::ops::register_dropout_ops(reg);
    dsk::ops::register_gather_ops(reg);
    dsk::ops::register_optimizer_ops(reg);
    dsk::ops::register_integer_ops(reg);
}

static const char* const provides[] = {"op:*", nullptr};
DSK_PLUGIN_DEFINE("The core operator set: schemas (shape inference, gradient rules) of docs/ops.md",
                  provides, register_ops);
