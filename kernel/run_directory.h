// The directory one pipeline run writes: config.toml (resolved), log.txt, metrics.jsonl and
// summary.json. Whole files are written atomically (temp file, fsync, rename), so a crash never
// leaves a half-written summary that could be taken for a result; log and metrics are appended
// and flushed line by line.
#pragma once

#include <fstream>
#include <string>

#include "dsk/dsk_plugin.h"

namespace dsk::kernel {

class RunDirectory {
public:
    // `requested` empty: runs/<pipeline>-<YYYYmmdd-HHMMSS>[-N]/ under the current directory.
    // A requested directory must be new or empty: an earlier run is never overwritten.
    // `resume`: reuse `requested`, an earlier run's directory (it must hold config.toml).
    RunDirectory(const std::string& requested, const std::string& pipeline_name, bool resume = false);

    const std::string& path() const { return path_; }
    void write_atomic(const std::string& file_name, const std::string& content) const;
    void log(dsk_log_level level, const std::string& source, const std::string& message);
    void metric(const std::string& stage, const std::string& name, double value, int64_t step,
                double seconds);

private:
    std::string path_;
    std::ofstream log_, metrics_;
};

const char* log_level_name(dsk_log_level level);

}  // namespace dsk::kernel
