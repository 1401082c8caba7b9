// `asha`: asynchronous successive halving (Li et al. 2020, "A System for Massively Parallel
// Hyperparameter Tuning"), as a pruner (Optuna's SuccessiveHalvingPruner). Rung k sits at step
// min_resource * reduction_factor^(min_early_stopping_rate + k). When a trial reports a step at
// or past its next rung, its value there is recorded, and the trial continues only if it is
// among the best 1/reduction_factor of all values recorded at that rung so far (the first
// arrivals, with fewer than reduction_factor competitors, continue only if they are the best).
// Nothing waits for a rung to fill: decisions use what is known, so workers never idle.
//
// A scheduler: it does not propose trials (suggest is UNIMPLEMENTED); pair it with a strategy.
#include "strategies.h"

namespace dsk::search {

namespace {

const dsk_param_spec kAshaParams[] = {
    param_int("min_resource", "steps (epochs) every trial gets before its first rung", "1", 1, 1e9),
    param_int("reduction_factor", "eta: 1/eta of the trials at a rung go on to the next", "3", 2, 1000),
    param_int("min_early_stopping_rate", "s: the first rung is at min_resource * eta^s", "0", 0, 60),
};

class Asha : public Search {
public:
    Asha(Space space, const Config& o, uint64_t)
        : Search(std::move(space)),
          min_resource_(o.get_or<int64_t>("min_resource", 1)),
          eta_(o.get_or<int64_t>("reduction_factor", 3)),
          rate_(o.get_or<int64_t>("min_early_stopping_rate", 0)) {}

protected:
    void on_report(const Trial& trial, int64_t step, double value) override {
        if (stopped_.count(trial.id)) return;
        size_t& rung = next_rung_[trial.id];
        while (static_cast<double>(step) >= rung_step(rung)) {
            std::vector<double>& values = rungs_[rung];
            if (!std::isfinite(value)) {
                stopped_.insert(trial.id);
                return;
            }
            values.push_back(value);
            std::vector<double> sorted = values;
            std::sort(sorted.begin(), sorted.end());
            const size_t promotable = std::max<size_t>(sorted.size() / static_cast<size_t>(eta_), 1) - 1;
            if (value > sorted[promotable]) {
                stopped_.insert(trial.id);
                return;
            }
            ++rung;
        }
    }
    bool prune(const Trial& trial) override { return stopped_.count(trial.id) != 0; }

private:
    double rung_step(size_t rung) const {
        return static_cast<double>(min_resource_) * std::pow(static_cast<double>(eta_), static_cast<double>(rate_ + static_cast<int64_t>(rung)));
    }

    int64_t min_resource_, eta_, rate_;
    std::map<size_t, std::vector<double>> rungs_;  // rung -> values recorded there
    std::map<uint64_t, size_t> next_rung_;         // trial -> rungs passed
    std::set<uint64_t> stopped_;
};

}  // namespace

dsk_search_iface asha_iface() {
    return make_iface<Asha>("asha", "Asynchronous successive halving (a scheduler: prunes, does not suggest)", kAshaParams,
                            std::size(kAshaParams));
}

}  // namespace dsk::search
