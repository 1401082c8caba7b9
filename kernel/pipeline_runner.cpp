#include "pipeline_runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <sstream>

#include "config_table.h"
#include "kernel.h"
#include "pipeline.h"
#include "run_directory.h"
#include "spelling.h"
#include "stage_context.h"
#include "status.h"
#include "thread_pool.h"

using namespace dsk::kernel;
using Clock = std::chrono::steady_clock;

namespace dsk::kernel {
namespace {

std::vector<std::string> overrides_of(const dsk_run_options& o) {
    std::vector<std::string> out;
    for (size_t i = 0; o.overrides && i < o.override_count; ++i)
        if (o.overrides[i]) out.emplace_back(o.overrides[i]);
    return out;
}

std::string iso_time() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S%z", &tm);
    return buf;
}

std::string to_toml(const toml::table& t) {
    std::ostringstream out;
    out << t << "\n";
    return out.str();
}

std::string to_json(const toml::table& t) {
    std::ostringstream out;
    out << toml::json_formatter{t} << "\n";
    return out.str();
}

}  // namespace

void validate_pipeline(dsk_kernel& kernel, const dsk_run_options& options) {
    if (!options.pipeline_path) throw Error(DSK_INVALID_ARGUMENT, "no pipeline path given");
    kernel.last_resolved_pipeline.clear();
    const Pipeline p = load_pipeline(kernel, options.pipeline_path, overrides_of(options));
    kernel.last_resolved_pipeline = to_toml(p.root);
}

void run_pipeline(dsk_kernel& kernel, const dsk_run_options& options) {
    const char* resume = DSK_HAS_MEMBER(&options, dsk_run_options, resume_dir) ? options.resume_dir : nullptr;
    const bool explain = DSK_HAS_MEMBER(&options, dsk_run_options, explain) && options.explain;
    const std::string pipeline_path = resume ? std::string(resume) + "/config.toml" : options.pipeline_path ? options.pipeline_path : "";
    if (pipeline_path.empty()) throw Error(DSK_INVALID_ARGUMENT, "no pipeline path given");
    if (resume && !std::filesystem::is_regular_file(pipeline_path))
        throw Error(DSK_NOT_FOUND, std::string("cannot resume ") + resume + ": it holds no config.toml (is it a run directory?)");
    kernel.last_resolved_pipeline.clear();
    Pipeline p = load_pipeline(kernel, pipeline_path, resume ? std::vector<std::string>{} : overrides_of(options));
    kernel.last_resolved_pipeline = to_toml(p.root);
    auto emit = [&](dsk_log_level level, const std::string& message) {
        if (options.on_log) options.on_log(options.on_log_user, level, message.c_str());
    };

    if (options.dry_run) {
        emit(DSK_LOG_INFO, "pipeline '" + p.name + "' (" + p.path + "): " + std::to_string(p.stages.size()) +
                               " stage(s), nothing run (dry run)");
        for (const auto& s : p.stages)
            emit(DSK_LOG_INFO, "  " + std::to_string(s.index + 1) + ". " + s.name + ": stage kind '" + s.kind +
                                   "' from plugin " + s.plugin->manifest.name + " " +
                                   s.plugin->manifest.version.str() + " (" + s.plugin->manifest.library_path + ")");
        emit(DSK_LOG_INFO, "resolved config:\n" + kernel.last_resolved_pipeline);
        return;
    }

    RunDirectory run(resume ? resume : options.run_dir ? options.run_dir : "", p.name, resume != nullptr);
    kernel.last_run_dir = run.path();
    if (!resume) run.write_atomic("config.toml", kernel.last_resolved_pipeline);
    auto log = [&](dsk_log_level level, const std::string& source, const std::string& message) {
        if (level != DSK_LOG_PROGRESS) run.log(level, source.empty() ? "dsk" : source, message);
        emit(level, source.empty() ? message : "[" + source + "] " + message);
    };

    toml::table summary;
    summary.insert("pipeline", p.name);
    summary.insert("pipeline_file", p.path);
    summary.insert("run_dir", run.path());
    summary.insert("dsk_version", dsk_version());
    summary.insert("threads", static_cast<int64_t>(thread_count()));  // the kernel pool's (OMP_NUM_THREADS)
    summary.insert("started", iso_time());
    toml::table plugins_used;
    toml::array stage_results;
    const auto start = Clock::now();
    std::string status = "ok";
    std::string failure;
    dsk_status_code failure_code = DSK_OK;

    log(DSK_LOG_INFO, "", (resume ? "resuming in run directory " : "run directory ") + run.path());
    for (const auto& s : p.stages) {
        toml::table entry;
        entry.insert("name", s.name);
        entry.insert("kind", s.kind);
        entry.insert("plugin", s.plugin->manifest.name);
        entry.insert("plugin_version", s.plugin->manifest.version.str());
        if (status == "ok" && kernel.stop_requested) {  // Ctrl-C after the previous stage finished
            status = "cancelled";
            failure_code = DSK_CANCELLED;
            failure = "stopped on request before stage '" + s.name + "'";
        }
        if (status != "ok") {
            entry.insert("status", "skipped");
            stage_results.push_back(std::move(entry));
            continue;
        }
        dsk_stage_context ctx{&kernel, &run, &p, &s, {s.table, "stages[" + std::to_string(s.index) + "]"}, {}, {},
                              log, start, {}};
        ctx.results_view = {&ctx.results, s.name + ".results"};
        ctx.explain = explain;
        log(DSK_LOG_INFO, s.name, "stage " + std::to_string(s.index + 1) + "/" + std::to_string(p.stages.size()) +
                                      " (" + s.kind + ", plugin " + s.plugin->manifest.name + " " +
                                      s.plugin->manifest.version.str() + ") started");
        const auto t0 = Clock::now();
        dsk_status st = DSK_STATUS_OK;
        try {
            st = s.iface->run(s.iface->self, &ctx);
        } catch (...) {  // a plugin without the C++ wrapper let an exception escape
            st = status_from_current_exception();
        }
        const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        entry.insert("wall_time_s", seconds);
        if (st) {
            failure_code = st->code;
            status = st->code == DSK_CANCELLED ? "cancelled" : "failed";
            failure = "stage '" + s.name + "' (" + s.kind + ", plugin " + s.plugin->manifest.name + " " +
                      s.plugin->manifest.version.str() + ") " + (status == "cancelled" ? "was cancelled" : "failed") +
                      ": " + st->message;
            entry.insert("status", status);
            entry.insert("error", st->message);
            free_status(st);
            run.log(DSK_LOG_ERROR, s.name, failure);  // the caller reports it through the thrown Error
        } else {
            entry.insert("status", "ok");
            log(DSK_LOG_INFO, s.name, "stage finished in " + std::to_string(seconds) + " s");
        }
        entry.insert("results", std::move(ctx.results));
        if (!ctx.sessions.empty()) entry.insert("sessions", std::move(ctx.sessions));
        stage_results.push_back(std::move(entry));
    }
    summary.insert("status", status);
    if (!failure.empty()) summary.insert("error", failure);
    summary.insert("wall_time_s", std::chrono::duration<double>(Clock::now() - start).count());
    for (const auto& plugin : kernel.plugins)  // every plugin this run had loaded, with its version
        if (plugin->state == PluginState::Loaded)
            plugins_used.insert_or_assign(plugin->manifest.name, plugin->manifest.version.str());
    summary.insert("plugins", std::move(plugins_used));
    summary.insert("stages", std::move(stage_results));
    run.write_atomic("summary.json", to_json(summary));
    if (!failure.empty()) throw Error(failure_code, failure + " (run directory: " + run.path() + ")");
}

// --- host table: stages and introspection ----------------------------------------------------


void fill_stage_api(dsk_host_api& api) {
    api.stage_config = [](dsk_stage_context* ctx) -> const dsk_config* { return &ctx->config; };
    api.stage_run_dir = [](dsk_stage_context* ctx) { return ctx->run ? ctx->run->path().c_str() : ""; };
    api.stage_pipeline_file = [](dsk_stage_context* ctx) {
        return ctx && ctx->pipeline ? ctx->pipeline->source_file.c_str() : "";
    };
    api.stage_log = [](dsk_stage_context* ctx, dsk_log_level level, const char* message) {
        ctx->log(level, ctx->stage->name, message ? message : "");
    };
    api.stage_metric = [](dsk_stage_context* ctx, const char* name, double value, int64_t step) -> dsk_status {
        if (!name || !*name) return make_status(DSK_INVALID_ARGUMENT, "stage_metric: empty metric name");
        if (!ctx->run) return DSK_STATUS_OK;  // validating: metrics are discarded
        try {
            ctx->run->metric(ctx->stage->name, name, value, step,
                             std::chrono::duration<double>(Clock::now() - ctx->run_start).count());
            return DSK_STATUS_OK;
        } catch (...) {
            return status_from_current_exception();
        }
    };
    api.stage_results = [](dsk_stage_context* ctx) { return &ctx->results_view; };
    api.stage_progress = [](dsk_stage_context* ctx, double fraction, const char* text) {
        if (!ctx->run) return;  // validating
        char percent[16];
        std::snprintf(percent, sizeof percent, "%3.0f%% ", 100.0 * std::clamp(fraction, 0.0, 1.0));
        ctx->log(DSK_LOG_PROGRESS, ctx->stage->name, percent + std::string(text ? text : ""));
    };
    api.provider_find = [](dsk_stage_context* ctx, const char* kind, const char* name, const void** out) -> dsk_status {
        if (!ctx || !kind || !name || !out) return make_status(DSK_INVALID_ARGUMENT, "provider_find: null argument");
        try {
            dsk_kernel& k = *ctx->kernel;
            *out = k.registry.find(kind, name);
            if (!*out)
                if (Plugin* provider = k.find_provider(kind, name)) {
                    k.load(provider->manifest.name, *VersionRange::parse("*"));
                    *out = k.registry.find(kind, name);
                }
            if (*out) return DSK_STATUS_OK;
            std::vector<std::string> known = k.registry.names(kind);
            const std::string prefix = std::string(kind) + ":";
            for (auto& c : k.plugins)
                for (const auto& prov : c->manifest.provides)
                    if (prov.rfind(prefix, 0) == 0 && prov != prefix + "*") known.push_back(prov.substr(prefix.size()));
            std::string list;
            for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
            return make_status(DSK_NOT_FOUND, "no " + std::string(kind) + " named '" + name + "'" + did_you_mean(name, known) +
                                                  " (known: " + (list.empty() ? "none" : list) + "; searched: " +
                                                  k.search_path_text() + ")");
        } catch (...) {
            return status_from_current_exception();
        }
    };
    api.config_check = [](dsk_stage_context* ctx, const char* key, const dsk_param_spec* params, size_t count,
                          const char* const* reserved) -> dsk_status {
        if (!ctx || !key) return make_status(DSK_INVALID_ARGUMENT, "config_check: null context or key");
        try {
            std::vector<std::string> problems;
            std::vector<std::string> reserved_keys;
            for (const char* const* r = reserved; r && *r; ++r) reserved_keys.push_back(*r);
            const std::string label = ctx->config.path_prefix + " (" + ctx->stage->kind + ")." + key;
            toml::node* node = find_path(*ctx->config.table, key);
            if (!node) {
                set_path(*ctx->config.table, key, toml::table{});
                node = find_path(*ctx->config.table, key);
            }
            if (toml::table* t = node->as_table())
                check_params(*t, label, params, count, reserved_keys, problems);
            else
                problems.push_back(where(*node) + ": " + label + ": expected a table, got " + type_name(*node));
            if (problems.empty()) return DSK_STATUS_OK;
            std::string message;
            for (const auto& p : problems) message += (message.empty() ? "" : "\n") + p;
            ctx->problems.insert(ctx->problems.end(), problems.begin(), problems.end());
            return make_status(DSK_INVALID_ARGUMENT, message);
        } catch (...) {
            return status_from_current_exception();
        }
    };
    api.stage_should_stop = [](dsk_stage_context* ctx) -> int32_t { return ctx->kernel->stop_requested ? 1 : 0; };
    api.plugin_count = [](dsk_stage_context* ctx) { return ctx->kernel->plugins.size(); };
    api.plugin_info = [](dsk_stage_context* ctx, size_t i, dsk_plugin_info* out) -> dsk_status {
        if (!out || i >= ctx->kernel->plugins.size())
            return make_status(DSK_INVALID_ARGUMENT, "plugin_info: index " + std::to_string(i) + " out of range");
        copy_out(ctx->kernel->plugin_info(i), out);
        return DSK_STATUS_OK;
    };
    api.device_count = [](dsk_stage_context* ctx) { return ctx->kernel->devices.size(); };
    api.device_entry = [](dsk_stage_context* ctx, size_t i, dsk_device_entry* out) -> dsk_status {
        if (!out || i >= ctx->kernel->devices.size())
            return make_status(DSK_INVALID_ARGUMENT, "device_entry: index " + std::to_string(i) + " out of range");
        copy_out(ctx->kernel->device_entry(i), out);
        return DSK_STATUS_OK;
    };
}

}  // namespace dsk::kernel
