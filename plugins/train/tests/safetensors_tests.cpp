// The safetensors reader and writer: a round trip keeps every byte, metadata string and shape;
// malformed files (truncated, a header length past the end, bad data_offsets, a non-numeric
// number in the header) are DATA_LOSS naming the file and what is wrong, never a std exception;
// a failed write leaves no temporary file behind.
#include <doctest/doctest.h>

#include "error_of.h"  // tests/support
#include "temp_dir.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../safetensors.h"
#include <dsk/dsk_error.hpp>

using namespace dsk::train;
namespace fs = std::filesystem;

namespace {

struct TempDir : test_support::TempDir {
    TempDir() : test_support::TempDir("dsk-train-tests") {}
};

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A file made by hand: the 8-byte little-endian header length, the header, then `data`.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
    std::string out;
    for (int i = 0; i < 8; ++i) out += static_cast<char>((static_cast<uint64_t>(header.size()) >> (8 * i)) & 0xff);
    return out + header + data;
}

using test_support::error_of;

// What reading `bytes` as a file reports; it must be DATA_LOSS naming the file.
std::string corrupt_message(const TempDir& dir, const std::string& bytes) {
    const std::string path = dir.file("bad.safetensors");
    write_bytes(path, bytes);
    const dsk::Error e = error_of([&] { read_safetensors(path); });
    CHECK(e.code() == DSK_DATA_LOSS);
    CHECK(std::string(e.what()).find(path + ": not a valid safetensors file") != std::string::npos);
    return e.what();
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

SafetensorsFile sample_file() {
    SafetensorsFile file;
    std::vector<uint8_t> f32(6 * sizeof(float));
    const float values[6] = {1.5f, -2.0f, 0.0f, 3.25f, -0.0f, 1e-30f};
    std::memcpy(f32.data(), values, sizeof values);
    file.tensors["fc1.weight"] = {"F32", {2, 3}, f32};
    file.tensors["scalar"] = {"I64", {}, std::vector<uint8_t>(8, 7)};
    file.tensors["empty"] = {"F32", {0, 4}, {}};
    file.tensors["__optimizer_state__"] = {"U8", {5}, {'D', 'S', 'K', 0, 255}};
    file.metadata["format"] = "dsk-checkpoint-1";
    file.metadata["quote\"and\\backslash"] = "line\nbreak\ttab\rreturn\x01" "control";
    file.metadata["utf8"] = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    file.metadata["empty"] = "";
    return file;
}

}  // namespace

TEST_CASE("safetensors round trip keeps tensors and metadata byte for byte") {
    TempDir dir;
    const std::string path = dir.file("model.safetensors");
    const SafetensorsFile file = sample_file();
    write_safetensors(path, file);
    CHECK_FALSE(fs::exists(path + ".tmp"));

    const std::string bytes = read_bytes(path);
    REQUIRE(bytes.size() >= 8);
    uint64_t header = 0;
    for (int i = 0; i < 8; ++i) header |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
    CHECK(header % 8 == 0);  // the data starts 8-byte aligned
    CHECK(bytes.size() == 8 + header + 6 * 4 + 8 + 5);

    const SafetensorsFile back = read_safetensors(path);
    CHECK(back.metadata == file.metadata);
    REQUIRE(back.tensors.size() == file.tensors.size());
    for (const auto& [name, t] : file.tensors) {
        CAPTURE(name);
        REQUIRE(back.tensors.count(name) == 1);
        CHECK(back.tensors.at(name).dtype == t.dtype);
        CHECK(back.tensors.at(name).shape == t.shape);
        CHECK(back.tensors.at(name).data == t.data);
    }
}

TEST_CASE("safetensors written to several paths gives the same bytes in each") {
    TempDir dir;
    const std::string a = dir.file("epoch-0001.safetensors"), b = dir.file("last.safetensors");
    write_safetensors(std::vector<std::string>{a, b}, sample_file());
    CHECK(read_bytes(a) == read_bytes(b));
    CHECK_FALSE(fs::exists(a + ".tmp"));
    CHECK_FALSE(fs::exists(b + ".tmp"));
    SafetensorsFile other = sample_file();
    other.metadata["format"] = "replaced";
    write_safetensors(b, other);  // replaces the file
    CHECK(read_safetensors(b).metadata.at("format") == "replaced");
}

TEST_CASE("safetensors reads an escaped header written by another tool") {
    TempDir dir;
    const std::string path = dir.file("other.safetensors");
    // \u00e9 (two UTF-8 bytes), \u20ac (three), a surrogate pair (four), and spaces around tokens.
    write_bytes(path, safetensors_bytes(
                          "{ \"__metadata__\" : { \"k\" : \"caf\\u00e9 \\u20AC \\ud83d\\ude00 \\/\" } , "
                          "\"t\" : { \"dtype\" : \"U8\" , \"shape\" : [ 2 ] , \"data_offsets\" : [ 0 , 2 ] } }",
                          "ab"));
    const SafetensorsFile file = read_safetensors(path);
    CHECK(file.metadata.at("k") == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 /");
    CHECK(file.tensors.at("t").data == std::vector<uint8_t>{'a', 'b'});
}

TEST_CASE("a missing safetensors file is NOT_FOUND naming it") {
    TempDir dir;
    const dsk::Error e = error_of([&] { read_safetensors(dir.file("nothing.safetensors")); });
    CHECK(e.code() == DSK_NOT_FOUND);
    CHECK(has(e.what(), dir.file("nothing.safetensors")));
}

TEST_CASE("a truncated safetensors file is DATA_LOSS naming the file") {
    TempDir dir;
    const std::string path = dir.file("model.safetensors");
    write_safetensors(path, sample_file());
    const std::string bytes = read_bytes(path);
    SUBCASE("cut inside the data") {
        CHECK(has(corrupt_message(dir, bytes.substr(0, bytes.size() - 3)), "runs past the end of the file (truncated?)"));
    }
    SUBCASE("cut inside the header") {
        CHECK(has(corrupt_message(dir, bytes.substr(0, 40)), "runs past the end of the file (truncated?)"));
    }
    SUBCASE("shorter than the header length") {
        CHECK(has(corrupt_message(dir, bytes.substr(0, 5)), "shorter than its 8-byte header length"));
        CHECK(has(corrupt_message(dir, ""), "shorter than its 8-byte header length"));
    }
}

TEST_CASE("a safetensors header length past the end of the file is DATA_LOSS") {
    TempDir dir;
    const std::string header = "{\"t\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    std::string bytes = safetensors_bytes(header, "x");
    SUBCASE("one byte too long") {
        bytes[0] = static_cast<char>(header.size() + 2);
        CHECK(has(corrupt_message(dir, bytes), "header length " + std::to_string(header.size() + 2) + " runs past the end"));
    }
    SUBCASE("the largest length") {
        for (int i = 0; i < 8; ++i) bytes[i] = '\xff';
        CHECK(has(corrupt_message(dir, bytes), "header length 18446744073709551615 runs past the end"));
    }
}

TEST_CASE("bad safetensors data_offsets are DATA_LOSS naming the tensor") {
    TempDir dir;
    auto with_offsets = [&](const std::string& offsets, const std::string& shape = "[4]") {
        return corrupt_message(dir, safetensors_bytes("{\"w\":{\"dtype\":\"U8\",\"shape\":" + shape + ",\"data_offsets\":" +
                                                          offsets + "}}",
                                                      "abcd"));
    };
    CHECK(has(with_offsets("[4,0]"), "bad data_offsets for 'w'"));            // end before begin
    CHECK(has(with_offsets("[-1,3]"), "bad data_offsets for 'w'"));           // negative
    CHECK(has(with_offsets("[0,1,2]"), "bad data_offsets for 'w'"));          // three numbers
    CHECK(has(with_offsets("[0]"), "bad data_offsets for 'w'"));              // one number
    CHECK(has(with_offsets("[0,9]"), "tensor 'w' runs past the end of the file"));
    CHECK(has(with_offsets("[0,3]"), "tensor 'w' has 3 bytes for its shape"));  // shape [4] needs 4
    CHECK(has(with_offsets("[0,4]", "[-4]"), "tensor 'w' has shape [-4], with a negative size"));
    CHECK(has(with_offsets("[0,4]", "[4294967296,4294967296]"), "larger than the file"));  // no overflow
    CHECK(has(corrupt_message(dir, safetensors_bytes("{\"w\":{\"dtype\":\"U8\",\"shape\":[4]}}", "abcd")),
              "tensor 'w' lacks dtype or data_offsets"));
}

TEST_CASE("a non-numeric number in a safetensors header is DATA_LOSS naming the byte") {
    TempDir dir;
    auto with_offsets = [&](const std::string& offsets) {
        return corrupt_message(dir, safetensors_bytes("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":" + offsets + "}}",
                                                      "a"));
    };
    // The header is {"w":{"dtype":"U8","shape":[1],"data_offsets":[  and the offsets start at byte 47.
    CHECK(has(with_offsets("[0,\"1\"]"), "expected an integer at byte 49 of the header"));
    CHECK(has(with_offsets("[x,1]"), "expected an integer at byte 47 of the header"));
    CHECK(has(with_offsets("[0,--1]"), "'--1' at byte 49 of the header is not a 64-bit integer"));
    CHECK(has(with_offsets("[0,1-]"), "'1-' at byte 49 of the header is not a 64-bit integer"));
    CHECK(has(with_offsets("[0,99999999999999999999]"), "'99999999999999999999' at byte 49 of the header is not a 64-bit integer"));
    CHECK(has(with_offsets("[0,1x]"), "expected ']' at byte 50 of the header"));
    CHECK(has(with_offsets("[0,1"), "expected ']'"));
}

TEST_CASE("bad strings in a safetensors header are DATA_LOSS") {
    TempDir dir;
    auto with_metadata = [&](const std::string& value) {
        return corrupt_message(dir, safetensors_bytes("{\"__metadata__\":{\"k\":\"" + value + "\"}}", ""));
    };
    CHECK(has(with_metadata("\\u12zz"), "bad \\u escape at byte 22 of the header"));
    CHECK(has(with_metadata("\\u12"), "bad \\u escape"));
    CHECK(has(with_metadata("\\ud83d alone"), "unpaired UTF-16 surrogate"));
    CHECK(has(with_metadata("\\ude00"), "unpaired UTF-16 surrogate"));
    CHECK(has(corrupt_message(dir, safetensors_bytes("{\"__metadata__\":{\"k\":\"open", "")), "unterminated string"));
    CHECK(has(corrupt_message(dir, safetensors_bytes("{\"__metadata__\":{\"k\":3}}", "")), "expected '\"' at byte 21"));
    CHECK(has(corrupt_message(dir, safetensors_bytes("{\"t\":{\"dtype\":\"U8\",\"kind\":1}}", "")), "unknown key 'kind' in tensor 't'"));
}

TEST_CASE("a safetensors write that fails is UNAVAILABLE and leaves no temporary file") {
    TempDir dir;
    SUBCASE("the folder does not exist") {
        const std::string path = dir.file("missing/model.safetensors");
        const dsk::Error e = error_of([&] { write_safetensors(path, sample_file()); });
        CHECK(e.code() == DSK_UNAVAILABLE);
        CHECK(has(e.what(), "cannot write " + path + ": creating " + path + ".tmp: "));
    }
    SUBCASE("the rename fails after the data is written") {
        const std::string path = dir.file("model.safetensors");
        fs::create_directories(fs::path(path) / "occupied");  // a non-empty folder cannot be replaced by a file
        const dsk::Error e = error_of([&] { write_safetensors(path, sample_file()); });
        CHECK(e.code() == DSK_UNAVAILABLE);
        CHECK(has(e.what(), "cannot write " + path + ": renaming " + path + ".tmp: "));
        CHECK_FALSE(fs::exists(path + ".tmp"));
        CHECK(fs::is_directory(path));
    }
}
