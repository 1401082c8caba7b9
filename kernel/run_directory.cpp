#include "run_directory.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "dsk/dsk_file.hpp"
#include "dsk/dsk_json.hpp"
#include "status.h"

namespace fs = std::filesystem;

namespace dsk::kernel {
namespace {

std::string timestamp(const char* format) {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

std::string safe_name(const std::string& name) {
    std::string out;
    for (char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
    return out.empty() ? "pipeline" : out;
}

}  // namespace

RunDirectory::RunDirectory(const std::string& requested, const std::string& pipeline_name, bool resume) {
    std::error_code ec;
    fs::path dir;
    if (resume) {
        dir = requested;
        if (!fs::is_regular_file(dir / "config.toml", ec))
            throw Error(DSK_NOT_FOUND, "cannot resume " + dir.string() + ": it holds no config.toml (is it a run directory?)");
    } else if (requested.empty()) {
        fs::path base = fs::path("runs") / (safe_name(pipeline_name) + "-" + timestamp("%Y%m%d-%H%M%S"));
        dir = base;
        for (int n = 2; fs::exists(dir, ec); ++n) dir = base.string() + "-" + std::to_string(n);
    } else {
        dir = requested;
        if (fs::exists(dir, ec) && !fs::is_empty(dir, ec))
            throw Error(DSK_ALREADY_EXISTS, "run directory " + dir.string() +
                                                " already exists and is not empty; an earlier run is never "
                                                "overwritten: choose another --run-dir or remove it");
    }
    fs::create_directories(dir, ec);
    if (ec) throw Error(DSK_UNAVAILABLE, "cannot create run directory " + dir.string() + ": " + ec.message());
    path_ = fs::absolute(dir).lexically_normal().string();
    log_.open(path_ + "/log.txt", std::ios::app);
    metrics_.open(path_ + "/metrics.jsonl", std::ios::app);
    if (!log_ || !metrics_) throw Error(DSK_UNAVAILABLE, "cannot write in run directory " + path_);
}

void RunDirectory::write_atomic(const std::string& file_name, const std::string& content) const {
    dsk::write_file_atomically(path_ + "/" + file_name, {{content.data(), content.size()}});
}

void RunDirectory::log(dsk_log_level level, const std::string& source, const std::string& message) {
    log_ << timestamp("%Y-%m-%dT%H:%M:%S") << " " << log_level_name(level) << " [" << source << "] " << message
         << std::endl;
}

void RunDirectory::metric(const std::string& stage, const std::string& name, double value, int64_t step,
                          double seconds) {
    char number[64];
    if (std::isfinite(value)) std::snprintf(number, sizeof number, "%.17g", value);
    else std::snprintf(number, sizeof number, "null");
    metrics_ << "{\"stage\": " << dsk::json_quote(stage) << ", \"name\": " << dsk::json_quote(name) << ", \"step\": " << step
             << ", \"value\": " << number << ", \"time_s\": " << seconds << "}" << std::endl;
}

const char* log_level_name(dsk_log_level level) {
    switch (level) {
        case DSK_LOG_DEBUG: return "debug";
        case DSK_LOG_INFO: return "info";
        case DSK_LOG_WARNING: return "warning";
        case DSK_LOG_ERROR: return "error";
        case DSK_LOG_PROGRESS: return "progress";
    }
    return "info";
}

}  // namespace dsk::kernel
