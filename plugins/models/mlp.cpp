#include "layers.h"
#include "zoo.h"

namespace dsk::models {

std::vector<int64_t> int_list(const Config& config, const std::string& key, int64_t min) {
    std::vector<int64_t> out;
    for (size_t i = 0; i < config.size(key); ++i) {
        const std::string k = key + "." + std::to_string(i);
        int64_t v = config.get<int64_t>(k);
        if (v < min)
            throw Error(DSK_INVALID_ARGUMENT, config.path(k) + " = " + std::to_string(v) + " must be at least " + std::to_string(min));
        out.push_back(v);
    }
    return out;
}

Model mlp_model() {
    return {"mlp",
            "Multi-layer perceptron: flatten, hidden linear layers with an activation, a linear classifier",
            {param_array("hidden", "widths of the hidden layers", "[256, 128]"),
             param_string("activation", "activation after each hidden layer", "\"relu\"", kActivations),
             param_float("dropout", "dropout after each hidden layer", "0.0", 0.0, 0.99)},
            [](dsk_graph* graph, const Config& config, dsk_value_id x, int64_t classes, bool training) {
                Layers l(graph, training);
                const std::string act = config.get<std::string>("activation");
                const double dropout = config.get<double>("dropout");
                x = l.flatten(x);
                int layer = 1;
                for (int64_t width : int_list(config, "hidden", 1)) {
                    x = l.activation(act, l.linear("fc" + std::to_string(layer++), x, width));
                    x = l.dropout(x, dropout);
                }
                return l.linear("fc" + std::to_string(layer), x, classes);
            }};
}

}  // namespace dsk::models
