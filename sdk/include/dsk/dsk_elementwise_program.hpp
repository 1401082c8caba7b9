// dsk_elementwise_program.hpp - the program of a FusedElementwise node (docs/ops.md): a chain
// or tree of elementwise ops that the kernel's fusion pass turned into one node, written as the
// node's `program` string attribute. Header-only; the fusion pass writes programs with text(),
// the op schema and the backends' kernels read them with parse(), so all agree on one grammar:
//
//     program     = instruction { ";" instruction }
//     instruction = op [ "[" name "=" value { "," name "=" value } "]" ] "(" operand { "," operand } ")"
//     operand     = "x" index      node input `index`
//                 | "t" index      the result of instruction `index` (an earlier one)
//
//     "Add(x0,x1);Relu(t0);HardSigmoid[alpha=0.25,beta=0.5](t1);Mul(t2,x2)"
//
// The node's output is the last instruction's result. Whitespace around tokens is ignored.
#ifndef DSK_ELEMENTWISE_PROGRAM_HPP_
#define DSK_ELEMENTWISE_PROGRAM_HPP_

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dsk/dsk_error.hpp"

namespace dsk {

// An op a program may hold: its operand count and the attributes it takes (as the op's own).
struct ElementwiseOpInfo {
    const char* op;
    uint32_t arity;
    const char* attrs[4];  // null-terminated
};

// The ops of programs, or null for one a program cannot hold.
inline const ElementwiseOpInfo* elementwise_op(std::string_view op) {
    static const ElementwiseOpInfo ops[] = {
        {"Add", 2, {}},
        {"Sub", 2, {}},
        {"Mul", 2, {}},
        {"Div", 2, {}},
        {"Relu", 1, {}},
        {"Sigmoid", 1, {}},
        {"Tanh", 1, {}},
        {"Gelu", 1, {"approximate"}},
        {"Silu", 1, {}},
        {"HardSwish", 1, {}},
        {"HardSigmoid", 1, {"alpha", "beta"}},
        {"Neg", 1, {}},
        {"ActivationGrad", 2, {"activation", "alpha", "beta", "approximate"}},
    };
    for (const auto& info : ops)
        if (op == info.op) return &info;
    return nullptr;
}

struct ElementwiseOperand {
    bool temporary = false;  // false: node input `index` (x), true: instruction `index`'s result (t)
    uint32_t index = 0;
    bool operator==(const ElementwiseOperand& o) const { return temporary == o.temporary && index == o.index; }
};

struct ElementwiseInstruction {
    std::string op;
    std::vector<std::pair<std::string, std::string>> attrs;  // name, value as written
    std::vector<ElementwiseOperand> operands;

    const std::string* find(std::string_view name) const {
        for (const auto& a : attrs)
            if (a.first == name) return &a.second;
        return nullptr;
    }
    std::string get_string(std::string_view name, const std::string& fallback) const {
        const std::string* v = find(name);
        return v ? *v : fallback;
    }
    // Throws Error(INVALID_ARGUMENT) when the value is not a number.
    double get_float(std::string_view name, double fallback) const {
        const std::string* v = find(name);
        if (!v) return fallback;
        double out = 0;
        const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
        if (ec != std::errc() || end != v->data() + v->size())
            throw Error(DSK_INVALID_ARGUMENT, "program: " + op + "'s " + std::string(name) + " = \"" + *v +
                                                  "\" is not a number");
        return out;
    }
};

// Whether `value` can be written as an attribute value of a program (no separators in it).
inline bool elementwise_value_ok(std::string_view value) {
    if (value.empty()) return false;
    for (char c : value)
        if (c == ',' || c == ';' || c == '[' || c == ']' || c == '(' || c == ')' || c == '=' || c == ' ' ||
            c == '\t' || c == '\n')
            return false;
    return true;
}

// A real as the shortest text that reads back as the same double.
inline std::string elementwise_number(double value) {
    char buffer[64];
    const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
    return ec == std::errc() ? std::string(buffer, end) : std::string("nan");
}

struct ElementwiseProgram {
    std::vector<ElementwiseInstruction> instructions;

    std::string text() const {
        std::string out;
        for (size_t k = 0; k < instructions.size(); ++k) {
            const ElementwiseInstruction& in = instructions[k];
            if (k) out += ';';
            out += in.op;
            for (size_t a = 0; a < in.attrs.size(); ++a)
                out += (a ? "," : "[") + in.attrs[a].first + "=" + in.attrs[a].second + (a + 1 == in.attrs.size() ? "]" : "");
            for (size_t o = 0; o < in.operands.size(); ++o)
                out += (o ? "," : "(") + std::string(in.operands[o].temporary ? "t" : "x") +
                       std::to_string(in.operands[o].index);
            out += ')';
        }
        return out;
    }

    // Parses and checks a program for a node of `input_count` inputs: known ops with their
    // operand counts and attribute names, operands that exist (x below input_count, t below the
    // instruction's own index), every input read. Throws Error(INVALID_ARGUMENT) naming the
    // problem and where it is.
    static ElementwiseProgram parse(std::string_view text, size_t input_count) {
        ElementwiseProgram program;
        Parser p{text};
        std::vector<bool> read(input_count, false);
        do {
            ElementwiseInstruction in;
            in.op = p.word("an op name");
            const ElementwiseOpInfo* info = elementwise_op(in.op);
            if (!info)
                p.fail("\"" + in.op + "\" is not an op of programs (Add, Sub, Mul, Div, Relu, Sigmoid, Tanh, Gelu, "
                       "Silu, HardSwish, HardSigmoid, Neg, ActivationGrad)");
            if (p.accept('[')) {
                do {
                    std::string name = p.word("an attribute name");
                    bool known = false;
                    for (const char* const* a = info->attrs; a < info->attrs + 4 && *a; ++a) known = known || name == *a;
                    if (!known) p.fail(in.op + " has no attribute \"" + name + "\"");
                    p.expect('=');
                    in.attrs.emplace_back(std::move(name), p.word("a value"));
                } while (p.accept(','));
                p.expect(']');
            }
            p.expect('(');
            do {
                const char kind = p.next();
                if (kind != 'x' && kind != 't') p.fail("an operand is x<input> or t<instruction>");
                ElementwiseOperand operand{kind == 't', p.number()};
                const size_t limit = operand.temporary ? program.instructions.size() : input_count;
                if (operand.index >= limit)
                    p.fail(std::string(1, kind) + std::to_string(operand.index) + " does not exist here (" +
                           (operand.temporary ? "instruction " + std::to_string(program.instructions.size()) +
                                                    " can read t0 to t" + std::to_string(limit) + " exclusive"
                                              : "the node has " + std::to_string(input_count) + " inputs") +
                           ")");
                if (!operand.temporary) read[operand.index] = true;
                in.operands.push_back(operand);
            } while (p.accept(','));
            p.expect(')');
            if (in.operands.size() != info->arity)
                p.fail(in.op + " takes " + std::to_string(info->arity) + " operands, not " +
                       std::to_string(in.operands.size()));
            program.instructions.push_back(std::move(in));
        } while (p.accept(';'));
        p.skip_space();
        if (p.pos != text.size()) p.fail("unexpected text");
        for (size_t i = 0; i < input_count; ++i)
            if (!read[i]) throw Error(DSK_INVALID_ARGUMENT, "program: input x" + std::to_string(i) + " is never read");
        return program;
    }

  private:
    struct Parser {
        std::string_view text;
        size_t pos = 0;

        [[noreturn]] void fail(const std::string& message) const {
            throw Error(DSK_INVALID_ARGUMENT, "program \"" + std::string(text) + "\" at character " +
                                                  std::to_string(pos) + ": " + message);
        }
        void skip_space() {
            while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n')) ++pos;
        }
        bool accept(char c) {
            skip_space();
            if (pos < text.size() && text[pos] == c) {
                ++pos;
                return true;
            }
            return false;
        }
        void expect(char c) {
            if (!accept(c)) fail(std::string("expected '") + c + "'");
        }
        char next() {
            skip_space();
            if (pos >= text.size()) fail("the program ends too early");
            return text[pos++];
        }
        std::string word(const char* what) {
            skip_space();
            const size_t start = pos;
            while (pos < text.size() && elementwise_value_ok(text.substr(pos, 1))) ++pos;
            if (pos == start) fail(std::string("expected ") + what);
            return std::string(text.substr(start, pos - start));
        }
        uint32_t number() {
            const size_t start = pos;
            while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
            if (pos == start || pos - start > 9) fail("expected an index after x or t");
            return static_cast<uint32_t>(std::strtoul(std::string(text.substr(start, pos - start)).c_str(), nullptr, 10));
        }
    };
};

}  // namespace dsk

#endif  // DSK_ELEMENTWISE_PROGRAM_HPP_
