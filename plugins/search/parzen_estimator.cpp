#include "parzen_estimator.h"

#include <numeric>

namespace dsk::search {

namespace {

constexpr double kSqrt2 = 1.4142135623730951;
constexpr double kLogSqrt2Pi = 0.9189385332046727;

double normal_cdf(double z) { return 0.5 * std::erfc(-z / kSqrt2); }

size_t pick(const std::vector<double>& weights, Random& random) {
    double u = random.uniform();
    for (size_t k = 0; k < weights.size(); ++k) {
        if (u < weights[k]) return k;
        u -= weights[k];
    }
    return weights.size() - 1;
}

}  // namespace

NumericParzen::NumericParzen(const std::vector<double>& observations, double prior_weight) {
    const size_t n = observations.size();
    // Sorted means with the prior among them, so that each kernel's neighbours are known.
    std::vector<std::pair<double, bool>> points;  // (mean, is the prior)
    for (double x : observations) points.emplace_back(x, false);
    points.emplace_back(0.5, true);
    std::sort(points.begin(), points.end());
    const double min_sigma = 1.0 / std::min(100.0, static_cast<double>(n) + 1.0);
    for (size_t i = 0; i < points.size(); ++i) {
        const auto& [mu, prior] = points[i];
        double sigma = 1.0;
        double weight = prior_weight;
        if (!prior) {
            const double left = mu - (i > 0 ? points[i - 1].first : 0.0);
            const double right = (i + 1 < points.size() ? points[i + 1].first : 1.0) - mu;
            sigma = std::clamp(std::max(left, right), min_sigma, 1.0);
            weight = 1.0;
        }
        mu_.push_back(mu);
        sigma_.push_back(sigma);
        weight_.push_back(weight);
    }
    const double total = std::accumulate(weight_.begin(), weight_.end(), 0.0);
    for (double& w : weight_) w /= total;
}

double NumericParzen::sample(Random& random) const {
    const size_t k = pick(weight_, random);
    for (int attempt = 0; attempt < 100; ++attempt) {
        const double x = mu_[k] + sigma_[k] * random.normal();
        if (x >= 0.0 && x <= 1.0) return x;
    }
    return std::clamp(mu_[k], 0.0, 1.0);
}

double NumericParzen::log_pdf(double x) const {
    // log sum_k w_k N(x; mu_k, s_k) / Z_k, with Z_k the kernel's mass on [0, 1].
    double best = -std::numeric_limits<double>::infinity();
    std::vector<double> terms(mu_.size());
    for (size_t k = 0; k < mu_.size(); ++k) {
        const double z = (x - mu_[k]) / sigma_[k];
        const double mass = normal_cdf((1.0 - mu_[k]) / sigma_[k]) - normal_cdf((0.0 - mu_[k]) / sigma_[k]);
        terms[k] = std::log(weight_[k]) - 0.5 * z * z - kLogSqrt2Pi - std::log(sigma_[k]) - std::log(std::max(mass, 1e-300));
        best = std::max(best, terms[k]);
    }
    double sum = 0;
    for (double t : terms) sum += std::exp(t - best);
    return best + std::log(sum);
}

CategoricalParzen::CategoricalParzen(const std::vector<size_t>& observations, size_t choices, double prior_weight)
    : p_(choices, prior_weight / static_cast<double>(choices)) {
    for (size_t c : observations) p_[c] += 1.0;
    const double total = std::accumulate(p_.begin(), p_.end(), 0.0);
    for (double& p : p_) p /= total;
}

size_t CategoricalParzen::sample(Random& random) const { return pick(p_, random); }

double CategoricalParzen::log_pdf(size_t choice) const { return std::log(p_[choice]); }

}  // namespace dsk::search
