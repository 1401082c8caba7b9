#include "fusion_pass.h"

#include <algorithm>
#include <optional>
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

StepIndex::StepIndex(const std::vector<FusableStep>& steps, size_t value_count)
    : readers(value_count, 0), reading_steps(value_count, 0), producer(value_count, -1) {
    for (size_t i = 0; i < steps.size(); ++i) {
        const auto& inputs = steps[i].node.inputs;
        for (size_t k = 0; k < inputs.size(); ++k) {
            ++readers[inputs[k]];
            if (std::find(inputs.begin(), inputs.begin() + static_cast<std::ptrdiff_t>(k), inputs[k]) ==
                inputs.begin() + static_cast<std::ptrdiff_t>(k))
                ++reading_steps[inputs[k]];
        }
        for (dsk_value_id out : steps[i].node.outputs) producer[out] = static_cast<int32_t>(i);
    }
}

void drop_removed(std::vector<FusableStep>& steps, const std::vector<bool>& removed) {
    std::vector<FusableStep> kept;
    kept.reserve(steps.size());
    for (size_t i = 0; i < steps.size(); ++i)
        if (!removed[i]) kept.push_back(std::move(steps[i]));
    steps = std::move(kept);
    for (auto& s : steps) s.node.refresh_views();
}

namespace {

// Step `into` becomes `fused` and takes over step `from`, whose origin it records (after any it
// recorded before); drop_removed then drops `from`.
void absorb(std::vector<FusableStep>& steps, std::vector<bool>& removed, size_t into, size_t from, Node fused) {
    FusableStep& step = steps[into];
    if (step.fused_from.empty()) step.fused_from = {step.origin};
    step.fused_from.push_back(steps[from].origin);
    step.node = std::move(fused);
    removed[from] = true;
}

}  // namespace

std::vector<std::string> fuse_activations(std::vector<FusableStep>& steps, const std::vector<Value>& values,
                                          const std::vector<bool>& observable,
                                          const std::function<const dsk_op_schema*(const std::string&)>& fused_schema,
                                          const std::function<int32_t(const Node&, uint32_t)>& place) {
    std::vector<std::string> report;
    const StepIndex index(steps, values.size());
    const std::vector<uint32_t>& readers = index.readers;
    const std::vector<int32_t>& producer = index.producer;

    std::vector<bool> removed(steps.size(), false);
    for (size_t a = 0; a < steps.size(); ++a) {
        const Node& act = steps[a].node;
        if (!act.domain.empty() || !fusable_activations().count(act.op) || act.inputs.size() != 1) continue;
        bool plain = true;  // FusedGemm/FusedConv carry no activation attributes but HardSigmoid's
        for (const auto& attr : act.attrs) plain &= attr.name == "alpha" || attr.name == "beta" || (attr.name == "approximate" && attr.s == "none");
        if (!plain) continue;
        const int32_t h = producer[act.inputs[0]];
        if (h < 0 || removed[h]) continue;
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
        if (place(fused, steps[h].device) != static_cast<int32_t>(steps[h].device)) continue;

        report.push_back(head.op + " + " + act.op + " -> " + fused_op + (keep_z ? " (pre-activation kept)" : ""));
        // The fused node takes the head's place: everything that reads the pre-activation comes
        // after the head, and the activation's inputs are all available there.
        absorb(steps, removed, static_cast<size_t>(h), a, std::move(fused));  // after a folded Conv's origins
    }
    drop_removed(steps, removed);
    return report;
}

namespace {

// A Gemm or FusedGemm that FusedGemmChain can hold as a layer: its transB, and its activation
// ("" none). Null when it is not one: see fuse_gemm_chains.
struct ChainLayer {
    int64_t trans_b = 0;
    std::string activation;
};

std::optional<ChainLayer> chain_layer(const Node& node, const std::vector<Value>& values) {
    if (!node.domain.empty() || (node.op != "Gemm" && node.op != "FusedGemm") || node.inputs.size() != 3 ||
        node.outputs.size() != 1)
        return std::nullopt;
    ChainLayer layer;
    for (const auto& attr : node.attrs) {
        if (attr.name == "transB") layer.trans_b = attr.i;
        else if (attr.name == "activation") layer.activation = attr.s;
        else if ((attr.name == "alpha" || attr.name == "beta") && attr.type == DSK_ATTR_FLOAT && attr.f == 1.0) continue;
        else if (attr.name == "transA" && attr.i == 0) continue;
        else return std::nullopt;  // transA, a scale, HardSigmoid's parameters
    }
    if (layer.activation == "HardSigmoid") return std::nullopt;
    const dsk_tensor_desc& c = values[node.inputs[2]].desc;
    const bool bias = c.ndim == 1 || (c.ndim == 2 && c.shape[0] == 1);
    if (!bias || values[node.inputs[0]].desc.ndim != 2 || node.inputs[1] == node.inputs[0] ||
        node.inputs[2] == node.inputs[0])
        return std::nullopt;
    return layer;
}

}  // namespace

std::vector<std::string> fuse_gemm_chains(std::vector<FusableStep>& steps, const std::vector<Value>& values,
                                          const std::vector<bool>& observable,
                                          const std::function<const dsk_op_schema*(const std::string&)>& schema_of,
                                          const std::function<int32_t(const Node&, uint32_t)>& place) {
    std::vector<std::string> report;
    const dsk_op_schema* schema = schema_of("FusedGemmChain");
    if (!schema) return report;
    const StepIndex index(steps, values.size());
    std::vector<int32_t> reader(values.size(), -1);  // the first step reading each value
    for (size_t i = steps.size(); i-- > 0;)
        for (dsk_value_id in : steps[i].node.inputs) reader[in] = static_cast<int32_t>(i);

    std::vector<bool> removed(steps.size(), false), taken(steps.size(), false);
    for (size_t first = 0; first < steps.size(); ++first) {
        if (taken[first]) continue;
        const std::optional<ChainLayer> head = chain_layer(steps[first].node, values);
        if (!head) continue;
        std::vector<size_t> chain = {first};
        std::vector<ChainLayer> layers = {*head};
        for (;;) {
            const dsk_value_id out = steps[chain.back()].node.outputs[0];
            if (index.readers[out] != 1 || observable[out] || reader[out] < 0) break;
            const auto next = static_cast<size_t>(reader[out]);
            const std::optional<ChainLayer> layer = chain_layer(steps[next].node, values);
            if (!layer || steps[next].node.inputs[0] != out || steps[next].device != steps[first].device) break;
            chain.push_back(next);
            layers.push_back(*layer);
        }
        if (chain.size() < 2) continue;
        // The layers' inputs are read at the last step now: nothing in between may touch them.
        std::vector<dsk_value_id> inputs = {steps[first].node.inputs[0]};
        for (size_t s : chain) inputs.insert(inputs.end(), steps[s].node.inputs.begin() + 1, steps[s].node.inputs.end());
        bool moved_past_reader = false;
        for (size_t s = first + 1; s < chain.back() && !moved_past_reader; ++s) {
            if (std::find(chain.begin(), chain.end(), s) != chain.end()) continue;
            for (dsk_value_id in : steps[s].node.inputs)
                moved_past_reader |= std::find(inputs.begin(), inputs.end(), in) != inputs.end();
        }
        if (moved_past_reader) continue;

        Node fused;
        fused.op = "FusedGemmChain";
        fused.schema = schema;
        OwnedAttr trans_b;
        trans_b.name = "transB";
        trans_b.type = DSK_ATTR_INTS;
        std::string activations, ops;
        for (size_t l = 0; l < layers.size(); ++l) {
            trans_b.ints.push_back(layers[l].trans_b);
            activations += (l ? "," : "") + layers[l].activation;
            ops += (l ? " + " : "") + steps[chain[l]].node.op;
        }
        fused.attrs = {trans_b, string_attr("activations", activations)};
        fused.inputs = inputs;
        fused.outputs = steps[chain.back()].node.outputs;
        fused.refresh_views();
        const uint32_t device = steps[chain.back()].device;
        if (place(fused, device) != static_cast<int32_t>(device)) continue;

        report.push_back(ops + " -> FusedGemmChain (" + std::to_string(chain.size()) + " layers)");
        std::vector<uint32_t> origins;
        for (size_t s : chain) {
            const FusableStep& step = steps[s];
            if (step.fused_from.empty()) origins.push_back(step.origin);
            else origins.insert(origins.end(), step.fused_from.begin(), step.fused_from.end());
            taken[s] = true;
            if (s != chain.back()) removed[s] = true;
        }
        steps[chain.back()].node = std::move(fused);
        steps[chain.back()].fused_from = std::move(origins);
    }
    drop_removed(steps, removed);
    return report;
}

namespace {

// MaxPool's window is 2x2 at stride 2 with nothing else set: what FusedConvMaxPool computes.
bool plain_2x2_pool(const Node& pool) {
    bool kernel = false, strides = false;
    for (const auto& attr : pool.attrs) {
        if (attr.name == "kernel_shape") kernel = attr.ints == std::vector<int64_t>{2, 2};
        else if (attr.name == "strides") strides = attr.ints == std::vector<int64_t>{2, 2};
        else if (attr.name == "pads") { if (attr.ints != std::vector<int64_t>{0, 0, 0, 0}) return false; }
        else if (attr.name == "dilations") { if (attr.ints != std::vector<int64_t>{1, 1}) return false; }
        else if (attr.name == "ceil_mode") { if (attr.i != 0) return false; }
        else if (attr.name == "auto_pad") { if (attr.s != "NOTSET") return false; }
        else if (attr.name != "storage_order") return false;
    }
    return kernel && strides;
}

}  // namespace

std::vector<std::string> fuse_conv_max_pools(std::vector<FusableStep>& steps, const std::vector<Value>& values,
                                             const std::vector<bool>& observable,
                                             const std::function<const dsk_op_schema*(const std::string&)>& schema_of,
                                             const std::function<int32_t(const Node&, uint32_t)>& place) {
    std::vector<std::string> report;
    const dsk_op_schema* schema = schema_of("FusedConvMaxPool");
    if (!schema) return report;
    const StepIndex index(steps, values.size());
    std::vector<bool> removed(steps.size(), false);
    for (size_t p = 0; p < steps.size(); ++p) {
        const Node& pool = steps[p].node;
        if (!pool.domain.empty() || pool.op != "MaxPool" || pool.inputs.size() != 1 || pool.outputs.size() != 1 ||
            !plain_2x2_pool(pool))
            continue;
        const dsk_value_id y = pool.inputs[0];
        const int32_t h = index.producer[y];
        if (h < 0 || removed[h] || steps[h].device != steps[p].device) continue;
        const Node& conv = steps[h].node;
        if (!conv.domain.empty() || (conv.op != "Conv" && conv.op != "FusedConv") || conv.outputs.size() != 1) continue;
        if (index.readers[y] != 1 || observable[y]) continue;

        Node fused;
        fused.op = "FusedConvMaxPool";
        fused.schema = schema;
        fused.attrs = conv.attrs;  // the activation, when FusedConv, included
        fused.inputs = conv.inputs;
        fused.outputs = pool.outputs;
        fused.refresh_views();
        if (place(fused, steps[h].device) != static_cast<int32_t>(steps[h].device)) continue;

        report.push_back(conv.op + " + MaxPool -> FusedConvMaxPool");
        // In the conv's place: its inputs are ready there, and the pool's readers come later.
        absorb(steps, removed, static_cast<size_t>(h), p, std::move(fused));
    }
    drop_removed(steps, removed);
    return report;
}

std::vector<std::string> fuse_pool_relu_grads(std::vector<FusableStep>& steps, const std::vector<Value>& values,
                                              const std::vector<bool>& observable,
                                              const std::function<const dsk_op_schema*(const std::string&)>& schema_of,
                                              const std::function<int32_t(const Node&, uint32_t)>& place) {
    std::vector<std::string> report;
    const dsk_op_schema* schema = schema_of("MaxPoolReluGrad");
    if (!schema) return report;
    const StepIndex index(steps, values.size());
    std::vector<bool> removed(steps.size(), false);
    for (size_t a = 0; a < steps.size(); ++a) {
        const Node& act = steps[a].node;
        if (!act.domain.empty() || act.op != "ActivationGrad" || act.inputs.size() != 2 || act.outputs.size() != 1) continue;
        bool relu = false;
        for (const auto& attr : act.attrs) relu |= attr.name == "activation" && attr.s == "Relu";
        if (!relu) continue;
        const dsk_value_id g = act.inputs[0];
        const int32_t h = index.producer[g];
        if (h < 0 || removed[h] || steps[h].device != steps[a].device) continue;
        const Node& pool = steps[h].node;
        if (!pool.domain.empty() || pool.op != "MaxPoolGrad" || pool.inputs.size() != 2 || pool.inputs[1] != act.inputs[1])
            continue;
        if (index.readers[g] != 1 || observable[g]) continue;

        Node fused;
        fused.op = "MaxPoolReluGrad";
        fused.schema = schema;
        fused.attrs = pool.attrs;
        fused.inputs = pool.inputs;
        fused.outputs = {act.outputs[0]};
        fused.refresh_views();
        if (place(fused, steps[h].device) != static_cast<int32_t>(steps[h].device)) continue;

        report.push_back("MaxPoolGrad + ActivationGrad[Relu] -> MaxPoolReluGrad");
        // In the pool gradient's place: its inputs are ready there, and what reads the Relu's
        // gradient comes after the ActivationGrad, later still.
        absorb(steps, removed, static_cast<size_t>(h), a, std::move(fused));
    }
    drop_removed(steps, removed);
    return report;
}

std::vector<std::string> fuse_conv_bias_grads(std::vector<FusableStep>& steps,
                                              const std::function<int32_t(const Node&, uint32_t)>& place) {
    std::vector<std::string> report;
    std::vector<bool> removed(steps.size(), false);
    for (size_t r = 0; r < steps.size(); ++r) {
        const Node& sum = steps[r].node;
        if (!sum.domain.empty() || sum.op != "ReduceSum" || sum.inputs.size() != 1 || sum.outputs.size() != 1) continue;
        bool bias_axes = false, keepdims = true;
        for (const auto& attr : sum.attrs) {
            if (attr.name == "axes") bias_axes = attr.ints == std::vector<int64_t>{0, 2, 3};
            if (attr.name == "keepdims") keepdims = attr.i != 0;
        }
        if (!bias_axes || keepdims) continue;
        const dsk_value_id dy = sum.inputs[0], db = sum.outputs[0];
        // The ConvGradWeight of the same dY, before every step that reads dB.
        size_t first_reader = steps.size();
        for (size_t s = 0; s < steps.size(); ++s)
            for (dsk_value_id in : steps[s].node.inputs)
                if (in == db) first_reader = std::min(first_reader, s);
        for (size_t w = 0; w < steps.size(); ++w) {
            const Node& grad = steps[w].node;
            if (removed[w] || w >= first_reader || !grad.domain.empty() || grad.op != "ConvGradWeight" ||
                grad.inputs.size() != 2 || grad.inputs[0] != dy || grad.outputs.size() != 1 ||
                steps[w].device != steps[r].device)
                continue;
            Node fused = grad;
            fused.outputs.push_back(db);
            fused.refresh_views();
            if (place(fused, steps[w].device) != static_cast<int32_t>(steps[w].device)) continue;
            report.push_back("ConvGradWeight + ReduceSum (bias) -> ConvGradWeight with dB");
            absorb(steps, removed, w, r, std::move(fused));
            break;
        }
    }
    drop_removed(steps, removed);
    return report;
}

std::vector<std::string> fold_batch_norms(std::vector<FusableStep>& steps, const std::vector<Value>& values,
                                          const std::vector<bool>& observable,
                                          const std::function<const dsk_op_schema*(const std::string&)>& schema_of,
                                          const std::function<int32_t(const Node&, uint32_t)>& place,
                                          const std::function<dsk_value_id(const dsk_tensor_desc&)>& add_value) {
    std::vector<std::string> report;
    const dsk_op_schema* fold_schema = schema_of("FoldConvBatchNorm");
    if (!fold_schema) return report;
    const StepIndex index(steps, values.size());
    const std::vector<uint32_t>& readers = index.readers;
    const std::vector<int32_t>& producer = index.producer;
    auto read = [&](dsk_value_id v) { return v < readers.size() && (readers[v] > 0 || observable[v]); };

    std::vector<bool> removed(steps.size(), false);
    std::vector<std::pair<size_t, FusableStep>> inserts;  // fold steps, before the conv at index
    for (size_t b = 0; b < steps.size(); ++b) {
        const Node& bn = steps[b].node;
        if (!bn.domain.empty() || bn.op != "BatchNormalization" || bn.inputs.size() != 5) continue;
        double epsilon = 1e-5;
        bool inference = true;
        for (const auto& a : bn.attrs) {
            if (a.name == "training_mode") inference = a.i == 0;
            if (a.name == "epsilon") epsilon = a.f;
        }
        if (!inference) continue;
        bool statistics_read = false;
        for (size_t o = 1; o < bn.outputs.size(); ++o) statistics_read |= read(bn.outputs[o]);
        if (statistics_read) continue;
        const int32_t c = producer[bn.inputs[0]];
        if (c < 0 || removed[c] || !steps[c].fused_from.empty() || steps[c].device != steps[b].device) continue;
        const Node& conv = steps[c].node;
        if (!conv.domain.empty() || conv.op != "Conv" || conv.outputs.size() != 1) continue;
        if (readers[conv.outputs[0]] != 1 || observable[conv.outputs[0]]) continue;

        Node fold;
        fold.op = "FoldConvBatchNorm";
        fold.schema = fold_schema;
        OwnedAttr eps;
        eps.name = "epsilon";
        eps.type = DSK_ATTR_FLOAT;
        eps.f = epsilon;
        fold.attrs = {eps};
        fold.inputs = {conv.inputs[1], bn.inputs[1], bn.inputs[2], bn.inputs[3], bn.inputs[4]};
        if (conv.inputs.size() > 2) fold.inputs.push_back(conv.inputs[2]);
        dsk_tensor_desc bias_desc = values[bn.inputs[1]].desc;
        const dsk_value_id w = add_value(values[conv.inputs[1]].desc);
        const dsk_value_id bias = add_value(bias_desc);
        fold.outputs = {w, bias};
        fold.refresh_views();
        Node folded_conv = conv;
        folded_conv.inputs = {conv.inputs[0], w, bias};
        folded_conv.outputs = {bn.outputs[0]};
        folded_conv.refresh_views();
        // The conv stays where it was; the fold may run on a device sharing its memory (a cpu
        // beside onednn). Values the fold writes live on the device that writes them.
        const int32_t fold_device = place(fold, steps[c].device);
        if (fold_device < 0 || place(folded_conv, steps[c].device) != static_cast<int32_t>(steps[c].device)) continue;

        report.push_back("Conv + BatchNormalization -> FoldConvBatchNorm + Conv");
        FusableStep fold_step{std::move(fold), steps[c].origin, {steps[c].origin, steps[b].origin},
                              static_cast<uint32_t>(fold_device)};
        inserts.push_back({static_cast<size_t>(c), std::move(fold_step)});
        steps[c].node = std::move(folded_conv);
        steps[c].fused_from = {steps[c].origin, steps[b].origin};
        removed[b] = true;
    }
    std::stable_sort(inserts.begin(), inserts.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    std::vector<FusableStep> kept;
    kept.reserve(steps.size() + inserts.size());
    size_t next_insert = 0;
    for (size_t i = 0; i < steps.size(); ++i) {
        while (next_insert < inserts.size() && inserts[next_insert].first == i) kept.push_back(std::move(inserts[next_insert++].second));
        if (!removed[i]) kept.push_back(std::move(steps[i]));
    }
    steps = std::move(kept);
    for (auto& s : steps) s.node.refresh_views();
    return report;
}

}  // namespace dsk::kernel
