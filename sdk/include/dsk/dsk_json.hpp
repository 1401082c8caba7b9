// dsk_json.hpp - the one JSON string quoting used by everything dsk writes as JSON (metrics lines,
// safetensors headers), and a small reader for what dsk writes (summary.json, metrics.jsonl,
// journals). Header-only.
#ifndef DSK_JSON_HPP_
#define DSK_JSON_HPP_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "dsk/dsk_error.hpp"

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


// A parsed JSON value. Objects keep their members in document order.
struct JsonValue {
    enum class Type { Null, Bool, Number, String, Array, Object };
    Type type = Type::Null;
    bool boolean = false;
    double number = 0;
    std::string string;
    std::vector<JsonValue> items;                            // Array
    std::vector<std::pair<std::string, JsonValue>> members;  // Object

    bool is(Type t) const { return type == t; }
    // The member `key` of an object; nullptr when absent or when this is not an object.
    const JsonValue* find(const std::string& key) const {
        for (const auto& [name, value] : members)
            if (name == key) return &value;
        return nullptr;
    }
};

namespace detail {

class JsonReader {
public:
    JsonReader(const std::string& text, const std::string& source) : text_(text), source_(source) {}

    JsonValue document() {
        JsonValue v = value();
        skip_space();
        if (pos_ != text_.size()) fail("unexpected text after the value");
        return v;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw Error(DSK_DATA_LOSS, source_ + ": invalid JSON at offset " + std::to_string(pos_) + ": " + what);
    }
    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' || text_[pos_] == '\t')) ++pos_;
    }
    bool take(char c) {
        skip_space();
        if (pos_ < text_.size() && text_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    void expect(char c) {
        if (!take(c)) fail(std::string("expected '") + c + "'");
    }
    bool word(const char* w) {
        const std::string s(w);
        if (text_.compare(pos_, s.size(), s) != 0) return false;
        pos_ += s.size();
        return true;
    }

    JsonValue value() {
        skip_space();
        if (pos_ >= text_.size()) fail("unexpected end");
        JsonValue v;
        const char c = text_[pos_];
        if (c == '{') {
            ++pos_;
            v.type = JsonValue::Type::Object;
            if (take('}')) return v;
            do {
                skip_space();
                if (pos_ >= text_.size() || text_[pos_] != '"') fail("expected a member name");
                std::string name = string();
                expect(':');
                v.members.emplace_back(std::move(name), value());
            } while (take(','));
            expect('}');
        } else if (c == '[') {
            ++pos_;
            v.type = JsonValue::Type::Array;
            if (take(']')) return v;
            do v.items.push_back(value());
            while (take(','));
            expect(']');
        } else if (c == '"') {
            v.type = JsonValue::Type::String;
            v.string = string();
        } else if (word("true") || word("false")) {
            v.type = JsonValue::Type::Bool;
            v.boolean = text_[pos_ - 1] == 'e' && text_[pos_ - 2] == 'u';
        } else if (word("null")) {
            v.type = JsonValue::Type::Null;
        } else {
            const char* begin = text_.c_str() + pos_;
            char* end = nullptr;
            v.number = std::strtod(begin, &end);
            if (end == begin) fail("expected a value");
            v.type = JsonValue::Type::Number;
            pos_ += static_cast<size_t>(end - begin);
        }
        return v;
    }

    std::string string() {
        ++pos_;  // the opening quote
        std::string out;
        while (pos_ < text_.size() && text_[pos_] != '"') {
            char c = text_[pos_++];
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= text_.size()) break;
            c = text_[pos_++];
            switch (c) {
                case 'n': out += '\n'; break;
                case 't': out += '\t'; break;
                case 'r': out += '\r'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'u': {
                    if (pos_ + 4 > text_.size()) fail("short \\u escape");
                    const unsigned code = static_cast<unsigned>(std::strtoul(text_.substr(pos_, 4).c_str(), nullptr, 16));
                    pos_ += 4;
                    if (code < 0x80) {
                        out += static_cast<char>(code);
                    } else if (code < 0x800) {
                        out += static_cast<char>(0xc0 | (code >> 6));
                        out += static_cast<char>(0x80 | (code & 0x3f));
                    } else {
                        out += static_cast<char>(0xe0 | (code >> 12));
                        out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
                        out += static_cast<char>(0x80 | (code & 0x3f));
                    }
                    break;
                }
                default: out += c;  // \" \\ \/
            }
        }
        if (pos_ >= text_.size()) fail("unterminated string");
        ++pos_;
        return out;
    }

    const std::string& text_;
    const std::string& source_;
    size_t pos_ = 0;
};

}  // namespace detail

// Parses one JSON document. Throws dsk::Error(DSK_DATA_LOSS) naming `source` and the offset.
inline JsonValue json_parse(const std::string& text, const std::string& source = "JSON text") {
    return detail::JsonReader(text, source).document();
}

}  // namespace dsk

#endif  // DSK_JSON_HPP_
