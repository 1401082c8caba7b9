// dropout_kernels.cpp - Dropout and DropoutGrad (dropout.comp), with the cpu backend's
// counter-based mask (SplitMix64 of the node's host->exec_seed and the element index), so a
// graph drops the same elements on either backend. Needs shaderInt64 and 8-bit storage buffers
// (device_fits: supports_op answers 0 on devices without them).
#include <string>

#include "kernel_table.h"

namespace dsk::vulkan {
namespace {

float dropout_ratio(const KernelArgs& args) {
    const double ratio = args.attrs().get_float("ratio", 0.5);
    if (!(ratio >= 0.0 && ratio <= 1.0))
        args.fail("attribute 'ratio' = " + std::to_string(ratio) + " is outside [0, 1]");
    return static_cast<float>(ratio);
}

float keep_scale(float ratio) { return ratio < 1.0f ? 1.0f / (1.0f - ratio) : 0.0f; }

void dropout(const KernelArgs& args) {
    const dsk_tensor_desc& x = args.input(0);
    args.expect_output_shape(0, shape_of(x));
    if (args.has_output(1)) args.expect_output_shape(1, shape_of(x));
    const float ratio = dropout_ratio(args);
    const bool training = args.attrs().get_int("training_mode", 0) != 0 && ratio > 0.0f;
    const uint64_t seed = training ? host().exec_seed(args.context()) : 0;
    const double threshold = static_cast<double>(ratio) * 4294967296.0;
    const uint32_t params[] = {
        u32(args, numel(x), "elements"),
        static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
        threshold >= 4294967296.0 ? 0u : static_cast<uint32_t>(threshold),
        ratio >= 1.0f ? 1u : 0u,
        training ? 1u : 0u,
        float_bits(keep_scale(ratio)),
    };
    const bool has_mask = args.has_output(1);
    const dsk_tensor_desc& y = args.output(0);
    args.dispatch_items("dropout", {&x, &y, has_mask ? &args.output(1) : &y}, {0, has_mask ? 1 : 0}, params,
                        static_cast<uint64_t>(numel(x)));
}

void dropout_grad(const KernelArgs& args) {
    const dsk_tensor_desc& dy = args.input(0);
    if (shape_of(args.input(1)) != shape_of(dy))
        args.fail("mask " + shape_text(shape_of(args.input(1))) + " and dY " + shape_text(shape_of(dy)) +
                  " must have the same shape");
    args.expect_output_shape(0, shape_of(dy));
    const uint32_t params[] = {u32(args, numel(dy), "elements"), 0, 0, 0, 0, 0,
                               float_bits(keep_scale(dropout_ratio(args)))};
    args.dispatch_items("dropout", {&dy, &args.input(1), &args.output(0)}, {1, 1}, params,
                        static_cast<uint64_t>(numel(dy)));
}

// The hash needs 64-bit integers, the mask byte-wide storage buffers.
bool device_fits(const PhysicalDevice& d) { return d.int64 && d.storage_8bit; }

const KernelDef kDropoutKernels[] = {
    {"Dropout", 1, 1, 1, 2, {F32}, {F32, U8}, dropout, nullptr, device_fits},
    {"DropoutGrad", 2, 2, 1, 1, {F32, U8}, {F32}, dropout_grad, nullptr, device_fits},
};

}  // namespace

std::span<const KernelDef> dropout_kernels() { return kDropoutKernels; }

}  // namespace dsk::vulkan
