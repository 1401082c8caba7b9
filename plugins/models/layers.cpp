#include "layers.h"

#include <cmath>

namespace dsk::models {

const char* const kActivations[] = {"relu", "gelu", "silu", "tanh", "sigmoid", "hardswish", "identity", nullptr};

dsk_value_id Layers::linear(const std::string& name, dsk_value_id x, int64_t out, bool bias) const {
    const int64_t in = g_.shape(x).at(1);
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    dsk_value_id w = g_.variable(name + ".weight", {out, in}, "uniform", bound);
    if (!bias) return g_.node("Gemm", {x, w}, {Attr("transB", 1)});
    dsk_value_id b = g_.variable(name + ".bias", {out}, "uniform", bound);
    return g_.node("Gemm", {x, w, b}, {Attr("transB", 1)});
}

dsk_value_id Layers::conv(const std::string& name, dsk_value_id x, int64_t out, int64_t kernel, int64_t stride,
                          int64_t padding, int64_t groups, bool bias) const {
    const int64_t in = channels(x);
    if (in % groups || out % groups)
        throw Error(DSK_INVALID_ARGUMENT, name + ": channels " + std::to_string(in) + " -> " + std::to_string(out) +
                                              " are not divisible by groups = " + std::to_string(groups));
    if (padding < 0) padding = kernel / 2;
    const double bound = 1.0 / std::sqrt(static_cast<double>(in / groups * kernel * kernel));
    dsk_value_id w = g_.variable(name + ".weight", {out, in / groups, kernel, kernel}, "uniform", bound);
    std::vector<Attr> attrs = {Attr("strides", std::vector<int64_t>{stride, stride}),
                               Attr("pads", std::vector<int64_t>{padding, padding, padding, padding}),
                               Attr("group", groups)};
    if (!bias) return g_.nodes("Conv", {x, w}, attrs, 1)[0];
    dsk_value_id b = g_.variable(name + ".bias", {out}, "uniform", bound);
    return g_.nodes("Conv", {x, w, b}, attrs, 1)[0];
}

dsk_value_id Layers::batch_norm(const std::string& name, dsk_value_id x) const {
    const int64_t c = channels(x);
    dsk_value_id scale = g_.variable(name + ".weight", {c}, "ones", 0);
    dsk_value_id bias = g_.variable(name + ".bias", {c}, "zeros", 0);
    dsk_value_id mean = g_.variable(name + ".running_mean", {c}, "zeros", 0, 0);
    dsk_value_id var = g_.variable(name + ".running_var", {c}, "ones", 0, 0);
    return g_.nodes("BatchNormalization", {x, scale, bias, mean, var},
                    {Attr("epsilon", 1e-5), Attr("momentum", 0.9), Attr("training_mode", training_ ? 1 : 0)}, 3)[0];
}

dsk_value_id Layers::activation(const std::string& kind, dsk_value_id x) const {
    if (kind == "relu") return g_.node("Relu", {x});
    if (kind == "gelu") return g_.node("Gelu", {x});
    if (kind == "silu") return g_.node("Silu", {x});
    if (kind == "tanh") return g_.node("Tanh", {x});
    if (kind == "sigmoid") return g_.node("Sigmoid", {x});
    if (kind == "hardswish") return g_.node("HardSwish", {x});
    // PyTorch's hardsigmoid: relu6(x + 3) / 6.
    if (kind == "hardsigmoid") return g_.node("HardSigmoid", {x}, {Attr("alpha", 1.0 / 6.0), Attr("beta", 0.5)});
    if (kind == "identity") return x;
    throw Error(DSK_INVALID_ARGUMENT, "unknown activation '" + kind + "' (relu, gelu, silu, tanh, sigmoid, hardswish, identity)");
}

static std::vector<Attr> pool_attrs(int64_t kernel, int64_t stride, int64_t padding) {
    if (stride <= 0) stride = kernel;
    return {Attr("kernel_shape", std::vector<int64_t>{kernel, kernel}), Attr("strides", std::vector<int64_t>{stride, stride}),
            Attr("pads", std::vector<int64_t>{padding, padding, padding, padding})};
}

dsk_value_id Layers::max_pool(dsk_value_id x, int64_t kernel, int64_t stride, int64_t padding) const {
    return g_.node("MaxPool", {x}, pool_attrs(kernel, stride, padding));
}

dsk_value_id Layers::avg_pool(dsk_value_id x, int64_t kernel, int64_t stride, int64_t padding) const {
    return g_.node("AveragePool", {x}, pool_attrs(kernel, stride, padding));
}

dsk_value_id Layers::global_avg_pool(dsk_value_id x) const { return g_.node("GlobalAveragePool", {x}); }

dsk_value_id Layers::flatten(dsk_value_id x) const { return g_.node("Flatten", {x}, {Attr("axis", 1)}); }

dsk_value_id Layers::dropout(dsk_value_id x, double ratio) const {
    if (ratio <= 0) return x;
    return g_.nodes("Dropout", {x}, {Attr("ratio", ratio), Attr("training_mode", training_ ? 1 : 0)}, 2)[0];
}

dsk_value_id Layers::squeeze_excite(const std::string& name, dsk_value_id x, int64_t squeeze) const {
    const int64_t c = channels(x);
    dsk_value_id s = global_avg_pool(x);
    s = conv(name + ".fc1", s, squeeze, 1, 1, 0);
    s = activation("relu", s);
    s = conv(name + ".fc2", s, c, 1, 1, 0);
    s = activation("hardsigmoid", s);
    return g_.node("Mul", {x, s});
}

}  // namespace dsk::models
