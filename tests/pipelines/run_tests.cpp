// Runs write a complete run directory: resolved config, log, metrics and summary, whatever the
// outcome; an existing run is never overwritten; dry runs create nothing; a stop request cancels.
#include <doctest/doctest.h>

#include <thread>

#include "pipeline_fixture.h"

namespace fs = std::filesystem;

TEST_CASE("a run writes config.toml - log.txt - metrics.jsonl and summary.json") {
    PipelineFixture f;
    dsk::Kernel kernel;
    dsk::RunOptions o;
    o.pipeline_path = f.write("[pipeline]\nname = \"greeting\"\n[[stages]]\nkind = \"echo\"\nmessage = \"hello\"\n"
                              "count = 2\n[[stages]]\nkind = \"env\"\n[devices]\nprefer = [\"cpu\"]\n");
    o.overrides = {"stages.echo.mode=slow"};
    o.run_dir = (f.dir / "run").string();
    std::vector<std::string> lines;
    o.on_log = [&](dsk_log_level, const std::string& line) { lines.push_back(line); };
    kernel.run(o);
    CHECK(kernel.last_run_dir() == o.run_dir);

    std::string config = read_file(f.dir / "run" / "config.toml");
    CHECK(has(config, "mode = 'slow'"));   // the override
    CHECK(has(config, "ratio = 0.5"));     // a default filled in
    CHECK(has(config, "name = 'env'"));    // a generated stage name
    std::string summary = read_file(f.dir / "run" / "summary.json");
    CHECK(has(summary, "\"status\" : \"ok\""));
    CHECK(has(summary, "\"pipeline\" : \"greeting\""));
    CHECK(has(summary, "\"message\" : \"hello\""));
    CHECK(has(summary, "\"late_registration_code\" : 8"));  // DSK_FAILED_PRECONDITION
    CHECK(has(summary, "\"echo\" : \"1.2.0\""));  // plugin versions used
    CHECK(has(summary, "\"cpu\" : \"0.1.0\""));
    CHECK(has(summary, "\"wall_time_s\""));
    CHECK(has(summary, "\"devices_usable\" : 1"));
    std::string metrics = read_file(f.dir / "run" / "metrics.jsonl");
    CHECK(has(metrics, "{\"stage\": \"echo\", \"name\": \"count\", \"step\": 1, \"value\": 2,"));
    CHECK(has(metrics, "\"name\": \"devices_usable\""));
    CHECK(has(read_file(f.dir / "run" / "log.txt"), "[echo] hello"));
    CHECK(std::count(lines.begin(), lines.end(), "[echo] hello") == 2);
    CHECK_FALSE(fs::exists(f.dir / "run" / "summary.json.tmp"));
}

TEST_CASE("a failing stage leaves a summary that says failed - and skips the rest") {
    PipelineFixture f;
    dsk::Kernel kernel;
    dsk::RunOptions o;
    o.pipeline_path = f.write("[[stages]]\nkind = \"echo\"\nmessage = \"x\"\nfail = true\n"
                              "[[stages]]\nkind = \"echo\"\nmessage = \"never\"\n");
    o.run_dir = (f.dir / "run").string();
    try {
        kernel.run(o);
        FAIL("expected the run to fail");
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_DATA_LOSS);
        CHECK(has(e.what(), "stage 'echo' (echo, plugin echo 1.2.0) failed: echo was asked to fail"));
        CHECK(has(e.what(), o.run_dir));
    }
    std::string summary = read_file(f.dir / "run" / "summary.json");
    CHECK(has(summary, "\"status\" : \"failed\""));
    CHECK(has(summary, "\"status\" : \"skipped\""));
    CHECK(has(summary, "echo was asked to fail"));
}

TEST_CASE("an earlier run is never overwritten") {
    PipelineFixture f;
    dsk::Kernel kernel;
    dsk::RunOptions o;
    o.pipeline_path = f.write("[[stages]]\nkind = \"echo\"\nmessage = \"x\"\n");
    o.run_dir = (f.dir / "run").string();
    kernel.run(o);
    std::string before = read_file(f.dir / "run" / "summary.json");
    try {
        kernel.run(o);
        FAIL("expected a refusal");
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_ALREADY_EXISTS);
        CHECK(has(e.what(), "already exists and is not empty"));
    }
    CHECK(read_file(f.dir / "run" / "summary.json") == before);
}

TEST_CASE("default run directories are runs/<pipeline>-<timestamp> - never reused") {
    PipelineFixture f;
    fs::path cwd = fs::current_path();
    fs::current_path(f.dir);
    dsk::Kernel kernel;
    dsk::RunOptions o;
    o.pipeline_path = f.write("[pipeline]\nname = \"twice\"\n[[stages]]\nkind = \"echo\"\nmessage = \"x\"\n");
    kernel.run(o);
    std::string first = kernel.last_run_dir();
    kernel.run(o);
    std::string second = kernel.last_run_dir();
    fs::current_path(cwd);
    CHECK(first != second);
    CHECK(has(first, (f.dir / "runs" / "twice-").string()));
    CHECK(fs::exists(fs::path(second) / "summary.json"));
}

TEST_CASE("a dry run validates and plans but writes nothing") {
    PipelineFixture f;
    dsk::Kernel kernel;
    dsk::RunOptions o;
    o.pipeline_path = f.write("[[stages]]\nkind = \"echo\"\nmessage = \"x\"\n");
    o.run_dir = (f.dir / "run").string();
    o.dry_run = true;
    std::string plan;
    o.on_log = [&](dsk_log_level, const std::string& line) { plan += line + "\n"; };
    kernel.run(o);
    CHECK_FALSE(fs::exists(f.dir / "run"));
    CHECK(has(plan, "1. echo: stage kind 'echo' from plugin echo 1.2.0"));
    CHECK(has(plan, "count = 1"));
}

TEST_CASE("a stop request cancels the running stage and the summary says so") {
    PipelineFixture f;
    dsk::Kernel kernel;
    dsk::RunOptions o;
    o.pipeline_path = f.write("[[stages]]\nkind = \"echo\"\nmessage = \"x\"\nwait_for_stop = true\n");
    o.run_dir = (f.dir / "run").string();
    o.on_log = [&](dsk_log_level, const std::string& line) {
        if (has(line, "waiting for a stop request")) kernel.request_stop();  // as a SIGINT handler would
    };
    try {
        kernel.run(o);
        FAIL("expected a cancellation");
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_CANCELLED);
    }
    std::string summary = read_file(f.dir / "run" / "summary.json");
    CHECK(has(summary, "\"status\" : \"cancelled\""));
    CHECK(has(summary, "\"stopped\" : true"));
}
