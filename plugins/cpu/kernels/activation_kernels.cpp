// activation_kernels.cpp - Relu, Sigmoid, Tanh, Gelu, Silu, HardSwish, HardSigmoid, Neg and
// ActivationGrad (dX = dY * f'(X)).
//
// Each activation is one loop over the elements, split over the thread pool in 16K-element
// chunks; every element is computed on its own, so the split never changes the result.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "activation_functions.h"
#include "kernel_table.h"
#include "vector_math.h"

namespace dsk::cpu {
namespace {

// Per element (a transcendental is a few tens of FLOPs; Relu is less, but memory-bound anyway).
constexpr dsk::Work kActivationWork{8.0, 8.0};       // X read, Y written
constexpr dsk::Work kActivationGradWork{8.0, 12.0};  // dY and X read, dX written

constexpr float kSqrt2OverPi = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;  // 1 / sqrt(2 pi)

// Relu in vectors of 8 (AVX in the AVX2 and AVX-512 clones, SSE pairs in the default one). The
// compiler's own loop checks x and y for overlap and peels for alignment first, which costs
// more than the work of a 16-float op. The last vector overlaps the one before rather than
// a scalar tail: Relu of a Relu is itself, so an in-place call may read back what it wrote.
[[gnu::always_inline]] inline void relu_row(const float* x, float* y, int64_t n) {
    typedef float f32x8 __attribute__((vector_size(32)));
    const auto relu8 = [](const float* from, float* to) {
        f32x8 v;
        __builtin_memcpy(&v, from, sizeof v);
        v = v < f32x8{} ? f32x8{} : v;  // NaN stays NaN, -0 stays -0
        __builtin_memcpy(to, &v, sizeof v);
    };
    if (n < 8) {
        for (int64_t i = 0; i < n; ++i) y[i] = x[i] < 0.0f ? 0.0f : x[i];
        return;
    }
    for (int64_t i = 0; i + 8 < n; i += 8) relu8(x + i, y + i);
    relu8(x + n - 8, y + n - 8);
}

// The Relu op's loop on its own: activation_map's frame (its other cases spill vectors to an
// aligned stack) costs as much again as a 16-float Relu.
DSK_CPU_VECTOR_CLONES
void relu_map(const float* x, float* y, int64_t n) { relu_row(x, y, n); }

}  // namespace

// One switch per row; each case is a loop the compiler vectorizes.
DSK_CPU_VECTOR_CLONES
void activation_map(ActivationParams p, const float* x_rows, int64_t ldx, float* y_rows,
                    int64_t ldy, int64_t rows, int64_t n) {
    for (int64_t r = 0; r < rows; ++r) {
        const float* x = x_rows + r * ldx;
        float* y = y_rows + r * ldy;
        switch (p.kind) {
            case Activation::relu:
                relu_row(x, y, n);
                break;
            case Activation::sigmoid:
                for (int64_t i = 0; i < n; ++i) y[i] = sigmoid_approx(x[i]);
                break;
            case Activation::tanh:
                for (int64_t i = 0; i < n; ++i) y[i] = tanh_approx(x[i]);
                break;
            case Activation::gelu:  // x * Phi(x), Phi by the libm erf (not vectorized)
                for (int64_t i = 0; i < n; ++i)
                    y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kInvSqrt2));
                break;
            case Activation::gelu_tanh:  // 0.5 x (1 + tanh(u)) = x sigmoid(2u): no cancellation
                for (int64_t i = 0; i < n; ++i) {
                    const float v = x[i];
                    y[i] = v * sigmoid_approx(2.0f * kSqrt2OverPi * (v + kGeluCubic * v * v * v));
                }
                break;
            case Activation::silu:
                for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid_approx(x[i]);
                break;
            case Activation::hard_swish:
                for (int64_t i = 0; i < n; ++i) {
                    float gate = x[i] * (1.0f / 6.0f) + 0.5f;
                    gate = gate < 0.0f ? 0.0f : gate;
                    gate = gate > 1.0f ? 1.0f : gate;
                    y[i] = x[i] * gate;
                }
                break;
            case Activation::hard_sigmoid:
                for (int64_t i = 0; i < n; ++i) {
                    float v = p.alpha * x[i] + p.beta;
                    v = v < 0.0f ? 0.0f : v;
                    y[i] = v > 1.0f ? 1.0f : v;
                }
                break;
            case Activation::neg:
                for (int64_t i = 0; i < n; ++i) y[i] = -x[i];
                break;
        }
    }
}

// dx[i] = dy[i] * f'(x[i]). Any of the arrays may be the same.
DSK_CPU_VECTOR_CLONES
void activation_grad_map(ActivationParams p, const float* dy, const float* x, float* dx,
                         int64_t n) {
    switch (p.kind) {
        case Activation::relu:
            for (int64_t i = 0; i < n; ++i) {
                const float g = dy[i];
                dx[i] = x[i] <= 0.0f ? 0.0f : g;
            }
            break;
        case Activation::sigmoid:
            for (int64_t i = 0; i < n; ++i) {
                const float s = sigmoid_approx(x[i]);
                dx[i] = dy[i] * s * (1.0f - s);
            }
            break;
        case Activation::tanh:
            for (int64_t i = 0; i < n; ++i) {
                const float t = tanh_approx(x[i]);
                dx[i] = dy[i] * (1.0f - t * t);
            }
            break;
        case Activation::gelu:  // Phi(x) + x phi(x)
            for (int64_t i = 0; i < n; ++i) {
                const float v = x[i];
                const float cdf = 0.5f * (1.0f + std::erf(v * kInvSqrt2));
                const float pdf = kInvSqrt2Pi * exp_approx(-0.5f * v * v);
                dx[i] = dy[i] * (cdf + v * pdf);
            }
            break;
        case Activation::gelu_tanh:  // with s = sigmoid(2u): s + 2 x s (1 - s) u'
            for (int64_t i = 0; i < n; ++i) {
                const float v = x[i];
                const float s = sigmoid_approx(2.0f * kSqrt2OverPi * (v + kGeluCubic * v * v * v));
                const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * v * v);
                dx[i] = dy[i] * (s + 2.0f * v * s * (1.0f - s) * du);
            }
            break;
        case Activation::silu:  // s + x s (1 - s)
            for (int64_t i = 0; i < n; ++i) {
                const float s = sigmoid_approx(x[i]);
                dx[i] = dy[i] * (s * (1.0f + x[i] * (1.0f - s)));
            }
            break;
        case Activation::hard_swish:  // 0 below -3, x/3 + 1/2 up to 3, 1 above (PyTorch)
            for (int64_t i = 0; i < n; ++i) {
                const float v = x[i];
                const float slope =
                    v < -3.0f ? 0.0f : (v <= 3.0f ? v * (1.0f / 3.0f) + 0.5f : 1.0f);
                dx[i] = dy[i] * slope;
            }
            break;
        case Activation::hard_sigmoid:  // alpha inside the linear part, 0 where clipped
            for (int64_t i = 0; i < n; ++i) {
                const float v = p.alpha * x[i] + p.beta;
                const float g = dy[i] * p.alpha;
                dx[i] = (v > 0.0f) & (v < 1.0f) ? g : 0.0f;
            }
            break;
        case Activation::neg:
            for (int64_t i = 0; i < n; ++i) dx[i] = -dy[i];
            break;
    }
}

namespace {

// The activation an op name stands for; compared as string_views (lengths first), no
// std::string built: looked up on every call of an activation kernel.
std::optional<Activation> activation_kind(std::string_view name) {
    static constexpr struct {
        std::string_view name;
        Activation kind;
    } kNames[] = {{"Relu", Activation::relu},         {"Sigmoid", Activation::sigmoid},
                  {"Tanh", Activation::tanh},         {"Gelu", Activation::gelu},
                  {"Silu", Activation::silu},         {"HardSwish", Activation::hard_swish},
                  {"HardSigmoid", Activation::hard_sigmoid}, {"Neg", Activation::neg}};
    const auto* known = std::find_if(std::begin(kNames), std::end(kNames),
                                     [&](const auto& entry) { return entry.name == name; });
    if (known == std::end(kNames)) return std::nullopt;
    return known->kind;
}

std::string unknown_activation(std::string_view name) {
    return "unknown activation \"" + std::string(name) +
           "\" (Relu, Sigmoid, Tanh, Gelu, Silu, HardSwish, HardSigmoid)";
}

std::string unknown_approximate(const std::string& approximate) {
    return "attribute 'approximate' = \"" + approximate + "\" is not one of \"none\", \"tanh\"";
}

}  // namespace

std::optional<ActivationParams> make_activation(const std::string& name,
                                                const std::string& approximate, float alpha,
                                                float beta, std::string* why) {
    const std::optional<Activation> kind = activation_kind(name);
    if (!kind) {
        *why = unknown_activation(name);
        return std::nullopt;
    }
    ActivationParams p{*kind};
    if (p.kind == Activation::gelu && approximate != "none") {
        if (approximate != "tanh") {
            *why = unknown_approximate(approximate);
            return std::nullopt;
        }
        p.kind = Activation::gelu_tanh;
    } else if (p.kind == Activation::hard_sigmoid) {
        p.alpha = alpha;
        p.beta = beta;
    }
    return p;
}

ActivationParams activation_params(const KernelArgs& args, std::string_view name,
                                   const char* alpha_attr, const char* beta_attr) {
    const std::optional<Activation> kind = activation_kind(name);
    if (!kind) args.fail(unknown_activation(name));
    return activation_params(args, *kind, alpha_attr, beta_attr);
}

ActivationParams activation_params(const KernelArgs& args, Activation kind,
                                   const char* alpha_attr, const char* beta_attr) {
    const Attrs& attrs = args.attrs();
    ActivationParams p{kind};
    if (p.kind == Activation::gelu) {
        const std::string approximate = attrs.get_string("approximate", "none");
        if (approximate == "tanh") {
            p.kind = Activation::gelu_tanh;
        } else if (approximate != "none") {
            args.fail(unknown_approximate(approximate));
        }
    } else if (p.kind == Activation::hard_sigmoid) {
        p.alpha = static_cast<float>(attrs.get_float(alpha_attr, 0.2));
        p.beta = static_cast<float>(attrs.get_float(beta_attr, 0.5));
    }
    return p;
}

namespace {

void expect_same_shape(const KernelArgs& args, const dsk_tensor_desc& a, const char* a_name,
                       const dsk_tensor_desc& b, const char* b_name) {
    if (shape_of(a) != shape_of(b))
        args.fail(std::string(a_name) + " " + shape_text(shape_of(a)) + " and " + b_name + " " +
                  shape_text(shape_of(b)) + " must have the same shape");
}

template <Activation kind>
void activation(const KernelArgs& args) {
    const ActivationParams p = activation_params(args, kind);
    args.expect_output_shape_of(0, args.input(0));
    const float* x = args.in(0);
    float* y = args.out(0);
    parallel_for(static_cast<size_t>(numel(args.input(0))), kActivationWork, [&](size_t b, size_t e) {
        if constexpr (kind == Activation::relu) {
            relu_map(x + b, y + b, static_cast<int64_t>(e - b));
        } else {
            activation_map(p, x + b, 0, y + b, 0, 1, static_cast<int64_t>(e - b));
        }
    });
}

void activation_grad(const KernelArgs& args) {
    const std::string name = args.attrs().get_string("activation", "");
    if (name.empty()) args.fail("attribute 'activation' is required");
    if (name == "Neg") args.fail("Neg has no ActivationGrad (its gradient is Neg of dY)");
    const ActivationParams p = activation_params(args, name);
    expect_same_shape(args, args.input(0), "dY", args.input(1), "X");
    args.expect_output_shape_of(0, args.input(1));
    const float* dy = args.in(0);
    const float* x = args.in(1);
    float* dx = args.out(0);
    parallel_for(static_cast<size_t>(numel(args.input(1))), kActivationGradWork, [&](size_t b, size_t e) {
        activation_grad_map(p, dy + b, x + b, dx + b, static_cast<int64_t>(e - b));
    });
}

const KernelDef kActivationKernels[] = {
    kernel("Relu", {F32}, {F32}, activation<Activation::relu>),
    kernel("Sigmoid", {F32}, {F32}, activation<Activation::sigmoid>),
    kernel("Tanh", {F32}, {F32}, activation<Activation::tanh>),
    kernel("Gelu", {F32}, {F32}, activation<Activation::gelu>),
    kernel("Silu", {F32}, {F32}, activation<Activation::silu>),
    kernel("HardSwish", {F32}, {F32}, activation<Activation::hard_swish>),
    kernel("HardSigmoid", {F32}, {F32}, activation<Activation::hard_sigmoid>),
    kernel("Neg", {F32}, {F32}, activation<Activation::neg>),
    kernel("ActivationGrad", {F32, F32}, {F32}, activation_grad),
};

}  // namespace

std::span<const KernelDef> activation_kernels() {
    return kActivationKernels;
}

}  // namespace dsk::cpu
