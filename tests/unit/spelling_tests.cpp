#include <doctest/doctest.h>

#include "spelling.h"

using namespace dsk::kernel;

TEST_CASE("edit distance counts a swap as one edit") {
    CHECK(edit_distance("epochs", "epochs") == 0);
    CHECK(edit_distance("epcohs", "epochs") == 1);
    CHECK(edit_distance("epoch", "epochs") == 1);
    CHECK(edit_distance("", "abc") == 3);
}

TEST_CASE("closest match suggests near words only") {
    std::vector<std::string> keys = {"epochs", "batch_size", "learning_rate", "seed"};
    CHECK(closest_match("epoch", keys) == "epochs");
    CHECK(closest_match("batchsize", keys) == "batch_size");
    CHECK(closest_match("learnin_rate", keys) == "learning_rate");
    CHECK(closest_match("optimizer", keys).empty());
    CHECK(did_you_mean("sed", keys) == "; did you mean 'seed'?");
    CHECK(did_you_mean("zzzzzz", keys).empty());
}
