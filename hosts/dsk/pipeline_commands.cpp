// dsk validate PIPELINE | dsk run PIPELINE
#include <fmt/core.h>

#include <boost/program_options.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "commands.h"

namespace po = boost::program_options;

namespace dsk::cli {
namespace {

std::vector<std::string> split_names(const std::string& text) {
    std::vector<std::string> out;
    std::string item;
    for (char c : text + ",") {
        if (c == ',') {
            if (!item.empty()) out.push_back(item);
            item.clear();
        } else if (c != ' ') {
            item += c;
        }
    }
    return out;
}

struct PipelineArgs {
    RunOptions options;
    bool print_config = false;  // validate --print-config
    bool ok = false;
};

PipelineArgs parse(const Args& args, const char* command, bool is_run) {
    PipelineArgs out;
    po::options_description desc;
    desc.add_options()("set", po::value<std::vector<std::string>>()->composing(), "KEY.PATH=VALUE override");
    if (!is_run) desc.add_options()("print-config", "print the resolved pipeline (TOML) instead of 'valid'");
    if (is_run)
        desc.add_options()("run-dir", po::value<std::string>(), "run directory")("dry-run", "plan only")(
            "resume", po::value<std::string>(), "continue the run in this directory")(
            "explain", "print each session's plan (placement, transfers) as it is made")(
            "device", po::value<std::string>(), "device backends to prefer, e.g. vulkan or vulkan,cpu");
    desc.add_options()("pipeline", po::value<std::string>(), "pipeline file");
    po::positional_options_description positional;
    positional.add("pipeline", 1);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(args).options(desc).positional(positional).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        fmt::print(stderr, "dsk {}: {}\n", command, e.what());
        return out;
    }
    if (vm.count("resume")) {  // the run directory holds the resolved pipeline
        for (const char* other : {"pipeline", "set", "run-dir", "dry-run", "device"})
            if (vm.count(other)) {
                fmt::print(stderr, "dsk run: --resume RUN_DIR reruns that directory's resolved config as it is; "
                                   "it takes no {}\n", std::string(other) == "pipeline" ? "PIPELINE" : "--" + std::string(other));
                return out;
            }
        out.options.resume_dir = vm["resume"].as<std::string>();
        out.options.explain = vm.count("explain") > 0;
        out.ok = true;
        return out;
    }
    if (!vm.count("pipeline")) {
        fmt::print(stderr, "usage: dsk {} PIPELINE [--set KEY.PATH=VALUE]...{}\n", command,
                   is_run ? " [--run-dir DIR] [--device LIST] [--explain] [--dry-run]\n       dsk run --resume RUN_DIR [--explain]"
                          : " [--print-config]");
        return out;
    }
    out.options.pipeline_path = vm["pipeline"].as<std::string>();
    if (vm.count("set")) out.options.overrides = vm["set"].as<std::vector<std::string>>();
    if (vm.count("run-dir")) out.options.run_dir = vm["run-dir"].as<std::string>();
    out.options.dry_run = vm.count("dry-run") > 0;
    out.print_config = vm.count("print-config") > 0;
    out.options.explain = vm.count("explain") > 0;
    if (vm.count("device")) {  // the same as --set devices.prefer=[...]
        std::string list;
        for (const std::string& name : split_names(vm["device"].as<std::string>())) list += (list.empty() ? "\"" : ", \"") + name + "\"";
        out.options.overrides.push_back("devices.prefer=[" + list + "]");
    }
    out.ok = true;
    return out;
}

// Configuration problems (what `validate` finds) are usage errors; the rest are failures.
int exit_code_for(const Error& e) {
    return e.code() == DSK_INVALID_ARGUMENT || e.code() == DSK_NOT_FOUND || e.code() == DSK_INCOMPATIBLE
               ? kUsage
               : kFailure;
}

void print_error(const char* command, const Error& e) {
    fmt::print(stderr, "dsk {}: {}\n", command, e.what());
}

}  // namespace

int validate(Kernel& kernel, const Args& args) {
    PipelineArgs a = parse(args, "validate", false);
    if (!a.ok) return kUsage;
    try {
        kernel.validate(a.options);
    } catch (const Error& e) {
        print_error("validate", e);
        return exit_code_for(e);
    }
    if (a.print_config)
        fmt::print("{}", kernel.last_resolved_pipeline());
    else
        fmt::print("{}: valid\n", a.options.pipeline_path);
    return kOk;
}

int run(Kernel& kernel, const Args& args) {
    PipelineArgs a = parse(args, "run", true);
    if (!a.ok) return kUsage;
    const bool terminal = isatty(fileno(stdout));
    auto last_progress = std::chrono::steady_clock::time_point{};
    bool progress_open = false;  // a progress line is on screen without its newline
    a.options.on_log = [&](dsk_log_level level, const std::string& message) {
        if (level == DSK_LOG_PROGRESS) {
            // On a terminal, one line that updates; in a log file, a line every 10 s.
            auto now = std::chrono::steady_clock::now();
            if (terminal) {
                fmt::print("\r\033[K{}", message);
                progress_open = true;
            } else if (now - last_progress >= std::chrono::seconds(10)) {
                fmt::print("{}\n", message);
                last_progress = now;
            }
            std::fflush(stdout);
            return;
        }
        if (progress_open) {
            fmt::print("\n");
            progress_open = false;
        }
        if (level == DSK_LOG_ERROR || level == DSK_LOG_WARNING)
            fmt::print(stderr, "{}: {}\n", level == DSK_LOG_ERROR ? "error" : "warning", message);
        else
            fmt::print("{}\n", message);
        std::fflush(stdout);
    };
    try {
        kernel.run(a.options);
    } catch (const Error& e) {
        if (progress_open) fmt::print("\n");
        print_error("run", e);
        if (e.code() == DSK_CANCELLED) return 130;
        // Once the run directory exists, validation is over: whatever failed, failed running.
        return kernel.last_run_dir().empty() ? exit_code_for(e) : kFailure;
    }
    if (!a.options.dry_run) fmt::print("run finished: {}/summary.json\n", kernel.last_run_dir());
    return kOk;
}

}  // namespace dsk::cli
