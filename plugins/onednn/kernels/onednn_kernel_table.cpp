// onednn_kernel_table.cpp - the onednn backend's kernel table (see onednn_kernel_table.h).
#include "kernels/onednn_kernel_table.h"

namespace dsk::onednn {

const cpu::KernelTable& kernel_table() {
    static const cpu::KernelTable table(
        "onednn", {matmul_kernels(), conv_kernels(), pooling_kernels(), normalization_kernels(),
                   eltwise_kernels(), softmax_kernels(), integer_kernels()});
    return table;
}

}  // namespace dsk::onednn
