// The early-stopping schedulers (asha, median) on synthetic learning curves.
#include "search_harness.h"

using namespace search_test;

namespace {

const char* const kSpace = "q = { type = \"float\", low = 0.0, high = 1.0 }";

// Loss curve of trial quality q in [0, 1] (lower q is better): it falls towards q with epochs,
// and curves never cross, so the final order is visible early.
double curve(double q, int64_t epoch) { return q + 1.0 / static_cast<double>(epoch + 1); }

struct Outcome {
    int64_t epochs = 0;              // epochs trained in all
    std::vector<bool> pruned;        // per trial
};

// Runs trials with qualities `qs` one after another through `scheduler`, up to `max_epochs` each,
// stopping a trial as soon as the scheduler says so.
Outcome run(const dsk_search_iface& scheduler, const char* options, const std::vector<double>& qs, int64_t max_epochs) {
    Study study(scheduler, kSpace, options);
    Outcome out;
    for (size_t t = 0; t < qs.size(); ++t) {
        bool pruned = false;
        double last = 0;
        for (int64_t epoch = 1; epoch <= max_epochs; ++epoch) {
            last = curve(qs[t], epoch);
            ++out.epochs;
            study.report(t, epoch, last);
            if (study.should_prune(t)) {
                pruned = true;
                break;
            }
        }
        study.complete(t, pruned ? DSK_TRIAL_PRUNED : DSK_TRIAL_COMPLETE, last);
        out.pruned.push_back(pruned);
    }
    return out;
}

// Qualities in a fixed, shuffled order: the best (0.0) comes sixth, the worst (1.0) third.
const std::vector<double> kQualities = {0.5, 0.3, 1.0, 0.7, 0.2, 0.0, 0.9, 0.4, 0.8, 0.6, 0.1, 0.95};

}  // namespace

TEST_CASE("asha keeps the best curves and prunes the bad ones") {
    const Outcome out = run(dsk::search::asha_iface(), "min_resource = 1\nreduction_factor = 3", kQualities, 9);
    CHECK_FALSE(out.pruned[0]);   // the first arrival is the best at every rung
    CHECK_FALSE(out.pruned[5]);   // q = 0.0, the best trial, runs to the end
    CHECK(out.pruned[2]);         // q = 1.0
    CHECK(out.pruned[6]);         // q = 0.9
    CHECK(out.pruned[8]);         // q = 0.8
    CHECK(out.pruned[11]);        // q = 0.95
    const int64_t full = static_cast<int64_t>(kQualities.size()) * 9;
    MESSAGE("asha trained ", out.epochs, " of ", full, " epochs");
    CHECK(out.epochs < full * 6 / 10);  // saves at least 40%
}

TEST_CASE("median stopping prunes curves below the median of completed ones") {
    const Outcome out = run(dsk::search::median_iface(), "startup_trials = 3\nwarmup_steps = 2", kQualities, 9);
    CHECK_FALSE(out.pruned[0]);  // startup: nothing is judged before three trials completed
    CHECK_FALSE(out.pruned[1]);
    CHECK_FALSE(out.pruned[2]);
    CHECK(out.pruned[3]);        // 0.7: worse than the median of 0.5, 0.3, 1.0
    CHECK_FALSE(out.pruned[4]);  // 0.2
    CHECK_FALSE(out.pruned[5]);  // 0.0
    CHECK(out.pruned[6]);        // 0.9
    CHECK_FALSE(out.pruned[10]); // 0.1
    CHECK(out.pruned[11]);       // 0.95
}

TEST_CASE("median stopping respects the warmup") {
    Study study(dsk::search::median_iface(), kSpace, "startup_trials = 1\nwarmup_steps = 5");
    study.report(0, 1, 0.1);
    study.complete(0, DSK_TRIAL_COMPLETE, 0.1);
    study.report(1, 1, 5.0);
    CHECK_FALSE(study.should_prune(1));
    study.report(1, 5, 5.0);
    CHECK(study.should_prune(1));
}

TEST_CASE("a scheduler does not suggest and says so") {
    for (const dsk_search_iface& iface : {dsk::search::asha_iface(), dsk::search::median_iface()}) {
        Study study(iface, kSpace);
        try {
            study.suggest(0);
            FAIL("a scheduler must not suggest");
        } catch (const dsk::Error& e) {
            CHECK(e.code() == DSK_UNIMPLEMENTED);
            CHECK(std::string(e.what()).find("pair it with a strategy") != std::string::npos);
        }
    }
}

TEST_CASE("asha prunes a trial whose value is not a number") {
    Study study(dsk::search::asha_iface(), kSpace, "min_resource = 1");
    study.report(0, 1, NAN);
    CHECK(study.should_prune(0));
}
