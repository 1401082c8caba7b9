// dsk_json.hpp - the one JSON string quoting used by everything dsk writes as JSON (metrics lines,
// safetensors headers). Header-only.
#ifndef DSK_JSON_HPP_
#define DSK_JSON_HPP_

#include <cstdio>
#include <string>

namespace dsk {

// `text` as a JSON string literal, quotes included: ", \ and control characters escaped.
inline std::string json_quote(const std::string& text) {
    std::string out = "\"";
    for (unsigned char c : text) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\t': out += "\\t"; break;
            case '\r': out += "\\r"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}

}  // namespace dsk

#endif  // DSK_JSON_HPP_
