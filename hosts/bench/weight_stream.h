// weight_stream.h - the `dsk_bench weights` case (weight_stream.cpp): the floors under the MLP's
// batch-1 latency. `read_once` only reads the weights once from cache; `forward_once` computes
// the forward pass in plain loops, split as dsk's FusedGemmChain splits it at batch 1, with
// nothing of a framework around it.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <string>

#include "dsk/dsk_plugin.h"

namespace dsk_bench {

class WeightStream {
public:
    WeightStream();
    // Reads every weight once (fc1's rows and fc2's columns over the pool, fc3 on this thread);
    // returns their sum.
    float read_once(const dsk_host_api& host) const;
    // Writes a new input image (as a session's input is written on every run), then computes
    // relu(fc1), relu(fc2) and fc3 with biases: fc1's rows and, from them, fc2's partial sums
    // over the pool; fc2's sums added, and fc3, on this thread. Returns the sum of the logits.
    float forward_once(const dsk_host_api& host);
    // The last forward_once again in scalar loops on this thread, compared with it layer by
    // layer: "" when they agree, else the first output that differs (dsk_bench checks this
    // before timing).
    std::string check_forward() const;

private:
    // 64-byte aligned, as a session's buffers are (a vector's 16-byte alignment makes every
    // 64-byte load straddle two cache lines and roughly halves the rate).
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    using Weights = std::unique_ptr<float[], Free>;
    static Weights filled(size_t count);
    Weights fc1_, fc2_, fc3_;
    Weights bias_, x_, h1_, h2_, logits_;  // biases of all three layers, then the activations
    Weights partial_;                      // fc2's partial sums, 128 per part
    float step_ = 0;
};

}  // namespace dsk_bench
