// The dsk command line, run as a user runs it: output and exit codes of every command.
#include <doctest/doctest.h>

#include "temp_dir.h"  // tests/support

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

namespace {

struct Result {
    int code;
    std::string output;  // stdout and stderr together
};

// Runs a shell command line (stdout+stderr captured) and returns its exit code and output.
Result shell(const std::string& command) {
    FILE* pipe = popen(("( " + command + " ) 2>&1").c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string out;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
    int status = pclose(pipe);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

Result dsk(const std::string& args) { return shell(std::string("'") + DSK_EXE + "' " + args); }

const std::string kFakes = DSK_FAKE_PLUGINS_DIR;
const std::string kConfigs = std::string(DSK_SOURCE_DIR) + "/configs";

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

struct TempDir : test_support::TempDir {
    TempDir() : test_support::TempDir("dsk-cli-tests") {}
};

}  // namespace

TEST_CASE("help - version and usage errors") {
    Result r = dsk("--help");
    CHECK(r.code == 0);
    CHECK(has(r.output, "usage: dsk"));
    CHECK(has(r.output, "plugins list"));
    CHECK(has(r.output, "DSK_PLUGIN_PATH"));
    r = dsk("--version");
    CHECK(r.code == 0);
    CHECK(has(r.output, "dsk 0.1.0 (plugin ABI 1.3)"));
    CHECK(dsk("").code == 2);
    r = dsk("frobnicate");
    CHECK(r.code == 2);
    CHECK(has(r.output, "unknown command 'frobnicate'"));
    CHECK(dsk("--frob").code == 2);
    CHECK(dsk("plugins frob").code == 2);
    CHECK(dsk("devices extra").code == 2);
    CHECK(dsk("run").code == 2);
    CHECK(dsk("run a.toml --bogus").code == 2);
}

TEST_CASE("plugins list shows every plugin found - and why a broken one failed") {
    Result r = dsk("plugins list");
    CHECK(r.code == 0);
    CHECK(has(r.output, "NAME"));
    CHECK(has(r.output, "cpu"));
    CHECK(has(r.output, "device:cpu"));
    CHECK(has(r.output, "stage:env"));
    CHECK(has(r.output, "loaded"));
    r = dsk("--plugin-path " + kFakes + "/mixed plugins list");
    CHECK(r.code == 0);
    CHECK(has(r.output, "good"));
    CHECK(has(r.output, "failed"));
    CHECK(has(r.output, "why: ABI major mismatch"));
    CHECK(has(r.output, "libfake_dependency.so: cannot open shared object file"));
}

TEST_CASE("plugins info NAME") {
    Result r = dsk("plugins info cpu");
    CHECK(r.code == 0);
    CHECK(has(r.output, "provides:  device:cpu"));
    CHECK(has(r.output, "abi:       1.3"));
    CHECK(has(r.output, "device:    cpu#0"));
    r = dsk("plugins info nope");
    CHECK(r.code == 1);
    CHECK(has(r.output, "no plugin named 'nope'"));
    r = dsk("--plugin-path " + kFakes + "/single/init_fails plugins info init-fails");
    CHECK(r.code == 1);
    CHECK(has(r.output, "why:       init failed (UNAVAILABLE): fake license check failed"));
    CHECK(dsk("plugins info").code == 2);
}

TEST_CASE("DSK_PLUGIN_PATH is searched") {
    Result r = shell("DSK_PLUGIN_PATH=" + kFakes + "/echo '" + DSK_EXE + "' plugins info echo");
    CHECK(r.code == 0);
    CHECK(has(r.output, "version:   1.2.0"));
}

TEST_CASE("devices lists each device with its score") {
    Result r = dsk("devices");
    CHECK(r.code == 0);
    CHECK(has(r.output, "cpu#0"));
    CHECK(has(r.output, "SCORE"));
    CHECK(has(r.output, "usable"));
}

TEST_CASE("doctor: exit 0 on a clean tree - 1 with every reason on a broken one") {
    Result r = dsk("doctor");
    CHECK(r.code == 0);
    CHECK(has(r.output, "plugin search path, in order:"));
    CHECK(has(r.output, "ok     cpu"));
    r = dsk("--plugin-path " + kFakes + "/mixed --plugin-path " + kFakes + "/single/manifest_abi --plugin-path " +
            kFakes + "/single/no_entry --plugin-path " + kFakes + "/single/version_mismatch --plugin-path " +
            kFakes + "/single/init_throws --plugin-path " + kFakes + "/requires doctor");
    CHECK(r.code == 1);
    CHECK(has(r.output, "FAILED abi-major"));
    CHECK(has(r.output, "built for dsk ABI 2.0, this kernel implements ABI 1.3"));
    CHECK(has(r.output, "libfake_dependency.so: cannot open shared object file: No such file or directory"));
    CHECK(has(r.output, "fake license check failed"));
    CHECK(has(r.output, "works with dsk ABI >=2.0, <3"));
    CHECK(has(r.output, "does not export dsk_plugin_query"));
    CHECK(has(r.output, "disagrees with the library's descriptor"));
    CHECK(has(r.output, "cannot open /dev/fake-npu0: device busy"));
    CHECK(has(r.output, "requires 'base' >=2.0"));
    CHECK(has(r.output, "ok     good"));
}

TEST_CASE("validate: 0 for a valid pipeline - 2 with the messages for an invalid one") {
    Result r = dsk("validate " + kConfigs + "/env.toml");
    CHECK(r.code == 0);
    CHECK(has(r.output, "env.toml: valid"));
    TempDir t;
    std::ofstream(t.path / "bad.toml") << "[[stages]]\nkind = \"env\"\ninclude_plugin = true\nmin_usable_devices = -1\n";
    r = dsk("validate " + (t.path / "bad.toml").string());
    CHECK(r.code == 2);
    CHECK(has(r.output, "bad.toml:3:1: stages[0] (env): unknown key 'include_plugin'; did you mean 'include_plugins'?"));
    CHECK(has(r.output, "min_usable_devices = -1 is out of range [0, 1024]"));
    r = dsk("validate " + kConfigs + "/env.toml --set stages.report.min_usable_devices=lots");
    CHECK(r.code == 2);
    CHECK(has(r.output, "--set stages.report.min_usable_devices=lots"));
    CHECK(dsk("validate /nonexistent.toml").code == 2);
}

TEST_CASE("validate --print-config prints the resolved pipeline: overrides applied, defaults filled in") {
    Result r = dsk("validate " + kConfigs + "/env.toml --set stages.report.min_usable_devices=2 --print-config");
    CHECK(r.code == 0);
    CHECK(!has(r.output, "valid"));
    CHECK(has(r.output, "[[stages]]"));
    CHECK(has(r.output, "min_usable_devices = 2"));
    CHECK(has(r.output, "file = '" + kConfigs + "/env.toml'"));  // [pipeline] file: where relative paths start
    // What it prints validates again to the same text.
    TempDir t;
    std::ofstream(t.path / "resolved.toml") << r.output;
    const Result again = dsk("validate " + (t.path / "resolved.toml").string() + " --print-config");
    CHECK(again.code == 0);
    CHECK(again.output == r.output);
    CHECK(dsk("validate " + kConfigs + "/env.toml --set stages.report.min_usable_devices=lots --print-config").code == 2);
}

TEST_CASE("run: the env pipeline writes its run directory - --dry-run writes nothing") {
    TempDir t;
    std::string run_dir = (t.path / "run").string();
    Result r = dsk("run " + kConfigs + "/env.toml --run-dir " + run_dir);
    CHECK(r.code == 0);
    CHECK(has(r.output, "run finished: " + run_dir + "/summary.json"));
    for (const char* file : {"config.toml", "log.txt", "metrics.jsonl", "summary.json"})
        CHECK_MESSAGE(fs::exists(fs::path(run_dir) / file), file);
    r = dsk("run " + kConfigs + "/env.toml --run-dir " + run_dir);
    CHECK(r.code != 0);
    CHECK(has(r.output, "already exists and is not empty"));
    r = dsk("run " + kConfigs + "/env.toml --dry-run --run-dir " + (t.path / "dry").string());
    CHECK(r.code == 0);
    CHECK(has(r.output, "nothing run (dry run)"));
    CHECK_FALSE(fs::exists(t.path / "dry"));
    r = dsk("run " + kConfigs + "/env.toml --set stages.report.min_usable_devices=5 --run-dir " +
            (t.path / "fail").string());
    CHECK(r.code == 1);
    CHECK(has(r.output, "fewer than min_usable_devices = 5"));
    CHECK_FALSE(has(r.output, "terminate called"));  // what an escaped C++ exception prints
}

TEST_CASE("Ctrl-C during a run cancels it cleanly with exit code 130") {
    TempDir t;
    std::ofstream(t.path / "wait.toml") << "[plugins]\npath = [\"" << kFakes
                                        << "/echo\"]\n[[stages]]\nkind = \"echo\"\nmessage = \"x\"\nwait_for_stop = true\n";
    const std::string run_dir = (t.path / "run").string();
    Result r = shell("'" + std::string(DSK_EXE) + "' run " + (t.path / "wait.toml").string() + " --run-dir " + run_dir +
                     " & pid=$!; for i in $(seq 200); do grep -q 'waiting for a stop' " + run_dir +
                     "/log.txt 2>/dev/null && break; sleep 0.1; done; kill -INT $pid; wait $pid");
    CHECK(r.code == 130);
    CHECK(has(r.output, "was cancelled"));
    std::ifstream summary(run_dir + "/summary.json");
    std::string text((std::istreambuf_iterator<char>(summary)), std::istreambuf_iterator<char>());
    CHECK(has(text, "\"status\" : \"cancelled\""));
}

TEST_CASE("dsk run --resume continues a stopped training run from its checkpoint") {
    TempDir t;
    // 3 epochs of 500 batches (about 0.1 s each here): Ctrl-C after the first lands mid-training.
    std::ofstream(t.path / "train.toml")
        << "[[stages]]\nkind = \"train\"\nepochs = 3\nbatch_size = 32\nlog_every = 1\n"
           "model = { name = \"mlp\", hidden = [16] }\ntrain_data = { split = \"train\", limit = 16000 }\n";
    const std::string run_dir = (t.path / "run").string();
    // Ctrl-C once training is under way (the checkpoint of epoch 1 is on disk).
    Result r = shell("'" + std::string(DSK_EXE) + "' run " + (t.path / "train.toml").string() + " --run-dir " + run_dir +
                     " & pid=$!; for i in $(seq 1500); do [ -f " + run_dir +
                     "/train/checkpoints/epoch-0001.safetensors ] && break; sleep 0.01; done; kill -INT $pid; wait $pid");
    INFO(r.output.substr(r.output.size() > 2000 ? r.output.size() - 2000 : 0));
    REQUIRE(r.code == 130);
    CHECK(has(r.output, "dsk run --resume " + run_dir));
    CHECK(fs::exists(run_dir + "/train/checkpoints/last.safetensors"));
    r = dsk("run --resume " + run_dir);
    CHECK(r.code == 0);
    CHECK(has(r.output, "resuming in run directory " + run_dir));
    CHECK(has(r.output, "resuming from " + run_dir + "/train/checkpoints/last.safetensors"));
    std::ifstream summary(run_dir + "/summary.json");
    std::string text((std::istreambuf_iterator<char>(summary)), std::istreambuf_iterator<char>());
    CHECK(has(text, "\"status\" : \"ok\""));
    CHECK(has(text, "\"steps\" : 1500"));  // 3 epochs of 500 batches, none repeated or lost
    CHECK(dsk("run --resume " + (t.path / "nothing").string()).code != 0);
}
