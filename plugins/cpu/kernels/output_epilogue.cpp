// output_epilogue.cpp - the tile epilogue of output_epilogue.h.
#include "output_epilogue.h"

#include <cstring>

namespace dsk::cpu {

void OutputEpilogue::apply(const void* self, int64_t i0, int64_t j0, int64_t rows, int64_t cols,
                           float* c, int64_t ldc) {
    const OutputEpilogue& e = *static_cast<const OutputEpilogue*>(self);
    if (e.bias) {
        for (int64_t r = 0; r < rows; ++r) {
            float* z = c + r * ldc;
            const float* b = e.bias + (i0 + r) * e.bias_row_step + j0 * e.bias_col_step;
            if (e.bias_col_step == 0) {
                const float v = e.bias_scale * b[0];
                for (int64_t j = 0; j < cols; ++j) z[j] += v;
            } else {
                for (int64_t j = 0; j < cols; ++j) z[j] += e.bias_scale * b[j];
            }
        }
    }
    float* y = e.y + i0 * e.ldy + j0;
    if (e.activation) {
        activation_map(*e.activation, c, ldc, y, e.ldy, rows, cols);
    } else if (y != c) {
        for (int64_t r = 0; r < rows; ++r)
            std::memcpy(y + r * e.ldy, c + r * ldc, static_cast<size_t>(cols) * sizeof(float));
    }
}

}  // namespace dsk::cpu
