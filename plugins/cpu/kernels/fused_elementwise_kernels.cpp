// fused_elementwise_kernels.cpp - FusedElementwise, the node the kernel's fusion pass makes of a
// chain or tree of elementwise ops (its `program`, dsk/dsk_elementwise_program.hpp).
//
// The output is computed in blocks of kBlock elements. Per block, each input is either read in
// place (it has the output's shape) or gathered into a register (broadcast), then the program's
// instructions run one after the other over the block with the very loops of the unfused kernels
// (binary_row, activation_map, activation_grad_map), so results are bitwise those of the unfused
// ops, while every intermediate value stays in a register that L1 holds instead of a tensor that
// goes to memory and back. The last instruction writes the output block. Blocks are split over
// the thread pool.
//
// Broadcast: an input whose dimensions that are not 1 form one contiguous run of the output's
// dimensions that are not 1 (same shape, a scalar, a row [N] of [M, N], a column [M, 1], a
// channel [C, 1, 1] of [N, C, H, W]); anything else is declined in supports_op, so that the
// fusion pass leaves those ops apart.
#include <dsk/dsk_elementwise_program.hpp>

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "activation_functions.h"
#include "binary_functions.h"
#include "kernel_table.h"
#include "scratch.h"

namespace dsk::cpu {
namespace {

constexpr int64_t kBlock = 512;          // elements per register: 2 KB

// An operand: a node input (read in place, or gathered into its register when it broadcasts),
// or the register of an earlier instruction's result.
struct Ref {
    bool input = false;
    uint32_t index = 0;
};

struct Instruction {
    enum Kind { binary, activation, activation_grad } kind = binary;
    BinaryOp op = BinaryOp::add;
    ActivationParams act{Activation::relu};
    Ref a, b;
    int32_t dest = -1;  // register, or -1: the output
};

// What a program compiles to, whatever the shapes: the instructions, with the results sharing
// registers 0 .. temporaries-1 once their last reader has run.
struct Code {
    std::string text;
    size_t input_count = 0;
    std::vector<Instruction> instructions;
    uint32_t temporaries = 0;
};

// Element f of the output reads x[(f / inner) % period] of this input.
struct InputMap {
    int64_t inner = 1, period = 1;
    bool in_place = false;  // the output's shape: x[f]
    uint32_t reg = 0;       // the register it is gathered into (broadcast inputs)
};

// How input `x` broadcasts to `y`, or false when its non-1 dimensions are not one run.
bool map_input(const dsk_tensor_desc& x, const dsk_tensor_desc& y, InputMap* map, std::string* why) {
    if (x.ndim > y.ndim) {
        *why = "has more dimensions than the output";
        return false;
    }
    int64_t inner = 1, period = 1;
    enum { after, inside, before } state = after;  // walking from the last dimension
    for (uint32_t k = y.ndim; k-- > 0;) {
        const uint32_t from_end = y.ndim - 1 - k;
        const int64_t dy = y.shape[k];
        const int64_t dx = from_end < x.ndim ? x.shape[x.ndim - 1 - from_end] : 1;
        if (dx != dy && dx != 1) {
            *why = "does not broadcast to the output " + shape_text(shape_of(y));
            return false;
        }
        if (dy == 1) continue;
        if (dx == dy) {
            if (state == before) {
                *why = "broadcasts along dimensions between its own (only one run of dimensions is supported)";
                return false;
            }
            state = inside;
            period *= dy;
        } else {
            if (state == after) inner *= dy;
            if (state == inside) state = before;
        }
    }
    map->inner = inner;
    map->period = period;
    map->in_place = inner == 1 && period == numel(y);
    return true;
}

// Parses and checks the program of `text` for `input_count` inputs.
std::shared_ptr<const Code> compile_program(const KernelArgs& args, const char* text, size_t input_count) {
    ElementwiseProgram program;
    try {
        program = ElementwiseProgram::parse(text, input_count);
    } catch (const Error& e) {
        args.fail(e.what());
    }
    auto c = std::make_shared<Code>();
    c->text = text;
    c->input_count = input_count;
    const size_t n = program.instructions.size();
    std::vector<size_t> last_read(n, 0);
    for (size_t k = 0; k < n; ++k)
        for (const ElementwiseOperand& o : program.instructions[k].operands)
            if (o.temporary) last_read[o.index] = k;
    std::vector<uint32_t> reg_of(n, 0), free_regs;
    for (size_t k = 0; k < n; ++k) {
        const ElementwiseInstruction& in = program.instructions[k];
        Instruction ins;
        auto ref = [&](const ElementwiseOperand& o) { return o.temporary ? Ref{false, reg_of[o.index]} : Ref{true, o.index}; };
        ins.a = ref(in.operands[0]);
        if (in.operands.size() > 1) ins.b = ref(in.operands[1]);
        std::string why;
        if (const auto op = binary_op(in.op)) {
            ins.kind = Instruction::binary;
            ins.op = *op;
        } else {
            const bool grad = in.op == "ActivationGrad";
            ins.kind = grad ? Instruction::activation_grad : Instruction::activation;
            const std::string name = grad ? in.get_string("activation", "") : in.op;
            if (grad && name == "Neg") args.fail("Neg has no ActivationGrad");
            float alpha = 0.2f, beta = 0.5f;
            try {
                alpha = static_cast<float>(in.get_float("alpha", 0.2));
                beta = static_cast<float>(in.get_float("beta", 0.5));
            } catch (const Error& e) {
                args.fail(e.what());
            }
            const auto act = make_activation(name, in.get_string("approximate", "none"), alpha, beta, &why);
            if (!act) args.fail("t" + std::to_string(k) + " = " + in.op + ": " + why);
            ins.act = *act;
        }
        // Registers of results read for the last time here are free for this one (the loops
        // read each element before they write it).
        for (const ElementwiseOperand& o : in.operands)
            if (o.temporary && last_read[o.index] == k &&
                std::find(free_regs.begin(), free_regs.end(), reg_of[o.index]) == free_regs.end())
                free_regs.push_back(reg_of[o.index]);
        if (k + 1 == n) {
            ins.dest = -1;
        } else if (!free_regs.empty()) {
            reg_of[k] = free_regs.back();
            free_regs.pop_back();
            ins.dest = static_cast<int32_t>(reg_of[k]);
        } else {
            reg_of[k] = c->temporaries++;
            ins.dest = static_cast<int32_t>(reg_of[k]);
        }
        c->instructions.push_back(ins);
    }
    return c;
}

// The node's compiled program, from a small cache keyed by the program's text: a plan runs the
// same few programs on every run, and parsing one costs about a microsecond. (Process-wide under
// a mutex rather than thread_local, whose destructors would pin the plugin past its dlclose.)
std::shared_ptr<const Code> compiled(const KernelArgs& args) {
    const dsk_attr* attr = args.attrs().find("program");
    if (!attr || attr->type != DSK_ATTR_STRING || !attr->s || !attr->s[0])
        args.fail("attribute 'program' (a string) is required");
    const std::string_view text = attr->s;
    static std::mutex mutex;
    static std::vector<std::shared_ptr<const Code>> cache;
    {
        const std::lock_guard<std::mutex> lock(mutex);
        for (const auto& c : cache)
            if (c->text == text && c->input_count == args.input_count()) return c;
    }
    auto c = compile_program(args, attr->s, args.input_count());
    const std::lock_guard<std::mutex> lock(mutex);
    if (cache.size() >= 64) cache.erase(cache.begin());
    cache.push_back(c);
    return c;
}

// How each input of the node maps to its output; broadcast inputs get registers from
// `first_register` on.
std::vector<InputMap> map_inputs(const KernelArgs& args, uint32_t first_register) {
    std::vector<InputMap> maps(args.input_count());
    const dsk_tensor_desc& y = args.output(0);
    uint32_t next = first_register;
    for (size_t i = 0; i < maps.size(); ++i) {
        std::string why;
        if (!map_input(args.input(i), y, &maps[i], &why))
            args.fail("input x" + std::to_string(i) + " " + shape_text(shape_of(args.input(i))) + " " + why);
        if (!maps[i].in_place) maps[i].reg = next++;
    }
    return maps;
}

// Fills dst[0, n) with elements [f, f + n) of the output's view of input x.
void gather(const InputMap& m, const float* x, int64_t f, int64_t n, float* dst) {
    const int64_t end = f + n;
    while (f < end) {
        if (m.inner == 1) {  // a cyclic run of x
            const int64_t at = f % m.period;
            const int64_t len = std::min(end - f, m.period - at);
            std::memcpy(dst, x + at, static_cast<size_t>(len) * sizeof(float));
            dst += len;
            f += len;
        } else {  // one value of x repeated `inner` times
            const int64_t len = std::min(end, (f / m.inner + 1) * m.inner) - f;
            std::fill(dst, dst + len, x[(f / m.inner) % m.period]);
            dst += len;
            f += len;
        }
    }
}

void fused_elementwise(const KernelArgs& args) {
    const std::shared_ptr<const Code> code = compiled(args);
    const std::vector<InputMap> inputs = map_inputs(args, code->temporaries);
    uint32_t registers = code->temporaries;
    for (const InputMap& m : inputs) registers += m.in_place ? 0 : 1;
    const int64_t total = numel(args.output(0));
    if (total == 0) return;
    std::vector<const float*> x(args.input_count());
    for (size_t i = 0; i < x.size(); ++i) x[i] = args.in(i);
    float* y = args.out(0);
    const size_t blocks = static_cast<size_t>((total + kBlock - 1) / kBlock);
    // Per block: a few FLOPs per instruction and element; the inputs read and Y written.
    const dsk::Work per_block{4.0 * static_cast<double>(code->instructions.size() * kBlock),
                              4.0 * static_cast<double>((x.size() + 1) * kBlock)};
    parallel_for(blocks, per_block, [&](size_t first, size_t last) {
        // Registers: on the stack for most programs, else from the scratch pool.
        constexpr uint32_t kStackRegisters = 8;
        alignas(64) float stack[kStackRegisters * kBlock];
        std::optional<Scratch> scratch;
        if (registers > kStackRegisters) scratch.emplace(static_cast<size_t>(registers) * kBlock);
        float* const base = scratch ? scratch->data() : stack;
        auto reg = [&](uint32_t r) { return base + static_cast<size_t>(r) * kBlock; };
        for (size_t block = first; block < last; ++block) {
            const int64_t f = static_cast<int64_t>(block) * kBlock;
            const int64_t n = std::min(kBlock, total - f);
            for (size_t i = 0; i < inputs.size(); ++i)
                if (!inputs[i].in_place) gather(inputs[i], x[i], f, n, reg(inputs[i].reg));
            auto at = [&](const Ref& r) -> const float* {
                if (!r.input) return reg(r.index);
                return inputs[r.index].in_place ? x[r.index] + f : reg(inputs[r.index].reg);
            };
            for (const Instruction& ins : code->instructions) {
                float* dest = ins.dest < 0 ? y + f : reg(static_cast<uint32_t>(ins.dest));
                switch (ins.kind) {
                    case Instruction::binary:
                        binary_row(ins.op, at(ins.a), 1, at(ins.b), 1, dest, n);
                        break;
                    case Instruction::activation:
                        activation_map(ins.act, at(ins.a), 0, dest, 0, 1, n);
                        break;
                    case Instruction::activation_grad:
                        activation_grad_map(ins.act, at(ins.a), at(ins.b), dest, n);
                        break;
                }
            }
        }
    });
}

// supports_op: a program the kernel can run on inputs it can map (see the top of the file).
bool fused_elementwise_accepts(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    try {
        const KernelArgs args(nullptr, node, tensors);
        compiled(args);
        map_inputs(args, 0);
        return true;
    } catch (...) {
        return false;
    }
}

const KernelDef kFusedElementwiseKernels[] = {
    kernel("FusedElementwise", {F32}, {F32}, fused_elementwise, fused_elementwise_accepts) | variadic,
};

}  // namespace

std::span<const KernelDef> fused_elementwise_kernels() {
    return kFusedElementwiseKernels;
}

}  // namespace dsk::cpu
