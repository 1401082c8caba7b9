// dsk_json.hpp's reader, on what dsk writes (summary.json, metrics.jsonl lines) and on damage.
#include <doctest/doctest.h>

#include <dsk/dsk_json.hpp>

TEST_CASE("json_parse reads objects arrays numbers strings booleans and null") {
    const dsk::JsonValue v = dsk::json_parse(
        R"({"stage": "train", "step": 3, "value": 0.8125, "ok": true, "none": null, "list": [1, -2.5e-3, "x"], "nested": {"a": {}}})");
    REQUIRE(v.is(dsk::JsonValue::Type::Object));
    CHECK(v.find("stage")->string == "train");
    CHECK(v.find("step")->number == 3);
    CHECK(v.find("value")->number == 0.8125);
    CHECK(v.find("ok")->boolean);
    CHECK(v.find("none")->is(dsk::JsonValue::Type::Null));
    REQUIRE(v.find("list")->items.size() == 3);
    CHECK(v.find("list")->items[1].number == -2.5e-3);
    CHECK(v.find("nested")->find("a")->members.empty());
    CHECK(v.find("missing") == nullptr);
    CHECK(v.members[0].first == "stage");  // document order
}

TEST_CASE("json_parse round-trips json_quote escapes") {
    const std::string text = "quote \" backslash \\ tab \t newline \n control \x01 e\xc3\xa9";
    CHECK(dsk::json_parse(dsk::json_quote(text)).string == text);
    CHECK(dsk::json_parse(R"("\u00e9\u20ac")").string == "\xc3\xa9\xe2\x82\xac");
}

TEST_CASE("json_parse names the source and offset of damage") {
    CHECK_THROWS_WITH(dsk::json_parse(R"({"a": 1, "b": )", "journal.jsonl:7"),
                      doctest::Contains("journal.jsonl:7: invalid JSON at offset"));
    CHECK_THROWS_WITH(dsk::json_parse(R"({"a": 1} x)"), doctest::Contains("unexpected text after the value"));
    CHECK_THROWS_WITH(dsk::json_parse(R"("open)"), doctest::Contains("unterminated string"));
    try {
        dsk::json_parse("[1, 2");
        FAIL("must throw");
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_DATA_LOSS);
    }
}
