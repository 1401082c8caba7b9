// What the hpo and nas stages share: their keys, validation and run around a Study (the loop is
// in study.cpp, its outputs in study_report.cpp). Each stage adds its hooks (study_stage.h).
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "study_stage.h"
#include "journal.h"
#include "study.h"
#include "study_report.h"

namespace fs = std::filesystem;

namespace dsk::hpo {

namespace {

const char* const kDirections[] = {"maximize", "minimize", nullptr};
const char* const kProviderReserved[] = {"name", nullptr};

// The base pipeline the journal of a resumed study recorded, or "" when there is none.
std::string base_from_journal(const fs::path& journal) {
    if (!fs::exists(journal)) return {};
    for (const JsonValue& e : Journal::read(journal.string(), nullptr))
        if (const JsonValue* kind = e.find("event"); kind && kind->string == "study") return e.find("base")->string;
    return {};
}

// The base pipeline, absolute: a relative path starts from the folder of the pipeline file the
// run started from (host->stage_pipeline_file: the original file, also on --resume).
fs::path resolve_base(const StageContext& ctx, const Config& stage) {
    const fs::path given = stage.get<std::string>("pipeline");
    if (given.is_absolute()) return given;
    const fs::path file = host().stage_pipeline_file(ctx.raw());
    return fs::absolute(file.empty() ? given : file.parent_path() / given).lexically_normal();
}

std::string stage_label(const Config& stage) {
    return "stage '" + stage.get<std::string>("name") + "' (" + stage.get<std::string>("kind") + ")";
}

search::Space parse_space(const Config& stage) {
    try {
        return search::Space::parse(stage.section("space"));
    } catch (const Error& e) {
        throw Error(e.code(), stage_label(stage) + ".space: " + e.what());
    }
}

// The stage's `enqueue`: configurations to evaluate first, each checked against the space.
std::vector<search::Assignment> enqueued_configs(const Config& stage, const search::Space& space) {
    std::vector<search::Assignment> out;
    for (size_t k = 0; k < stage.size("enqueue"); ++k) {
        const std::string key = "enqueue." + std::to_string(k);
        const std::string what = stage_label(stage) + ".enqueue[" + std::to_string(k) + "]";
        if (stage.type(key) != DSK_VALUE_TABLE)
            throw Error(DSK_INVALID_ARGUMENT, what + ": expected a table of parameter values, e.g. { lr = 0.001, optimizer = \"adam\" }");
        out.push_back(space.read(stage.section(key), what));
    }
    return out;
}

// The dsk executable that runs trials: `worker`, else this process when it is dsk.
std::string find_worker(const Config& stage) {
    const std::string worker = stage.get_or("worker", "");
    const std::string set_it = "set worker = \"/path/to/dsk\" in " + stage_label(stage) + " (or --set stages." +
                               stage.get<std::string>("name") + ".worker=/path/to/dsk)";
    if (!worker.empty()) {
        if (::access(worker.c_str(), X_OK) != 0)
            throw Error(DSK_NOT_FOUND, stage_label(stage) + ".worker = \"" + worker + "\" is not an executable file; " + set_it);
        return fs::absolute(worker).string();
    }
    std::error_code ec;
    const fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec && self.filename() == "dsk") return self.string();
    throw Error(DSK_NOT_FOUND, "the hpo stage runs each trial as `dsk run`, but this process (" + (ec ? std::string("unknown") : self.string()) +
                                   ") is not the dsk command line, so it cannot tell where dsk is; " + set_it);
}

void check_provider(StageContext& ctx, const Config& stage, const std::string& key) {
    const auto& iface = ctx.provider<dsk_search_iface>("search", stage.get<std::string>(key + ".name"));
    ctx.check_config(key, iface.params, iface.param_count, kProviderReserved);
}

}  // namespace

void validate_study(StageContext& ctx, const StudyHooks& hooks) {
    const Config stage = ctx.config();
    std::string messages;
    auto collect = [&](const std::function<void()>& check) {
        try {
            check();
        } catch (const Error& e) {
            messages += (messages.empty() ? "" : "\n") + std::string(e.what());
        }
    };
    collect([&] {
        const search::Space space = parse_space(stage);
        if (hooks.validate) hooks.validate(ctx, space);
        enqueued_configs(stage, space);
    });
    collect([&] {
        if (!stage.has("strategy.name"))
            throw Error(DSK_INVALID_ARGUMENT, stage_label(stage) + ".strategy needs a name, e.g. strategy = { name = \"tpe\" }");
        check_provider(ctx, stage, "strategy");
    });
    collect([&] {
        if (!stage.has("scheduler")) return;
        if (!stage.has("scheduler.name"))
            throw Error(DSK_INVALID_ARGUMENT, stage_label(stage) + ".scheduler needs a name, e.g. scheduler = { name = \"asha\" }");
        check_provider(ctx, stage, "scheduler");
    });
    collect([&] {
        const fs::path base = resolve_base(ctx, stage);
        if (!fs::is_regular_file(base))
            throw Error(DSK_NOT_FOUND, stage_label(stage) + ".pipeline: the base pipeline " + base.string() +
                                           " does not exist (a relative path starts from the hpo pipeline's folder)");
    });
    collect([&] {
        const double timeout = stage.get<double>("timeout"), budget = stage.get<double>("finalist_budget");
        if (stage.get<int64_t>("finalists") >= 2 && timeout > 0 && budget >= timeout)
            throw Error(DSK_INVALID_ARGUMENT, stage_label(stage) + ".finalist_budget = " + search::Value::float_literal(budget) +
                                                  " leaves the search no time of timeout = " + search::Value::float_literal(timeout) +
                                                  ": lower finalist_budget, or raise timeout (it covers the search and the finalists)");
    });
    for (const char* key : {"overrides", "retrain", "finalist_overrides"})
        collect([&] {
            for (size_t k = 0; k < stage.size(key); ++k) {
                const std::string o = stage.get<std::string>(std::string(key) + "." + std::to_string(k));
                if (o.find('=') == std::string::npos)
                    throw Error(DSK_INVALID_ARGUMENT, stage_label(stage) + "." + key + "[" + std::to_string(k) + "] = \"" + o +
                                                          "\": expected key.path=value, as for --set");
            }
        });
    if (!messages.empty()) throw Error(DSK_INVALID_ARGUMENT, messages);
}

namespace {

void create(StageContext& ctx, const Config& stage, const std::string& key, uint64_t seed, SearchInstance& out) {
    out.name = stage.get<std::string>(key + ".name");
    out.iface = &ctx.provider<dsk_search_iface>("search", out.name);
    check(out.iface->create(out.iface->self, stage.table("space"), stage.table(key), seed, &out.search),
          ("creating search '" + out.name + "'").c_str());
}

}  // namespace

// Threads per trial: `threads` when set; otherwise the cores shared out among the workers, so
// that parallel trials do not oversubscribe them (OpenMP's threads spin at their barriers, and
// two processes of two spinning threads on two cores made trials many times slower). A user's
// OMP_NUM_THREADS wins over the default.
static int64_t trial_threads(int64_t threads, int64_t workers) {
    if (threads > 0) return threads;
    if (std::getenv("OMP_NUM_THREADS")) return 0;
    return std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()) / workers);
}

void run_study_stage(StageContext& ctx, const StudyHooks& hooks) {
    const Config stage = ctx.config();
    StudySettings s;
    s.stage_name = stage.get<std::string>("name");
    s.dir = (fs::path(ctx.run_dir()) / s.stage_name).string();
    s.worker = find_worker(stage);
    s.objective = stage.get<std::string>("objective");
    s.objective_stage = stage.get_or("objective_stage", "");
    s.intermediate = stage.get_or("intermediate", "");
    if (s.intermediate.empty()) s.intermediate = s.objective;
    s.maximize = stage.get<std::string>("direction") == "maximize";
    s.trials = stage.get<int64_t>("trials");
    s.workers = stage.get<int64_t>("workers");
    s.threads = trial_threads(stage.get<int64_t>("threads"), s.workers);
    s.timeout_s = stage.get<double>("timeout");
    s.seed = static_cast<uint64_t>(stage.get<int64_t>("seed"));
    for (size_t k = 0; k < stage.size("overrides"); ++k) s.overrides.push_back(stage.get<std::string>("overrides." + std::to_string(k)));
    for (size_t k = 0; k < stage.size("retrain"); ++k) s.retrain.push_back(stage.get<std::string>("retrain." + std::to_string(k)));
    s.finalists = stage.get<int64_t>("finalists");
    for (size_t k = 0; k < stage.size("finalist_overrides"); ++k)
        s.finalist_overrides.push_back(stage.get<std::string>("finalist_overrides." + std::to_string(k)));
    s.finalist_budget_s = stage.get<double>("finalist_budget");
    if (has_finalists(s) && s.objective.rfind("test_", 0) == 0)
        ctx.warn("the finalists are compared on " + s.objective + ", measured on the test split: to pick the winner without "
                 "looking at the test split, set objective = \"validation_accuracy\" and give trials and finalists a validation "
                 "split (overrides and finalist_overrides: \"stages.train.validation_fraction=0.1\")");
    // The trials find the plugins this process found: every loaded plugin's folder.
    for (const dsk_plugin_info& p : ctx.plugins()) {
        if (std::string(p.state) != "loaded") continue;
        const std::string d = fs::path(p.manifest_path).parent_path().string();
        if (std::find(s.plugin_dirs.begin(), s.plugin_dirs.end(), d) == s.plugin_dirs.end()) s.plugin_dirs.push_back(d);
    }
    const fs::path journal = fs::path(s.dir) / "journal.jsonl";
    s.base = base_from_journal(journal);
    if (s.base.empty()) s.base = resolve_base(ctx, stage).string();
    if (!fs::exists(journal)) {
        fs::create_directories(s.dir);
        Journal(journal.string())
            .append("{\"event\": \"study\", \"trial\": null, \"base\": " + json_quote(s.base) + ", \"strategy\": " +
                    json_quote(stage.get<std::string>("strategy.name")) + ", \"seed\": " + std::to_string(s.seed) +
                    ", \"objective\": " + json_quote(s.objective) + ", \"direction\": " + json_quote(stage.get<std::string>("direction")) + "}");
    }

    const search::Space space = parse_space(stage);
    s.enqueue = enqueued_configs(stage, space);
    if (hooks.configure) hooks.configure(ctx, space, s);
    SearchInstance strategy, scheduler_instance;
    create(ctx, stage, "strategy", s.seed, strategy);
    SearchInstance* scheduler = nullptr;
    if (stage.has("scheduler")) {
        create(ctx, stage, "scheduler", s.seed, scheduler_instance);
        scheduler = &scheduler_instance;
    }
    ctx.info("study of " + s.base + ": " + std::to_string(s.trials) + " trial(s), " + std::to_string(s.workers) + " worker(s)" +
             (s.threads > 0 ? " of " + std::to_string(s.threads) + " thread(s)" : std::string()) + ", strategy " +
             strategy.name + (scheduler ? ", scheduler " + scheduler->name : std::string()) + ", " + stage.get<std::string>("direction") +
             " " + s.objective + "; trials in " + s.dir + "/trials");

    const std::vector<TrialRecord> all = run_study(ctx, s, space, strategy, scheduler);
    // Rejected candidates (never run) are listed in trials.csv/json only, and counted.
    std::vector<TrialRecord> trials;
    for (const TrialRecord& t : all)
        if (t.state != "rejected") trials.push_back(t);
    const auto rejected = static_cast<int64_t>(all.size() - trials.size());

    ctx.info("trials:\n" + trials_table(trials, space) +
             (rejected ? "\n" + std::to_string(rejected) + " candidate(s) rejected before training (listed in trials.csv)" : ""));
    write_trials_csv((fs::path(s.dir) / "trials.csv").string(), all, space);
    write_trials_json((fs::path(s.dir) / "trials.json").string(), all, space);
    write_best_curve_html((fs::path(s.dir) / "best_curve.html").string(), trials, s);

    Table results = ctx.results();
    results.set("candidates_rejected", rejected);
    int64_t complete = 0, pruned = 0, failed = 0;
    for (const TrialRecord& t : trials) {
        complete += t.state == "complete";
        pruned += t.state == "pruned";
        failed += t.state == "failed";
        Table record = results.section("trials." + trial_dir_name(t.id).substr(7));
        record.set("state", t.state);
        if (std::isfinite(t.objective)) record.set("objective", t.objective);
    }
    results.set("trials_complete", complete);
    results.set("trials_pruned", pruned);
    results.set("trials_failed", failed);
    results.set("study_dir", s.dir);
    const TrialRecord* best = best_trial(trials, s.maximize);
    if (!best) throw Error(DSK_UNAVAILABLE, "no trial completed (" + std::to_string(failed) + " failed, " + std::to_string(pruned) +
                                                " pruned); see the trial logs in " + s.dir + "/trials");

    // Finalists: the best trials retrained with the retrain settings (keeping the validation
    // split); the best of them by objective is the winner.
    std::vector<FinalistRecord> finalists;
    const FinalistRecord* chosen = nullptr;
    if (has_finalists(s)) {
        finalists = run_finalists(ctx, s, trials);
        chosen = best_finalist(finalists, s.maximize);
        if (!finalists.empty()) {
            ctx.info("finalists:\n" + finalists_table(finalists, s));
            write_finalists_json((fs::path(s.dir) / "finalists.json").string(), finalists);
            results.set("search_best_trial", static_cast<int64_t>(best->id));
            for (const FinalistRecord& f : finalists) {
                Table record = results.section("finalists." + trial_dir_name(f.trial).substr(7));
                record.set("state", f.state);
                record.set("search_objective", f.search_objective);
                if (std::isfinite(f.objective)) record.set("objective", f.objective);
                record.set("wall_s", f.wall_s);
                if (!f.error.empty()) record.set("error", f.error);
            }
            if (!chosen)
                ctx.warn("no finalist completed (see " + s.dir + "/finalists/*.log); exporting the search's best trial " +
                         std::to_string(best->id));
        }
        if (chosen) {
            for (const TrialRecord& t : trials)
                if (t.id == chosen->trial) best = &t;
            results.set("best_finalist_objective", chosen->objective);
        }
    }
    const std::string best_path = (fs::path(s.dir) / "best.toml").string();
    export_best_pipeline(best_path, *best, s, space, chosen);
    results.set("best_trial", static_cast<int64_t>(best->id));
    results.set("best_objective", best->objective);
    results.set("best_pipeline", best_path);
    if (hooks.export_best) hooks.export_best(ctx, space, s, *best);
    for (const auto& [name, value] : best->params) results.set("best_params." + name, value.text());
    ctx.info("best: trial " + std::to_string(best->id) + " " + s.objective + "=" + search::Value::float_literal(best->objective) +
             (chosen ? " (" + search::Value::float_literal(chosen->objective) + " as a finalist)" : std::string()) + " " +
             describe(space, best->params) + "; retrain it with dsk run " + best_path);
}

std::vector<dsk_param_spec> study_params() {
    return {required(param_string("pipeline", "the base pipeline file (relative to this pipeline's folder)")),
            required(param_table("space", "the search space: name = { type, low, high, log, choices, key, condition }")),
            param(DSK_PARAM_TABLE, "strategy", "{ name = \"random\" | \"grid\" | \"tpe\" | \"evolution\", <its options> }",
                  "{ name = \"random\" }"),
            param_table("scheduler", "optional early stopping: { name = \"asha\" | \"median\", <its options> }"),
            param_string("objective", "a result key of the trial's summary.json", "\"test_accuracy\""),
            param_string("objective_stage", "the trial stage whose results hold the objective (default: the last that has it)", "\"\""),
            param_string("intermediate", "the metrics.jsonl name reported per step to the scheduler (default: objective)", "\"\""),
            param_string("direction", "maximize or minimize the objective", "\"maximize\"", kDirections),
            param_int("trials", "trials in the study", "20", 1, 1000000),
            param_float("timeout", "seconds after which no new trial starts (0: none); with finalists, the search stops "
                                   "finalist_budget earlier", "0.0", 0, 1e9),
            param_int("workers", "trials run at once, each its own process", "1", 1, 256),
            param_int("threads", "CPU threads per trial (0: the cores divided among the workers, unless OMP_NUM_THREADS is set)", "0", 0,
                      4096),
            param_int("seed", "seed of the strategy and scheduler", "0", 0, 9.2e18),
            param_string("worker", "the dsk executable that runs trials (default: this process when it is dsk)", "\"\""),
            param_array("overrides", "fixed key.path=value settings for every trial, as --set", "[]"),
            param_array("retrain", "key.path=value settings of the exported best.toml only, as --set: search with a cheap schedule, "
                                   "retrain the winner with the full one (e.g. [\"stages.train.epochs=30\"])", "[]"),
            param_int("finalists",
                      "after the search, retrain this many of the best trials with the retrain settings, then "
                      "finalist_overrides, and export the best of them by objective (0 or 1: export the search's best)",
                      "0", 0, 1000),
            param_array("finalist_overrides",
                        "key.path=value settings of the finalists' runs, applied after retrain (keep the validation split: "
                        "[\"stages.train.validation_fraction=0.1\"])",
                        "[]"),
            param_float("finalist_budget",
                        "seconds of timeout kept for the finalists: no search trial starts after timeout - finalist_budget "
                        "(finalists, once started, run to their end)",
                        "0.0", 0, 1e9),
            param_array("enqueue", "configurations to evaluate first, in order: [{ <parameter> = <value>, ... }], every active "
                                   "parameter given; the strategy learns from them as from its own", "[]")};
}

}  // namespace dsk::hpo
