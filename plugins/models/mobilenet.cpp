#include "layers.h"
#include "zoo.h"

namespace dsk::models {
namespace {

int64_t make_divisible(double v, int64_t divisor = 8) {
    int64_t r = std::max<int64_t>(divisor, (static_cast<int64_t>(v + divisor / 2.0) / divisor) * divisor);
    return r < 0.9 * v ? r + divisor : r;
}

struct BlockSpec {
    int64_t kernel, expand, out;
    bool se;
    const char* act;
    int64_t stride;
};

// MobileNetV3-Small (Howard et al. 2019, table 2).
const BlockSpec kBlocks[] = {
    {3, 16, 16, true, "relu", 2},       {3, 72, 24, false, "relu", 2},      {3, 88, 24, false, "relu", 1},
    {5, 96, 40, true, "hardswish", 2},  {5, 240, 40, true, "hardswish", 1}, {5, 240, 40, true, "hardswish", 1},
    {5, 120, 48, true, "hardswish", 1}, {5, 144, 48, true, "hardswish", 1}, {5, 288, 96, true, "hardswish", 2},
    {5, 576, 96, true, "hardswish", 1}, {5, 576, 96, true, "hardswish", 1},
};

dsk_value_id inverted_residual(const Layers& l, const std::string& name, dsk_value_id x, const BlockSpec& b,
                               double width) {
    const int64_t in = l.channels(x), expand = make_divisible(b.expand * width), out = make_divisible(b.out * width);
    dsk_value_id y = x;
    if (expand != in) y = l.activation(b.act, l.batch_norm(name + ".expand.bn", l.conv(name + ".expand", y, expand, 1, 1, 0, 1, false)));
    y = l.conv(name + ".depthwise", y, expand, b.kernel, b.stride, b.kernel / 2, expand, false);
    y = l.activation(b.act, l.batch_norm(name + ".depthwise.bn", y));
    if (b.se) y = l.squeeze_excite(name + ".se", y, make_divisible(expand / 4.0));
    y = l.batch_norm(name + ".project.bn", l.conv(name + ".project", y, out, 1, 1, 0, 1, false));
    return b.stride == 1 && in == out ? l.add(x, y) : y;
}

}  // namespace

// For 28x28 inputs the stem keeps full resolution (stride 1 instead of 2): four stride-2
// blocks take 28 -> 2.
Model mobilenet_v3_small_model() {
    return {"mobilenet_v3_small",
            "MobileNetV3-Small: inverted residuals with squeeze-excitation and hardswish, depthwise convs",
            {param_float("width_multiplier", "scales every layer's channels", "1.0", 0.1, 4.0),
             param_float("dropout", "dropout before the classifier", "0.2", 0.0, 0.99),
             param_int("stem_stride", "stride of the first conv (2 for ImageNet-size inputs)", "1", 1, 2)},
            [](dsk_graph* graph, const Config& config, dsk_value_id x, int64_t classes, bool training) {
                Layers l(graph, training);
                const double width = config.get<double>("width_multiplier");
                x = l.conv("stem", x, make_divisible(16 * width), 3, config.get<int64_t>("stem_stride"), 1, 1, false);
                x = l.activation("hardswish", l.batch_norm("stem.bn", x));
                int i = 0;
                for (const BlockSpec& b : kBlocks) x = inverted_residual(l, "block" + std::to_string(i++), x, b, width);
                x = l.conv("head", x, make_divisible(576 * width), 1, 1, 0, 1, false);
                x = l.activation("hardswish", l.batch_norm("head.bn", x));
                x = l.flatten(l.global_avg_pool(x));
                x = l.activation("hardswish", l.linear("classifier.0", x, 1024));
                x = l.dropout(x, config.get<double>("dropout"));
                return l.linear("classifier.1", x, classes);
            }};
}

}  // namespace dsk::models
