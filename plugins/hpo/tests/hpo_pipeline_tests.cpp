// The hpo stage end to end: tiny studies of a small training pipeline (512 images, 2 epochs), each
// trial a real `dsk run` process.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdio>
#include <dsk/dsk.hpp>
#include <dsk/dsk_json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>

#include "temp_dir.h"

namespace fs = std::filesystem;

namespace {

struct Result {
    int code;
    std::string output;
};

Result run_dsk(const std::string& args) {
    FILE* pipe = popen(("( '" + std::string(DSK_EXE) + "' " + args + " ) 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string out;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
    const int status = pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

const char* const kBase = R"([pipeline]
name = "tiny"
[devices]
prefer = ["cpu"]
[[stages]]
kind = "train"
name = "train"
epochs = 2
batch_size = 64
seed = 1
model = { name = "mlp", hidden = [16], activation = "relu" }
optimizer = { name = "adam", lr = 1e-3 }
train_data = { reader = "idx", name = "fashion-mnist", split = "train", limit = 512 }
test_data = { reader = "idx", name = "fashion-mnist", split = "test", limit = 200 }
)";

struct Study {
    test_support::TempDir temp{"dsk-hpo-tests"};
    fs::path run = temp.path / "run";
    fs::path study = run / "hpo";

    // Writes base.toml and <kind>.toml (a stage of that kind over base.toml, with `stage_keys`)
    // and runs it; `options` go before `run` (e.g. "--plugin-path DIR ").
    Result start(const std::string& stage_keys, const std::string& kind = "hpo", const std::string& options = "") {
        std::ofstream(temp.path / "base.toml") << kBase;
        const fs::path pipeline = temp.path / (kind + ".toml");
        std::ofstream(pipeline) << "[pipeline]\nname = \"" << kind << "-test\"\n[[stages]]\nkind = \"" << kind
                                << "\"\npipeline = \"base.toml\"\n" << stage_keys;
        study = run / kind;
        return run_dsk(options + "run " + pipeline.string() + " --run-dir " + run.string());
    }
    dsk::JsonValue trials() const { return dsk::json_parse(read_text(study / "trials.json"), "trials.json"); }
    // The parameters the model of trial `t` (an entry of trials.json) had, from its summary.json.
    double trained_parameters(const dsk::JsonValue& t) const {
        char dir[16];
        std::snprintf(dir, sizeof dir, "%04d", static_cast<int>(t.find("trial")->number));
        const dsk::JsonValue summary = dsk::json_parse(read_text(study / "trials" / dir / "summary.json"));
        return summary.find("stages")->items.at(0).find("results")->find("parameters")->number;
    }
};

std::string state_of(const dsk::JsonValue& trials, size_t k) { return trials.items.at(k).find("state")->string; }

const char* const kLrSpace = R"(
[stages.space]
lr = { key = "stages.train.optimizer.lr", type = "float", low = 1e-3, high = 1e-2, log = true }
)";

}  // namespace

TEST_CASE("a tiny study completes and its best.toml retrains the winner") {
    Study s;
    const Result r = s.start(std::string("trials = 3\nworkers = 2\nstrategy = { name = \"random\" }\nseed = 4\n") + kLrSpace);
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(has(r.output, "trial  state     objective"));
    const dsk::JsonValue trials = s.trials();
    REQUIRE(trials.items.size() == 3);
    for (size_t k = 0; k < 3; ++k) CHECK(state_of(trials, k) == "complete");
    const std::string csv = read_text(s.study / "trials.csv");
    CHECK(has(csv, "trial,state,objective,steps,wall_s,lr,error\n0,complete,"));
    const std::string html = read_text(s.study / "best_curve.html");
    CHECK(has(html, "<svg"));
    CHECK(has(html, "<path d=\"M"));

    const dsk::JsonValue summary = dsk::json_parse(read_text(s.run / "summary.json"));
    const dsk::JsonValue& results = *summary.find("stages")->items.at(0).find("results");
    const double best = results.find("best_objective")->number;
    CHECK(results.find("trials_complete")->number == 3);

    // The exported pipeline validates and retrains the winner to the same accuracy (same seed).
    const fs::path best_toml = s.study / "best.toml";
    CHECK(run_dsk("validate " + best_toml.string()).code == 0);
    const Result retrain = run_dsk("run " + best_toml.string() + " --run-dir " + (s.temp.path / "retrain").string());
    INFO(retrain.output);
    REQUIRE(retrain.code == 0);
    const dsk::JsonValue again = dsk::json_parse(read_text(s.temp.path / "retrain" / "summary.json"));
    CHECK(again.find("stages")->items.at(0).find("results")->find("test_accuracy")->number == doctest::Approx(best));
}

TEST_CASE("trials share out the cores: `threads` sets each trial's thread count") {
    Study s;
    const Result r = s.start(std::string("trials = 2\nworkers = 2\nthreads = 3\nstrategy = { name = \"random\" }\n") + kLrSpace);
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(has(r.output, "2 worker(s) of 3 thread(s)"));
    for (const char* trial : {"0000", "0001"}) {
        const dsk::JsonValue summary = dsk::json_parse(read_text(s.study / "trials" / trial / "summary.json"));
        CHECK(summary.find("threads")->number == 3);
    }
}

TEST_CASE("retrain settings go into the exported best.toml only: trials search with 2 epochs, best.toml trains 3") {
    Study s;
    const Result r = s.start(std::string("trials = 2\nstrategy = { name = \"random\" }\nretrain = [\"stages.train.epochs=3\"]\n") + kLrSpace);
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(has(read_text(s.study / "trials" / "0000" / "config.toml"), "epochs = 2\n"));
    const std::string best = read_text(s.study / "best.toml");
    CHECK(has(best, "with the stage's retrain settings (stages.train.epochs=3;"));
    CHECK(has(best, "epochs = 3\n"));
    const Result retrain = run_dsk("run " + (s.study / "best.toml").string() + " --run-dir " + (s.temp.path / "retrain").string());
    INFO(retrain.output);
    REQUIRE(retrain.code == 0);
    CHECK(has(read_text(s.temp.path / "retrain" / "metrics.jsonl"), "\"step\": 3"));

    // A retrain setting that does not apply fails the export, naming the key.
    Study bad;
    const Result wrong = bad.start(std::string("trials = 1\nretrain = [\"stages.train.epochz=3\"]\n") + kLrSpace);
    CHECK(wrong.code != 0);
    CHECK(has(wrong.output, "the retrain settings do not apply"));
    CHECK(has(wrong.output, "epochz"));
}

TEST_CASE("a crashing trial is recorded as failed and the study goes on") {
    Study s;
    // Grid order: activation "bogus" first (its trial fails at validation), then "relu".
    const Result r = s.start(R"(trials = 2
strategy = { name = "grid" }
[stages.space]
activation = { key = "stages.train.model.activation", type = "categorical", choices = ["bogus", "relu"] }
)");
    INFO(r.output);
    REQUIRE(r.code == 0);
    const dsk::JsonValue trials = s.trials();
    REQUIRE(trials.items.size() == 2);
    CHECK(state_of(trials, 0) == "failed");
    CHECK(has(trials.items[0].find("error")->string, "bogus"));
    CHECK(state_of(trials, 1) == "complete");
    CHECK(has(read_text(s.study / "best.toml"), "activation = 'relu'"));
}

TEST_CASE("resume from the journal skips finished trials and reruns the unfinished one") {
    Study s;
    REQUIRE(s.start(std::string("trials = 3\nstrategy = { name = \"tpe\", startup_trials = 2 }\nseed = 2\n") + kLrSpace).code == 0);
    // As if the study had been killed while trial 2 ran: its end event never reached the journal.
    const fs::path journal = s.study / "journal.jsonl";
    std::string kept;
    std::ifstream in(journal);
    for (std::string line; std::getline(in, line);)
        if (!has(line, "\"event\": \"end\", \"trial\": 2")) kept += line + "\n";
    in.close();
    std::ofstream(journal, std::ios::trunc) << kept;
    const std::string first_params = s.trials().items.at(2).find("params")->find("lr") ? "lr" : "";

    const Result r = run_dsk("run --resume " + s.run.string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(has(r.output, "3 trial(s) known, 1 to run again"));
    CHECK(has(r.output, "trial 2 resumed"));
    CHECK_FALSE(has(r.output, "trial 0 started"));
    CHECK_FALSE(has(r.output, "trial 3 started"));
    // Trials 0 and 1 ran once; trial 2 twice (its log holds two command lines).
    auto runs_in = [&](const char* log) {
        const std::string text = read_text(s.study / "trials" / log);
        size_t n = 0;
        for (size_t at = text.find("$ "); at != std::string::npos; at = text.find("$ ", at + 1)) ++n;
        return n;
    };
    CHECK(runs_in("0000.log") == 1);
    CHECK(runs_in("0001.log") == 1);
    CHECK(runs_in("0002.log") == 2);
    const dsk::JsonValue trials = s.trials();
    REQUIRE(trials.items.size() == 3);
    for (size_t k = 0; k < 3; ++k) CHECK(state_of(trials, k) == "complete");
    CHECK(first_params == "lr");
}

TEST_CASE("an embedded kernel without a worker key is told what to set") {
    test_support::TempDir temp{"dsk-hpo-tests"};
    std::ofstream(temp.path / "base.toml") << kBase;
    std::ofstream(temp.path / "hpo.toml") << "[[stages]]\nkind = \"hpo\"\npipeline = \"base.toml\"\ntrials = 1\n" << kLrSpace;
    dsk::Kernel kernel;
    kernel.add_plugin_path(DSK_PLUGIN_DIR);
    dsk::RunOptions options;
    options.pipeline_path = (temp.path / "hpo.toml").string();
    options.run_dir = (temp.path / "run").string();
    try {
        kernel.run(options);
        FAIL("the run must fail without a worker");
    } catch (const dsk::Error& e) {
        CHECK(has(e.what(), "is not the dsk command line"));
        CHECK(has(e.what(), "set worker = \"/path/to/dsk\" in stage 'hpo' (hpo)"));
    }
}

TEST_CASE("validation names a missing base pipeline and a scheduler used as strategy is explained") {
    test_support::TempDir temp{"dsk-hpo-tests"};
    std::ofstream(temp.path / "hpo.toml") << "[[stages]]\nkind = \"hpo\"\npipeline = \"nowhere.toml\"\n" << kLrSpace;
    const Result missing = run_dsk("validate " + (temp.path / "hpo.toml").string());
    CHECK(missing.code == 2);
    CHECK(has(missing.output, "nowhere.toml does not exist"));

    Study s;
    const Result r = s.start(std::string("trials = 1\nstrategy = { name = \"asha\" }\n") + kLrSpace);
    CHECK(r.code == 1);
    CHECK(has(r.output, "strategy 'asha' does not propose trials"));
    CHECK(has(r.output, "scheduler = { name = \"asha\" }"));
}

TEST_CASE("a nas study rejects architectures over max_parameters and asks again, without spending trials") {
    Study s;
    // Grid, in order: (depth 1, width1 4), (1, 64), (2, 4), (2, 64). With depth 1 and width 64 the
    // head alone has 64*14*14*10 weights (> 50000): that candidate is rejected, not trained, and
    // the grid's next point takes its place, so all three trials train.
    const Result r = s.start(R"(trials = 3
max_parameters = 50000
strategy = { name = "grid" }
[stages.space]
depth = { type = "int", low = 1, high = 2 }
op1 = { type = "categorical", choices = ["conv3x3"] }
width1 = { type = "categorical", choices = [4, 64] }
op2 = { type = "categorical", choices = ["dwsep3x3"], condition = { depth = 2 } }
width2 = { type = "categorical", choices = [6], condition = { op2 = "dwsep3x3" } }
activation = { type = "categorical", choices = ["gelu"] }
batch_norm = { type = "categorical", choices = [true] }
dropout = { type = "categorical", choices = [0.25] }
)",
                             "nas");
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(has(r.output, "candidate 1 rejected, not trained (the architecture has 126218 parameters, more than max_parameters = 50000"));
    const dsk::JsonValue trials = s.trials();
    REQUIRE(trials.items.size() == 4);
    size_t trained = 0;
    for (const dsk::JsonValue& t : trials.items) {
        const bool deep = t.find("params")->find("depth")->number == 2;
        const bool wide = t.find("params")->find("width1")->number == 64;
        CHECK(t.find("state")->string == (wide && !deep ? "rejected" : "complete"));
        if (wide && !deep) {
            CHECK(has(t.find("error")->string, "has 126218 parameters, more than max_parameters = 50000"));
            CHECK_FALSE(fs::exists(s.study / "trials" / "0001"));
            continue;
        }
        // The parameter count the stage computed is the one the model really has:
        // conv 1->w (10w) + bn (2w); depth 2: dwsep w->6 (10w + 6w + 6) + bn (12); linear to 10.
        ++trained;
        const double w = wide ? 64 : 4;
        const double expected = deep ? 12 * w + 16 * w + 6 + 12 + 6 * 7 * 7 * 10 + 10 : 12 * w + w * 14 * 14 * 10 + 10;
        CHECK(s.trained_parameters(t) == expected);
    }
    CHECK(trained == 3);
    const dsk::JsonValue summary = dsk::json_parse(read_text(s.run / "summary.json"));
    const dsk::JsonValue& results = *summary.find("stages")->items.at(0).find("results");
    CHECK(results.find("candidates_rejected")->number == 1);
    CHECK(results.find("trials_complete")->number == 3);
    CHECK(results.find("trials_failed")->number == 0);
    const std::string arch = read_text(s.study / "best_architecture.toml");
    CHECK(has(arch, "layers = [{ type = \"conv\", out = 4, kernel = 3, padding = 1 }, { type = \"batchnorm\" }"));
    CHECK(has(arch, "kind = \"gelu\""));
    CHECK(has(arch, "{ type = \"dropout\", p = 0.25 }, { type = \"linear\" }]"));
    CHECK(run_dsk("validate " + (s.study / "best.toml").string()).code == 0);
}

TEST_CASE("nas skip connections: residual blocks with identity or 1x1 projection, and the export retrains the same network") {
    Study s;
    // Two conv blocks, each with a skip connection: block 1 goes 1 -> 4 channels (a 1x1
    // projection), block 2 keeps 4 channels (identity) or goes to 6 (projection).
    const Result r = s.start(R"(trials = 2
strategy = { name = "grid" }
[stages.space]
depth = { type = "categorical", choices = [2] }
op1 = { type = "categorical", choices = ["conv3x3"] }
width1 = { type = "categorical", choices = [4] }
residual1 = { type = "categorical", choices = [true] }
op2 = { type = "categorical", choices = ["conv3x3"] }
width2 = { type = "categorical", choices = [4, 6] }
residual2 = { type = "categorical", choices = [true] }
)",
                             "nas");
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(has(r.output, "conv3x3:4+res conv3x3:"));
    const dsk::JsonValue trials = s.trials();
    REQUIRE(trials.items.size() == 2);
    for (const dsk::JsonValue& t : trials.items) {
        REQUIRE(t.find("state")->string == "complete");
        const double w2 = t.find("params")->find("width2")->number;
        // conv 1->4 (40) + projection 1->4 (8); conv 4->w2 (36 w2 + w2) + projection when w2 != 4
        // (5 w2); linear w2*7*7 -> 10.
        CHECK(s.trained_parameters(t) == 40 + 8 + 37 * w2 + (w2 != 4 ? 5 * w2 : 0) + w2 * 7 * 7 * 10 + 10);
    }
    const std::string arch = read_text(s.study / "best_architecture.toml");
    CHECK(has(arch, "{ type = \"residual\", layers = [{ type = \"conv\", out = 4, kernel = 3, padding = 1 }] }"));

    // The exported pipeline rebuilds the same network: same parameter count, same accuracy.
    const dsk::JsonValue summary = dsk::json_parse(read_text(s.run / "summary.json"));
    const dsk::JsonValue& results = *summary.find("stages")->items.at(0).find("results");
    const Result retrain = run_dsk("run " + (s.study / "best.toml").string() + " --run-dir " + (s.temp.path / "retrain").string());
    INFO(retrain.output);
    REQUIRE(retrain.code == 0);
    const dsk::JsonValue again = dsk::json_parse(read_text(s.temp.path / "retrain" / "summary.json"));
    const dsk::JsonValue& retrained = *again.find("stages")->items.at(0).find("results");
    CHECK(retrained.find("parameters")->number == results.find("best_architecture_parameters")->number);
    CHECK(retrained.find("test_accuracy")->number == doctest::Approx(results.find("best_objective")->number));
}

TEST_CASE("enqueued configurations run first, are marked, and a wrong one is refused naming its entry") {
    Study s;
    const Result r = s.start(std::string("trials = 3\nstrategy = { name = \"tpe\", startup_trials = 1 }\nseed = 3\n"
                                         "enqueue = [{ lr = 0.005 }, { lr = 0.002 }]\n") + kLrSpace);
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(has(r.output, "trial 0 started (enqueued): lr=0.005"));
    CHECK(has(r.output, "trial 1 started (enqueued): lr=0.002"));
    const dsk::JsonValue trials = s.trials();
    REQUIRE(trials.items.size() == 3);
    CHECK(trials.items[0].find("params")->find("lr")->number == 0.005);
    CHECK(trials.items[0].find("enqueued")->boolean);
    CHECK(trials.items[1].find("enqueued")->boolean);
    CHECK_FALSE(trials.items[2].find("enqueued")->boolean);
    CHECK(has(read_text(s.study / "journal.jsonl"), "\"params\": {\"lr\": 0.005}, \"enqueued\": true}"));

    for (const auto& [entry, message] : {std::pair<std::string, std::string>{"{ lr = 0.5 }", "enqueue[0]: 'lr' = 0.5 is outside"},
                                         {"{ lrr = 0.005 }", "enqueue[0] sets 'lrr', which is not in the space (lr)"},
                                         {"0.005", "enqueue[0]: expected a table of parameter values"}}) {
        Study bad;
        std::ofstream(bad.temp.path / "base.toml") << kBase;
        std::ofstream(bad.temp.path / "hpo.toml") << "[[stages]]\nkind = \"hpo\"\npipeline = \"base.toml\"\nenqueue = [" << entry << "]\n"
                                                  << kLrSpace;
        const Result v = run_dsk("validate " + (bad.temp.path / "hpo.toml").string());
        CAPTURE(v.output);
        CHECK(v.code == 2);
        CHECK(has(v.output, "stage 'hpo' (hpo)." + message));
    }
}

TEST_CASE("resume replays enqueued trials through add_trial and runs the entries not yet started") {
    Study s;
    REQUIRE(s.start(std::string("trials = 3\nstrategy = { name = \"tpe\", startup_trials = 1 }\nseed = 5\n"
                                "enqueue = [{ lr = 0.004 }, { lr = 0.003 }]\n") +
                    kLrSpace)
                .code == 0);
    // As if the study had been killed right after it started enqueued trial 1: the journal ends
    // with its suggest event.
    const fs::path journal = s.study / "journal.jsonl";
    std::string kept;
    std::ifstream in(journal);
    for (std::string line; std::getline(in, line);) {
        kept += line + "\n";
        if (has(line, "\"event\": \"suggest\", \"trial\": 1,")) break;
    }
    in.close();
    std::ofstream(journal, std::ios::trunc) << kept;

    const Result r = run_dsk("run --resume " + s.run.string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(has(r.output, "2 trial(s) known, 1 to run again"));
    CHECK(has(r.output, "trial 1 resumed"));
    CHECK(has(r.output, "trial 2 started: lr="));
    CHECK_FALSE(has(r.output, "did not suggest"));  // replayed enqueued trials are not suggestions
    const dsk::JsonValue trials = s.trials();
    REQUIRE(trials.items.size() == 3);
    CHECK(trials.items[1].find("enqueued")->boolean);
    CHECK(trials.items[1].find("params")->find("lr")->number == 0.003);
    for (size_t k = 0; k < 3; ++k) CHECK(state_of(trials, k) == "complete");
}

TEST_CASE("a strategy built for ABI 1.1 (no add_trial) runs enqueued trials without learning from them, with a warning") {
    Study s;
    const Result r = s.start(std::string("trials = 2\nstrategy = { name = \"old-random\" }\nenqueue = [{ lr = 0.004 }]\n") + kLrSpace,
                             "hpo", "--plugin-path " + std::string(DSK_OLD_SEARCH_DIR) + " ");
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(has(r.output, "strategy 'old-random' has no add_trial (a plugin built for dsk ABI 1.1 or older)"));
    CHECK(has(r.output, "trial 0 started (enqueued): lr=0.004"));
    const dsk::JsonValue trials = s.trials();
    REQUIRE(trials.items.size() == 2);
    for (size_t k = 0; k < 2; ++k) CHECK(state_of(trials, k) == "complete");
}

namespace {

// j's member `key`; the test stops (rather than crash) when there is none.
const dsk::JsonValue& at(const dsk::JsonValue& j, const char* key) {
    const dsk::JsonValue* v = j.find(key);
    REQUIRE_MESSAGE(v != nullptr, "no '" << key << "'");
    return *v;
}

// The results of the study stage in summary.json.
dsk::JsonValue study_results(const Study& s) {
    const dsk::JsonValue summary = dsk::json_parse(read_text(s.run / "summary.json"));
    return *summary.find("stages")->items.at(0).find("results");
}

// The train stage's results of a run directory (a trial's or a finalist's).
dsk::JsonValue train_results(const fs::path& run) {
    const dsk::JsonValue summary = dsk::json_parse(read_text(run / "summary.json"));
    return *summary.find("stages")->items.at(0).find("results");
}

// How many times a log's command ran (each run writes its command line first).
size_t runs_in(const fs::path& log) {
    const std::string text = read_text(log);
    size_t n = 0;
    for (size_t at = text.find("$ "); at != std::string::npos; at = text.find("$ ", at + 1)) ++n;
    return n;
}

// Finalists whose ranking the retrain settings reverse. The objective is the trial's `steps`
// (epochs x batches), a result known in advance: trials hold out a quarter of the 512 images (384
// trained on); trial 0 (batch 64, 3 epochs) has 18 steps, trial 1 (batch 32, 1 epoch) 12, so the
// search ranks trial 0 first. The finalists train 1 epoch (retrain) on 384 images again
// (finalist_overrides keep the split): trial 0 then has 6 steps, trial 1 12: trial 1 wins.
const char* const kFinalistStudy = R"(trials = 2
objective = "steps"
strategy = { name = "random" }
finalists = 2
overrides = ["stages.train.validation_fraction=0.25"]
retrain = ["stages.train.epochs=1", "stages.train.validation_fraction=0"]
finalist_overrides = ["stages.train.validation_fraction=0.25"]
enqueue = [{ batch_size = 64, epochs = 3 }, { batch_size = 32, epochs = 1 }]
[stages.space]
batch_size = { key = "stages.train.batch_size", type = "categorical", choices = [32, 64] }
epochs = { key = "stages.train.epochs", type = "categorical", choices = [1, 3] }
)";

}  // namespace

TEST_CASE("a study selecting on validation_accuracy: trials hold out a split, and each epoch's validation_accuracy is reported") {
    Study s;
    const Result r = s.start(std::string("trials = 2\nworkers = 2\nobjective = \"validation_accuracy\"\nstrategy = { name = \"random\" }\n"
                                         "scheduler = { name = \"median\", startup_trials = 100 }\nseed = 1\n"
                                         "overrides = [\"stages.train.validation_fraction=0.25\"]\n") +
                             kLrSpace);
    INFO(r.output);
    REQUIRE(r.code == 0);
    const dsk::JsonValue trials = s.trials();
    REQUIRE(trials.items.size() == 2);
    // The journal's report events: (trial, step) -> value.
    std::map<std::pair<int, int>, double> reported;
    std::ifstream journal(s.study / "journal.jsonl");
    for (std::string line; std::getline(journal, line);) {
        const dsk::JsonValue e = dsk::json_parse(line);
        if (at(e, "event").string == "report")
            reported[{static_cast<int>(at(e, "trial").number), static_cast<int>(at(e, "step").number)}] = at(e, "value").number;
    }
    for (const char* trial : {"0000", "0001"}) {
        CAPTURE(trial);
        const dsk::JsonValue results = train_results(s.study / "trials" / trial);
        CHECK(at(results, "validation_samples").number == 128);
        const double id = trial[3] - '0';
        CHECK(at(trials.items.at(static_cast<size_t>(id)), "objective").number == at(results, "validation_accuracy").number);
        // The scheduler was told the validation accuracy of every epoch, as the trial wrote it.
        const dsk::JsonValue& by_epoch = at(results, "validation_accuracy_by_epoch");
        REQUIRE(by_epoch.items.size() == 2);
        for (int epoch = 0; epoch < 2; ++epoch) {
            REQUIRE(reported.count({static_cast<int>(id), epoch + 1}));
            CHECK(reported[{static_cast<int>(id), epoch + 1}] == doctest::Approx(by_epoch.items[static_cast<size_t>(epoch)].number));
        }
    }
}

TEST_CASE("finalists: the best trials are retrained, and the one with the best finalist objective is exported, not the search's best") {
    Study s;
    const Result r = s.start(kFinalistStudy);
    INFO(r.output);
    REQUIRE(r.code == 0);
    const dsk::JsonValue results = study_results(s);
    CHECK(at(results, "search_best_trial").number == 0);
    CHECK(at(results, "best_trial").number == 1);
    CHECK(at(results, "best_objective").number == 12);
    CHECK(at(results, "best_finalist_objective").number == 12);
    const dsk::JsonValue& finalists = at(results, "finalists");
    CHECK(at(at(finalists, "0000"), "search_objective").number == 18);
    CHECK(at(at(finalists, "0000"), "objective").number == 6);
    CHECK(at(at(finalists, "0001"), "search_objective").number == 12);
    CHECK(at(at(finalists, "0001"), "objective").number == 12);
    CHECK(at(at(finalists, "0001"), "state").string == "complete");
    CHECK(has(read_text(s.study / "finalists.json"), "{\"trial\": 1, \"state\": \"complete\", \"search_objective\": 12.0, \"objective\": 12.0"));
    CHECK(has(r.output, "finalists: #0 #1"));
    CHECK(has(r.output, "trial  state     search_obj  finalist_obj  wall_s"));
    CHECK(has(r.output, "    0  complete     18.0000        6.0000"));
    CHECK(has(r.output, "    1  complete     12.0000       12.0000"));
    CHECK(has(r.output, "<- exported"));

    // A finalist trains with the retrain settings and keeps the validation split; the export
    // trains on every image (validation_fraction = 0 from retrain).
    const std::string finalist = read_text(s.study / "finalists" / "0000" / "config.toml");
    CHECK(has(finalist, "validation_fraction = 0.25\n"));
    CHECK(has(finalist, "epochs = 1\n"));
    const std::string best = read_text(s.study / "best.toml");
    CHECK(has(best, "(trial 1, steps = 12.0)"));
    CHECK(has(best, "Chosen among the finalists"));
    CHECK(has(best, "validation_fraction = 0\n"));
    CHECK(has(best, "batch_size = 32\n"));
}

TEST_CASE("resuming a study keeps its finished finalists and resumes the unfinished one") {
    Study s;
    REQUIRE(s.start(kFinalistStudy).code == 0);
    // As if the study had been killed while finalist 1 ran: its end never reached the journal.
    const fs::path journal = s.study / "journal.jsonl";
    std::string kept;
    std::ifstream in(journal);
    for (std::string line; std::getline(in, line);)
        if (!has(line, "\"event\": \"finalist\", \"trial\": 1,")) kept += line + "\n";
    in.close();
    std::ofstream(journal, std::ios::trunc) << kept;

    const Result r = run_dsk("run --resume " + s.run.string());
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(has(r.output, "2 trial(s) known, 0 to run again"));
    CHECK(has(r.output, "finalist 1 resumed"));
    CHECK_FALSE(has(r.output, "finalist 0 started"));
    CHECK(runs_in(s.study / "finalists" / "0000.log") == 1);
    CHECK(runs_in(s.study / "finalists" / "0001.log") == 2);
    CHECK(runs_in(s.study / "trials" / "0000.log") == 1);
    CHECK(at(study_results(s), "best_trial").number == 1);
    CHECK(at(at(at(study_results(s), "finalists"), "0000"), "objective").number == 6);
}

TEST_CASE("a crashing finalist fails only itself: the other finalist is exported") {
    Study s;
    // Trial 0 (batch 300, 10 epochs: 10 steps on 384 images) leads the search before trial 1
    // (batch 64, 1 epoch: 6 steps). The finalists hold out half of the 512 images: 256 are too
    // few for a batch of 300, so finalist 0 fails; finalist 1 trains 4 steps and is exported.
    const Result r = s.start(R"(trials = 2
objective = "steps"
strategy = { name = "random" }
finalists = 2
workers = 2
overrides = ["stages.train.validation_fraction=0.25"]
retrain = ["stages.train.epochs=1", "stages.train.validation_fraction=0"]
finalist_overrides = ["stages.train.validation_fraction=0.5"]
enqueue = [{ batch_size = 300, epochs = 10 }, { batch_size = 64, epochs = 1 }]
[stages.space]
batch_size = { key = "stages.train.batch_size", type = "categorical", choices = [64, 300] }
epochs = { key = "stages.train.epochs", type = "categorical", choices = [1, 10] }
)");
    INFO(r.output);
    REQUIRE(r.code == 0);
    const dsk::JsonValue results = study_results(s);
    CHECK(at(results, "search_best_trial").number == 0);
    const dsk::JsonValue& finalists = at(results, "finalists");
    CHECK(at(at(finalists, "0000"), "state").string == "failed");
    CHECK(has(at(at(finalists, "0000"), "error").string, "exceeds the 256 training samples"));
    CHECK(at(at(finalists, "0001"), "state").string == "complete");
    CHECK(at(at(finalists, "0001"), "objective").number == 4);
    CHECK(at(results, "best_trial").number == 1);
    CHECK(has(read_text(s.study / "best.toml"), "(trial 1, steps = 6.0)"));
}

TEST_CASE("finalist_budget must leave the search time of timeout, and the message says what to change") {
    test_support::TempDir temp{"dsk-hpo-tests"};
    std::ofstream(temp.path / "base.toml") << kBase;
    std::ofstream(temp.path / "hpo.toml") << "[[stages]]\nkind = \"hpo\"\npipeline = \"base.toml\"\nfinalists = 2\ntimeout = 600.0\n"
                                             "finalist_budget = 600.0\n" << kLrSpace;
    const Result v = run_dsk("validate " + (temp.path / "hpo.toml").string());
    CHECK(v.code == 2);
    CHECK(has(v.output, "finalist_budget = 600.0 leaves the search no time of timeout = 600.0: lower finalist_budget"));
}

TEST_CASE("finalist_budget comes out of the search's time: no trial starts after timeout - finalist_budget") {
    Study s;
    // The search may start trials for the first 0.1 s of the 30: only the first one starts (one
    // worker, and a trial takes longer), where 30 s would run all 4.
    const Result r = s.start(std::string("trials = 4\ntimeout = 30.0\nfinalists = 2\nfinalist_budget = 29.9\n"
                                         "strategy = { name = \"random\" }\n") +
                             kLrSpace);
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(s.trials().items.size() == 1);
    CHECK(has(r.output, "1 trial(s) with a result: no finalists to compare"));
}
