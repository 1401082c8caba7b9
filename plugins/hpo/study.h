// A study: trials of a base pipeline run as `dsk run` processes, `workers` at a time, proposed by
// a strategy, stopped early by an optional scheduler, recorded in a journal that a resumed run
// replays.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <dsk/dsk_search.hpp>

namespace dsk::hpo {

// A search provider instance (strategy or scheduler), destroyed with its handle.
struct SearchInstance {
    const dsk_search_iface* iface = nullptr;
    dsk_search* search = nullptr;
    std::string name;
    SearchInstance() = default;
    SearchInstance(const SearchInstance&) = delete;
    SearchInstance& operator=(const SearchInstance&) = delete;
    ~SearchInstance() {
        if (search) iface->destroy(search);
    }
};

struct StudySettings {
    std::string stage_name;
    std::string dir;          // <run dir>/<stage name>
    std::string base;         // the base pipeline, absolute
    std::string worker;       // the dsk executable
    std::vector<std::string> plugin_dirs;
    std::vector<std::string> overrides;  // fixed --set for every trial
    std::vector<std::string> retrain;    // --set applied to the exported best.toml only (a longer schedule)
    // After the search, the best `finalists` complete trials (2 or more; else none) are retrained
    // with `retrain` then `finalist_overrides` (which keep the validation split) and the best of
    // them by objective is exported.
    int64_t finalists = 0;
    std::vector<std::string> finalist_overrides;
    // Seconds of `timeout_s` kept for the finalists: no search trial starts after
    // timeout_s - finalist_budget_s (only with finalists).
    double finalist_budget_s = 0;
    std::string objective, objective_stage, intermediate;
    bool maximize = true;
    int64_t trials = 0, workers = 1;
    // CPU threads of each trial (its OMP_NUM_THREADS); 0: none set (the trial's own default).
    int64_t threads = 0;
    double timeout_s = 0;
    uint64_t seed = 0;
    // The `--set key=value` settings of a trial; default: each parameter's key = its value.
    std::function<std::vector<std::string>(const search::Assignment&)> trial_settings;
    // A reason not to run an assignment at all, or "": a constraint of the space (nas:
    // max_parameters). The candidate is recorded `rejected` with the reason, told to the searches
    // as failed (so they learn to avoid it), does not count against `trials`, and the strategy is
    // asked again.
    std::function<std::string(const search::Assignment&)> reject;
    // Configurations to evaluate first, in order (the stage's `enqueue`), checked against the space.
    std::vector<search::Assignment> enqueue;
};

// After this many rejected candidates in a row no more trials start (with a warning): the
// constraint leaves (almost) nothing of the space.
constexpr int64_t kMaxRejectedInRow = 1000;

struct TrialRecord {
    uint64_t id = 0;
    search::Assignment params;
    std::string state = "running";  // running, complete, pruned, failed, rejected (never run: reject)
    bool enqueued = false;          // from the stage's `enqueue`, not suggested by the strategy
    double objective = NAN;         // as the trial reported it (not negated)
    int64_t steps = 0;              // intermediate steps reported (epochs)
    double wall_s = 0;
    std::string error;
    bool pruning = false;  // interrupted by the scheduler, waiting for the exit
};

// Runs (or, from an existing journal, resumes) the study; returns every trial in id order.
// Throws dsk::Error(CANCELLED) after a stop request, once running trials have checkpointed.
std::vector<TrialRecord> run_study(StageContext& ctx, const StudySettings& settings, const search::Space& space,
                                   SearchInstance& strategy, SearchInstance* scheduler);

// A search trial retrained after the search (trial process in <dir>/finalists/NNNN).
struct FinalistRecord {
    uint64_t trial = 0;              // the search trial it retrains
    double search_objective = NAN;   // the trial's objective in the search
    std::string state = "running";  // running, complete, failed
    double objective = NAN;          // the objective of the retrained run
    double wall_s = 0;
    std::string error;
};

// Whether the study has finalists: two or more (one would only retrain the search's winner).
inline bool has_finalists(const StudySettings& s) { return s.finalists >= 2; }

// The trials retrained as finalists, at most `count`: complete trials by objective, then (when
// fewer completed, as under ASHA, which stops most trials) pruned ones, those stopped at the
// latest rung first and by their value there; ties keep the lower id.
std::vector<const TrialRecord*> finalist_candidates(const std::vector<TrialRecord>& trials, int64_t count, bool maximize);

// The finalist_candidates of the study, retrained as
// trial processes, `workers` at a time: `dsk run trials/NNNN/config.toml --set <retrain>...
// --set <finalist_overrides>...`. A finalist that fails is recorded failed and the others go on.
// Each end is journaled (event "finalist"), so a resumed study keeps finished finalists and
// resumes unfinished ones from their checkpoints. Returns them in the search's order. Throws
// dsk::Error(CANCELLED) after a stop request, once running finalists have checkpointed.
std::vector<FinalistRecord> run_finalists(StageContext& ctx, const StudySettings& settings, const std::vector<TrialRecord>& trials);

}  // namespace dsk::hpo
