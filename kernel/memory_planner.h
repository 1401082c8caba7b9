// Memory planning by liveness, as static-graph runtimes do it (TensorFlow Lite's arena planner,
// ONNX Runtime's memory patterns): each transient value of an execution plan gets an offset in
// one arena per device, and two values share bytes only when their lifetimes do not overlap.
// A value may also take over, in place, the block of an input that dies at the step that
// defines it (an elementwise op writing over its input).
#pragma once

#include <cstdint>
#include <vector>

namespace dsk::kernel {

struct Lifetime {
    uint64_t bytes = 0;
    uint32_t device = 0;
    uint32_t first = 0;         // the step that writes it
    uint32_t last = 0;          // the last step that reads it; UINT32_MAX: kept after the run
    int32_t in_place_of = -1;   // a value whose block it may take if that one dies at `first`
};

struct MemoryPlan {
    std::vector<uint64_t> offsets;      // per value, in its device's arena
    std::vector<uint64_t> arena_bytes;  // per device: the planned peak
    uint64_t unplanned_bytes = 0;       // the sum of all values: one buffer each
    uint32_t in_place = 0;              // values that took over an input's block
};

// `alignment` must be a power of two. Deterministic: the same lifetimes give the same plan.
MemoryPlan plan_memory(const std::vector<Lifetime>& values, uint32_t device_count, uint64_t alignment = 64);

}  // namespace dsk::kernel
