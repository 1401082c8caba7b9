#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "layers.h"
#include "zoo.h"

namespace dsk::models {
namespace {

// Each layer type and the keys it accepts besides `type` (docs/training.md lists the same).
const std::vector<std::pair<std::string, std::vector<std::string>>> kTypes = {
    {"linear", {"out", "bias"}},
    {"conv", {"out", "kernel", "stride", "padding", "groups", "bias"}},
    {"batchnorm", {}},
    {"activation", {"kind"}},
    {"maxpool", {"kernel", "stride", "padding"}},
    {"avgpool", {"kernel", "stride", "padding"}},
    {"globalavgpool", {}},
    {"flatten", {}},
    {"dropout", {"p"}},
    {"residual", {"layers"}},
    {"relu", {}},
    {"gelu", {}},
    {"silu", {}},
    {"tanh", {}},
    {"sigmoid", {}},
    {"hardswish", {}},
};

// Throws for an unknown type, or a key the type does not take (a misspelt `kernal` or a
// dropout's `ratio` would otherwise be ignored silently). `where` names the layer as the stage
// sees it ("model.layers.3", "model.layers.3.layers.0").
void check_layer(const Config& layer, const std::string& where, const std::string& type) {
    auto it = std::find_if(kTypes.begin(), kTypes.end(), [&](const auto& t) { return t.first == type; });
    if (it == kTypes.end()) {
        std::string known;
        for (const auto& t : kTypes) known += (known.empty() ? "" : ", ") + t.first;
        throw Error(DSK_INVALID_ARGUMENT, where + ".type = \"" + type + "\" is not a layer type (" + known + ")");
    }
    const std::vector<std::string>& accepted = it->second;
    for (const std::string& key : layer.keys()) {
        if (key == "type" || std::find(accepted.begin(), accepted.end(), key) != accepted.end()) continue;
        std::string keys = "type";
        for (const auto& k : accepted) keys += ", " + k;
        throw Error(DSK_INVALID_ARGUMENT, where + "." + key + ": a " + type + " layer has no key '" + key +
                                              "' (it accepts: " + keys + ")");
    }
}

dsk_value_id build_layers(const Layers& l, const Config& owner, const std::string& prefix, dsk_value_id x, int64_t classes,
                          bool top);

// A residual block: its layers applied to x, plus x itself when they keep the shape, or else a
// 1x1 conv projection of x (`<name>.shortcut`, with the stride that matches a smaller map).
dsk_value_id residual(const Layers& l, const Config& block, const std::string& name, dsk_value_id x, int64_t classes) {
    const std::string where = "model." + name;
    if (block.size("layers") == 0)
        throw Error(DSK_INVALID_ARGUMENT, where + ".layers is empty: a residual block needs layers = [...], e.g. "
                                                  "[{ type = \"conv\", out = 16 }, { type = \"batchnorm\" }]");
    const dsk_value_id y = build_layers(l, block, name + ".layers", x, classes, false);
    const std::vector<int64_t> in = l.graph().shape(x), out = l.graph().shape(y);
    if (in == out) return l.add(y, x);
    const bool maps = in.size() == 4 && out.size() == 4 && out[2] > 0 && out[3] > 0 && in[2] % out[2] == 0 &&
                      in[3] % out[3] == 0 && in[2] / out[2] == in[3] / out[3];
    if (!maps)
        throw Error(DSK_INVALID_ARGUMENT, where + ": the block turns " + shape_text(in) + " into " + shape_text(out) +
                                              "; a residual block must keep the shape, or give an [N, C, H, W] map whose size divides "
                                              "the input's (then a 1x1 projection matches channels and stride)");
    const dsk_value_id shortcut = l.conv(name + ".shortcut", x, out[1], 1, in[2] / out[2], 0);
    return l.add(y, shortcut);
}

// The layers listed at `owner`'s key `layers`; variables are named `<prefix>.<index>...`.
dsk_value_id build_layers(const Layers& l, const Config& owner, const std::string& prefix, dsk_value_id x, int64_t classes,
                          bool top) {
    const size_t count = owner.size("layers");
    for (size_t i = 0; i < count; ++i) {
        const Config layer = owner.section("layers." + std::to_string(i));
        const std::string type = layer.get<std::string>("type");
        const std::string name = prefix + "." + std::to_string(i);  // variables' prefix
        const std::string where = "model." + name;                  // for messages
        check_layer(layer, where, type);
        auto integer = [&](const char* key, int64_t fallback) { return layer.get_or<int64_t>(key, fallback); };
        if (type == "linear") {
            int64_t out = integer("out", top && i + 1 == count ? classes : 0);
            if (out <= 0) throw Error(DSK_INVALID_ARGUMENT, where + ".out is required (only the last linear layer may omit it)");
            x = l.linear(name, x, out, layer.get_or("bias", true));
        } else if (type == "conv") {
            x = l.conv(name, x, integer("out", 0) > 0 ? integer("out", 0) : throw Error(DSK_INVALID_ARGUMENT, where + ".out is required"),
                       integer("kernel", 3), integer("stride", 1), integer("padding", -1), integer("groups", 1),
                       layer.get_or("bias", true));
        } else if (type == "batchnorm") {
            x = l.batch_norm(name, x);
        } else if (type == "activation") {
            x = l.activation(layer.get<std::string>("kind"), x);
        } else if (type == "maxpool") {
            x = l.max_pool(x, integer("kernel", 2), integer("stride", 0), integer("padding", 0));
        } else if (type == "avgpool") {
            x = l.avg_pool(x, integer("kernel", 2), integer("stride", 0), integer("padding", 0));
        } else if (type == "globalavgpool") {
            x = l.global_avg_pool(x);
        } else if (type == "flatten") {
            x = l.flatten(x);
        } else if (type == "dropout") {
            x = l.dropout(x, layer.get_or("p", 0.5));
        } else if (type == "residual") {
            x = residual(l, layer, name, x, classes);
        } else {  // relu, gelu, ...: check_layer accepted the type
            x = l.activation(type, x);
        }
    }
    return x;
}

}  // namespace

// A model described layer by layer in the pipeline:
//   model = { name = "sequential", layers = [
//     { type = "conv", out = 32, kernel = 3 }, { type = "relu" }, { type = "maxpool", kernel = 2 },
//     { type = "residual", layers = [{ type = "conv", out = 32 }, { type = "batchnorm" }] }, { type = "relu" },
//     { type = "flatten" }, { type = "linear", out = 128 }, { type = "relu" }, { type = "linear" } ] }
// The last linear layer without `out` gets one output per class. A residual layer adds its
// input (or a 1x1 projection of it) to the output of its own layers.
Model sequential_model() {
    return {"sequential",
            "A model described layer by layer: linear, conv, batchnorm, activation (or relu, gelu, ...), maxpool, "
            "avgpool, globalavgpool, flatten, dropout, residual (layers plus a skip connection)",
            {required(param_array("layers", "the layers in order, each a table with `type` and its keys"))},
            [](dsk_graph* graph, const Config& config, dsk_value_id x, int64_t classes, bool training) {
                Layers l(graph, training);
                if (config.size("layers") == 0) throw Error(DSK_INVALID_ARGUMENT, "model.layers is empty");
                x = build_layers(l, config, "layers", x, classes, true);
                if (Graph(graph).shape(x).size() != 2 || Graph(graph).shape(x)[1] != classes)
                    throw Error(DSK_INVALID_ARGUMENT, "model.layers: the last layer gives " +
                                                          shape_text(Graph(graph).shape(x)) + ", not [N, " +
                                                          std::to_string(classes) + "] logits; end with a linear layer");
                return x;
            }};
}

}  // namespace dsk::models
