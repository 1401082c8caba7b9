#include "idx_file.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace dsk::idx {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned bytes, 3 dimensions
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned bytes, 1 dimension
constexpr const char* kRefetch = "download it again or reinstall the package that ships it";

std::string with_hint(const std::string& text, const std::string& hint) {
    return hint.empty() ? text : text + "; " + hint;
}

std::string hex32(uint32_t value) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%08x", value);
    return text;
}

std::string decimal(unsigned __int128 value) {
    if (value == 0) return "0";
    std::string digits;
    for (; value > 0; value /= 10) digits += static_cast<char>('0' + static_cast<int>(value % 10));
    return std::string(digits.rbegin(), digits.rend());
}

uint32_t big_endian_u32(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
};

struct InflateEnd {
    void operator()(z_stream* stream) const { inflateEnd(stream); }
};

}  // namespace

std::vector<uint8_t> gunzip(const std::vector<uint8_t>& compressed, const std::string& path) {
    z_stream zs{};
    // 16 + MAX_WBITS: a gzip wrapper (header and CRC-32 trailer) is required.
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        throw Error(DSK_RESOURCE_EXHAUSTED, path + ": cannot start the gzip decoder (zlib: " +
                                                (zs.msg != nullptr ? zs.msg : "out of memory") +
                                                ")");
    }
    const std::unique_ptr<z_stream, InflateEnd> end_guard(&zs);

    std::vector<uint8_t> out;
    // The gzip trailer holds the uncompressed size modulo 2^32: a good first guess, capped by
    // deflate's best ratio (about 1032:1) so that a corrupt trailer cannot ask for gigabytes.
    size_t guess = size_t{1} << 16;
    if (compressed.size() >= 18) {
        const uint8_t* t = compressed.data() + compressed.size() - 4;
        const size_t isize =
            size_t{t[0]} | size_t{t[1]} << 8 | size_t{t[2]} << 16 | size_t{t[3]} << 24;
        guess = std::max(guess, std::min(isize, compressed.size() * 1032));
    }
    out.resize(guess);

    const auto corrupt = [&](const char* why) -> Error {
        return Error(DSK_DATA_LOSS, path + ": corrupt gzip stream (" + why + "); " + kRefetch);
    };

    size_t in_pos = 0;    // compressed bytes handed to zlib
    size_t produced = 0;  // decompressed bytes in `out`
    constexpr size_t kMaxChunk = size_t{1} << 30;
    for (;;) {
        if (zs.avail_in == 0 && in_pos < compressed.size()) {
            const size_t n = std::min(kMaxChunk, compressed.size() - in_pos);
            zs.next_in = const_cast<Bytef*>(compressed.data() + in_pos);
            zs.avail_in = static_cast<uInt>(n);
            in_pos += n;
        }
        if (out.size() - produced < (1 << 16))
            out.resize(std::max(out.size() * 2, produced + (1 << 16)));
        const size_t room = std::min(kMaxChunk, out.size() - produced);
        zs.next_out = out.data() + produced;
        zs.avail_out = static_cast<uInt>(room);
        const int ret = inflate(&zs, Z_NO_FLUSH);
        produced += room - zs.avail_out;

        if (ret == Z_STREAM_END) {
            const size_t left = zs.avail_in + (compressed.size() - in_pos);
            if (left == 0) break;
            // Another gzip member follows (as `cat a.gz b.gz` makes): decode it too.
            const uint8_t* next =
                zs.next_in != nullptr && zs.avail_in > 0 ? zs.next_in : compressed.data() + in_pos;
            if (left < 2 || next[0] != 0x1f || next[1] != 0x8b) {
                throw corrupt((std::to_string(left) + " bytes of garbage after the end").c_str());
            }
            inflateReset(&zs);
            continue;
        }
        if (ret == Z_DATA_ERROR || ret == Z_NEED_DICT) {
            throw corrupt(zs.msg != nullptr ? zs.msg : "invalid data");
        }
        if (ret == Z_MEM_ERROR) {
            throw Error(DSK_RESOURCE_EXHAUSTED, path + ": out of memory while decompressing");
        }
        if (ret != Z_OK && ret != Z_BUF_ERROR) {
            throw corrupt(("zlib error " + std::to_string(ret)).c_str());
        }
        if (zs.avail_in == 0 && in_pos == compressed.size() && zs.avail_out > 0) {
            throw Error(DSK_DATA_LOSS, path + ": gzip stream ends early, after " +
                                           std::to_string(compressed.size()) +
                                           " compressed bytes (truncated file); " + kRefetch);
        }
    }
    out.resize(produced);
    out.shrink_to_fit();
    return out;
}

std::vector<uint8_t> read_file_bytes(const std::string& path, const std::string& missing_hint,
                                     bool* gzipped) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            throw Error(DSK_NOT_FOUND, with_hint(path + ": no such file", missing_hint));
        }
        throw Error(DSK_UNAVAILABLE, path + ": cannot be read (" + std::strerror(errno) + ")");
    }
    if (S_ISDIR(st.st_mode)) {
        throw Error(DSK_UNAVAILABLE, path + ": is a folder, not an IDX file");
    }
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (!file) {
        throw Error(DSK_UNAVAILABLE, path + ": cannot be opened (" + std::strerror(errno) + ")");
    }
    std::vector<uint8_t> bytes;
    bytes.reserve(static_cast<size_t>(std::max<off_t>(st.st_size, 0)));
    uint8_t chunk[1 << 16];
    for (;;) {
        const size_t n = std::fread(chunk, 1, sizeof chunk, file.get());
        bytes.insert(bytes.end(), chunk, chunk + n);
        if (n < sizeof chunk) break;
    }
    if (std::ferror(file.get())) {
        throw Error(DSK_UNAVAILABLE, path + ": reading failed (" + std::strerror(errno) + ")");
    }
    const bool is_gzip = bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
    if (gzipped != nullptr) *gzipped = is_gzip;
    return is_gzip ? gunzip(bytes, path) : bytes;
}

IdxFile read_idx_file(const std::string& path, IdxKind kind, const std::string& missing_hint) {
    IdxFile file;
    file.path_ = path;
    file.bytes_ = read_file_bytes(path, missing_hint, &file.gzipped_);
    const std::vector<uint8_t>& bytes = file.bytes_;
    const std::string holds =
        std::to_string(bytes.size()) + (file.gzipped_ ? " once decompressed" : "");

    const bool images = kind == IdxKind::images;
    const uint32_t expected = images ? kImagesMagic : kLabelsMagic;
    if (bytes.size() < 4) {
        throw Error(DSK_DATA_LOSS, path + ": truncated: the file holds " + holds +
                                       " bytes, too few for an IDX header; " + kRefetch);
    }
    const uint32_t magic = big_endian_u32(bytes.data());
    if (magic != expected) {
        std::string why =
            path + ": not an IDX " + (images ? "image" : "label") + " file: expected magic " +
            hex32(expected) +
            (images ? " (unsigned bytes, 3 dimensions)" : " (unsigned bytes, 1 dimension)") +
            ", found " + hex32(magic);
        if (magic == (images ? kLabelsMagic : kImagesMagic)) {
            why += std::string(" (an IDX ") + (images ? "label" : "image") +
                   " file: are images and labels swapped?)";
        }
        throw Error(DSK_DATA_LOSS, why + "; check that " + (images ? "images" : "labels") +
                                       " names an *-" + (images ? "images-idx3" : "labels-idx1") +
                                       "-ubyte file");
    }

    const size_t ndim = magic & 0xff;
    const size_t header = 4 + 4 * ndim;
    if (bytes.size() < header) {
        throw Error(DSK_DATA_LOSS, path + ": truncated: its header needs " +
                                       std::to_string(header) + " bytes but the file holds " +
                                       holds + "; " + kRefetch);
    }
    for (size_t d = 0; d < ndim; ++d)
        file.dims_.push_back(big_endian_u32(bytes.data() + 4 + 4 * d));

    unsigned __int128 total = header;
    unsigned __int128 elements = 1;
    for (uint32_t extent : file.dims_) elements *= extent;
    total += elements;
    std::string what = std::to_string(file.dims_[0]) + (images ? " images" : " labels");
    if (images) {
        what += " of " + std::to_string(file.dims_[1]) + "x" + std::to_string(file.dims_[2]);
        if (file.dims_[1] == 0 || file.dims_[2] == 0) {
            throw Error(DSK_DATA_LOSS, path + ": header says " + what +
                                           ": an image needs at least one pixel; " + kRefetch);
        }
    }
    if (total != bytes.size()) {
        const std::string says = "header says " + what + " (" + decimal(total) +
                                 " bytes of data) but the file holds " + holds;
        if (total > bytes.size()) {
            throw Error(DSK_DATA_LOSS, path + ": truncated: " + says + "; " + kRefetch);
        }
        throw Error(DSK_DATA_LOSS, path + ": " + says +
                                       ": extra bytes after the data (not an IDX file of this "
                                       "kind?)");
    }
    file.data_offset_ = header;
    return file;
}

}  // namespace dsk::idx
