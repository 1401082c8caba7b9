// dropout_kernels.cpp - Dropout and DropoutGrad.
//
// The mask comes from a counter-based generator: element i keeps its value when the SplitMix64
// hash of (seed, i) falls at or above ratio * 2^32, with the seed from host->exec_seed. Each
// element's draw depends only on the seed and its index, so the mask is reproducible run to run
// and the same whatever the thread count.
#include <algorithm>
#include <cstdint>
#include <string>

#include <dsk/dsk_random.hpp>

#include "kernel_table.h"

namespace dsk::cpu {
namespace {

// Per element: a copy (Y = X) or a hash, a compare and a multiply; X, Y and the mask.
constexpr dsk::Work kCopyWork{0.0, 9.0};
constexpr dsk::Work kMaskWork{8.0, 9.0};

float dropout_ratio(const KernelArgs& args) {
    const double ratio = args.attrs().get_float("ratio", 0.5);
    if (!(ratio >= 0.0 && ratio <= 1.0))
        args.fail("attribute 'ratio' = " + std::to_string(ratio) + " is outside [0, 1]");
    return static_cast<float>(ratio);
}

// 1 / (1 - ratio), and 0 when everything is dropped.
float keep_scale(float ratio) {
    return ratio < 1.0f ? 1.0f / (1.0f - ratio) : 0.0f;
}

void dropout(const KernelArgs& args) {
    const dsk_tensor_desc& x_desc = args.input(0);
    args.expect_output_shape_of(0, x_desc);
    if (args.has_output(1)) args.expect_output_shape_of(1, x_desc);
    const float ratio = dropout_ratio(args);
    const bool training = args.attrs().get_int("training_mode", 0) != 0;
    const float* x = args.in(0);
    float* y = args.out(0);
    uint8_t* mask = args.has_output(1) ? data_of<uint8_t>(args.output(1)) : nullptr;
    const size_t total = static_cast<size_t>(numel(x_desc));

    if (!training || ratio == 0.0f) {  // Y = X, mask = 1
        parallel_for(total, kCopyWork, [&](size_t b, size_t e) {
            if (y != x) std::copy(x + b, x + e, y + b);
            if (mask) std::fill(mask + b, mask + e, uint8_t{1});
        });
        return;
    }
    const uint64_t seed = host().exec_seed(args.context());
    // keep when the high 32 bits of the hash are >= threshold: P(keep) = 1 - ratio.
    const uint64_t threshold = static_cast<uint64_t>(static_cast<double>(ratio) * 4294967296.0);
    const float scale = keep_scale(ratio);
    parallel_for(total, kMaskWork, [&](size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) {
            const bool keep = (dsk::mix(seed, i) >> 32) >= threshold;
            y[i] = keep ? x[i] * scale : 0.0f;
            if (mask) mask[i] = keep ? 1 : 0;
        }
    });
}

// dX = dY * mask / (1 - ratio) (the gradient rule adds DropoutGrad in training mode only).
void dropout_grad(const KernelArgs& args) {
    const dsk_tensor_desc& dy_desc = args.input(0);
    if (shape_of(args.input(1)) != shape_of(dy_desc))
        args.fail("mask " + shape_text(shape_of(args.input(1))) + " and dY " +
                  shape_text(shape_of(dy_desc)) + " must have the same shape");
    args.expect_output_shape_of(0, dy_desc);
    const float ratio = dropout_ratio(args);
    const float scale = keep_scale(ratio);
    const float* dy = args.in(0);
    const uint8_t* mask = data_of<const uint8_t>(args.input(1));
    float* dx = args.out(0);
    parallel_for(static_cast<size_t>(numel(dy_desc)), kCopyWork, [&](size_t b, size_t e) {
        for (size_t i = b; i < e; ++i) {
            const float g = dy[i] * scale;
            dx[i] = mask[i] != 0 ? g : 0.0f;
        }
    });
}

const KernelDef kDropoutKernels[] = {
    kernel("Dropout", {F32}, {F32, U8}, dropout) | optional_outputs_from(1),
    kernel("DropoutGrad", {F32, U8}, {F32}, dropout_grad),
};

}  // namespace

std::span<const KernelDef> dropout_kernels() {
    return kDropoutKernels;
}

}  // namespace dsk::cpu
