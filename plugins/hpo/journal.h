// The study journal: append-only JSON lines, each fsynced before the call returns, so that a
// crash or power loss loses at most the line being written. Resuming replays it.
#pragma once

#include <string>
#include <vector>

#include <dsk/dsk_json.hpp>

namespace dsk::hpo {

class Journal {
public:
    explicit Journal(std::string path);
    ~Journal();
    Journal(const Journal&) = delete;
    Journal& operator=(const Journal&) = delete;

    // Appends `json_object` (one line, no newline) and fsyncs. Throws dsk::Error naming the file.
    void append(const std::string& json_object);

    // The events of an existing journal, in order. A last line cut short by a crash is dropped
    // (and reported in *dropped); a malformed line elsewhere is DATA_LOSS naming the line.
    static std::vector<JsonValue> read(const std::string& path, std::string* dropped);

private:
    std::string path_;
    int fd_ = -1;
};

}  // namespace dsk::hpo
