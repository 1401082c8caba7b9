// `evolution`: regularized (aging) evolution (Real et al. 2019, "Regularized Evolution for Image
// Classifier Architecture Search"). The population is the `population` most recently finished
// trials; until it is full, assignments are random. Then each suggestion samples `sample_size`
// members at random, takes the best as parent, and mutates it: each active parameter changes
// with probability `mutation_rate` (0: exactly one parameter changes), numeric ones by a Gaussian
// step of `mutation_scale` in unit space (log scale for log parameters), categorical ones to
// another choice. Parameters that a mutation activates are drawn at random. The oldest member
// leaves as each new one finishes (aging), which is what keeps the search from stalling on one
// lucky evaluation. Children that repeat an earlier trial exactly are mutated again.
//
// Trials an early-stopping scheduler pruned are members too, with their last reported value:
// under ASHA most trials are pruned (55 of 60 in the NAS hour), and a population of complete
// trials only would never fill, leaving the search random. A tournament ranks members by how far
// they trained first (the last step reported: a trial promoted further was judged better at a
// common budget by the scheduler) and by value second, so a short trial's value is never compared
// with a long one's as if they were alike.
#include "strategies.h"

namespace dsk::search {

namespace {

const dsk_param_spec kEvolutionParams[] = {
    param_int("population", "finished trials kept as the population (the oldest leaves first)", "20", 2, 100000),
    param_int("sample_size", "members drawn per suggestion; the best becomes the parent", "5", 1, 100000),
    param_float("mutation_rate", "probability that each parameter mutates (0: exactly one does)", "0.0", 0.0, 1.0),
    param_float("mutation_scale", "standard deviation of a numeric mutation, in unit space", "0.2", 0.0, 1.0),
};

class Evolution : public Search {
public:
    Evolution(Space space, const Config& o, uint64_t seed)
        : Search(std::move(space)),
          seed_(seed),
          population_(static_cast<size_t>(o.get_or<int64_t>("population", 20))),
          sample_size_(static_cast<size_t>(o.get_or<int64_t>("sample_size", 5))),
          rate_(o.get_or("mutation_rate", 0.0)),
          scale_(o.get_or("mutation_scale", 0.2)) {
        if (sample_size_ > population_)
            throw Error(DSK_INVALID_ARGUMENT, "evolution: sample_size (" + std::to_string(sample_size_) +
                                                  ") must not exceed population (" + std::to_string(population_) + ")");
    }

protected:
    Assignment propose(uint64_t trial) override {
        Random random(mix(seed_, trial));
        std::vector<const Trial*> finished;
        for (const auto& [id, t] : trials())
            if ((t.state == TrialState::Complete || t.state == TrialState::Pruned) && std::isfinite(t.value) && !t.params.empty())
                finished.push_back(&t);
        if (finished.size() < population_) return fresh(space().sample(random), random);
        std::sort(finished.begin(), finished.end(), [](const Trial* a, const Trial* b) { return a->order < b->order; });
        std::vector<const Trial*> population(finished.end() - static_cast<ptrdiff_t>(population_), finished.end());
        // Tournament: a partial Fisher-Yates shuffle picks sample_size distinct members.
        const Trial* parent = nullptr;
        for (size_t k = 0; k < sample_size_; ++k) {
            std::swap(population[k], population[k + random.below(population.size() - k)]);
            if (parent == nullptr || fitter(*population[k], *parent)) parent = population[k];
        }
        Assignment child = mutate(parent->params, random);
        for (int attempt = 0; attempt < 20 && seen(child); ++attempt) child = mutate(child, random);
        return child;
    }

private:
    // Trained further first (the last reported step; none reported counts as complete), lower value second.
    static bool fitter(const Trial& a, const Trial& b) {
        const auto reach = [](const Trial& t) {
            return t.state == TrialState::Complete || t.intermediate.empty() ? std::numeric_limits<int64_t>::max()
                                                                            : t.intermediate.rbegin()->first;
        };
        if (reach(a) != reach(b)) return reach(a) > reach(b);
        return a.value < b.value;
    }

    Assignment fresh(Assignment a, Random& random) const {
        for (int attempt = 0; attempt < 20 && seen(a); ++attempt) a = space().sample(random);
        return a;
    }

    bool seen(const Assignment& a) const {
        for (const auto& [id, t] : trials())
            if (t.params == a) return true;
        return false;
    }

    Assignment mutate(Assignment a, Random& random) const {
        std::vector<const Param*> active;
        for (const Param& p : space().params())
            if (a.count(p.name) && (p.numeric() || p.choices.size() > 1)) active.push_back(&p);
        if (active.empty()) return a;
        std::vector<const Param*> chosen;
        if (rate_ > 0)
            for (const Param* p : active)
                if (random.uniform() < rate_) chosen.push_back(p);
        if (chosen.empty()) chosen.push_back(active[random.below(active.size())]);
        for (const Param* p : chosen) a[p->name] = mutate_value(*p, a[p->name], random);
        space().complete_assignment(a, random);
        return a;
    }

    Value mutate_value(const Param& p, const Value& v, Random& random) const {
        if (p.type == ParamType::Categorical) {
            const size_t current = p.choice_index(v);
            size_t next = random.below(p.choices.size() - 1);
            if (next >= current) ++next;
            return p.choices[next];
        }
        double u = p.to_unit(v.number()) + scale_ * random.normal();
        u = u < 0 ? -u : u > 1 ? 2 - u : u;  // reflect at the bounds
        Value out = p.from_unit(u);
        if (p.type == ParamType::Int && out == v) {  // a step too small for an integer: move by one
            const int64_t step = v.i <= p.low ? 1 : v.i >= p.high ? -1 : (random.uniform() < 0.5 ? -1 : 1);
            out = Value::of_int(v.i + step);
        }
        return out;
    }

    uint64_t seed_;
    size_t population_, sample_size_;
    double rate_, scale_;
};

}  // namespace

dsk_search_iface evolution_iface() {
    return make_iface<Evolution>("evolution", "Regularized (aging) evolution: tournament selection and mutation",
                                 kEvolutionParams, std::size(kEvolutionParams));
}

}  // namespace dsk::search
