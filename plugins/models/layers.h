// Layers the zoo's models are made of, each a few graph nodes plus its named variables. Weights
// are initialised as PyTorch does by default (Linear/Conv: U(-1/sqrt(fan_in), 1/sqrt(fan_in));
// batch norm: scale 1, bias 0, running mean 0, running variance 1), so results are comparable.
#pragma once

#include <dsk/dsk_op.hpp>

#include <string>

namespace dsk::models {

class Layers {
public:
    Layers(dsk_graph* graph, bool training) : g_(graph), training_(training) {}
    const Graph& graph() const { return g_; }
    bool training() const { return training_; }

    // x [N, in] -> [N, out] (weight [out, in] as PyTorch, so checkpoints map one to one).
    dsk_value_id linear(const std::string& name, dsk_value_id x, int64_t out, bool bias = true) const;
    // x [N, C, H, W] -> [N, out, H', W'].
    dsk_value_id conv(const std::string& name, dsk_value_id x, int64_t out, int64_t kernel, int64_t stride = 1,
                      int64_t padding = -1 /* kernel / 2 */, int64_t groups = 1, bool bias = true) const;
    dsk_value_id batch_norm(const std::string& name, dsk_value_id x) const;
    // "relu", "gelu", "silu", "tanh", "sigmoid", "hardswish", "hardsigmoid", "identity".
    dsk_value_id activation(const std::string& kind, dsk_value_id x) const;
    dsk_value_id max_pool(dsk_value_id x, int64_t kernel, int64_t stride = 0 /* = kernel */, int64_t padding = 0) const;
    dsk_value_id avg_pool(dsk_value_id x, int64_t kernel, int64_t stride = 0, int64_t padding = 0) const;
    dsk_value_id global_avg_pool(dsk_value_id x) const;  // [N, C, H, W] -> [N, C, 1, 1]
    dsk_value_id flatten(dsk_value_id x) const;          // [N, ...] -> [N, rest]
    dsk_value_id dropout(dsk_value_id x, double ratio) const;
    // Squeeze-and-excitation (MobileNetV3): x * hardsigmoid(fc2(relu(fc1(pool(x))))).
    dsk_value_id squeeze_excite(const std::string& name, dsk_value_id x, int64_t squeeze) const;
    dsk_value_id add(dsk_value_id a, dsk_value_id b) const { return g_.node("Add", {a, b}); }

    int64_t channels(dsk_value_id x) const { return g_.shape(x).at(1); }

private:
    Graph g_;
    bool training_;
};

// The activation names a model accepts, for its parameter specs.
extern const char* const kActivations[];

}  // namespace dsk::models
