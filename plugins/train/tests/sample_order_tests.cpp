// The validation split (`validation_fraction`): held-out and training samples are disjoint and
// together the whole set, the same for every call (the split takes no seed: the stage's `seed`
// cannot move it), nothing held out at 0, and bad fractions are refused naming the key.
#include <doctest/doctest.h>

#include "error_of.h"  // tests/support

#include <algorithm>
#include <numeric>
#include <set>
#include <string>

#include "../sample_order.h"
#include <dsk/dsk_error.hpp>

using namespace dsk::train;

TEST_CASE("the validation split is disjoint from the training samples, covers the set, and never moves") {
    const ValidationSplit split = split_for_validation(1000, 0.1);
    CHECK(split.validation.size() == 100);
    CHECK(split.train.size() == 900);
    std::set<uint64_t> all(split.train.begin(), split.train.end());
    for (uint64_t v : split.validation) CHECK_FALSE(all.count(v));  // never trained on
    all.insert(split.validation.begin(), split.validation.end());
    CHECK(all.size() == 1000);
    CHECK(*all.rbegin() == 999);
    CHECK(std::is_sorted(split.validation.begin(), split.validation.end()));
    // Drawn, not the first or last samples: every tenth of the set gives some.
    for (uint64_t tenth = 0; tenth < 10; ++tenth)
        CHECK(std::any_of(split.validation.begin(), split.validation.end(),
                          [&](uint64_t v) { return v / 100 == tenth; }));
    // The same samples on every call, whatever else the stage draws (its seed is not an input).
    const ValidationSplit again = split_for_validation(1000, 0.1);
    CHECK(again.validation == split.validation);
    CHECK(again.train == split.train);
    // A larger fraction of the same set holds out other samples too, but stays a fixed draw.
    CHECK(split_for_validation(1000, 0.2).validation == split_for_validation(1000, 0.2).validation);
}

TEST_CASE("validation_fraction = 0 trains on every sample in index order") {
    const ValidationSplit split = split_for_validation(37, 0.0);
    CHECK(split.validation.empty());
    std::vector<uint64_t> all(37);
    std::iota(all.begin(), all.end(), 0);
    CHECK(split.train == all);
}

TEST_CASE("each epoch's order is a permutation drawn from its state only") {
    const std::vector<uint64_t> a = permutation(50, 7), b = permutation(50, 7), c = permutation(50, 8);
    CHECK(a == b);
    CHECK(a != c);
    std::vector<uint64_t> sorted = a;
    std::sort(sorted.begin(), sorted.end());
    for (uint64_t i = 0; i < 50; ++i) CHECK(sorted[i] == i);
}

TEST_CASE("a bad validation_fraction is refused naming the key and what would fix it") {
    using test_support::error_of;
    for (double bad : {-0.1, 1.0, 1.5}) {
        const dsk::Error e = error_of([&] { split_for_validation(100, bad, "stages.train.validation_fraction"); });
        CAPTURE(e.what());
        CHECK(e.code() == DSK_INVALID_ARGUMENT);
        CHECK(std::string(e.what()).find("stages.train.validation_fraction = ") == 0);
        CHECK(std::string(e.what()).find("must be in [0, 1)") != std::string::npos);
    }
    const dsk::Error none_left = error_of([] { split_for_validation(10, 0.99, "validation_fraction"); });
    CHECK(std::string(none_left.what()).find("validation_fraction = 0.99 leaves no training sample of the 10; lower it") !=
          std::string::npos);
    const dsk::Error none_held = error_of([] { split_for_validation(10, 0.01, "validation_fraction"); });
    CHECK(std::string(none_held.what()).find("validation_fraction = 0.01 holds out no sample of the 10 training samples") !=
          std::string::npos);
}
