#include "study.h"

#include <algorithm>

namespace dsk::hpo {

std::vector<const TrialRecord*> finalist_candidates(const std::vector<TrialRecord>& trials, int64_t count, bool maximize) {
    std::vector<const TrialRecord*> ranked;
    for (const TrialRecord& t : trials)
        if ((t.state == "complete" || t.state == "pruned") && std::isfinite(t.objective)) ranked.push_back(&t);
    // Complete trials trained furthest; a pruned trial's objective is its value at the rung that
    // stopped it, comparable only with others stopped there.
    auto rank = [](const TrialRecord& t) { return t.state == "complete" ? INT64_MAX : t.steps; };
    std::stable_sort(ranked.begin(), ranked.end(), [&](const TrialRecord* a, const TrialRecord* b) {
        if (rank(*a) != rank(*b)) return rank(*a) > rank(*b);
        return maximize ? a->objective > b->objective : a->objective < b->objective;
    });
    if (static_cast<int64_t>(ranked.size()) > count) ranked.resize(static_cast<size_t>(std::max<int64_t>(count, 0)));
    return ranked;
}

}  // namespace dsk::hpo
