#include <doctest/doctest.h>

#include "semver.h"

using dsk::kernel::Version;
using dsk::kernel::VersionRange;

static bool in(const char* range, const char* version) {
    auto r = VersionRange::parse(range);
    auto v = Version::parse(version);
    REQUIRE_MESSAGE(r.has_value(), range);
    REQUIRE_MESSAGE(v.has_value(), version);
    return r->contains(*v);
}

TEST_CASE("versions parse and order") {
    CHECK(Version::parse("1.2.3")->str() == "1.2.3");
    CHECK(Version::parse("1.2")->str() == "1.2.0");
    CHECK(Version::parse("1")->str() == "1.0.0");
    CHECK(Version::parse("1.0.0-rc.1+build5")->str() == "1.0.0-rc.1");
    CHECK_FALSE(Version::parse("").has_value());
    CHECK_FALSE(Version::parse("1.x").has_value());
    CHECK_FALSE(Version::parse("1.2.3.4").has_value());
    CHECK_FALSE(Version::parse("v1").has_value());
    CHECK(*Version::parse("1.0.0-rc.1") < *Version::parse("1.0.0"));
    CHECK(*Version::parse("1.9.0") < *Version::parse("1.10.0"));
    CHECK(*Version::parse("2.0") == *Version::parse("2.0.0"));
}

TEST_CASE("comparison ranges") {
    CHECK(in(">=1.0, <2", "1.0.0"));
    CHECK(in(">=1.0, <2", "1.99.3"));
    CHECK_FALSE(in(">=1.0, <2", "2.0.0"));
    CHECK_FALSE(in(">=1.0, <2", "0.9.9"));
    CHECK(in(">1.0 <=1.5", "1.5.0"));
    CHECK_FALSE(in(">1.0 <=1.5", "1.0.0"));
    CHECK(in("=1.2.3", "1.2.3"));
    CHECK_FALSE(in("=1.2.3", "1.2.4"));
    CHECK(in("*", "0.0.1"));
    CHECK(in("", "7.0.0"));
}

TEST_CASE("caret - tilde and bare versions follow Cargo") {
    CHECK(in("^1.2", "1.9.0"));
    CHECK_FALSE(in("^1.2", "2.0.0"));
    CHECK_FALSE(in("^1.2", "1.1.0"));
    CHECK(in("^0.2.3", "0.2.9"));
    CHECK_FALSE(in("^0.2.3", "0.3.0"));
    CHECK(in("1.2", "1.5.0"));  // bare = caret
    CHECK(in("~1.2.3", "1.2.9"));
    CHECK_FALSE(in("~1.2.3", "1.3.0"));
    CHECK(in("~1", "1.9.0"));
}

TEST_CASE("alternatives") {
    CHECK(in("<1.0 || >=3.0", "0.5.0"));
    CHECK(in("<1.0 || >=3.0", "3.1.0"));
    CHECK_FALSE(in("<1.0 || >=3.0", "2.0.0"));
}

TEST_CASE("bad ranges are rejected") {
    CHECK_FALSE(VersionRange::parse(">=one").has_value());
    CHECK_FALSE(VersionRange::parse("!1.0").has_value());
    CHECK_FALSE(VersionRange::parse(">=1.0.0.0").has_value());
}
