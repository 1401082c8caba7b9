// output_epilogue.cpp - the tile epilogue of output_epilogue.h.
#include "output_epilogue.h"

#include <cstring>

#include "vector_math.h"

namespace dsk::cpu {
namespace {

// One row: z = z + bias (bias[j * kColStep] times scale), then out = Relu(z) when kRelu, else
// out = z; out may be z. The float operations of the bias loop and of activation_map's Relu
// (x < 0 ? 0 : x, NaN and -0 kept), in one pass.
template <bool kRelu, int kColStep>
inline void bias_row(float* z, const float* bias, float scale, float* out, int64_t cols) {
    const auto finish = [](float v) { return kRelu && v < 0.0f ? 0.0f : v; };
    if (out == z) {
        for (int64_t j = 0; j < cols; ++j) z[j] = finish(z[j] + scale * bias[j * kColStep]);
    } else {
        for (int64_t j = 0; j < cols; ++j) {
            const float v = z[j] + scale * bias[j * kColStep];
            z[j] = v;
            out[j] = finish(v);
        }
    }
}

// The tile's rows through bias_row, compiled per ISA: Z = C + bias into C, and Y (row r at
// y + r * ldy; may be C) = Relu(Z) or Z.
DSK_CPU_VECTOR_CLONES
void bias_rows(const OutputEpilogue& e, int64_t i0, int64_t j0, int64_t rows, int64_t cols, float* c, int64_t ldc,
               float* y, int64_t ldy, bool relu) {
    for (int64_t r = 0; r < rows; ++r) {
        float* z = c + r * ldc;
        float* out = y + r * ldy;
        const float* b = e.bias + (i0 + r) * e.bias_row_step + j0 * e.bias_col_step;
        if (e.bias_col_step == 0)
            relu ? bias_row<true, 0>(z, b, e.bias_scale, out, cols) : bias_row<false, 0>(z, b, e.bias_scale, out, cols);
        else
            relu ? bias_row<true, 1>(z, b, e.bias_scale, out, cols) : bias_row<false, 1>(z, b, e.bias_scale, out, cols);
    }
}

}  // namespace

GemmEpilogue OutputEpilogue::hook(const float* c, int64_t ldc) const {
    GemmEpilogue h{&apply, this};
    if (bias && bias_row_step == 0 && bias_col_step == 1 && bias_scale == 1.0f && y == c && ldy == ldc &&
        relu_or_none()) {
        h.column_bias = bias;
        h.relu = activation.has_value();
    }
    return h;
}

void OutputEpilogue::apply(const void* self, int64_t i0, int64_t j0, int64_t rows, int64_t cols,
                           float* c, int64_t ldc) {
    const OutputEpilogue& e = *static_cast<const OutputEpilogue*>(self);
    float* y = e.y + i0 * e.ldy + j0;
    if (e.bias) {
        // No activation or Relu: one pass writes Y. Another activation: Z first, then the map.
        const bool one_pass = e.relu_or_none();
        bias_rows(e, i0, j0, rows, cols, c, ldc, one_pass ? y : c, one_pass ? e.ldy : ldc,
                  one_pass && e.activation.has_value());
        if (one_pass) return;
    }
    if (e.activation) {
        activation_map(*e.activation, c, ldc, y, e.ldy, rows, cols);
    } else if (y != c) {
        for (int64_t r = 0; r < rows; ++r)
            std::memcpy(y + r * e.ldy, c + r * ldc, static_cast<size_t>(cols) * sizeof(float));
    }
}

}  // namespace dsk::cpu
