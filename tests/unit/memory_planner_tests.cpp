// The liveness memory planner (kernel/memory_planner.h): values share bytes only when their
// lifetimes do not overlap, in-place takeover only of a value that dies at the step, targets
// never reused.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "dsk/dsk_random.hpp"
#include "memory_planner.h"

using dsk::kernel::Lifetime;
using dsk::kernel::plan_memory;

namespace {

Lifetime life(uint64_t bytes, uint32_t first, uint32_t last, int32_t in_place_of = -1, uint32_t device = 0) {
    Lifetime l;
    l.bytes = bytes;
    l.first = first;
    l.last = last;
    l.in_place_of = in_place_of;
    l.device = device;
    return l;
}

}  // namespace

TEST_CASE("a chain needs two blocks - each step reads one value while it writes the next") {
    // v0 -> v1 -> v2 -> v3: step s writes v_s and reads v_{s-1}.
    std::vector<Lifetime> chain = {life(100, 0, 1), life(100, 1, 2), life(100, 2, 3), life(100, 3, 3)};
    auto plan = plan_memory(chain, 1);
    CHECK(plan.arena_bytes[0] == 256);  // two 64-byte-aligned blocks of 128
    CHECK(plan.unplanned_bytes == 400);
    CHECK(plan.offsets[0] == plan.offsets[2]);
    CHECK(plan.offsets[1] == plan.offsets[3]);
    CHECK(plan.offsets[0] != plan.offsets[1]);
    CHECK(plan.in_place == 0);
}

TEST_CASE("an elementwise step takes over its input's block when the input dies there") {
    std::vector<Lifetime> chain = {life(100, 0, 1), life(100, 1, 2, 0), life(100, 2, 2, 1)};
    auto plan = plan_memory(chain, 1);
    CHECK(plan.in_place == 2);
    CHECK(plan.arena_bytes[0] == 128);
    CHECK(plan.offsets[0] == plan.offsets[1]);
    CHECK(plan.offsets[1] == plan.offsets[2]);
    // The input is still read later: no takeover.
    std::vector<Lifetime> still_read = {life(100, 0, 2), life(100, 1, 2, 0)};
    CHECK(plan_memory(still_read, 1).in_place == 0);
}

TEST_CASE("targets live past the run and are never reused - devices have arenas of their own") {
    std::vector<Lifetime> values = {life(64, 0, UINT32_MAX), life(64, 1, 1), life(64, 2, 2), life(64, 0, 2, -1, 1)};
    auto plan = plan_memory(values, 2);
    CHECK(plan.offsets[1] != plan.offsets[0]);
    CHECK(plan.offsets[2] != plan.offsets[0]);
    CHECK(plan.arena_bytes[0] == 128);
    CHECK(plan.arena_bytes[1] == 64);
}

TEST_CASE("random lifetimes never overlap in both time and memory") {
    uint64_t state = 42;
    for (int trial = 0; trial < 200; ++trial) {
        std::vector<Lifetime> values;
        const uint32_t steps = 3 + dsk::splitmix64(state) % 20;
        for (uint32_t s = 0; s < steps; ++s) {
            const uint32_t outputs = 1 + dsk::splitmix64(state) % 2;
            for (uint32_t o = 0; o < outputs; ++o) {
                const uint64_t bytes = 1 + dsk::splitmix64(state) % 5000;
                const uint32_t span = dsk::splitmix64(state) % 6;
                const uint32_t last = dsk::splitmix64(state) % 10 == 0 ? UINT32_MAX : s + span;
                int32_t donor = -1;
                if (!values.empty() && dsk::splitmix64(state) % 3 == 0) donor = static_cast<int32_t>(dsk::splitmix64(state) % values.size());
                values.push_back(life(bytes, s, last, donor, static_cast<uint32_t>(dsk::splitmix64(state) % 2)));
            }
        }
        auto plan = plan_memory(values, 2);
        for (size_t a = 0; a < values.size(); ++a) {
            CHECK(plan.offsets[a] % 64 == 0);
            CHECK(plan.offsets[a] + values[a].bytes <= plan.arena_bytes[values[a].device]);
            for (size_t b = a + 1; b < values.size(); ++b) {
                if (values[a].device != values[b].device) continue;
                const uint32_t a_end = values[a].last == UINT32_MAX ? UINT32_MAX : std::max(values[a].last, values[a].first);
                const uint32_t b_end = values[b].last == UINT32_MAX ? UINT32_MAX : std::max(values[b].last, values[b].first);
                // b written at its first step while a is still read there (or later) - unless b
                // took a's block in place, which is allowed only when a dies exactly there.
                const bool live_together = values[a].first <= b_end && values[b].first <= a_end;
                const bool in_place = values[b].in_place_of == static_cast<int32_t>(a) && a_end == values[b].first &&
                                      plan.offsets[a] == plan.offsets[b];
                const bool memory_overlaps = plan.offsets[a] < plan.offsets[b] + values[b].bytes &&
                                             plan.offsets[b] < plan.offsets[a] + values[a].bytes;
                if (live_together && memory_overlaps && !in_place)
                    FAIL("values " << a << " and " << b << " overlap in time and memory (trial " << trial << ")");
            }
        }
    }
}
