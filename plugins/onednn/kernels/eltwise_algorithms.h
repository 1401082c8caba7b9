// eltwise_algorithms.h - which dsk activations oneDNN's eltwise algorithms compute exactly (the
// same function, not an approximation of it), for the eltwise kernels and the fused post-ops.
#ifndef DSK_ONEDNN_KERNELS_ELTWISE_ALGORITHMS_H_
#define DSK_ONEDNN_KERNELS_ELTWISE_ALGORITHMS_H_

#include <optional>
#include <string>

#include <oneapi/dnnl/dnnl.hpp>
#include <dsk/dsk_op.hpp>

namespace dsk::onednn {

struct Eltwise {
    dnnl::algorithm algorithm;
    float alpha = 0.0f, beta = 0.0f;
};

// The oneDNN algorithm for activation `name` (an op name, or ActivationGrad's `activation`
// attribute; Gelu reads `approximate` from `attrs`), or nothing:
//   Relu -> relu, Sigmoid -> logistic, Tanh -> tanh, Gelu -> gelu_erf ("none") / gelu_tanh,
//   Silu -> swish (alpha 1), HardSwish -> hardswish (x * relu6(x + 3) / 6 in oneDNN 2.6),
//   Neg -> linear (alpha -1, beta 0).
// HardSigmoid has no oneDNN 2.6 algorithm (it stays on cpu). Throws only for a malformed
// `approximate` attribute.
inline std::optional<Eltwise> eltwise_for(const std::string& name, const Attrs& attrs) {
    using dnnl::algorithm;
    if (name == "Relu") return Eltwise{algorithm::eltwise_relu};
    if (name == "Sigmoid") return Eltwise{algorithm::eltwise_logistic};
    if (name == "Tanh") return Eltwise{algorithm::eltwise_tanh};
    if (name == "Silu") return Eltwise{algorithm::eltwise_swish, 1.0f};
    if (name == "HardSwish") return Eltwise{algorithm::eltwise_hardswish};
    if (name == "Neg") return Eltwise{algorithm::eltwise_linear, -1.0f, 0.0f};
    if (name == "Gelu") {
        const std::string approximate = attrs.get_string("approximate", "none");
        if (approximate == "none") return Eltwise{algorithm::eltwise_gelu_erf};
        if (approximate == "tanh") return Eltwise{algorithm::eltwise_gelu_tanh};
    }
    return std::nullopt;
}

}  // namespace dsk::onednn

#endif  // DSK_ONEDNN_KERNELS_ELTWISE_ALGORITHMS_H_
