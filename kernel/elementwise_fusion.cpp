// Fusion of chains and trees of elementwise ops into one FusedElementwise node (fusion_pass.h).
// Groups grow from their last step back through the producers of its inputs; the fused node's
// program (dsk/dsk_elementwise_program.hpp) lists the members in step order.
#include <dsk/dsk_elementwise_program.hpp>

#include <algorithm>

#include "fusion_pass.h"

namespace dsk::kernel {
namespace {

// The instruction a step becomes, or false when it is not an elementwise op a program holds
// (other op, other domain, attributes a program cannot write).
bool as_instruction(const Node& node, ElementwiseInstruction* out) {
    const ElementwiseOpInfo* info = elementwise_op(node.op);
    if (!info || !node.domain.empty() || node.outputs.size() != 1 || node.inputs.size() != info->arity) return false;
    ElementwiseInstruction in;
    in.op = node.op;
    for (const auto& attr : node.attrs) {
        bool known = false;
        for (const char* const* a = info->attrs; a < info->attrs + 4 && *a; ++a) known = known || attr.name == *a;
        if (!known) return false;
        std::string value;
        if (attr.type == DSK_ATTR_STRING) value = attr.s;
        else if (attr.type == DSK_ATTR_FLOAT) value = elementwise_number(attr.f);
        else return false;
        if (!elementwise_value_ok(value)) return false;
        in.attrs.emplace_back(attr.name, value);
    }
    *out = std::move(in);
    return true;
}

bool same_desc(const dsk_tensor_desc& a, const dsk_tensor_desc& b) {
    if (a.dtype != b.dtype || a.ndim != b.ndim) return false;
    for (uint32_t k = 0; k < a.ndim; ++k)
        if (a.shape[k] != b.shape[k]) return false;
    return true;
}

}  // namespace

std::vector<std::string> fuse_elementwise(std::vector<FusableStep>& steps, const std::vector<Value>& values,
                                          const std::vector<bool>& observable,
                                          const std::function<const dsk_op_schema*(const std::string&)>& schema_of,
                                          const std::function<int32_t(const Node&, uint32_t)>& place,
                                          const std::function<bool(uint32_t, uint32_t)>& shares_memory) {
    std::vector<std::string> report;
    const dsk_op_schema* schema = schema_of("FusedElementwise");
    if (!schema) return report;
    const StepIndex index(steps, values.size());
    std::vector<ElementwiseInstruction> instruction(steps.size());
    std::vector<bool> fusable(steps.size(), false);
    for (size_t s = 0; s < steps.size(); ++s) fusable[s] = as_instruction(steps[s].node, &instruction[s]);

    // Whether a step other than `s` and the group's members reads `v` between s and the root.
    auto read_between = [&](dsk_value_id v, size_t s, size_t root, const std::vector<size_t>& group) {
        for (size_t t = s + 1; t < root; ++t) {
            if (std::find(group.begin(), group.end(), t) != group.end()) continue;
            const auto& in = steps[t].node.inputs;
            if (std::find(in.begin(), in.end(), v) != in.end()) return true;
        }
        return false;
    };

    std::vector<bool> removed(steps.size(), false), grouped(steps.size(), false);
    for (size_t r = steps.size(); r-- > 0;) {
        if (!fusable[r] || grouped[r]) continue;
        const dsk_tensor_desc& out_desc = values[steps[r].node.outputs[0]].desc;
        std::vector<size_t> group = {r};
        for (size_t g = 0; g < group.size(); ++g) {
            for (dsk_value_id v : steps[group[g]].node.inputs) {
                const int32_t p = index.producer[v];
                if (p < 0 || !fusable[p] || grouped[p] || std::find(group.begin(), group.end(), size_t(p)) != group.end())
                    continue;
                if (index.reading_steps[v] != 1 || observable[v] || !same_desc(values[v].desc, out_desc)) continue;
                if (!shares_memory(steps[p].device, steps[r].device)) continue;
                bool reorders_variable = false;
                for (dsk_value_id u : steps[p].node.inputs)
                    reorders_variable |= values[u].kind == ValueKind::Variable && read_between(u, p, r, group);
                if (reorders_variable) continue;
                group.push_back(static_cast<size_t>(p));
            }
        }
        if (group.size() < 2) continue;
        std::sort(group.begin(), group.end());  // step order: a topological order

        ElementwiseProgram program;
        Node fused;
        std::vector<int32_t> member_of(values.size(), -1);
        for (size_t k = 0; k < group.size(); ++k) {
            const Node& node = steps[group[k]].node;
            ElementwiseInstruction in = instruction[group[k]];
            for (dsk_value_id v : node.inputs) {
                if (member_of[v] >= 0) {
                    in.operands.push_back({true, static_cast<uint32_t>(member_of[v])});
                    continue;
                }
                auto at = std::find(fused.inputs.begin(), fused.inputs.end(), v);
                if (at == fused.inputs.end()) at = fused.inputs.insert(fused.inputs.end(), v);
                in.operands.push_back({false, static_cast<uint32_t>(at - fused.inputs.begin())});
            }
            member_of[node.outputs[0]] = static_cast<int32_t>(k);
            program.instructions.push_back(std::move(in));
        }
        fused.op = "FusedElementwise";
        fused.schema = schema;
        OwnedAttr attr;
        attr.name = "program";
        attr.type = DSK_ATTR_STRING;
        attr.s = program.text();
        fused.attrs = {attr};
        fused.outputs = {steps[r].node.outputs[0]};
        fused.refresh_views();
        const int32_t device = place(fused, steps[r].device);
        if (device < 0) continue;  // its producers may still form groups of their own

        std::string ops;
        for (size_t k = 0; k < group.size(); ++k) ops += (k ? " + " : "") + program.instructions[k].op;
        report.push_back(ops + " -> FusedElementwise: " + attr.s);
        std::vector<uint32_t> origins;
        for (size_t s : group) {
            origins.push_back(steps[s].origin);
            grouped[s] = true;
            if (s != r) removed[s] = true;
        }
        steps[r].node = std::move(fused);
        steps[r].fused_from = std::move(origins);
        steps[r].device = static_cast<uint32_t>(device);
    }
    drop_removed(steps, removed);
    return report;
}

}  // namespace dsk::kernel
