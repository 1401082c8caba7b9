// One trial as a child process (`dsk run ...`), and the tail of its metrics.jsonl.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dsk::hpo {

class TrialProcess {
public:
    // Starts argv[0] with `argv`, stdout and stderr appended to `log_path` (stdout to
    // `stdout_path` instead when given, truncated), in this process's environment with `env`
    // ("NAME=value" entries) added or replacing the same names. Throws dsk::Error (UNAVAILABLE)
    // naming the program when it cannot be started.
    TrialProcess(const std::vector<std::string>& argv, const std::string& log_path, const std::vector<std::string>& env = {},
                 const std::string& stdout_path = "");
    ~TrialProcess();  // a child still running is interrupted and waited for
    TrialProcess(const TrialProcess&) = delete;
    TrialProcess& operator=(const TrialProcess&) = delete;

    // True once the child has exited (then exit_code() is its status: the exit code, or 128 +
    // the signal that ended it).
    bool finished();
    int exit_code() const { return exit_code_; }
    // SIGINT: a dsk run checkpoints and exits with 130.
    void interrupt();
    // Blocks until the child exits.
    void wait();

private:
    pid_t pid_ = -1;
    bool done_ = false;
    int exit_code_ = -1;
};

// One line of metrics.jsonl.
struct Metric {
    std::string stage, name;
    int64_t step = 0;
    double value = 0;
};

// Reads the lines appended to a metrics.jsonl since the last call (whole lines only).
class MetricsTail {
public:
    explicit MetricsTail(std::string path) : path_(std::move(path)) {}
    std::vector<Metric> read_new();

private:
    std::string path_;
    uint64_t offset_ = 0;
};

}  // namespace dsk::hpo
