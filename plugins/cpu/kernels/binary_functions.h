// binary_functions.h - the arithmetic of Add, Sub, Mul and Div over one row, shared by their
// kernels (elementwise_kernels.cpp) and FusedElementwise (fused_elementwise_kernels.cpp), so that
// a fused chain gives bitwise the results of the unfused ops.
#ifndef DSK_CPU_KERNELS_BINARY_FUNCTIONS_H_
#define DSK_CPU_KERNELS_BINARY_FUNCTIONS_H_

#include <cstdint>
#include <optional>
#include <string>

namespace dsk::cpu {

enum class BinaryOp { add, sub, mul, div };

// The op called `name` ("Add", "Sub", "Mul", "Div"), or nullopt.
std::optional<BinaryOp> binary_op(const std::string& name);

// c[i] = a[i*sa] op b[i*sb] for i in [0, n), with sa, sb in {0, 1}. c may be a or b. Compiled
// once per ISA (DSK_CPU_VECTOR_CLONES).
void binary_row(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* c,
                int64_t n);

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_BINARY_FUNCTIONS_H_
