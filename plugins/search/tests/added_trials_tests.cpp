// add_trial (ABI 1.2): trials a strategy did not suggest (a user's enqueued configurations, an
// earlier study's trials) become part of what it learns from.
#include "search_harness.h"

#include <set>

using namespace search_test;

namespace {

std::string bowl_point(double x) {
    std::string out;
    for (const char* name : {"a", "b", "c", "d", "e", "f"}) out += std::string(name) + " = " + std::to_string(x) + "\n";
    return out;
}

}  // namespace

TEST_CASE("evolution breeds from added trials instead of drawing at random") {
    // Four added trials fill the population; the next suggestion is a child of one of them: with
    // mutation_rate 0 it differs from its parent in exactly one parameter (a random draw in all six).
    Study study(dsk::search::evolution_iface(), kBowlSpace, "population = 4\nsample_size = 2", 3);
    const double xs[] = {0.5, 1.5, -2.0, 3.0};
    for (uint64_t t = 0; t < 4; ++t) {
        study.add(t, bowl_point(xs[t]));
        study.complete(t, DSK_TRIAL_COMPLETE, 6 * (xs[t] - 1) * (xs[t] - 1));
    }
    const Assignment child = study.suggest(4);
    size_t fewest_changes = 6;
    for (double x : xs) {
        size_t changed = 0;
        for (const auto& [name, v] : child) changed += v.f != x ? 1 : 0;
        fewest_changes = std::min(fewest_changes, changed);
    }
    CHECK(fewest_changes == 1);
}

TEST_CASE("tpe fits its model to added trials") {
    // Ten added trials cover n = 0..9, scored by the distance to 3: the model is used at once
    // (startup_trials = 10 are known) and proposes the best region, not a random n.
    for (uint64_t seed = 1; seed <= 5; ++seed) {
        CAPTURE(seed);
        Study study(dsk::search::tpe_iface(), "n = { type = \"int\", low = 0, high = 9 }", "startup_trials = 10", seed);
        for (uint64_t t = 0; t < 10; ++t) {
            study.add(t, "n = " + std::to_string(t));
            study.complete(t, DSK_TRIAL_COMPLETE, std::abs(static_cast<double>(t) - 3.0));
        }
        CHECK(std::abs(study.suggest(10).at("n").i - 3) <= 1);
    }
}

TEST_CASE("grid does not suggest an added point again") {
    Study study(dsk::search::grid_iface(), "x = { type = \"categorical\", choices = [\"a\", \"b\", \"c\"] }");
    study.add(0, "x = \"b\"");
    study.complete(0, DSK_TRIAL_COMPLETE, 1.0);
    std::set<std::string> suggested{study.suggest(1).at("x").s, study.suggest(2).at("x").s};
    CHECK(suggested == std::set<std::string>{"a", "c"});
    CHECK_THROWS_WITH(study.suggest(3), doctest::Contains("points of the search space were suggested"));
}

TEST_CASE("add_trial refuses an assignment that does not fit the space, naming it") {
    Study study(dsk::search::random_iface(), R"(
lr = { type = "float", low = 1e-4, high = 1e-1, log = true }
optimizer = { type = "categorical", choices = ["adam", "sgd"] }
momentum = { type = "float", low = 0.5, high = 0.99, condition = { optimizer = "sgd" } }
)");
    auto error_of = [&](uint64_t trial, const std::string& toml) {
        try {
            study.add(trial, toml);
        } catch (const dsk::Error& e) {
            CHECK(e.code() == DSK_INVALID_ARGUMENT);
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(error_of(0, "lr = 5.0\noptimizer = \"adam\"").find("the added trial 0: 'lr' = 5.0 is outside [0.0001, 0.1]") !=
          std::string::npos);
    CHECK(error_of(0, "lr = 0.01\noptimizer = \"sgd\"").find("did not set the active parameter 'momentum'") != std::string::npos);
    CHECK(error_of(0, "lr = 0.01\noptimizer = \"adam\"\nmomentum = 0.9").find("sets 'momentum', which is not active") !=
          std::string::npos);
    CHECK(error_of(0, "lr = 0.01\noptimizer = \"adam\"\nbeta = 0.9").find("sets 'beta', which is not in the space") !=
          std::string::npos);
    CHECK(error_of(0, "lr = 0.01\noptimizer = \"adam\"").empty());
    CHECK(error_of(0, "lr = 0.02\noptimizer = \"adam\"").find("trial 0 is known already") != std::string::npos);
    // The added trial is a trial like any other: a suggestion needs a new id.
    CHECK_THROWS_WITH(study.suggest(0), doctest::Contains("trial 0 was suggested before"));
}
