// activation_functions.h - the elementwise activations of the cpu kernels, shared by the
// standalone activation kernels (activation_kernels.cpp), the epilogues of the fused Gemm and
// Conv kernels (output_epilogue.cpp) and FusedElementwise (fused_elementwise_kernels.cpp), so
// that a fused node gives bitwise the results of the unfused ops.
//
// activation_map is compiled once per ISA (DSK_CPU_VECTOR_CLONES) and picked at load time, so
// both callers run the same machine code on a given CPU. Every element is computed on its own:
// how the callers cut the work into calls never changes a result.
#ifndef DSK_CPU_KERNELS_ACTIVATION_FUNCTIONS_H_
#define DSK_CPU_KERNELS_ACTIVATION_FUNCTIONS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kernel_table.h"

namespace dsk::cpu {

enum class Activation { relu, sigmoid, tanh, gelu, gelu_tanh, silu, hard_swish, hard_sigmoid, neg };

struct ActivationParams {
    Activation kind;
    float alpha = 0.0f;  // HardSigmoid
    float beta = 0.0f;
};

// y[r * ldy + i] = f(x[r * ldx + i]) for r in [0, rows), i in [0, cols): a block of rows (a
// tile of a GEMM's output, or one contiguous run with rows = 1). x and y may be the same array.
void activation_map(ActivationParams p, const float* x, int64_t ldx, float* y, int64_t ldy,
                    int64_t rows, int64_t cols);

// dx[i] = dy[i] * f'(x[i]) for i in [0, n): ActivationGrad. Any of the arrays may be the same.
void activation_grad_map(ActivationParams p, const float* dy, const float* x, float* dx, int64_t n);

// The activation called `name` (an op name: "Relu", ..., "HardSigmoid", "Neg") with Gelu's
// `approximate` ("none" or "tanh") and HardSigmoid's alpha and beta; nullopt with *why set for
// a name or an approximate it does not know.
std::optional<ActivationParams> make_activation(const std::string& name,
                                                const std::string& approximate, float alpha,
                                                float beta, std::string* why);

// The activation called `name` (an op name: "Relu", ..., "HardSigmoid", "Neg") for the node of
// `args`. HardSigmoid reads its alpha and beta from the attributes `alpha_attr` and `beta_attr`
// (defaults 0.2 and 0.5), Gelu its `approximate` attribute. Fails (INVALID_ARGUMENT naming the
// activations it knows) for any other name.
ActivationParams activation_params(const KernelArgs& args, std::string_view name,
                                   const char* alpha_attr = "alpha",
                                   const char* beta_attr = "beta");
// The same for an activation already known by its kind (the activation ops' kernels, which are
// registered one per kind and so look no name up on each call).
ActivationParams activation_params(const KernelArgs& args, Activation kind,
                                   const char* alpha_attr = "alpha",
                                   const char* beta_attr = "beta");

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_ACTIVATION_FUNCTIONS_H_
