// The strategies (random, grid, tpe, evolution) on synthetic objectives whose optimum is known.
#include "search_harness.h"

#include <set>
#include <vector>

using namespace search_test;
using dsk::search::Value;

namespace {

const char* const kMixedSpace = R"(
lr = { type = "float", low = 1e-5, high = 1.0, log = true, key = "stages.train.optimizer.lr" }
width = { type = "int", low = 16, high = 512, log = true }
optimizer = { type = "categorical", choices = ["adam", "sgd"] }
momentum = { type = "float", low = 0.5, high = 0.99, condition = { optimizer = "sgd" } }
nesterov = { type = "categorical", choices = [true, false], condition = { optimizer = ["sgd"] } }
hidden = { type = "categorical", choices = [[128], [256, 128]] }
)";

// Minimum 0 at lr = 0.01, width = 128, sgd with momentum 0.9 and nesterov.
double mixed(const Assignment& a) {
    const double lr = std::log10(a.at("lr").f) + 2;
    const double width = std::log2(static_cast<double>(a.at("width").i)) - 7;
    double value = lr * lr + 0.1 * width * width + (a.at("hidden").numbers.size() == 2 ? 0 : 0.3);
    if (a.at("optimizer").s == "sgd") {
        const double m = a.at("momentum").f - 0.9;
        value += 20 * m * m + (a.at("nesterov").b ? 0 : 0.2);
    } else {
        value += 0.5;
    }
    return value;
}

double mean_best(const dsk_search_iface& iface, const char* space, const char* options, int trials,
                 double (*objective)(const Assignment&), int seeds = 5) {
    double sum = 0;
    for (int seed = 1; seed <= seeds; ++seed)
        sum += best_after(iface, space, options, static_cast<uint64_t>(seed), trials, objective);
    return sum / seeds;
}

}  // namespace

TEST_CASE("conditional parameters appear only when their condition holds for every strategy") {
    for (const dsk_search_iface& iface : {dsk::search::random_iface(), dsk::search::tpe_iface(),
                                          dsk::search::evolution_iface(), dsk::search::grid_iface()}) {
        CAPTURE(iface.name);
        Study study(iface, kMixedSpace, "population = 8\nsample_size = 3\npoints = 3", 7);
        std::set<std::string> optimizers;
        for (uint64_t t = 0; t < 60; ++t) {
            const Assignment a = study.suggest(t);  // read() checks active = present, and bounds
            const bool sgd = a.at("optimizer").s == "sgd";
            CHECK(a.count("momentum") == (sgd ? 1u : 0u));
            CHECK(a.count("nesterov") == (sgd ? 1u : 0u));
            CHECK(a.at("lr").f >= 1e-5);
            CHECK(a.at("lr").f <= 1.0);
            CHECK(a.at("width").type == DSK_VALUE_INT);
            optimizers.insert(a.at("optimizer").s);
            study.complete(t, DSK_TRIAL_COMPLETE, mixed(a));
        }
        CHECK(optimizers.size() == 2);
    }
}

TEST_CASE("random search draws log parameters log-uniformly") {
    Study study(dsk::search::random_iface(), "lr = { type = \"float\", low = 1e-6, high = 1.0, log = true }");
    int below_1e3 = 0;
    for (uint64_t t = 0; t < 600; ++t) below_1e3 += study.suggest(t).at("lr").f < 1e-3 ? 1 : 0;
    // Half of the decades lie below 1e-3: about 300 of 600 (a uniform draw would give ~1).
    CHECK(below_1e3 > 240);
    CHECK(below_1e3 < 360);
}

TEST_CASE("grid enumerates every point once and then says RESOURCE_EXHAUSTED") {
    // 3 optimizers; momentum (3 points) only for sgd; layers all 3 integers: (2 + 3) * 3 = 15.
    Study study(dsk::search::grid_iface(), R"(
optimizer = { type = "categorical", choices = ["adam", "sgd", "adamw"] }
momentum = { type = "float", low = 0.0, high = 0.9, condition = { optimizer = "sgd" } }
layers = { type = "int", low = 1, high = 3 }
)", "points = 3");
    std::set<std::string> seen;
    for (uint64_t t = 0; t < 15; ++t) {
        const Assignment a = study.suggest(t);
        seen.insert(describe(study.space(), a));
        study.complete(t, DSK_TRIAL_COMPLETE, 0.0);
    }
    CHECK(seen.size() == 15);
    CHECK(seen.count("layers=3 optimizer=sgd momentum=0.45") == 1);
    CHECK(seen.count("layers=1 optimizer=adam") == 1);
    try {
        study.suggest(15);
        FAIL("an exhausted grid must refuse");
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_RESOURCE_EXHAUSTED);
        CHECK(std::string(e.what()).find("all 15 points") != std::string::npos);
    }
}

TEST_CASE("grid uses geometric points for log parameters and can shuffle by seed") {
    Study in_order(dsk::search::grid_iface(), "lr = { type = \"float\", low = 1e-4, high = 1.0, log = true }", "points = 5");
    const double expected[] = {1e-4, 1e-3, 1e-2, 1e-1, 1.0};
    for (uint64_t t = 0; t < 5; ++t) CHECK(in_order.suggest(t).at("lr").f == doctest::Approx(expected[t]));
    Study shuffled(dsk::search::grid_iface(), "n = { type = \"int\", low = 0, high = 99 }", "points = 100\nshuffle = true", 3);
    std::set<int64_t> values;
    bool ordered = true;
    for (uint64_t t = 0; t < 100; ++t) {
        const int64_t v = shuffled.suggest(t).at("n").i;
        ordered = ordered && v == static_cast<int64_t>(t);
        values.insert(v);
    }
    CHECK(values.size() == 100);
    CHECK_FALSE(ordered);
}

TEST_CASE("every strategy gets close to the Branin minimum within its budget") {
    // Budgets and tolerances of the literature's usual comparisons (regret after 100 trials).
    CHECK(best_after(dsk::search::tpe_iface(), kBraninSpace, "", 1, 100, branin) - kBraninMin < 0.15);
    CHECK(best_after(dsk::search::evolution_iface(), kBraninSpace, "population = 10\nsample_size = 3", 1, 100, branin) -
              kBraninMin < 0.15);
    CHECK(best_after(dsk::search::random_iface(), kBraninSpace, "", 1, 400, branin) - kBraninMin < 0.3);
    CHECK(best_after(dsk::search::grid_iface(), kBraninSpace, "points = 31", 1, 31 * 31, branin) - kBraninMin < 0.3);
}

TEST_CASE("tpe beats random on mean best over five seeds") {
    for (int trials : {30, 50, 100}) {
        const double tpe_branin = mean_best(dsk::search::tpe_iface(), kBraninSpace, "", trials, branin);
        const double random_branin = mean_best(dsk::search::random_iface(), kBraninSpace, "", trials, branin);
        MESSAGE("Branin, ", trials, " trials, mean best of 5 seeds: tpe ", tpe_branin, " random ", random_branin);
        CHECK(tpe_branin < random_branin);
    }
    const double tpe_mixed = mean_best(dsk::search::tpe_iface(), kMixedSpace, "", 50, mixed);
    const double random_mixed = mean_best(dsk::search::random_iface(), kMixedSpace, "", 50, mixed);
    MESSAGE("mixed conditional space, 50 trials: tpe ", tpe_mixed, " random ", random_mixed);
    CHECK(tpe_mixed < random_mixed);
}

TEST_CASE("evolution beats random on mean best over five seeds") {
    const char* options = "population = 10\nsample_size = 3";
    const double evolution = mean_best(dsk::search::evolution_iface(), kBowlSpace, options, 150, bowl);
    const double random = mean_best(dsk::search::random_iface(), kBowlSpace, "", 150, bowl);
    MESSAGE("6-d bowl, 150 trials, mean best of 5 seeds: evolution ", evolution, " random ", random);
    CHECK(evolution < 0.5 * random);
}

TEST_CASE("evolution breeds from pruned trials, the furthest trained first") {
    // Under ASHA most trials end pruned. Four pruned trials fill the population (4); with
    // sample_size = 4 the whole population is the tournament, and the parent must be trial 3,
    // which reached step 3, although trials 0-2 (pruned at step 1) have better values. With
    // mutation_rate 0 the child differs from its parent in exactly one of the six parameters.
    Study study(dsk::search::evolution_iface(), kBowlSpace, "population = 4\nsample_size = 4", 5);
    std::vector<Assignment> members;
    for (uint64_t t = 0; t < 4; ++t) {
        members.push_back(study.suggest(t));
        study.report(t, 1, t == 3 ? 50.0 : 10.0 + static_cast<double>(t));
        if (t == 3) study.report(t, 3, 40.0);
        study.complete(t, DSK_TRIAL_PRUNED, t == 3 ? 40.0 : 10.0 + static_cast<double>(t));
    }
    const Assignment child = study.suggest(4);
    size_t changed = 0;
    for (const auto& [name, v] : child) changed += v.f != members[3].at(name).f ? 1 : 0;
    CHECK(changed == 1);
}

TEST_CASE("the same seed gives the same suggestions and another seed others") {
    for (const dsk_search_iface& iface : {dsk::search::random_iface(), dsk::search::tpe_iface(),
                                          dsk::search::evolution_iface(), dsk::search::grid_iface()}) {
        CAPTURE(iface.name);
        auto run = [&](uint64_t seed) {
            Study study(iface, kMixedSpace, "startup_trials = 5\npopulation = 5\nsample_size = 2\nshuffle = true", seed);
            std::string trace;
            for (uint64_t t = 0; t < 30; ++t) {
                const Assignment a = study.suggest(t);
                trace += describe(study.space(), a) + "\n";
                study.complete(t, DSK_TRIAL_COMPLETE, mixed(a));
            }
            return trace;
        };
        CHECK(run(11) == run(11));
        CHECK(run(11) != run(12));
    }
}

TEST_CASE("tpe with a constant liar spreads parallel suggestions that would otherwise coincide") {
    // After ten finished trials the model favours n = 3. Six workers then ask at once; with the
    // liar each pending suggestion counts as bad, so later askers go elsewhere.
    const char* space = "n = { type = \"int\", low = 0, high = 9 }";
    // Ten finished startup trials, scored by the distance of n to 3.
    auto parallel = [&](const char* options) {
        Study study(dsk::search::tpe_iface(), space, options, 5);
        for (uint64_t t = 0; t < 10; ++t) {
            const Assignment a = study.suggest(t);
            study.complete(t, DSK_TRIAL_COMPLETE, std::abs(static_cast<double>(a.at("n").i) - 3.0));
        }
        std::vector<int64_t> values;
        for (uint64_t t = 10; t < 16; ++t) values.push_back(study.suggest(t).at("n").i);
        return values;
    };
    const auto with_liar = parallel("startup_trials = 10\nconstant_liar = true");
    const auto without = parallel("startup_trials = 10\nconstant_liar = false");
    const auto count_distinct = [](const std::vector<int64_t>& v) { return std::set<int64_t>(v.begin(), v.end()).size(); };
    MESSAGE("distinct values among 6 parallel suggestions: with liar ", count_distinct(with_liar), ", without ",
            count_distinct(without));
    CHECK(count_distinct(with_liar) > count_distinct(without));
}

TEST_CASE("a trial id can be suggested only once") {
    Study study(dsk::search::random_iface(), kBraninSpace);
    study.suggest(3);
    CHECK_THROWS_WITH(study.suggest(3), doctest::Contains("trial 3 was suggested before"));
}
