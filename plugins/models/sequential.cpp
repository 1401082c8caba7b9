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
    {"relu", {}},
    {"gelu", {}},
    {"silu", {}},
    {"tanh", {}},
    {"sigmoid", {}},
    {"hardswish", {}},
};

// Throws for an unknown type, or a key the type does not take (a misspelt `kernal` or a
// dropout's `ratio` would otherwise be ignored silently).
// The model's own config view has no prefix, so messages name keys as the stage sees them.
void check_layer(const Config& layer, size_t index, const std::string& type) {
    const std::string name = "model.layers." + std::to_string(index);
    auto it = std::find_if(kTypes.begin(), kTypes.end(), [&](const auto& t) { return t.first == type; });
    if (it == kTypes.end()) {
        std::string known;
        for (const auto& t : kTypes) known += (known.empty() ? "" : ", ") + t.first;
        throw Error(DSK_INVALID_ARGUMENT, name + ".type = \"" + type + "\" is not a layer type (" + known + ")");
    }
    const std::vector<std::string>& accepted = it->second;
    for (const std::string& key : layer.keys()) {
        if (key == "type" || std::find(accepted.begin(), accepted.end(), key) != accepted.end()) continue;
        std::string keys = "type";
        for (const auto& k : accepted) keys += ", " + k;
        throw Error(DSK_INVALID_ARGUMENT, name + "." + key + ": a " + type + " layer has no key '" + key +
                                              "' (it accepts: " + keys + ")");
    }
}

}  // namespace

// A model described layer by layer in the pipeline:
//   model = { name = "sequential", layers = [
//     { type = "conv", out = 32, kernel = 3 }, { type = "relu" }, { type = "maxpool", kernel = 2 },
//     { type = "flatten" }, { type = "linear", out = 128 }, { type = "relu" }, { type = "linear" } ] }
// The last linear layer without `out` gets one output per class.
Model sequential_model() {
    return {"sequential",
            "A model described layer by layer: linear, conv, batchnorm, activation (or relu, gelu, ...), maxpool, "
            "avgpool, globalavgpool, flatten, dropout",
            {required(param_array("layers", "the layers in order, each a table with `type` and its keys"))},
            [](dsk_graph* graph, const Config& config, dsk_value_id x, int64_t classes, bool training) {
                Layers l(graph, training);
                const size_t count = config.size("layers");
                if (count == 0) throw Error(DSK_INVALID_ARGUMENT, "model.layers is empty");
                for (size_t i = 0; i < count; ++i) {
                    const Config layer = config.section("layers." + std::to_string(i));
                    const std::string type = layer.get<std::string>("type");
                    check_layer(layer, i, type);
                    const std::string name = "layers." + std::to_string(i);  // variables' prefix
                    const std::string where = "model." + name;             // for messages
                    auto integer = [&](const char* key, int64_t fallback) { return layer.get_or<int64_t>(key, fallback); };
                    if (type == "linear") {
                        int64_t out = integer("out", i + 1 == count ? classes : 0);
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
                    } else {  // relu, gelu, ...: check_layer accepted the type
                        x = l.activation(type, x);
                    }
                }
                if (Graph(graph).shape(x).size() != 2 || Graph(graph).shape(x)[1] != classes)
                    throw Error(DSK_INVALID_ARGUMENT, "model.layers: the last layer gives " +
                                                          shape_text(Graph(graph).shape(x)) + ", not [N, " +
                                                          std::to_string(classes) + "] logits; end with a linear layer");
                return x;
            }};
}

}  // namespace dsk::models
