// Reading and validating one IDX file (the MNIST / Fashion-MNIST format), gzipped or not.
// Independent of the plugin ABI: errors are dsk::Error with a message that names the file and
// says what would fix it.
//
// The format (big-endian): a 4-byte magic 0x0000TTDD, where TT is the element type (0x08 =
// unsigned byte, the only one MNIST uses) and DD the number of dimensions; then DD u32 extents;
// then the elements, row-major. Images are 0x00000803 (count, rows, cols), labels 0x00000801
// (count).
#pragma once

#include <cstddef>
#include <cstdint>
#include <dsk/dsk_error.hpp>
#include <string>
#include <vector>

namespace dsk::idx {

enum class IdxKind { images, labels };

// One file, decompressed and checked: `dims` are the header's extents (dims[0] = the count),
// the elements are bytes()[data_offset ...].
class IdxFile {
  public:
    const std::string& path() const { return path_; }
    const std::vector<uint32_t>& dims() const { return dims_; }
    uint64_t count() const { return dims_[0]; }
    uint32_t rows() const { return dims_.size() > 1 ? dims_[1] : 1; }
    uint32_t cols() const { return dims_.size() > 2 ? dims_[2] : 1; }
    // count() * rows() * cols() unsigned bytes.
    const uint8_t* data() const { return bytes_.data() + data_offset_; }
    bool was_gzipped() const { return gzipped_; }

  private:
    friend IdxFile read_idx_file(const std::string&, IdxKind, const std::string&);
    std::string path_;
    std::vector<uint32_t> dims_;
    std::vector<uint8_t> bytes_;  // the whole file, decompressed
    size_t data_offset_ = 0;
    bool gzipped_ = false;
};

// Reads `path` whole (decompressing it when it starts with the gzip magic) and checks it is an
// IDX file of `kind` whose size matches its header. Throws:
//   NOT_FOUND    no such file ("<path>: no such file; <missing_hint>")
//   UNAVAILABLE  it exists but cannot be read (permissions, a folder)
//   DATA_LOSS    corrupt or truncated gzip stream, wrong magic, a size that does not match
IdxFile read_idx_file(const std::string& path, IdxKind kind, const std::string& missing_hint);

// The file's bytes, decompressed when gzipped (`gzipped` tells which); the same errors.
std::vector<uint8_t> read_file_bytes(const std::string& path, const std::string& missing_hint,
                                     bool* gzipped = nullptr);

// Inflates a whole gzip stream (one or more members) read from `path`; DATA_LOSS when it is
// corrupt or ends early.
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& compressed, const std::string& path);

}  // namespace dsk::idx
