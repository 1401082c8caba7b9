// `halton`: trial n takes point n + 1 + skip of the Halton sequence (one prime base per parameter,
// in the space's order), shifted modulo 1 by a random offset per parameter drawn from the seed
// (a Cranley-Patterson rotation). Low-discrepancy: it covers the space more evenly than random.
#include "halton_search.h"

namespace {

const uint64_t kPrimes[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71};

double radical_inverse(uint64_t n, uint64_t base) {
    double inverse = 0, scale = 1.0 / static_cast<double>(base);
    for (; n > 0; n /= base, scale /= static_cast<double>(base)) inverse += static_cast<double>(n % base) * scale;
    return inverse;
}

const dsk_param_spec kHaltonParams[] = {
    dsk::param_int("skip", "leading points of the sequence to skip", "0", 0, 1e9),
};

class Halton : public dsk::search::Search {
public:
    Halton(dsk::search::Space space, const dsk::Config& options, uint64_t seed)
        : Search(std::move(space)), skip_(static_cast<uint64_t>(options.get_or<int64_t>("skip", 0))) {
        if (this->space().params().size() > std::size(kPrimes))
            throw dsk::Error(DSK_INVALID_ARGUMENT, "halton: at most " + std::to_string(std::size(kPrimes)) + " parameters");
        dsk::search::Random random(seed);
        for (size_t k = 0; k < this->space().params().size(); ++k) shift_.push_back(random.uniform());
    }

protected:
    dsk::search::Assignment propose(uint64_t trial) override {
        dsk::search::Assignment a;
        const auto& params = space().params();
        for (size_t k = 0; k < params.size(); ++k) {
            const dsk::search::Param& p = params[k];
            if (!space().active(p, a)) continue;
            double u = radical_inverse(trial + 1 + skip_, kPrimes[k]) + shift_[k];
            u -= static_cast<double>(static_cast<int64_t>(u));
            if (p.type == dsk::search::ParamType::Categorical) {
                a[p.name] = p.choices[std::min(p.choices.size() - 1, static_cast<size_t>(u * static_cast<double>(p.choices.size())))];
            } else {
                a[p.name] = p.from_unit(u);
            }
        }
        return a;
    }

private:
    uint64_t skip_;
    std::vector<double> shift_;
};

}  // namespace

dsk_search_iface halton_iface() {
    return dsk::search::make_iface<Halton>("halton", "Quasi-random search along a shifted Halton sequence", kHaltonParams,
                                           std::size(kHaltonParams));
}
