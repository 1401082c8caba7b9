// The TOML form of search spaces (dsk/dsk_search.hpp): what is accepted, and what is refused with
// the entry named.
#include "search_harness.h"

using namespace search_test;
using dsk::search::ParamType;
using dsk::search::Value;

namespace {

// The message parsing `space` fails with ("" when it parses).
std::string space_error(const std::string& space) {
    install_host();
    toml::table t = toml::parse(space, std::string_view("space.toml"));
    dsk_config c{&t, "space"};
    try {
        Space::parse(dsk::Config(&c));
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_INVALID_ARGUMENT);
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("a space parses into parameters with parents before children") {
    install_host();
    toml::table t = toml::parse(std::string_view(R"(
a_momentum = { type = "float", low = 0.5, high = 0.99, condition = { optimizer = "sgd" } }
optimizer = { type = "categorical", choices = ["adam", "sgd"], key = "stages.train.optimizer.name" }
hidden = { type = "categorical", choices = [[128], [256, 128]] }
width = { type = "int", low = 16, high = 512, log = true }
)"));
    dsk_config c{&t};
    const Space space = Space::parse(dsk::Config(&c));
    REQUIRE(space.params().size() == 4);
    CHECK(space.params()[0].name == "hidden");
    CHECK(space.params()[1].name == "optimizer");
    CHECK(space.params()[2].name == "width");
    CHECK(space.params()[3].name == "a_momentum");  // after its parent
    CHECK(space.find("optimizer")->key == "stages.train.optimizer.name");
    CHECK(space.find("width")->key == "width");
    CHECK(space.find("width")->type == ParamType::Int);
    CHECK(space.find("hidden")->choices[1].literal() == "[256, 128]");
}

TEST_CASE("literals of values read back as TOML of the same type") {
    CHECK(Value::of_float(0.001).literal() == "0.001");
    CHECK(Value::of_float(1.0).literal() == "1.0");
    CHECK(Value::of_float(1e-7).literal() == "1e-07");
    CHECK(Value::of_int(64).literal() == "64");
    Value s;
    s.type = DSK_VALUE_STRING;
    s.s = "sg\"d";
    CHECK(s.literal() == "\"sg\\\"d\"");
    CHECK(s.text() == "sg\"d");
}

TEST_CASE("bad spaces are refused naming the entry and the fix") {
    CHECK(space_error("") .find("the search space is empty") != std::string::npos);
    CHECK(space_error("lr = 0.1").find("search space 'lr': expected a table") != std::string::npos);
    CHECK(space_error("lr = { low = 0.1, high = 1.0 }").find("missing 'type'") != std::string::npos);
    CHECK(space_error("lr = { type = \"real\", low = 0.1, high = 1.0 }").find("\"real\" is not one of") != std::string::npos);
    CHECK(space_error("lr = { type = \"float\", low = 1.0, high = 0.1 }").find("low (1.0) must be below high (0.1)") !=
          std::string::npos);
    CHECK(space_error("lr = { type = \"float\", low = 0.0, high = 1.0, log = true }").find("log = true needs low > 0") !=
          std::string::npos);
    CHECK(space_error("n = { type = \"int\", low = 0.5, high = 4 }").find("integer low and high") != std::string::npos);
    CHECK(space_error("lr = { type = \"float\", low = 0.1, high = 1.0, lgo = true }").find("unknown key 'lgo'") !=
          std::string::npos);
    CHECK(space_error("o = { type = \"categorical\" }").find("needs choices") != std::string::npos);
    CHECK(space_error("o = { type = \"categorical\", choices = [1, 1] }").find("listed twice") != std::string::npos);
    CHECK(space_error("m = { type = \"float\", low = 0.1, high = 1.0, condition = { opt = \"sgd\" } }")
              .find("condition names 'opt', which is not a parameter") != std::string::npos);
    CHECK(space_error(R"(
o = { type = "categorical", choices = ["adam", "sgd"] }
m = { type = "float", low = 0.1, high = 1.0, condition = { o = "sdg" } }
)").find("condition value \"sdg\" can never be taken by 'o'") != std::string::npos);
    CHECK(space_error(R"(
a = { type = "categorical", choices = [1, 2], condition = { b = 1 } }
b = { type = "categorical", choices = [1, 2], condition = { a = 1 } }
)").find("cycle") != std::string::npos);
}

TEST_CASE("an assignment that breaks the space is refused when read back") {
    install_host();
    toml::table space_t = toml::parse(std::string_view(R"(
o = { type = "categorical", choices = ["adam", "sgd"] }
m = { type = "float", low = 0.1, high = 1.0, condition = { o = "sgd" } }
)"));
    dsk_config sc{&space_t};
    const Space space = Space::parse(dsk::Config(&sc));
    auto read = [&](const char* text) {
        toml::table t = toml::parse(std::string_view(text));
        dsk_config c{&t};
        return space.read(dsk::Config(&c));
    };
    CHECK(read("o = \"sgd\"\nm = 0.5").size() == 2);
    CHECK(read("o = \"adam\"").size() == 1);
    CHECK_THROWS_WITH(read("o = \"adam\"\nm = 0.5"), doctest::Contains("'m', which is not active"));
    CHECK_THROWS_WITH(read("o = \"sgd\""), doctest::Contains("did not set the active parameter 'm'"));
    CHECK_THROWS_WITH(read("o = \"sgd\"\nm = 2.0"), doctest::Contains("outside [0.1, 1.0]"));
    CHECK_THROWS_WITH(read("o = \"rmsprop\""), doctest::Contains("not one of its choices"));
    CHECK_THROWS_WITH(read("o = \"adam\"\nx = 1"), doctest::Contains("'x', which is not in the space"));
}

TEST_CASE("a condition lists values of a numeric parent or names one array choice") {
    install_host();
    toml::table t = toml::parse(std::string_view(R"(
depth = { type = "int", low = 1, high = 3 }
op3 = { type = "categorical", choices = ["conv", "skip"], condition = { depth = [2, 3] } }
hidden = { type = "categorical", choices = [[128], [256, 128]] }
dropout = { type = "float", low = 0.0, high = 0.5, condition = { hidden = [256, 128] } }
)"));
    dsk_config c{&t};
    const Space space = Space::parse(dsk::Config(&c));
    const auto& op3 = *space.find("op3");
    REQUIRE(op3.parent_values.size() == 2);
    CHECK(space.active(op3, {{"depth", Value::of_int(3)}}));
    CHECK_FALSE(space.active(op3, {{"depth", Value::of_int(1)}}));
    const auto& dropout = *space.find("dropout");
    REQUIRE(dropout.parent_values.size() == 1);
    CHECK(space.active(dropout, {{"hidden", dropout.parent_values[0]}}));
    CHECK_FALSE(space.active(dropout, {{"hidden", space.find("hidden")->choices[0]}}));
}
