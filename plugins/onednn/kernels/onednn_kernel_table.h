// onednn_kernel_table.h - the onednn backend's kernels, one table per file, in the cpu plugin's
// KernelDef form (plugins/cpu/kernels/kernel_table.h): the same table registers the kernels and
// answers supports_op, so placement and execution cannot disagree. Each kernel's `accepts`
// states the limits of its oneDNN primitive (ranks, attributes); a node outside them is placed on
// cpu by the kernel.
#ifndef DSK_ONEDNN_KERNELS_ONEDNN_KERNEL_TABLE_H_
#define DSK_ONEDNN_KERNELS_ONEDNN_KERNEL_TABLE_H_

#include <span>

#include "kernels/kernel_table.h"

namespace dsk::onednn {

using cpu::KernelArgs;
using cpu::KernelDef;
using cpu::kernel;
using cpu::optional_inputs_from;
using cpu::optional_outputs_from;
constexpr uint32_t F32 = DSK_DTYPE_F32;
constexpr uint32_t U8 = DSK_DTYPE_U8;
constexpr uint32_t I8 = DSK_DTYPE_I8;
constexpr uint32_t I32 = DSK_DTYPE_I32;
constexpr uint32_t ANY = 0;

std::span<const KernelDef> matmul_kernels();         // matmul_kernels.cpp
std::span<const KernelDef> conv_kernels();           // conv_kernels.cpp
std::span<const KernelDef> pooling_kernels();        // pooling_kernels.cpp
std::span<const KernelDef> normalization_kernels();  // normalization_kernels.cpp
std::span<const KernelDef> eltwise_kernels();        // eltwise_kernels.cpp
std::span<const KernelDef> softmax_kernels();        // softmax_kernels.cpp
std::span<const KernelDef> integer_kernels();        // integer_kernels.cpp

// Every onednn kernel, registered for backend "onednn".
const cpu::KernelTable& kernel_table();

// Whether oneDNN runs int8 products with VNNI here (AVX512-VNNI or AVX-VNNI): the int8 kernels
// (integer_kernels.cpp) take nodes only then, and cpu runs them elsewhere.
bool has_vnni() noexcept;

// For `accepts` functions (which must not throw): runs `check` and answers false if it throws
// (a malformed attribute: the cpu kernel then reports it).
template <class F>
bool accepts_if(F&& check) noexcept {
    try {
        return check();
    } catch (...) {
        return false;
    }
}

}  // namespace dsk::onednn

#endif  // DSK_ONEDNN_KERNELS_ONEDNN_KERNEL_TABLE_H_
