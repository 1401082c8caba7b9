// Semantic versions ("1.2.3") and ranges (">=1.2, <2", "^1.2", "~1.2.3", "1.2.3", "*", "a || b")
// for plugin versions and manifest `requires`.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsk::kernel {

struct Version {
    int major = 0, minor = 0, patch = 0;
    std::string prerelease;  // "rc.1"; sorts before the release (1.0.0-rc.1 < 1.0.0)

    // Accepts "1", "1.2" and "1.2.3" (missing parts are 0) with an optional "-pre" / "+build".
    static std::optional<Version> parse(std::string_view text);
    std::string str() const;
    friend int compare(const Version& a, const Version& b);
    friend bool operator==(const Version& a, const Version& b) { return compare(a, b) == 0; }
    friend bool operator<(const Version& a, const Version& b) { return compare(a, b) < 0; }
};

// A set of alternatives (joined by "||"), each a conjunction of comparisons (joined by "," or
// spaces). "^1.2" = ">=1.2.0, <2.0.0"; "~1.2" = ">=1.2.0, <1.3.0"; "1.2" alone = "^1.2" rather
// than an exact match, as in Cargo; "=1.2.3" is exact; "*" or "" matches everything.
class VersionRange {
public:
    static std::optional<VersionRange> parse(std::string_view text);
    bool contains(const Version& v) const;
    const std::string& str() const { return text_; }

private:
    struct Comparison {
        enum Op { Eq, Lt, Le, Gt, Ge } op;
        Version version;
    };
    std::vector<std::vector<Comparison>> alternatives_;
    std::string text_;
};

}  // namespace dsk::kernel
