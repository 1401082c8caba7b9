// Drives a search provider through its C interface, as the hpo stage does, with the kernel's
// real host table and TOML config tables.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>

#include <dsk/dsk_search.hpp>
#include <toml++/toml.h>

#include "config_table.h"  // kernel: dsk_config over a toml::table
#include "kernel.h"        // kernel: host_api()
#include "strategies.h"

namespace search_test {

using dsk::search::Assignment;
using dsk::search::Space;

inline void install_host() { dsk::detail::host_slot().store(&dsk::kernel::host_api(), std::memory_order_release); }

// The error message of a status (and frees it); "" for OK.
inline std::string message_of(dsk_status s) {
    std::string m = dsk::host().status_message(s);
    dsk::host().status_free(s);
    return m;
}

class Study {
public:
    Study(const dsk_search_iface& iface, const std::string& space_toml, const std::string& options_toml = "", uint64_t seed = 1)
        : iface_(iface),
          space_table_(toml::parse(space_toml, std::string_view("space.toml"))),
          options_table_(toml::parse(options_toml, std::string_view("options.toml"))) {
        install_host();
        dsk::check(iface_.create(iface_.self, &space_config_, &options_config_, seed, &search_));
        space_ = Space::parse(dsk::Config(&space_config_));
    }
    ~Study() { iface_.destroy(search_); }
    Study(const Study&) = delete;
    Study& operator=(const Study&) = delete;

    const Space& space() const { return space_; }

    // Throws dsk::Error (RESOURCE_EXHAUSTED for an exhausted grid).
    Assignment suggest(uint64_t trial) {
        toml::table out;
        dsk_config config{&out, "assignment"};
        dsk::check(iface_.suggest(search_, trial, &config));
        return space_.read(dsk::Config(&config));
    }
    // add_trial with the assignment written as TOML ("x = 1.5\ny = \"a\""). Throws dsk::Error.
    void add(uint64_t trial, const std::string& assignment_toml) {
        toml::table table = toml::parse(assignment_toml, std::string_view("assignment.toml"));
        dsk_config config{&table, "assignment"};
        dsk::check(iface_.add_trial(search_, trial, &config));
    }
    void report(uint64_t trial, int64_t step, double value) { dsk::check(iface_.report(search_, trial, step, value)); }
    bool should_prune(uint64_t trial) {
        int32_t prune = 0;
        dsk::check(iface_.should_prune(search_, trial, &prune));
        return prune != 0;
    }
    void complete(uint64_t trial, dsk_trial_state state, double value) {
        dsk::check(iface_.complete(search_, trial, state, value));
    }
    dsk_search* raw() const { return search_; }

private:
    const dsk_search_iface iface_;  // a copy: callers pass temporaries
    toml::table space_table_, options_table_;
    dsk_config space_config_{&space_table_, "space"};
    dsk_config options_config_{&options_table_, "options"};
    dsk_search* search_ = nullptr;
    Space space_;
};

// Runs `trials` sequential trials of `objective` (minimised) and returns the best value found.
inline double best_after(const dsk_search_iface& iface, const std::string& space, const std::string& options,
                         uint64_t seed, int trials, const std::function<double(const Assignment&)>& objective) {
    Study study(iface, space, options, seed);
    double best = INFINITY;
    for (int t = 0; t < trials; ++t) {
        const Assignment a = study.suggest(static_cast<uint64_t>(t));
        const double value = objective(a);
        study.complete(static_cast<uint64_t>(t), DSK_TRIAL_COMPLETE, value);
        best = std::min(best, value);
    }
    return best;
}

// Branin on x1 in [-5, 10], x2 in [0, 15]; global minimum 0.397887 (at three points).
inline const char* const kBraninSpace = R"(
x1 = { type = "float", low = -5.0, high = 10.0 }
x2 = { type = "float", low = 0.0, high = 15.0 }
)";
constexpr double kBraninMin = 0.397887357729738;
inline double branin(const Assignment& a) {
    const double x1 = a.at("x1").f, x2 = a.at("x2").f;
    const double pi = 3.141592653589793;
    const double b = 5.1 / (4 * pi * pi), c = 5 / pi, t = 1 / (8 * pi);
    return std::pow(x2 - b * x1 * x1 + c * x1 - 6, 2) + 10 * (1 - t) * std::cos(x1) + 10;
}

// A 6-dimensional quadratic bowl on [-5, 5]^6 with its minimum 0 at x_i = 1.
inline const char* const kBowlSpace = R"(
a = { type = "float", low = -5.0, high = 5.0 }
b = { type = "float", low = -5.0, high = 5.0 }
c = { type = "float", low = -5.0, high = 5.0 }
d = { type = "float", low = -5.0, high = 5.0 }
e = { type = "float", low = -5.0, high = 5.0 }
f = { type = "float", low = -5.0, high = 5.0 }
)";
inline double bowl(const Assignment& a) {
    double sum = 0;
    for (const auto& [name, v] : a) sum += (v.f - 1.0) * (v.f - 1.0);
    return sum;
}

}  // namespace search_test
