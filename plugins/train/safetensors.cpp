#include "safetensors.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>

#include <dsk/dsk_error.hpp>
#include <dsk/dsk_json.hpp>
#include <dsk/dsk_file.hpp>
#include <dsk/dsk_tensor.hpp>

namespace dsk::train {
namespace {

[[noreturn]] void corrupt(const std::string& path, const std::string& what) {
    throw Error(DSK_DATA_LOSS, path + ": not a valid safetensors file: " + what);
}

// A reader for the JSON subset of safetensors headers: objects, strings, integer arrays.
class HeaderParser {
public:
    HeaderParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

    void parse(SafetensorsFile& out) {
        expect('{');
        if (peek() == '}') return void(++i_);
        while (true) {
            std::string name = string();
            expect(':');
            if (name == "__metadata__") {
                expect('{');
                if (peek() != '}')
                    while (true) {
                        std::string key = string();
                        expect(':');
                        out.metadata[key] = string();
                        if (peek() != ',') break;
                        ++i_;
                    }
                expect('}');
            } else {
                out.tensors[name] = tensor(name);
            }
            if (peek() != ',') break;
            ++i_;
        }
        expect('}');
    }

    std::map<std::string, std::pair<uint64_t, uint64_t>> offsets;

private:
    NamedTensor tensor(const std::string& name) {
        NamedTensor t;
        bool have_offsets = false;
        expect('{');
        while (true) {
            std::string key = string();
            expect(':');
            if (key == "dtype") t.dtype = string();
            else if (key == "shape") t.shape = ints();
            else if (key == "data_offsets") {
                auto o = ints();
                if (o.size() != 2 || o[0] < 0 || o[1] < o[0]) corrupt(path_, "bad data_offsets for '" + name + "'");
                offsets[name] = {static_cast<uint64_t>(o[0]), static_cast<uint64_t>(o[1])};
                have_offsets = true;
            } else corrupt(path_, "unknown key '" + key + "' in tensor '" + name + "'");
            if (peek() != ',') break;
            ++i_;
        }
        expect('}');
        if (!have_offsets || t.dtype.empty()) corrupt(path_, "tensor '" + name + "' lacks dtype or data_offsets");
        return t;
    }
    std::vector<int64_t> ints() {
        std::vector<int64_t> out;
        expect('[');
        if (peek() == ']') return ++i_, out;
        while (true) {
            skip();
            size_t start = i_;
            while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-')) ++i_;
            if (start == i_) corrupt(path_, "expected an integer at byte " + std::to_string(start) + " of the header");
            int64_t value = 0;
            const auto [end, error] = std::from_chars(s_.data() + start, s_.data() + i_, value);
            if (error != std::errc() || end != s_.data() + i_)
                corrupt(path_, "'" + s_.substr(start, i_ - start) + "' at byte " + std::to_string(start) +
                                   " of the header is not a 64-bit integer");
            out.push_back(value);
            if (peek() != ',') break;
            ++i_;
        }
        expect(']');
        return out;
    }
    std::string string() {
        expect('"');
        std::string out;
        while (i_ < s_.size() && s_[i_] != '"') {
            if (s_[i_] == '\\' && i_ + 1 < s_.size()) {
                ++i_;
                if (s_[i_] == 'u') {
                    append_utf8(out, code_point());
                    continue;
                }
                const char c = s_[i_];
                out += c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c == 'b' ? '\b' : c == 'f' ? '\f' : c;
                ++i_;
                continue;
            }
            out += s_[i_++];
        }
        if (i_ >= s_.size()) corrupt(path_, "unterminated string in the header");
        ++i_;
        return out;
    }
    // The code point of a \uXXXX escape (i_ at the 'u'), joining a UTF-16 surrogate pair.
    uint32_t code_point() {
        uint32_t high = hex4();
        if (high < 0xd800 || high > 0xdfff) return high;
        if (high <= 0xdbff && s_.compare(i_, 2, "\\u") == 0) {
            ++i_;
            const uint32_t low = hex4();
            if (low >= 0xdc00 && low <= 0xdfff) return 0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00);
        }
        corrupt(path_, "unpaired UTF-16 surrogate before byte " + std::to_string(i_) + " of the header");
    }
    // The 4 hex digits after the 'u' at i_; leaves i_ after them.
    uint32_t hex4() {
        const size_t at = i_ + 1;
        uint32_t value = 0;
        const char* last = s_.data() + std::min(at + 4, s_.size());
        const auto [end, error] = std::from_chars(s_.data() + std::min(at, s_.size()), last, value, 16);
        if (error != std::errc() || static_cast<size_t>(end - s_.data()) != at + 4)
            corrupt(path_, "bad \\u escape at byte " + std::to_string(at - 2) + " of the header (needs 4 hex digits)");
        i_ = at + 4;
        return value;
    }
    static void append_utf8(std::string& out, uint32_t c) {
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xc0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3f));
        } else if (c < 0x10000) {
            out += static_cast<char>(0xe0 | (c >> 12));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (c & 0x3f));
        } else {
            out += static_cast<char>(0xf0 | (c >> 18));
            out += static_cast<char>(0x80 | ((c >> 12) & 0x3f));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (c & 0x3f));
        }
    }
    void skip() {
        while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
    }
    char peek() {
        skip();
        return i_ < s_.size() ? s_[i_] : '\0';
    }
    void expect(char c) {
        if (peek() != c) corrupt(path_, std::string("expected '") + c + "' at byte " + std::to_string(i_) + " of the header");
        ++i_;
    }

    const std::string& s_;
    const std::string& path_;
    size_t i_ = 0;
};

size_t dtype_bytes(const std::string& dtype) {
    if (dtype == "F32" || dtype == "I32") return 4;
    if (dtype == "F64" || dtype == "I64") return 8;
    if (dtype == "F16" || dtype == "BF16" || dtype == "I16") return 2;
    if (dtype == "U8" || dtype == "I8" || dtype == "BOOL") return 1;
    return 0;
}

}  // namespace

void write_safetensors(const std::vector<std::string>& paths, const SafetensorsFile& file) {
    std::string header = "{";
    if (!file.metadata.empty()) {
        header += "\"__metadata__\":{";
        bool first = true;
        for (const auto& [k, v] : file.metadata) {
            header += (first ? "" : ",") + dsk::json_quote(k) + ":" + dsk::json_quote(v);
            first = false;
        }
        header += "}";
    }
    uint64_t offset = 0;
    for (const auto& [name, t] : file.tensors) {
        header += (header.size() > 1 ? "," : "") + dsk::json_quote(name) + ":{\"dtype\":" + dsk::json_quote(t.dtype) + ",\"shape\":[";
        for (size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
        header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + t.data.size()) + "]}";
        offset += t.data.size();
    }
    header += "}";
    while (header.size() % 8) header += ' ';  // the data starts 8-byte aligned

    uint8_t length[8];
    for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
    std::vector<std::pair<const void*, size_t>> chunks = {{length, sizeof length}, {header.data(), header.size()}};
    for (const auto& [name, t] : file.tensors) chunks.emplace_back(t.data.data(), t.data.size());
    for (const auto& path : paths) write_file_atomically(path, chunks);
}

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
    write_safetensors(std::vector<std::string>{path}, file);
}

SafetensorsFile read_safetensors(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(DSK_NOT_FOUND, path + ": no such checkpoint file");
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() < 8) corrupt(path, "shorter than its 8-byte header length");
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
    if (n > bytes.size() - 8) corrupt(path, "header length " + std::to_string(n) + " runs past the end of the file (truncated?)");
    const std::string header = bytes.substr(8, n);
    SafetensorsFile file;
    HeaderParser parser(header, path);
    parser.parse(file);
    const uint64_t data_size = bytes.size() - 8 - n;
    for (auto& [name, t] : file.tensors) {
        auto [begin, end] = parser.offsets[name];
        if (end > data_size) corrupt(path, "tensor '" + name + "' runs past the end of the file (truncated?)");
        uint64_t count = 1;
        for (int64_t d : t.shape) {
            if (d < 0) corrupt(path, "tensor '" + name + "' has shape " + shape_text(t.shape) + ", with a negative size");
            if (d > 0 && count > data_size / static_cast<uint64_t>(d))
                corrupt(path, "tensor '" + name + "' has shape " + shape_text(t.shape) + ", larger than the file");
            count *= static_cast<uint64_t>(d);
        }
        if (dtype_bytes(t.dtype) && count * dtype_bytes(t.dtype) != end - begin)
            corrupt(path, "tensor '" + name + "' has " + std::to_string(end - begin) + " bytes for its shape");
        t.data.assign(bytes.begin() + static_cast<ptrdiff_t>(8 + n + begin), bytes.begin() + static_cast<ptrdiff_t>(8 + n + end));
    }
    return file;
}

}  // namespace dsk::train
