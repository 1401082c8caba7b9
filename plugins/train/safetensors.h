// The safetensors format (https://github.com/huggingface/safetensors), so checkpoints open in
// other tools: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
// shape and byte range (plus "__metadata__", a string map), then the raw little-endian data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dsk::train {

struct NamedTensor {
    std::string dtype;  // "F32", "I64", "U8"
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
};

struct SafetensorsFile {
    std::map<std::string, NamedTensor> tensors;
    std::map<std::string, std::string> metadata;
};

// Writes atomically (dsk::write_file_atomically: a temporary file beside `path`, fsync, rename,
// fsync of the directory), so a crash leaves either the old file or the new one. Throws
// dsk::Error(UNAVAILABLE) naming the path.
void write_safetensors(const std::string& path, const SafetensorsFile& file);
// The same bytes to each path in turn (each written atomically): serialised once.
void write_safetensors(const std::vector<std::string>& paths, const SafetensorsFile& file);
// Throws dsk::Error(NOT_FOUND) for a missing file and dsk::Error(DATA_LOSS) naming the path and
// what is wrong (the byte of the header, the tensor) for a malformed one.
SafetensorsFile read_safetensors(const std::string& path);

}  // namespace dsk::train
