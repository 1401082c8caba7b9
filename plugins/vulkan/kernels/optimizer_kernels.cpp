// optimizer_kernels.cpp - AdamUpdate and SGDUpdate (docs/ops.md "Optimizer updates"): the
// optimizer's step as graph nodes, so parameters and optimizer state stay in device memory
// between steps (optimizer_update.comp). They update X and the state inputs in place and write
// a scalar token 0; in the functional form (one more output per X and state input: eager code
// and dsk::jit-traced steps) the inputs are copied to those outputs on the device first and the
// same shader updates the copies, so both forms round alike.
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
    const size_t updated = args.input_count() - 2;  // X and the state inputs
    const bool functional = args.output_count() > 1;
    if (functional && args.output_count() != 1 + updated)
        args.fail("the in-place form has 1 output (the token), the functional form " + std::to_string(1 + updated) +
                  " (the token, X' and the new state); this node has " + std::to_string(args.output_count()));
    // The tensors the shader updates: the inputs themselves, or their copies in the outputs.
    auto target = [&](size_t input) -> const dsk_tensor_desc& {
        if (!functional) return args.input(input);
        const dsk_tensor_desc& out = args.output(input == 1 ? 1 : input - 1);
        if (shape_of(out) != shape_of(x)) args.fail("output " + shape_text(shape_of(out)) + " differs from X " + shape_text(shape_of(x)));
        const BufferRange from = args.range(args.input(input)), to = args.range(out);
        if (from.size > 0) args.queue().copy_on_device(*from.buffer, from.offset, *to.buffer, to.offset, from.size);
        return out;
    };
    const bool has_state = args.input_count() > 3;
    const dsk_tensor_desc& xt = target(1);
    const dsk_tensor_desc& s0 = has_state ? target(3) : xt;
    const dsk_tensor_desc& s1 = args.input_count() > 4 ? target(4) : xt;
    const int64_t n = numel(x);
    const uint32_t params[] = {u32(args, n, "elements"), has_state ? 1u : 0u};
    // At least one invocation, so that the token is written for an empty X too.
    args.dispatch_items("optimizer_update", {&c, &xt, &g, &s0, &s1, &token}, {adam ? 0 : 1}, params,
                        static_cast<uint64_t>(std::max<int64_t>(n, 1)));
}

const KernelDef kOptimizerKernels[] = {
    {"AdamUpdate", 5, 5, 1, 4, {F32, F32, F32, F32, F32}, {F32, F32, F32, F32}, update},
    {"SGDUpdate", 3, 4, 1, 3, {F32, F32, F32, F32}, {F32, F32, F32}, update},
};

}  // namespace

std::span<const KernelDef> optimizer_kernels() { return kOptimizerKernels; }

}  // namespace dsk::vulkan
