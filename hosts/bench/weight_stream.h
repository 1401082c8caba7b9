// weight_stream.h - the `dsk_bench weights` case (weight_stream.cpp): the time to read the MLP's
// weights once from cache, the floor under its batch-1 latency.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>

#include "dsk/dsk_plugin.h"

namespace dsk_bench {

class WeightStream {
public:
    WeightStream();
    // Reads every weight once (fc1 over the pool, fc2 and fc3 on this thread); returns their sum.
    float read_once(const dsk_host_api& host) const;

private:
    // 64-byte aligned, as a session's buffers are (a vector's 16-byte alignment makes every
    // 64-byte load straddle two cache lines and roughly halves the rate).
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    using Weights = std::unique_ptr<float[], Free>;
    static Weights filled(size_t count);
    Weights fc1_, fc2_, fc3_;
};

}  // namespace dsk_bench
