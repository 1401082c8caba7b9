#include "study.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "journal.h"
#include "study_report.h"
#include "trial_process.h"

namespace fs = std::filesystem;

namespace dsk::hpo {

namespace {

using Clock = std::chrono::steady_clock;

std::string number_json(double v) { return std::isfinite(v) ? search::Value::float_literal(v) : "null"; }

std::string params_json(const search::Space& space, const search::Assignment& a) {
    std::string out = "{";
    for (const search::Param& p : space.params()) {
        const auto it = a.find(p.name);
        if (it == a.end()) continue;
        out += (out.size() > 1 ? ", " : "") + json_quote(p.name) + ": " + it->second.literal();
    }
    return out + "}";
}

search::Value value_of(const JsonValue& j) {
    search::Value v;
    switch (j.type) {
        case JsonValue::Type::Bool: v.type = DSK_VALUE_BOOL, v.b = j.boolean; break;
        case JsonValue::Type::Number: v.type = DSK_VALUE_FLOAT, v.f = j.number; break;
        case JsonValue::Type::String: v.type = DSK_VALUE_STRING, v.s = j.string; break;
        case JsonValue::Type::Array:
            v.type = DSK_VALUE_ARRAY;
            v.integers = true;
            for (const JsonValue& item : j.items) {
                v.numbers.push_back(item.number);
                v.integers = v.integers && item.number == std::round(item.number);
            }
            break;
        default: throw Error(DSK_DATA_LOSS, "the study journal holds a parameter value that is neither number, string nor array");
    }
    return v;
}

// The journal's params of a trial, checked against the space (a journal from another space is refused).
search::Assignment params_of(const JsonValue& j, const search::Space& space, uint64_t trial) {
    search::Assignment a;
    for (const auto& [name, value] : j.members) {
        const search::Param* p = space.find(name);
        if (!p)
            throw Error(DSK_FAILED_PRECONDITION, "the study journal's trial " + std::to_string(trial) + " has parameter '" + name +
                                                     "', which the space does not declare any more: resume with the space the "
                                                     "study started with, or start a new run");
        search::Value v = value_of(value);
        search::Space::check_value(*p, v);
        a[name] = v;
    }
    return a;
}

void check_search(const SearchInstance& s, dsk_status status, const std::string& what) {
    check(status, ("search '" + s.name + "' " + what).c_str());
}

// A table of our own (host->config_create) for an assignment, freed with the pointer.
using OwnedTable = std::unique_ptr<dsk_config, void (*)(dsk_config*)>;
OwnedTable new_table(uint64_t id) {
    OwnedTable owned(host().config_create(), host().config_destroy);
    if (!owned) throw Error(DSK_RESOURCE_EXHAUSTED, "out of memory for trial " + std::to_string(id) + "'s assignment");
    return owned;
}

// Whether the search takes trials it did not suggest (add_trial, ABI 1.2).
bool takes_added_trials(const SearchInstance& s) {
    return DSK_HAS_MEMBER(s.iface, dsk_search_iface, add_trial) && s.iface->add_trial != nullptr;
}

// Tells strategy and scheduler alike; the strategy is left out of the calls for trials it was
// never told about (an enqueued trial when it has no add_trial).
struct Searches {
    SearchInstance& strategy;
    SearchInstance* scheduler;
    bool maximize;
    std::set<uint64_t> hidden;  // trials the strategy does not know

    double minimised(double v) const { return maximize ? -v : v; }
    bool strategy_knows(uint64_t id) const { return !hidden.count(id); }
    void report(uint64_t id, int64_t step, double value) const {
        if (strategy_knows(id))
            check_search(strategy, strategy.iface->report(strategy.search, id, step, minimised(value)), "report");
        if (scheduler) check_search(*scheduler, scheduler->iface->report(scheduler->search, id, step, minimised(value)), "report");
    }
    bool should_prune(uint64_t id) const {
        int32_t prune = 0;
        if (scheduler) {
            check_search(*scheduler, scheduler->iface->should_prune(scheduler->search, id, &prune), "should_prune");
        } else if (strategy_knows(id)) {
            check_search(strategy, strategy.iface->should_prune(strategy.search, id, &prune), "should_prune");
        }
        return prune != 0;
    }
    void complete(uint64_t id, const std::string& state, double value) const {
        const uint32_t s = state == "complete" ? DSK_TRIAL_COMPLETE : state == "pruned" ? DSK_TRIAL_PRUNED : DSK_TRIAL_FAILED;
        const double v = std::isfinite(value) ? minimised(value) : NAN;
        if (strategy_knows(id)) check_search(strategy, strategy.iface->complete(strategy.search, id, s, v), "complete");
        if (scheduler) check_search(*scheduler, scheduler->iface->complete(scheduler->search, id, s, v), "complete");
    }
    // A trial the strategy did not suggest (enqueued): told through add_trial to each search that
    // takes it. A strategy that does not is left out of the trial's calls.
    void add(uint64_t id, const search::Space& space, const search::Assignment& a) {
        for (SearchInstance* s : {&strategy, scheduler}) {
            if (!s || !takes_added_trials(*s)) continue;
            OwnedTable table = new_table(id);
            space.write(a, Table(table.get()));
            check_search(*s, s->iface->add_trial(s->search, id, table.get()), "add_trial");
        }
        if (!takes_added_trials(strategy)) hidden.insert(id);
    }
};

// Asks the strategy for trial `id`'s assignment, in a table of our own (host->config_create).
// Returns false when the strategy has nothing left (RESOURCE_EXHAUSTED).
bool suggest(StageContext& ctx, const SearchInstance& strategy, const search::Space& space, uint64_t id,
             search::Assignment* out) {
    const OwnedTable owned = new_table(id);
    dsk_config* table = owned.get();
    const dsk_status status = strategy.iface->suggest(strategy.search, id, table);
    if (host().status_code(status) == DSK_RESOURCE_EXHAUSTED) {
        ctx.info(std::string("strategy '") + strategy.name + "' has nothing left to suggest: " + host().status_message(status));
        host().status_free(status);
        return false;
    }
    if (host().status_code(status) == DSK_UNIMPLEMENTED) {
        const std::string message = host().status_message(status);
        host().status_free(status);
        throw Error(DSK_INVALID_ARGUMENT, "strategy '" + strategy.name + "' does not propose trials (" + message +
                                              "); set strategy = { name = \"tpe\" } (or random, grid, evolution) and scheduler = "
                                              "{ name = \"" + strategy.name + "\" }");
    }
    check_search(strategy, status, "suggest");
    *out = space.read(Config(table));
    return true;
}

// The objective from a finished trial's summary.json; sets `error` when there is none.
double objective_of(const fs::path& summary_path, const StudySettings& s, std::string* status, std::string* error) {
    std::ifstream in(summary_path);
    if (!in) {
        *error = "no summary.json";
        return NAN;
    }
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const JsonValue summary = json_parse(text, summary_path.string());
    if (const JsonValue* st = summary.find("status")) *status = st->string;
    if (const JsonValue* e = summary.find("error")) *error = e->string;
    double value = NAN;
    bool found = false;
    if (const JsonValue* stages = summary.find("stages")) {
        for (const JsonValue& stage : stages->items) {
            const JsonValue* name = stage.find("name");
            const JsonValue* results = stage.find("results");
            if (!results || (!s.objective_stage.empty() && (!name || name->string != s.objective_stage))) continue;
            if (const JsonValue* v = results->find(s.objective)) {
                if (v->is(JsonValue::Type::Number)) value = v->number, found = true;
            }
        }
    }
    if (!found && error->empty())
        *error = "its summary.json has no result '" + s.objective + "'" +
                 (s.objective_stage.empty() ? "" : " in stage '" + s.objective_stage + "'") +
                 "; set objective to a key of a stage's results (e.g. test_accuracy)";
    return value;
}

// The last non-empty line of a trial's log, to say why it failed.
std::string last_line(const fs::path& log) {
    std::ifstream in(log);
    std::string line, last;
    while (std::getline(in, line))
        if (!line.empty()) last = line;
    return last;
}

// Why a trial or finalist process failed: the error its summary.json gives, else its exit code
// and the last line of its log.
std::string failure(const std::string& error, int code, const fs::path& log) {
    if (!error.empty() && error != "no summary.json") return error;
    return "exit code " + std::to_string(code) + ": " + last_line(log);
}

std::vector<std::string> trial_settings(const StudySettings& s, const search::Space& space, const search::Assignment& a) {
    if (s.trial_settings) return s.trial_settings(a);
    std::vector<std::string> out;
    for (const search::Param& p : space.params()) {
        const auto it = a.find(p.name);
        if (it != a.end()) out.push_back(p.key + "=" + it->second.literal());
    }
    return out;
}

struct Running {
    uint64_t id;
    std::unique_ptr<TrialProcess> process;
    MetricsTail metrics;
    Clock::time_point started;
};

// Starts a trial (or finalist) process, its command line first in its log.
std::unique_ptr<TrialProcess> start_process(const std::vector<std::string>& argv, const fs::path& log, const std::vector<std::string>& env) {
    std::ofstream(log, std::ios::app) << "$";
    for (const std::string& a : argv) std::ofstream(log, std::ios::app) << " " << a;
    std::ofstream(log, std::ios::app) << "\n";
    return std::make_unique<TrialProcess>(argv, log.string(), env);
}

std::vector<std::string> thread_env(const StudySettings& s) {
    std::vector<std::string> env;
    if (s.threads > 0) env.push_back("OMP_NUM_THREADS=" + std::to_string(s.threads));
    return env;
}

// The dsk command line up to its subcommand: the worker and this process's plugin folders.
std::vector<std::string> worker_argv(const StudySettings& s) {
    std::vector<std::string> argv{s.worker};
    for (const std::string& d : s.plugin_dirs) argv.insert(argv.end(), {"--plugin-path", d});
    return argv;
}

}  // namespace

std::vector<TrialRecord> run_study(StageContext& ctx, const StudySettings& s, const search::Space& space,
                                   SearchInstance& strategy, SearchInstance* scheduler) {
    const fs::path dir = s.dir;
    const fs::path journal_path = dir / "journal.jsonl";
    fs::create_directories(dir / "trials");
    Searches searches{strategy, scheduler, s.maximize, {}};
    size_t enqueued = 0;  // entries of s.enqueue already turned into trials (also in an earlier run)
    std::map<uint64_t, TrialRecord> trials;
    std::vector<uint64_t> unfinished;  // suggested in an earlier run, never ended: run again

    // Replay: the same calls in the same order give the strategy and scheduler the state they had.
    if (fs::exists(journal_path)) {
        std::string dropped;
        const std::vector<JsonValue> events = Journal::read(journal_path.string(), &dropped);
        if (!dropped.empty()) ctx.warn("the study journal's last line was cut short and is ignored: " + dropped);
        size_t mismatched = 0;
        for (const JsonValue& e : events) {
            const JsonValue* kind = e.find("event");
            const JsonValue* trial = e.find("trial");
            if (!kind || !trial) continue;
            const auto id = static_cast<uint64_t>(trial->number);
            if (kind->string == "suggest") {
                TrialRecord r;
                r.id = id;
                r.params = params_of(*e.find("params"), space, id);
                r.enqueued = e.find("enqueued") && e.find("enqueued")->boolean;
                if (r.enqueued) {
                    searches.add(id, space, r.params);
                    ++enqueued;
                } else {
                    search::Assignment replayed;
                    if (!suggest(ctx, strategy, space, id, &replayed) || replayed != r.params) ++mismatched;
                }
                trials[id] = std::move(r);
            } else if (kind->string == "report" && trials.count(id)) {
                const double v = e.find("value")->is(JsonValue::Type::Number) ? e.find("value")->number : NAN;
                trials[id].steps = std::max<int64_t>(trials[id].steps, static_cast<int64_t>(e.find("step")->number));
                searches.report(id, static_cast<int64_t>(e.find("step")->number), v);
            } else if (kind->string == "end" && trials.count(id)) {
                TrialRecord& r = trials[id];
                r.state = e.find("state")->string;
                r.objective = e.find("objective")->is(JsonValue::Type::Number) ? e.find("objective")->number : NAN;
                r.wall_s = e.find("wall_s")->number;
                r.error = e.find("error") ? e.find("error")->string : "";
                searches.complete(id, r.state, r.objective);
            }
        }
        for (const auto& [id, r] : trials)
            if (r.state == "running") unfinished.push_back(id);
        if (mismatched)
            ctx.warn("strategy '" + strategy.name + "' did not suggest " + std::to_string(mismatched) +
                     " replayed trial(s) as the journal has them (is it deterministic for a seed?); the journal's "
                     "assignments are kept, and its model may differ from the interrupted run's");
        if (!trials.empty())
            ctx.info("resuming the study from " + journal_path.string() + ": " + std::to_string(trials.size()) + " trial(s) known, " +
                 std::to_string(unfinished.size()) + " to run again");
    }
    Journal journal(journal_path.string());

    const auto start = Clock::now();
    // With finalists, the search leaves them their budget of the stage's timeout.
    const double search_timeout_s = s.timeout_s - (has_finalists(s) ? s.finalist_budget_s : 0.0);
    std::vector<Running> running;
    std::set<uint64_t> interrupted;  // trials resumed after an interruption in this run
    bool exhausted = false, cancelled = false;
    uint64_t next_id = trials.empty() ? 0 : trials.rbegin()->first + 1;
    double best = NAN;
    uint64_t best_id = 0;
    auto better = [&](double a, double b) { return std::isnan(b) || (s.maximize ? a > b : a < b); };
    for (const auto& [id, r] : trials)
        if (r.state == "complete" && better(r.objective, best)) best = r.objective, best_id = id;

    // Journals the end of a trial and tells the searches. A pruned trial's value is its last
    // intermediate one (what it was judged on).
    auto record_end = [&](TrialRecord& r, const std::string& state, const std::string& error) {
        r.state = state;
        r.error = error;
        journal.append("{\"event\": \"end\", \"trial\": " + std::to_string(r.id) + ", \"state\": " + json_quote(r.state) +
                       ", \"objective\": " + number_json(r.objective) + ", \"steps\": " + std::to_string(r.steps) +
                       ", \"wall_s\": " + number_json(r.wall_s) + ", \"error\": " + json_quote(r.error) + "}");
        searches.complete(r.id, r.state, r.objective);
        if (r.state == "complete") {
            if (better(r.objective, best)) best = r.objective, best_id = r.id;
            ctx.metric("objective", r.objective, static_cast<int64_t>(r.id));
            ctx.metric("best_objective", best, static_cast<int64_t>(r.id));
        }
        if (r.state == "rejected") {
            ctx.info("candidate " + std::to_string(r.id) + " rejected, not trained (" + r.error + "); asking the strategy again");
            return;
        }
        ctx.info("trial " + std::to_string(r.id) + " " + r.state +
                 (std::isfinite(r.objective) ? " " + s.objective + "=" + search::Value::float_literal(r.objective) : std::string()) +
                 (r.error.empty() ? "" : ": " + r.error));
    };

    const std::vector<std::string> env = thread_env(s);
    auto launch = [&](uint64_t id, bool resume) {
        const fs::path trial_dir = dir / trial_dir_name(id);
        std::vector<std::string> argv = worker_argv(s);
        if (resume && fs::exists(trial_dir / "config.toml")) {
            argv.insert(argv.end(), {"run", "--resume", trial_dir.string()});
        } else {
            fs::remove_all(trial_dir);
            argv.insert(argv.end(), {"run", s.base});
            for (const std::string& o : s.overrides) argv.insert(argv.end(), {"--set", o});
            for (const std::string& setting : trial_settings(s, space, trials[id].params)) argv.insert(argv.end(), {"--set", setting});
            argv.insert(argv.end(), {"--run-dir", trial_dir.string()});
        }
        running.push_back(Running{id, start_process(argv, dir / (trial_dir_name(id) + ".log"), env),
                                  MetricsTail((trial_dir / "metrics.jsonl").string()), Clock::now()});
        ctx.info("trial " + std::to_string(id) + (resume ? " resumed: " : trials[id].enqueued ? " started (enqueued): " : " started: ") +
                 describe(space, trials[id].params));
    };

    auto finish = [&](Running& run) {
        TrialRecord& r = trials[run.id];
        const fs::path trial_dir = dir / trial_dir_name(run.id);
        const int code = run.process->exit_code();
        r.wall_s += std::chrono::duration<double>(Clock::now() - run.started).count();
        if (cancelled && !r.pruning) return;  // interrupted by the user: stays unfinished, resumable
        std::string status, error;
        const double value = objective_of(trial_dir / "summary.json", s, &status, &error);
        // Interrupted from outside (Ctrl-C reaches the trials before this loop sees the stop
        // request): not a failure. It is resumed from its checkpoint, once per run of the study.
        if (!r.pruning && (code == 130 || status == "cancelled") && interrupted.insert(run.id).second) {
            ctx.info("trial " + std::to_string(run.id) + " was interrupted; it continues from its checkpoint");
            unfinished.push_back(run.id);
            return;
        }
        if (r.pruning) {
            r.state = "pruned";
            r.error.clear();
        } else if (code == 0 && status == "ok" && std::isfinite(value)) {
            r.state = "complete";
            r.objective = value;
        } else {
            r.state = "failed";
            r.error = failure(error, code, dir / (trial_dir_name(run.id) + ".log"));
        }
        record_end(r, r.state, r.error);
    };

    // Rejected candidates never ran: they count neither as started nor as finished trials.
    auto started_count = [&] {
        int64_t n = 0;
        for (const auto& [id, r] : trials) n += r.state != "rejected" ? 1 : 0;
        return n;
    };
    auto finished_count = [&] {
        int64_t n = 0;
        for (const auto& [id, r] : trials) n += r.state != "running" && r.state != "rejected" ? 1 : 0;
        return n;
    };
    int64_t rejected_in_row = 0;
    if (!s.enqueue.empty() && enqueued < s.enqueue.size() && !takes_added_trials(strategy))
        ctx.warn("strategy '" + strategy.name + "' has no add_trial (a plugin built for dsk ABI 1.1 or older): the " +
                 std::to_string(s.enqueue.size() - enqueued) + " enqueued configuration(s) run, but it does not learn from them");

    while (true) {
        if (!cancelled && ctx.should_stop()) {
            cancelled = true;
            ctx.info("stop requested: interrupting " + std::to_string(running.size()) + " running trial(s); they checkpoint and "
                     "the study continues with dsk run --resume");
            for (Running& run : running) run.process->interrupt();
        }
        const bool timed_out = s.timeout_s > 0 && std::chrono::duration<double>(Clock::now() - start).count() >= search_timeout_s;
        while (!cancelled && static_cast<int64_t>(running.size()) < s.workers) {
            if (!unfinished.empty()) {
                const uint64_t id = unfinished.front();
                unfinished.erase(unfinished.begin());
                launch(id, true);
                continue;
            }
            if (exhausted || timed_out || started_count() >= s.trials) break;
            const uint64_t id = next_id++;
            TrialRecord r;
            r.id = id;
            if (enqueued < s.enqueue.size()) {  // the user's configurations first, in order
                r.params = s.enqueue[enqueued++];
                r.enqueued = true;
                searches.add(id, space, r.params);
            } else if (!suggest(ctx, strategy, space, id, &r.params)) {
                exhausted = true;
                break;
            }
            trials[id] = r;
            journal.append("{\"event\": \"suggest\", \"trial\": " + std::to_string(id) + ", \"params\": " + params_json(space, r.params) +
                           (r.enqueued ? ", \"enqueued\": true}" : "}"));
            const std::string reason = s.reject ? s.reject(r.params) : std::string();
            if (!reason.empty()) {
                record_end(trials[id], "rejected", reason);
                if (++rejected_in_row >= kMaxRejectedInRow) {
                    ctx.warn(std::to_string(rejected_in_row) + " candidates in a row were rejected (the last: " + reason +
                             "); the constraint leaves almost nothing of the space, so no more trials start: narrow the space "
                             "(smaller widths, fewer blocks) or relax the constraint");
                    exhausted = true;
                    break;
                }
                continue;
            }
            rejected_in_row = 0;
            launch(id, false);
        }
        if (running.empty()) break;

        for (Running& run : running) {
            TrialRecord& r = trials[run.id];
            for (const Metric& m : run.metrics.read_new()) {
                if (m.name != s.intermediate || m.step <= r.steps) continue;
                r.steps = m.step;
                r.objective = m.value;  // the latest; replaced by the final result when it completes
                journal.append("{\"event\": \"report\", \"trial\": " + std::to_string(run.id) + ", \"step\": " + std::to_string(m.step) +
                               ", \"value\": " + number_json(m.value) + "}");
                searches.report(run.id, m.step, m.value);
                if (!r.pruning && !cancelled && searches.should_prune(run.id)) {
                    r.pruning = true;
                    ctx.info("trial " + std::to_string(run.id) + " pruned at step " + std::to_string(m.step) + " (" + s.intermediate +
                             "=" + search::Value::float_literal(m.value) + ")");
                    run.process->interrupt();
                }
            }
        }
        for (size_t k = 0; k < running.size();) {
            if (running[k].process->finished()) {
                finish(running[k]);
                running.erase(running.begin() + static_cast<ptrdiff_t>(k));
            } else {
                ++k;
            }
        }

        std::string text = "trial " + std::to_string(finished_count()) + "/" + std::to_string(s.trials) + " finished";
        if (!std::isnan(best)) {
            char value[32];
            std::snprintf(value, sizeof value, "%.6g", best);  // a progress line: 0.868167, not 0.8681666666666666
            text += ", best " + s.objective + " " + value + " (#" + std::to_string(best_id) + ")";
        }
        if (!running.empty()) {
            text += ", running";
            for (const Running& run : running) text += " #" + std::to_string(run.id);
        }
        ctx.progress(std::min(1.0, static_cast<double>(finished_count()) / static_cast<double>(std::max<int64_t>(s.trials, 1))), text);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }

    std::vector<TrialRecord> out;
    for (auto& [id, r] : trials) out.push_back(std::move(r));
    if (cancelled)
        throw Error(DSK_CANCELLED, "stopped on request after " + std::to_string(finished_count()) + " finished trial(s); continue with dsk run --resume " +
                                       ctx.run_dir());
    return out;
}

std::vector<FinalistRecord> run_finalists(StageContext& ctx, const StudySettings& s, const std::vector<TrialRecord>& trials) {
    const std::vector<const TrialRecord*> ranked = finalist_candidates(trials, s.finalists, s.maximize);
    std::vector<FinalistRecord> finalists;
    for (const TrialRecord* t : ranked) {
        FinalistRecord f;
        f.trial = t->id;
        f.search_objective = t->objective;
        finalists.push_back(f);
    }
    if (finalists.size() < 2) {
        ctx.info(std::to_string(finalists.size()) + " trial(s) with a result: no finalists to compare");
        return {};
    }

    // Finalists that ended in an earlier run of the study (journal events "finalist") are kept.
    const fs::path dir = s.dir, journal_path = dir / "journal.jsonl";
    if (fs::exists(journal_path))
        for (const JsonValue& e : Journal::read(journal_path.string(), nullptr)) {
            const JsonValue* kind = e.find("event");
            if (!kind || kind->string != "finalist") continue;
            for (FinalistRecord& f : finalists) {
                if (f.trial != static_cast<uint64_t>(e.find("trial")->number)) continue;
                f.state = e.find("state")->string;
                f.objective = e.find("objective")->is(JsonValue::Type::Number) ? e.find("objective")->number : NAN;
                f.wall_s = e.find("wall_s")->number;
                f.error = e.find("error") ? e.find("error")->string : "";
            }
        }
    Journal journal(journal_path.string());
    fs::create_directories(dir / "finalists");
    std::string names;
    for (const FinalistRecord& f : finalists) names += " #" + std::to_string(f.trial);
    ctx.info("finalists:" + names + ": the best " + std::to_string(finalists.size()) + " trial(s) by " + s.objective +
             ", retrained with the retrain settings and the finalist overrides; the best " + s.objective + " among them is exported");

    auto name_of = [](uint64_t trial) { return "finalists/" + trial_dir_name(trial).substr(7); };
    const std::vector<std::string> env = thread_env(s);
    std::vector<std::pair<FinalistRecord*, Running>> running;
    std::vector<FinalistRecord*> pending;  // to start (or resume), in the search's order
    for (FinalistRecord& f : finalists)
        if (f.state == "running") pending.push_back(&f);
    std::set<uint64_t> interrupted;
    bool cancelled = false;
    auto launch = [&](FinalistRecord& f) {
        const fs::path run_dir = dir / name_of(f.trial);
        std::vector<std::string> argv = worker_argv(s);
        const bool resume = fs::exists(run_dir / "config.toml");
        if (resume) {
            argv.insert(argv.end(), {"run", "--resume", run_dir.string()});
        } else {
            fs::remove_all(run_dir);
            argv.insert(argv.end(), {"run", (dir / trial_dir_name(f.trial) / "config.toml").string()});
            for (const std::string& r : s.retrain) argv.insert(argv.end(), {"--set", r});
            for (const std::string& o : s.finalist_overrides) argv.insert(argv.end(), {"--set", o});
            argv.insert(argv.end(), {"--run-dir", run_dir.string()});
        }
        running.emplace_back(&f, Running{f.trial, start_process(argv, dir / (name_of(f.trial) + ".log"), env),
                                         MetricsTail((run_dir / "metrics.jsonl").string()), Clock::now()});
        ctx.info("finalist " + std::to_string(f.trial) + (resume ? " resumed" : " started") + " (" + s.objective + " " +
                 search::Value::float_literal(f.search_objective) + " in the search)");
    };
    auto finish = [&](FinalistRecord& f, Running& run) {
        const int code = run.process->exit_code();
        f.wall_s += std::chrono::duration<double>(Clock::now() - run.started).count();
        if (cancelled) return;  // interrupted by the user: resumed by dsk run --resume
        std::string status, error;
        const fs::path run_dir = dir / name_of(f.trial);
        const double value = objective_of(run_dir / "summary.json", s, &status, &error);
        // Interrupted from outside before this loop saw the stop request: continued from its
        // checkpoint, once per run of the study (as a search trial).
        if ((code == 130 || status == "cancelled") && interrupted.insert(f.trial).second) {
            ctx.info("finalist " + std::to_string(f.trial) + " was interrupted; it continues from its checkpoint");
            pending.push_back(&f);
            return;
        }
        if (code == 0 && status == "ok" && std::isfinite(value)) {
            f.state = "complete";
            f.objective = value;
        } else {
            f.state = "failed";
            f.error = failure(error, code, dir / (name_of(f.trial) + ".log"));
        }
        journal.append("{\"event\": \"finalist\", \"trial\": " + std::to_string(f.trial) + ", \"state\": " + json_quote(f.state) +
                       ", \"search_objective\": " + number_json(f.search_objective) + ", \"objective\": " + number_json(f.objective) +
                       ", \"wall_s\": " + number_json(f.wall_s) + ", \"error\": " + json_quote(f.error) + "}");
        ctx.info("finalist " + std::to_string(f.trial) + " " + f.state +
                 (std::isfinite(f.objective) ? " " + s.objective + "=" + search::Value::float_literal(f.objective) : std::string()) +
                 (f.error.empty() ? "" : ": " + f.error));
    };

    size_t ended = finalists.size() - pending.size();
    while (true) {
        if (!cancelled && ctx.should_stop()) {
            cancelled = true;
            ctx.info("stop requested: interrupting " + std::to_string(running.size()) + " running finalist(s); they checkpoint and "
                     "the study continues with dsk run --resume");
            for (auto& [f, run] : running) run.process->interrupt();
        }
        while (!cancelled && static_cast<int64_t>(running.size()) < s.workers && !pending.empty()) {
            FinalistRecord* f = pending.front();
            pending.erase(pending.begin());
            launch(*f);
        }
        if (running.empty()) break;
        for (size_t k = 0; k < running.size();) {
            if (running[k].second.process->finished()) {
                finish(*running[k].first, running[k].second);
                ended += running[k].first->state != "running";
                running.erase(running.begin() + static_cast<ptrdiff_t>(k));
            } else {
                ++k;
            }
        }
        ctx.progress(static_cast<double>(ended) / static_cast<double>(finalists.size()),
                     "finalist " + std::to_string(ended) + "/" + std::to_string(finalists.size()) + " finished");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (cancelled)
        throw Error(DSK_CANCELLED, "stopped on request while the finalists ran; continue with dsk run --resume " + ctx.run_dir());
    return finalists;
}

}  // namespace dsk::hpo
