// `median`: the median stopping rule (Golovin et al. 2017, Google Vizier; Optuna's MedianPruner).
// A trial is stopped at step s when its best value so far is worse than the median of the best
// values that the completed trials had reached by step s. It waits for `startup_trials`
// completed trials and does not judge steps before `warmup_steps`.
//
// A scheduler: it does not propose trials (suggest is UNIMPLEMENTED); pair it with a strategy.
#include "strategies.h"

namespace dsk::search {

namespace {

const dsk_param_spec kMedianParams[] = {
    param_int("startup_trials", "completed trials needed before any trial is stopped", "5", 0, 100000),
    param_int("warmup_steps", "steps before which a trial is never stopped", "0", 0, 1e9),
};

// The best (smallest) value of `t` at steps <= step; NaN when it has none.
double best_by(const Trial& t, int64_t step) {
    double best = std::numeric_limits<double>::quiet_NaN();
    for (const auto& [s, v] : t.intermediate) {
        if (s > step) break;
        if (std::isfinite(v) && !(v >= best)) best = v;
    }
    return best;
}

class MedianStopping : public Search {
public:
    MedianStopping(Space space, const Config& o, uint64_t)
        : Search(std::move(space)),
          startup_(o.get_or<int64_t>("startup_trials", 5)),
          warmup_(o.get_or<int64_t>("warmup_steps", 0)) {}

protected:
    bool prune(const Trial& trial) override {
        if (trial.intermediate.empty() || trial.state != TrialState::Pending) return false;
        const int64_t step = trial.intermediate.rbegin()->first;
        if (step < warmup_) return false;
        const double mine = best_by(trial, step);
        if (!std::isfinite(mine)) return true;  // a NaN/inf curve
        std::vector<double> others;
        int64_t completed = 0;
        for (const auto& [id, t] : trials()) {
            if (id == trial.id || t.state != TrialState::Complete) continue;
            ++completed;
            const double v = best_by(t, step);
            if (std::isfinite(v)) others.push_back(v);
        }
        if (completed < std::max<int64_t>(startup_, 1) || others.empty()) return false;
        std::sort(others.begin(), others.end());
        const size_t n = others.size();
        const double median = n % 2 ? others[n / 2] : 0.5 * (others[n / 2 - 1] + others[n / 2]);
        return mine > median;
    }

private:
    int64_t startup_, warmup_;
};

}  // namespace

dsk_search_iface median_iface() {
    return make_iface<MedianStopping>("median", "Median stopping rule (a scheduler: prunes, does not suggest)",
                                      kMedianParams, std::size(kMedianParams));
}

}  // namespace dsk::search
