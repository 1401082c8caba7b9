#include "fusion_pass.h"

#include <set>

namespace dsk::kernel {
namespace {

const std::set<std::string>& fusable_activations() {
    static const std::set<std::string> names = {"Relu", "Sigmoid", "Tanh", "Gelu", "Silu", "HardSwish", "HardSigmoid"};
    return names;
}

OwnedAttr string_attr(const std::string& name, const std::string& value) {
    OwnedAttr a;
    a.name = name;
    a.type = DSK_ATTR_STRING;
    a.s = value;
    return a;
}

OwnedAttr float_attr(const std::string& name, double value) {
    OwnedAttr a;
    a.name = name;
    a.type = DSK_ATTR_FLOAT;
    a.f = value;
    return a;
}

}  // namespace

std::vector<std::string> fuse_activations(std::vector<FusableStep>& steps, const std::vector<Value>& values,
                                          const std::vector<bool>& observable,
                                          const std::function<const dsk_op_schema*(const std::string&)>& fused_schema,
                                          const std::function<bool(const Node&, uint32_t)>& accept) {
    std::vector<std::string> report;
    std::vector<uint32_t> readers(values.size(), 0);
    for (const auto& s : steps)
        for (dsk_value_id in : s.node.inputs) ++readers[in];
    std::vector<int32_t> producer(values.size(), -1);
    for (size_t i = 0; i < steps.size(); ++i)
        for (dsk_value_id out : steps[i].node.outputs) producer[out] = static_cast<int32_t>(i);

    std::vector<bool> removed(steps.size(), false);
    for (size_t a = 0; a < steps.size(); ++a) {
        const Node& act = steps[a].node;
        if (!act.domain.empty() || !fusable_activations().count(act.op) || act.inputs.size() != 1) continue;
        bool plain = true;  // FusedGemm/FusedConv carry no activation attributes but HardSigmoid's
        for (const auto& attr : act.attrs) plain &= attr.name == "alpha" || attr.name == "beta" || (attr.name == "approximate" && attr.s == "none");
        if (!plain) continue;
        const int32_t h = producer[act.inputs[0]];
        if (h < 0 || removed[h] || !steps[h].fused_from.empty()) continue;
        const Node& head = steps[h].node;
        if (!head.domain.empty() || (head.op != "Gemm" && head.op != "Conv") || head.outputs.size() != 1) continue;
        if (steps[h].device != steps[a].device) continue;
        const std::string fused_op = head.op == "Gemm" ? "FusedGemm" : "FusedConv";
        const dsk_op_schema* schema = fused_schema(fused_op);
        if (!schema) continue;

        const dsk_value_id z = head.outputs[0];
        const bool keep_z = readers[z] > 1 || observable[z];
        Node fused;
        fused.op = fused_op;
        fused.schema = schema;
        fused.attrs = head.attrs;
        fused.attrs.push_back(string_attr("activation", act.op));
        double alpha = 0.2, beta = 0.5;  // HardSigmoid's defaults (docs/ops.md)
        for (const auto& attr : act.attrs) {
            if (attr.name == "alpha") alpha = attr.f;
            if (attr.name == "beta") beta = attr.f;
        }
        if (act.op == "HardSigmoid") {
            fused.attrs.push_back(float_attr("activation_alpha", alpha));
            fused.attrs.push_back(float_attr("activation_beta", beta));
        }
        fused.inputs = head.inputs;
        fused.outputs = {act.outputs[0]};
        if (keep_z) fused.outputs.push_back(z);
        fused.refresh_views();
        if (!accept(fused, steps[h].device)) continue;

        report.push_back(head.op + " + " + act.op + " -> " + fused_op + (keep_z ? " (pre-activation kept)" : ""));
        // The fused node takes the head's place: everything that reads the pre-activation comes
        // after the head, and the activation's inputs are all available there.
        steps[h].fused_from = {steps[h].origin, steps[a].origin};
        steps[h].node = std::move(fused);
        removed[a] = true;
    }
    std::vector<FusableStep> kept;
    kept.reserve(steps.size());
    for (size_t i = 0; i < steps.size(); ++i)
        if (!removed[i]) kept.push_back(std::move(steps[i]));
    steps = std::move(kept);
    for (auto& s : steps) s.node.refresh_views();
    return report;
}

}  // namespace dsk::kernel
