#include "layers.h"
#include "zoo.h"

namespace dsk::models {
namespace {

// A basic residual block (two 3x3 convs); a 1x1 projection when the shape changes.
dsk_value_id basic_block(const Layers& l, const std::string& name, dsk_value_id x, int64_t out, int64_t stride) {
    dsk_value_id y = l.conv(name + ".conv1", x, out, 3, stride, 1, 1, false);
    y = l.activation("relu", l.batch_norm(name + ".bn1", y));
    y = l.batch_norm(name + ".bn2", l.conv(name + ".conv2", y, out, 3, 1, 1, 1, false));
    dsk_value_id shortcut = x;
    if (stride != 1 || l.channels(x) != out)
        shortcut = l.batch_norm(name + ".shortcut.bn", l.conv(name + ".shortcut", x, out, 1, stride, 0, 1, false));
    return l.activation("relu", l.add(y, shortcut));
}

}  // namespace

// CIFAR-style ResNet (He et al. 2016, section 4.2): depth = 6n + 2, three stages of n blocks
// with width, 2 width and 4 width channels, the last two starting with stride 2.
Model resnet_model() {
    return {"resnet",
            "CIFAR-style ResNet: depth 6n+2, three stages of basic blocks, global average pooling",
            {param_int("depth", "layers: 6n+2 (8, 14, 20, 32, 56, ...)", "20", 8, 200),
             param_int("width", "channels of the first stage", "16", 1, 1024)},
            [](dsk_graph* graph, const Config& config, dsk_value_id x, int64_t classes, bool training) {
                Layers l(graph, training);
                const int64_t depth = config.get<int64_t>("depth");
                if ((depth - 2) % 6 != 0)
                    throw Error(DSK_INVALID_ARGUMENT, config.path("depth") + " = " + std::to_string(depth) +
                                                          " is not 6n+2 (8, 14, 20, 32, 44, 56, ...)");
                const int64_t n = (depth - 2) / 6, width = config.get<int64_t>("width");
                x = l.activation("relu", l.batch_norm("stem.bn", l.conv("stem", x, width, 3, 1, 1, 1, false)));
                for (int stage = 0; stage < 3; ++stage)
                    for (int64_t b = 0; b < n; ++b)
                        x = basic_block(l, "layer" + std::to_string(stage + 1) + "." + std::to_string(b), x,
                                        width << stage, stage > 0 && b == 0 ? 2 : 1);
                return l.linear("fc", l.flatten(l.global_avg_pool(x)), classes);
            }};
}

}  // namespace dsk::models
