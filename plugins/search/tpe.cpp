// `tpe`: the Tree-structured Parzen Estimator (Bergstra et al. 2011; the univariate sampler of
// Hyperopt and Optuna). After `startup_trials` random trials, the finished trials are split into
// the best `gamma` fraction ("good", at most `max_good`) and the rest ("bad"); for each active
// parameter, in the space's order, a density l(x) is fitted to its good values and g(x) to its
// bad ones, `candidates` values are drawn from l, and the one with the largest l(x)/g(x) wins.
// A conditional parameter is modelled only from the trials where it was active.
//
// Constant liar (Optuna's constant_liar): trials suggested but not finished count as "bad"
// observations, so parallel workers asking at once are pushed away from each other's pending
// points instead of all receiving the same best guess. Pruned and failed trials (a crash, or an
// architecture over a nas stage's max_parameters) count as bad as well, so the model moves away.
// Trials added with add_trial (enqueued configurations) are observations like suggested ones.
#include "parzen_estimator.h"
#include "strategies.h"

namespace dsk::search {

namespace {

const dsk_param_spec kTpeParams[] = {
    param_int("startup_trials", "random trials before the model is used", "10", 0, 100000),
    param_int("candidates", "values drawn from l(x) per parameter; the best l/g wins", "24", 1, 100000),
    param_float("gamma", "fraction of finished trials that count as good", "0.1", 0.0, 1.0),
    param_int("max_good", "at most this many good trials", "25", 1, 100000),
    param_float("prior_weight", "weight of the uniform prior in each density", "1.0", 0.0, 1e6),
    param_bool("constant_liar", "count pending trials as bad, so parallel workers do not repeat each other", "true"),
};

class Tpe : public Search {
public:
    Tpe(Space space, const Config& o, uint64_t seed)
        : Search(std::move(space)),
          seed_(seed),
          startup_(o.get_or<int64_t>("startup_trials", 10)),
          candidates_(o.get_or<int64_t>("candidates", 24)),
          gamma_(o.get_or("gamma", 0.1)),
          max_good_(o.get_or<int64_t>("max_good", 25)),
          prior_weight_(o.get_or("prior_weight", 1.0)),
          liar_(o.get_or("constant_liar", true)) {}

protected:
    Assignment propose(uint64_t trial) override {
        Random random(mix(seed_, trial));
        std::vector<const Trial*> finished, bad;
        for (const auto& [id, t] : trials()) {
            if (t.params.empty()) continue;
            if (t.state == TrialState::Complete && std::isfinite(t.value)) {
                finished.push_back(&t);
            } else if (t.state == TrialState::Pruned || t.state == TrialState::Failed || (liar_ && t.state == TrialState::Pending)) {
                bad.push_back(&t);
            }
        }
        if (static_cast<int64_t>(finished.size()) < std::max<int64_t>(startup_, 1)) return space().sample(random);
        std::stable_sort(finished.begin(), finished.end(), [](const Trial* a, const Trial* b) { return a->value < b->value; });
        const auto good_count = static_cast<size_t>(std::clamp<double>(
            std::ceil(gamma_ * static_cast<double>(finished.size())), 1.0, static_cast<double>(max_good_)));
        const std::vector<const Trial*> good(finished.begin(), finished.begin() + static_cast<ptrdiff_t>(good_count));
        bad.insert(bad.end(), finished.begin() + static_cast<ptrdiff_t>(good_count), finished.end());

        Assignment a;
        for (const Param& p : space().params()) {
            if (space().active(p, a)) a[p.name] = sample_param(p, good, bad, random);
        }
        return a;
    }

private:
    Value sample_param(const Param& p, const std::vector<const Trial*>& good, const std::vector<const Trial*>& bad,
                       Random& random) const {
        if (p.type == ParamType::Categorical) {
            const CategoricalParzen l(choices_of(p, good), p.choices.size(), prior_weight_);
            const CategoricalParzen g(choices_of(p, bad), p.choices.size(), prior_weight_);
            size_t best = l.sample(random);
            double best_score = l.log_pdf(best) - g.log_pdf(best);
            for (int64_t k = 1; k < candidates_; ++k) {
                const size_t c = l.sample(random);
                const double score = l.log_pdf(c) - g.log_pdf(c);
                if (score > best_score) best = c, best_score = score;
            }
            return p.choices[best];
        }
        const NumericParzen l(units_of(p, good), prior_weight_);
        const NumericParzen g(units_of(p, bad), prior_weight_);
        double best = l.sample(random);
        double best_score = l.log_pdf(best) - g.log_pdf(best);
        for (int64_t k = 1; k < candidates_; ++k) {
            const double u = l.sample(random);
            const double score = l.log_pdf(u) - g.log_pdf(u);
            if (score > best_score) best = u, best_score = score;
        }
        return p.from_unit(best);
    }

    static std::vector<size_t> choices_of(const Param& p, const std::vector<const Trial*>& trials) {
        std::vector<size_t> out;
        for (const Trial* t : trials) {
            const auto it = t->params.find(p.name);
            if (it != t->params.end() && p.choice_index(it->second) < p.choices.size()) out.push_back(p.choice_index(it->second));
        }
        return out;
    }
    static std::vector<double> units_of(const Param& p, const std::vector<const Trial*>& trials) {
        std::vector<double> out;
        for (const Trial* t : trials) {
            const auto it = t->params.find(p.name);
            if (it != t->params.end()) out.push_back(p.to_unit(it->second.number()));
        }
        return out;
    }

    uint64_t seed_;
    int64_t startup_, candidates_;
    double gamma_;
    int64_t max_good_;
    double prior_weight_;
    bool liar_;
};

}  // namespace

dsk_search_iface tpe_iface() {
    return make_iface<Tpe>("tpe", "Tree-structured Parzen Estimator with a constant liar for pending trials", kTpeParams,
                           std::size(kTpeParams));
}

}  // namespace dsk::search
