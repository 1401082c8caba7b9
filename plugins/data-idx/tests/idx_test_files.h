// Small IDX files for the tests, raw or gzipped, in a temporary folder removed afterwards.
#pragma once

#include <stdlib.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "temp_dir.h"  // tests/support

namespace idx_test {

using Bytes = std::vector<uint8_t>;

// A temporary directory; `path` as a string, as the tests here join it by hand.
struct TempDir : test_support::TempDir {
    TempDir() : test_support::TempDir("dsk-idx"), path(test_support::TempDir::path.string()) {}
    std::string path;
};

inline void put_u32(Bytes& out, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

// An IDX file: magic, extents, then `data`.
inline Bytes idx_bytes(uint32_t magic, const std::vector<uint32_t>& dims, const Bytes& data) {
    Bytes out;
    put_u32(out, magic);
    for (uint32_t d : dims) put_u32(out, d);
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

// `count` images of rows x cols; pixel k of image i is (i * 31 + k * 7) % 256.
inline Bytes image_pixels(uint32_t count, uint32_t rows, uint32_t cols) {
    Bytes data(size_t{count} * rows * cols);
    for (size_t i = 0; i < count; ++i)
        for (size_t k = 0; k < size_t{rows} * cols; ++k)
            data[i * rows * cols + k] = static_cast<uint8_t>((i * 31 + k * 7) % 256);
    return data;
}
inline Bytes images_file(uint32_t count, uint32_t rows, uint32_t cols) {
    return idx_bytes(0x00000803, {count, rows, cols}, image_pixels(count, rows, cols));
}
// Label i is i % 10.
inline Bytes labels_file(uint32_t count) {
    Bytes data(count);
    for (uint32_t i = 0; i < count; ++i) data[i] = static_cast<uint8_t>(i % 10);
    return idx_bytes(0x00000801, {count}, data);
}

// One gzip member (header, deflate data, CRC-32 and size trailer).
inline Bytes gzip(const Bytes& raw) {
    z_stream zs{};
    if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("deflateInit2 failed");
    Bytes out(deflateBound(&zs, raw.size()) + 32);
    zs.next_in = const_cast<Bytef*>(raw.data());
    zs.avail_in = static_cast<uInt>(raw.size());
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    const int ret = deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    if (ret != Z_STREAM_END) throw std::runtime_error("deflate failed");
    return out;
}

inline std::string write_file(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
    return path;
}

}  // namespace idx_test
