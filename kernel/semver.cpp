#include "semver.h"

#include <charconv>
#include <cctype>

namespace dsk::kernel {
namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

// Parses "1", "1.2", "1.2.3" and reports how many numeric parts were given.
std::optional<Version> parse_parts(std::string_view text, int* out_parts) {
    text = trim(text);
    Version v;
    if (auto plus = text.find('+'); plus != std::string_view::npos) text = text.substr(0, plus);
    if (auto dash = text.find('-'); dash != std::string_view::npos) {
        v.prerelease = std::string(text.substr(dash + 1));
        if (v.prerelease.empty()) return std::nullopt;
        text = text.substr(0, dash);
    }
    int* fields[] = {&v.major, &v.minor, &v.patch};
    int parts = 0;
    while (parts < 3) {
        const char* end = text.data() + text.size();
        auto [ptr, ec] = std::from_chars(text.data(), end, *fields[parts]);
        if (ec != std::errc() || ptr == text.data() || *fields[parts] < 0) return std::nullopt;
        ++parts;
        text.remove_prefix(static_cast<size_t>(ptr - text.data()));
        if (text.empty()) break;
        if (text.front() != '.' || parts == 3) return std::nullopt;
        text.remove_prefix(1);
    }
    if (out_parts) *out_parts = parts;
    return v;
}

}  // namespace

std::optional<Version> Version::parse(std::string_view text) { return parse_parts(text, nullptr); }

std::string Version::str() const {
    std::string s = std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
    if (!prerelease.empty()) s += "-" + prerelease;
    return s;
}

int compare(const Version& a, const Version& b) {
    if (a.major != b.major) return a.major < b.major ? -1 : 1;
    if (a.minor != b.minor) return a.minor < b.minor ? -1 : 1;
    if (a.patch != b.patch) return a.patch < b.patch ? -1 : 1;
    if (a.prerelease == b.prerelease) return 0;
    if (a.prerelease.empty()) return 1;  // a release sorts after its pre-releases
    if (b.prerelease.empty()) return -1;
    return a.prerelease < b.prerelease ? -1 : 1;
}

std::optional<VersionRange> VersionRange::parse(std::string_view text) {
    VersionRange range;
    range.text_ = std::string(trim(text));
    std::string_view rest = text;
    while (true) {
        auto bar = rest.find("||");
        std::string_view alt = trim(rest.substr(0, bar));
        std::vector<Comparison> all;
        // Split on commas and whitespace, keeping an operator attached to its version.
        size_t i = 0;
        while (i < alt.size()) {
            while (i < alt.size() && (alt[i] == ',' || std::isspace(static_cast<unsigned char>(alt[i])))) ++i;
            if (i >= alt.size()) break;
            size_t start = i;
            while (i < alt.size() && std::string_view("<>=^~").find(alt[i]) != std::string_view::npos) ++i;
            while (i < alt.size() && std::isspace(static_cast<unsigned char>(alt[i]))) ++i;
            while (i < alt.size() && alt[i] != ',' && !std::isspace(static_cast<unsigned char>(alt[i]))) ++i;
            std::string_view token = alt.substr(start, i - start);
            if (token == "*") continue;
            std::string_view op;
            size_t opend = 0;
            while (opend < token.size() && std::string_view("<>=^~").find(token[opend]) != std::string_view::npos) ++opend;
            op = token.substr(0, opend);
            int parts = 0;
            auto v = parse_parts(token.substr(opend), &parts);
            if (!v) return std::nullopt;
            auto upper = [&](int level) {  // next version at the given level
                Version u;
                if (level == 0) u.major = v->major + 1;
                if (level == 1) u = Version{v->major, v->minor + 1, 0, {}};
                if (level == 2) u = Version{v->major, v->minor, v->patch + 1, {}};
                return u;
            };
            if (op == "" || op == "^") {
                // Caret: compatible within the first non-zero part (Cargo / npm rules).
                int level = v->major > 0 || parts == 1 ? 0 : (v->minor > 0 || parts == 2 ? 1 : 2);
                all.push_back({Comparison::Ge, *v});
                all.push_back({Comparison::Lt, upper(level)});
            } else if (op == "~") {
                all.push_back({Comparison::Ge, *v});
                all.push_back({Comparison::Lt, upper(parts == 1 ? 0 : 1)});
            } else if (op == "=") {
                all.push_back({Comparison::Eq, *v});
            } else if (op == ">=") {
                all.push_back({Comparison::Ge, *v});
            } else if (op == ">") {
                all.push_back({Comparison::Gt, *v});
            } else if (op == "<=") {
                all.push_back({Comparison::Le, *v});
            } else if (op == "<") {
                all.push_back({Comparison::Lt, *v});
            } else {
                return std::nullopt;
            }
        }
        range.alternatives_.push_back(std::move(all));
        if (bar == std::string_view::npos) break;
        rest = rest.substr(bar + 2);
    }
    return range;
}

bool VersionRange::contains(const Version& v) const {
    for (const auto& alt : alternatives_) {
        bool ok = true;
        for (const auto& c : alt) {
            int r = compare(v, c.version);
            switch (c.op) {
                case Comparison::Eq: ok = r == 0; break;
                case Comparison::Lt: ok = r < 0; break;
                case Comparison::Le: ok = r <= 0; break;
                case Comparison::Gt: ok = r > 0; break;
                case Comparison::Ge: ok = r >= 0; break;
            }
            if (!ok) break;
        }
        if (ok) return true;
    }
    return false;
}

}  // namespace dsk::kernel
