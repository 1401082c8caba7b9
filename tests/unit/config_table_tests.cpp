#include <doctest/doctest.h>

#include "config_table.h"
#include "status.h"

using namespace dsk::kernel;

namespace {

dsk_host_api config_api() {
    dsk_host_api api{};
    api.struct_size = sizeof api;
    fill_config_api(api);
    return api;
}

std::string message(dsk_status s) {
    std::string m = s ? s->message : "";
    delete s;
    return m;
}

}  // namespace

TEST_CASE("dotted paths reach tables and arrays") {
    toml::table t = toml::parse(std::string_view("a = { b = [10, { c = 'x' }] }\nn = 3"), std::string_view("t.toml"));
    CHECK(find_path(t, "a.b.0")->value<int64_t>() == 10);
    CHECK(find_path(t, "a.b.1.c")->value<std::string>() == "x");
    CHECK(find_path(t, "a.b.2") == nullptr);
    CHECK(find_path(t, "a.z") == nullptr);
    CHECK(where(*find_path(t, "n")) == "t.toml:2:5");
}

TEST_CASE("set_path creates tables and refuses to go through scalars") {
    toml::table t = toml::parse(std::string_view("n = 3\nlist = [1, 2]"), std::string_view("t.toml"));
    set_path(t, "x.y.z", toml::value<int64_t>(5));
    CHECK(find_path(t, "x.y.z")->value<int64_t>() == 5);
    set_path(t, "list.1", toml::value<int64_t>(7));
    CHECK(find_path(t, "list.1")->value<int64_t>() == 7);
    CHECK_THROWS_AS(set_path(t, "n.m", toml::value<int64_t>(1)), Error);
    CHECK_THROWS_AS(set_path(t, "list.5", toml::value<int64_t>(1)), Error);
}

TEST_CASE("literals parse as TOML - bare words as strings - with the --set as source") {
    CHECK(parse_value_literal("3", "--set a=3")["v"].value<int64_t>() == 3);
    CHECK(parse_value_literal("0.5", "--set a=0.5")["v"].value<double>() == 0.5);
    CHECK(parse_value_literal("[1, 2]", "--set a=[1,2]")["v"].as_array()->size() == 2);
    CHECK(parse_value_literal("\"q\"", "s")["v"].value<std::string>() == "q");
    toml::table bare = parse_value_literal("adam w", "--set optimizer=adam w");
    CHECK(bare["v"].value<std::string>() == "adam w");
    CHECK(where(*bare.get("v")) == "--set optimizer=adam w");
}

TEST_CASE("host config getters check types and name the key and location") {
    dsk_host_api api = config_api();
    toml::table t = toml::parse(std::string_view("epochs = 'five'\nlr = 1\nflag = true\n[opt]\nname = 'adam'"), std::string_view("p.toml"));
    dsk_config cfg{&t, "stages[0]"};
    int64_t i = 0;
    double f = 0;
    int32_t b = 0;
    const char* s = nullptr;
    std::string err = message(api.config_get_int(&cfg, "epochs", &i));
    CHECK(err == "p.toml:1:10: 'stages[0].epochs' must be an integer, not string");
    CHECK(api.config_get_float(&cfg, "lr", &f) == nullptr);  // an integer is a number
    CHECK(f == 1.0);
    CHECK(api.config_get_bool(&cfg, "flag", &b) == nullptr);
    CHECK(b == 1);
    CHECK(api.config_get_string(&cfg, "opt.name", &s) == nullptr);
    CHECK(std::string(s) == "adam");
    CHECK(message(api.config_get_int(&cfg, "missing", &i)) == "key 'stages[0].missing' is not set");
    CHECK(api.config_type(&cfg, "opt") == DSK_VALUE_TABLE);
    CHECK(api.config_type(&cfg, "nope") == DSK_VALUE_MISSING);
    size_t n = 0;
    CHECK(api.config_size(&cfg, "", &n) == nullptr);
    CHECK(n == 4);
    CHECK(api.config_key_at(&cfg, "", 1, &s) == nullptr);
    CHECK(std::string(s) == "flag");  // sorted key order
    CHECK(api.config_set_float(&cfg, "results.acc", 0.9) == nullptr);
    CHECK(t["results"]["acc"].value<double>() == 0.9);
}
