// struct dsk_stage_context: what a stage sees of its run. At validation time (stage validate())
// `run` is null: logs and metrics go nowhere and problems are collected in `problems`.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "config_table.h"
#include "dsk/dsk_plugin.h"

struct dsk_kernel;

namespace dsk::kernel {
class RunDirectory;
struct Pipeline;
struct StagePlan;
}  // namespace dsk::kernel

struct dsk_stage_context {
    dsk_kernel* kernel;
    dsk::kernel::RunDirectory* run;  // null while validating
    const dsk::kernel::Pipeline* pipeline;
    const dsk::kernel::StagePlan* stage;
    dsk_config config;
    toml::table results;
    dsk_config results_view;
    std::function<void(dsk_log_level, const std::string&, const std::string&)> log;
    std::chrono::steady_clock::time_point run_start;
    std::vector<std::string> problems;  // config_check findings while validating
    bool explain = false;               // dsk run --explain: print each session's plan
    toml::array sessions{};             // placement of each session the stage made (summary.json)
};
