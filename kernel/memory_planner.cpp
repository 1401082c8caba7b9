#include "memory_planner.h"

#include <algorithm>
#include <iterator>
#include <map>

namespace dsk::kernel {
namespace {

// Free blocks of one arena (offset -> size), coalesced, plus the arena's current end.
struct Arena {
    std::map<uint64_t, uint64_t> free;
    uint64_t end = 0;

    uint64_t take(uint64_t bytes) {
        auto best = free.end();
        for (auto it = free.begin(); it != free.end(); ++it)
            if (it->second >= bytes && (best == free.end() || it->second < best->second)) best = it;
        if (best != free.end()) {
            const uint64_t offset = best->first, size = best->second;
            free.erase(best);
            if (size > bytes) free[offset + bytes] = size - bytes;
            return offset;
        }
        // Grow the arena, starting inside a free block that ends at its end.
        if (!free.empty()) {
            auto last = std::prev(free.end());
            if (last->first + last->second == end) {
                const uint64_t offset = last->first;
                free.erase(last);
                end = offset + bytes;
                return offset;
            }
        }
        const uint64_t offset = end;
        end += bytes;
        return offset;
    }

    void give_back(uint64_t offset, uint64_t bytes) {
        auto it = free.emplace(offset, bytes).first;
        auto next = std::next(it);
        if (next != free.end() && it->first + it->second == next->first) {
            it->second += next->second;
            free.erase(next);
        }
        if (it != free.begin()) {
            auto prev = std::prev(it);
            if (prev->first + prev->second == it->first) {
                prev->second += it->second;
                free.erase(it);
            }
        }
    }
};

}  // namespace

MemoryPlan plan_memory(const std::vector<Lifetime>& values, uint32_t device_count, uint64_t alignment) {
    MemoryPlan plan;
    plan.offsets.assign(values.size(), 0);
    std::vector<Arena> arenas(device_count);
    std::vector<uint64_t> rounded(values.size());
    std::vector<bool> taken_over(values.size(), false);
    uint32_t steps = 0;
    for (size_t v = 0; v < values.size(); ++v) {
        rounded[v] = (values[v].bytes + alignment - 1) & ~(alignment - 1);
        plan.unplanned_bytes += values[v].bytes;
        steps = std::max(steps, values[v].first + 1);
        if (values[v].last != UINT32_MAX) steps = std::max(steps, values[v].last + 1);
    }
    std::vector<std::vector<uint32_t>> defined(steps), dying(steps);
    for (uint32_t v = 0; v < values.size(); ++v) {
        defined[values[v].first].push_back(v);
        if (values[v].last != UINT32_MAX) dying[std::max(values[v].last, values[v].first)].push_back(v);
    }
    for (uint32_t s = 0; s < steps; ++s) {
        struct Tail {
            uint32_t device;
            uint64_t offset, bytes;
        };
        std::vector<Tail> tails;  // unused ends of blocks taken over at this step
        // A step's outputs must not overlap its inputs (they are read while it writes), unless
        // an input dies here and the op may write over it.
        for (uint32_t v : defined[s]) {
            const Lifetime& l = values[v];
            const int32_t donor = l.in_place_of;
            if (donor >= 0 && !taken_over[donor] && values[donor].last == s && values[donor].device == l.device &&
                values[donor].first < s && rounded[donor] >= rounded[v]) {
                plan.offsets[v] = plan.offsets[donor];
                taken_over[donor] = true;
                ++plan.in_place;
                // The donor is still read during this step: its unused end is free only after it.
                if (rounded[donor] > rounded[v]) tails.push_back({l.device, plan.offsets[v] + rounded[v], rounded[donor] - rounded[v]});
                continue;
            }
            plan.offsets[v] = arenas[l.device].take(rounded[v]);
        }
        for (uint32_t v : dying[s])
            if (!taken_over[v]) arenas[values[v].device].give_back(plan.offsets[v], rounded[v]);
        for (const Tail& t : tails) arenas[t.device].give_back(t.offset, t.bytes);
    }
    for (const Arena& a : arenas) plan.arena_bytes.push_back(a.end);
    return plan;
}

}  // namespace dsk::kernel
