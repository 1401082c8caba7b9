// Parzen estimators over one parameter, the density models of TPE: a mixture of truncated
// Gaussians on [0, 1] (numeric parameters in unit space) or smoothed frequencies (categorical).
#pragma once

#include <cstddef>
#include <vector>

#include <dsk/dsk_search.hpp>

namespace dsk::search {

// A mixture of Gaussians truncated to [0, 1]: one at each observation plus a broad prior
// (mean 0.5, sigma 1) of weight `prior_weight`. Bandwidths follow Hyperopt/Optuna: the larger
// distance to a neighbour (the edges 0 and 1 count as neighbours), clipped to [1/min(100, n+1), 1].
class NumericParzen {
public:
    NumericParzen(const std::vector<double>& observations, double prior_weight);
    double sample(Random& random) const;
    double log_pdf(double x) const;

private:
    std::vector<double> mu_, sigma_, weight_;  // weights sum to 1
};

// Smoothed frequencies of the choices: count + prior_weight / K, normalised.
class CategoricalParzen {
public:
    CategoricalParzen(const std::vector<size_t>& observations, size_t choices, double prior_weight);
    size_t sample(Random& random) const;
    double log_pdf(size_t choice) const;

private:
    std::vector<double> p_;
};

}  // namespace dsk::search
