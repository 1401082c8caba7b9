// Which trials a study retrains as finalists (finalist_candidates): complete ones first, then,
// when fewer completed, the pruned ones stopped at the latest rung.
#include <doctest/doctest.h>

#include "study.h"

using dsk::hpo::TrialRecord;

namespace {

TrialRecord trial(uint64_t id, const char* state, double objective, int64_t steps) {
    TrialRecord t;
    t.id = id;
    t.state = state;
    t.objective = objective;
    t.steps = steps;
    return t;
}

std::vector<uint64_t> ids(const std::vector<const TrialRecord*>& chosen) {
    std::vector<uint64_t> out;
    for (const TrialRecord* t : chosen) out.push_back(t->id);
    return out;
}

}  // namespace

TEST_CASE("finalists: complete trials by objective, then pruned ones from the latest rung") {
    // As under ASHA: two trials completed 12 epochs, the others were stopped at epoch 1, 3 or 9;
    // a value at an early rung is higher than the complete ones' but says less.
    const std::vector<TrialRecord> trials = {
        trial(0, "complete", 0.91, 12), trial(1, "pruned", 0.95, 1),     trial(2, "pruned", 0.905, 9),
        trial(3, "complete", 0.92, 12), trial(4, "pruned", 0.908, 9),    trial(5, "failed", NAN, 0),
        trial(6, "rejected", NAN, 0),   trial(7, "pruned", 0.93, 3),     trial(8, "running", 0.99, 5),
    };
    CHECK(ids(dsk::hpo::finalist_candidates(trials, 2, true)) == std::vector<uint64_t>{3, 0});
    CHECK(ids(dsk::hpo::finalist_candidates(trials, 4, true)) == std::vector<uint64_t>{3, 0, 4, 2});
    CHECK(ids(dsk::hpo::finalist_candidates(trials, 10, true)) == std::vector<uint64_t>{3, 0, 4, 2, 7, 1});
    // Minimising: the lower value first within each group; ties keep the lower id.
    std::vector<TrialRecord> losses = {trial(0, "complete", 0.3, 4), trial(1, "complete", 0.2, 4),
                                       trial(2, "complete", 0.2, 4), trial(3, "pruned", 0.1, 2)};
    CHECK(ids(dsk::hpo::finalist_candidates(losses, 3, false)) == std::vector<uint64_t>{1, 2, 0});
    CHECK(dsk::hpo::finalist_candidates(losses, 0, false).empty());
}
