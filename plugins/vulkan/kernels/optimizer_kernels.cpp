// optimizer_kernels.cpp - AdamUpdate and SGDUpdate (docs/ops.md "Optimizer updates"): the
// optimizer's step as graph nodes, so parameters and optimizer state stay in device memory
// between steps (optimizer_update.comp). They update X and the state inputs in place and write
// a scalar token 0.
#include <algorithm>
#include <string>

#include "kernel_table.h"

namespace dsk::vulkan {
namespace {

void update(const KernelArgs& args) {
    const bool adam = std::string(args.op()) == "AdamUpdate";
    const size_t constants = adam ? 9 : 6;
    const dsk_tensor_desc& c = args.input(0);
    const dsk_tensor_desc& x = args.input(1);
    const dsk_tensor_desc& g = args.input(2);
    if (numel(c) != static_cast<int64_t>(constants))
        args.fail("constants must have " + std::to_string(constants) + " values, not " + std::to_string(numel(c)));
    if (shape_of(g) != shape_of(x)) args.fail("G " + shape_text(shape_of(g)) + " and X " + shape_text(shape_of(x)) + " differ");
    for (size_t i = 3; i < args.input_count(); ++i)
        if (shape_of(args.input(i)) != shape_of(x))
            args.fail("state input " + std::to_string(i) + " " + shape_text(shape_of(args.input(i))) + " differs from X");
    if (adam && args.input_count() != 5) args.fail("AdamUpdate takes constants, X, G, M and V");
    const dsk_tensor_desc& token = args.output(0);
    if (numel(token) != 1) args.fail("the token output must be a scalar");
    const bool has_state = args.input_count() > 3;
    const dsk_tensor_desc& s0 = has_state ? args.input(3) : x;
    const dsk_tensor_desc& s1 = args.input_count() > 4 ? args.input(4) : x;
    const int64_t n = numel(x);
    const uint32_t params[] = {u32(args, n, "elements"), has_state ? 1u : 0u};
    // At least one invocation, so that the token is written for an empty X too.
    args.dispatch_items("optimizer_update", {&c, &x, &g, &s0, &s1, &token}, {adam ? 0 : 1}, params,
                        static_cast<uint64_t>(std::max<int64_t>(n, 1)));
}

const KernelDef kOptimizerKernels[] = {
    {"AdamUpdate", 5, 5, 1, 1, {F32, F32, F32, F32, F32}, {F32}, update},
    {"SGDUpdate", 3, 4, 1, 1, {F32, F32, F32, F32}, {F32}, update},
};

}  // namespace

std::span<const KernelDef> optimizer_kernels() { return kOptimizerKernels; }

}  // namespace dsk::vulkan
