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
#include <string>
#include <vector>

#include "activation_functions.h"
#include "binary_functions.h"
#include "kernel_table.h"
#include "scratch.h"

namespace dsk::cpu {
namespace {

constexpr int64_t kBlock = 512;          // elements per register: 2 KB
constexpr size_t kGrainBlocks = 32;      // 16K elements per parallel chunk at least

// Where an operand lives during a block: an input read in place, or a register.
struct Ref {
    bool reg = false;
    uint32_t index = 0;
};

struct Instruction {
    enum Kind { binary, activation, activation_grad } kind = binary;
    BinaryOp op = BinaryOp::add;
    ActivationParams act{Activation::relu};
    Ref a, b;
    int32_t dest = -1;  // register, or -1: the output
};

// Element f of the output reads x[(f / inner) % period] of this input.
struct InputMap {
    int64_t inner = 1, period = 1;
    bool in_place = false;  // the output's shape: x[f]
    int32_t reg = -1;       // the register it is gathered into (broadcast inputs)
};

struct Compiled {
    std::vector<Instruction> code;
    std::vector<InputMap> inputs;
    uint32_t registers = 0;
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

// The node's program, checked against its tensors, with registers assigned: one per broadcast
// input, and the temporaries sharing registers once their last reader has run.
Compiled compile(const KernelArgs& args) {
    const std::string text = args.attrs().get_string("program", "");
    if (text.empty()) args.fail("attribute 'program' is required");
    ElementwiseProgram program;
    try {
        program = ElementwiseProgram::parse(text, args.input_count());
    } catch (const Error& e) {
        args.fail(e.what());
    }
    Compiled c;
    const dsk_tensor_desc& y = args.output(0);
    for (size_t i = 0; i < args.input_count(); ++i) {
        InputMap map;
        std::string why;
        if (!map_input(args.input(i), y, &map, &why))
            args.fail("input x" + std::to_string(i) + " " + shape_text(shape_of(args.input(i))) + " " + why);
        if (!map.in_place) map.reg = static_cast<int32_t>(c.registers++);
        c.inputs.push_back(map);
    }
    const size_t n = program.instructions.size();
    std::vector<size_t> last_read(n, 0);
    for (size_t k = 0; k < n; ++k)
        for (const ElementwiseOperand& o : program.instructions[k].operands)
            if (o.temporary) last_read[o.index] = k;
    std::vector<uint32_t> reg_of(n, 0), free_regs;
    for (size_t k = 0; k < n; ++k) {
        const ElementwiseInstruction& in = program.instructions[k];
        Instruction ins;
        auto ref = [&](const ElementwiseOperand& o) {
            if (o.temporary) return Ref{true, reg_of[o.index]};
            const InputMap& m = c.inputs[o.index];
            return m.in_place ? Ref{false, o.index} : Ref{true, static_cast<uint32_t>(m.reg)};
        };
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
        // Registers of temporaries read for the last time here are free for this result (the
        // loops read each element before they write it).
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
            reg_of[k] = c.registers++;
            ins.dest = static_cast<int32_t>(reg_of[k]);
        }
        c.code.push_back(ins);
    }
    return c;
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
    const Compiled c = compile(args);
    const int64_t total = numel(args.output(0));
    if (total == 0) return;
    std::vector<const float*> x(args.input_count());
    for (size_t i = 0; i < x.size(); ++i) x[i] = args.in(i);
    float* y = args.out(0);
    const size_t blocks = static_cast<size_t>((total + kBlock - 1) / kBlock);
    parallel_for(blocks, kGrainBlocks, [&](size_t first, size_t last) {
        Scratch scratch(std::max<size_t>(c.registers, 1) * kBlock);
        auto reg = [&](uint32_t r) { return scratch.data() + static_cast<size_t>(r) * kBlock; };
        for (size_t block = first; block < last; ++block) {
            const int64_t f = static_cast<int64_t>(block) * kBlock;
            const int64_t n = std::min(kBlock, total - f);
            for (size_t i = 0; i < c.inputs.size(); ++i)
                if (!c.inputs[i].in_place) gather(c.inputs[i], x[i], f, n, reg(static_cast<uint32_t>(c.inputs[i].reg)));
            auto at = [&](const Ref& r) -> const float* { return r.reg ? reg(r.index) : x[r.index] + f; };
            for (const Instruction& ins : c.code) {
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
        compile(KernelArgs(nullptr, node, tensors));
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
