#include "layers.h"
#include "zoo.h"

namespace dsk::models {

// Conv blocks (conv, [batch norm], activation, 2x2 max pool), then two linear layers.
Model cnn_model() {
    return {"cnn",
            "Small CNN: conv blocks (conv, optional batch norm, activation, 2x2 max pool), then two linear layers",
            {param_array("channels", "output channels of each conv block", "[32, 64]"),
             param_int("kernel_size", "conv kernel size", "3", 1, 11),
             param_int("hidden", "width of the first linear layer", "128", 1, 65536),
             param_bool("batch_norm", "batch norm after each conv", "false"),
             param_string("activation", "activation", "\"relu\"", kActivations),
             param_float("dropout", "dropout before the classifier", "0.25", 0.0, 0.99)},
            [](dsk_graph* graph, const Config& config, dsk_value_id x, int64_t classes, bool training) {
                Layers l(graph, training);
                const std::string act = config.get<std::string>("activation");
                const int64_t kernel = config.get<int64_t>("kernel_size");
                const bool bn = config.get<bool>("batch_norm");
                int block = 1;
                for (int64_t c : int_list(config, "channels", 1)) {
                    const std::string name = "conv" + std::to_string(block++);
                    x = l.conv(name, x, c, kernel, 1, -1, 1, !bn);
                    if (bn) x = l.batch_norm(name + ".bn", x);
                    x = l.max_pool(l.activation(act, x), 2);
                }
                x = l.flatten(x);
                x = l.activation(act, l.linear("fc1", x, config.get<int64_t>("hidden")));
                x = l.dropout(x, config.get<double>("dropout"));
                return l.linear("fc2", x, classes);
            }};
}

}  // namespace dsk::models
