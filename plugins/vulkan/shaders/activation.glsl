// activation.glsl - the elementwise activations and their derivatives, shared by unary.comp and
// activation_grad.comp. Formulas as the cpu reference (plugins/cpu/kernels/activation_kernels.cpp).
// Not a shader of its own: the build compiles *.comp only.

#define ACT_RELU 0
#define ACT_SIGMOID 1
#define ACT_TANH 2
#define ACT_GELU 3
#define ACT_GELU_TANH 4
#define ACT_SILU 5
#define ACT_HARD_SWISH 6
#define ACT_HARD_SIGMOID 7
#define ACT_NEG 8

const float kSqrt2OverPi = 0.7978845608028654;
const float kGeluCubic = 0.044715;
const float kInvSqrt2 = 0.7071067811865476;
const float kInvSqrt2Pi = 0.3989422804014327;

float sigmoid(float x) { return 1.0 / (1.0 + exp(-x)); }

// erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7); GLSL has none.
float erf_approx(float x) {
    const float t = 1.0 / (1.0 + 0.3275911 * abs(x));
    const float poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    const float e = 1.0 - poly * exp(-x * x);
    return x < 0.0 ? -e : e;
}

float activation(int op, float x, float alpha, float beta) {
    switch (op) {
        case ACT_RELU: return x < 0.0 ? 0.0 : x;
        case ACT_SIGMOID: return sigmoid(x);
        case ACT_TANH: return tanh(x);
        case ACT_GELU: return 0.5 * x * (1.0 + erf_approx(x * kInvSqrt2));
        case ACT_GELU_TANH: return x * sigmoid(2.0 * kSqrt2OverPi * (x + kGeluCubic * x * x * x));
        case ACT_SILU: return x * sigmoid(x);
        case ACT_HARD_SWISH: return x * clamp(x * (1.0 / 6.0) + 0.5, 0.0, 1.0);
        case ACT_HARD_SIGMOID: return clamp(alpha * x + beta, 0.0, 1.0);
        default: return -x;  // ACT_NEG
    }
}

// dY * f'(x).
float activation_grad(int op, float dy, float x, float alpha, float beta) {
    switch (op) {
        case ACT_RELU: return x <= 0.0 ? 0.0 : dy;
        case ACT_SIGMOID: { const float s = sigmoid(x); return dy * s * (1.0 - s); }
        case ACT_TANH: { const float t = tanh(x); return dy * (1.0 - t * t); }
        case ACT_GELU: {
            const float cdf = 0.5 * (1.0 + erf_approx(x * kInvSqrt2));
            const float pdf = kInvSqrt2Pi * exp(-0.5 * x * x);
            return dy * (cdf + x * pdf);
        }
        case ACT_GELU_TANH: {
            const float s = sigmoid(2.0 * kSqrt2OverPi * (x + kGeluCubic * x * x * x));
            const float du = kSqrt2OverPi * (1.0 + 3.0 * kGeluCubic * x * x);
            return dy * (s + 2.0 * x * s * (1.0 - s) * du);
        }
        case ACT_SILU: { const float s = sigmoid(x); return dy * (s * (1.0 + x * (1.0 - s))); }
        case ACT_HARD_SWISH: return dy * (x < -3.0 ? 0.0 : (x <= 3.0 ? x * (1.0 / 3.0) + 0.5 : 1.0));
        case ACT_HARD_SIGMOID: {
            const float v = alpha * x + beta;
            return (v > 0.0 && v < 1.0) ? dy * alpha : 0.0;
        }
        default: return -dy;  // ACT_NEG
    }
}
