// Small real training runs on the packaged Fashion-MNIST (a few hundred images): the loss falls,
// runs are bitwise reproducible, a stopped run resumes to exactly the weights of an uninterrupted
// one, checkpoints evaluate to the accuracy the training reported, bad data files are named.
#include <doctest/doctest.h>

#include "error_of.h"

#include <cmath>

#include "dsk/dsk_json.hpp"

#include "pipeline_fixture.h"
#include "../../plugins/train/sample_order.h"

namespace fs = std::filesystem;
using dsk::train::split_for_validation;
using dsk::train::ValidationSplit;

namespace {

const char* kFashion = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";

// A train stage on the first `limit` images, with a test set of 200. Dropout and augmentation
// are on, so that determinism and resume cover the session's run counter (dropout) and the
// augmentation seeds, not only shuffling.
std::string tiny_training(int epochs, const std::string& extra = "") {
    return "[[stages]]\nkind = \"train\"\nname = \"train\"\nepochs = " + std::to_string(epochs) +
           "\nbatch_size = 32\nseed = 7\nlog_every = 2\ncheckpoint_every = 1\n"
           "model = { name = \"mlp\", hidden = [32], dropout = 0.2 }\n"
           "optimizer = { name = \"adam\", lr = 0.003 }\n"
           "train_data = { split = \"train\", limit = 320, random_crop_padding = 2, horizontal_flip = true }\n"
           "test_data = { split = \"test\", limit = 200 }\n" +
           extra;
}

std::vector<double> metric_values(const fs::path& run, const std::string& name) {
    std::vector<double> out;
    std::ifstream in(run / "metrics.jsonl");
    std::string line;
    const std::string key = "\"name\": \"" + name + "\"";
    while (std::getline(in, line))
        if (has(line, key)) out.push_back(std::stod(line.substr(line.find("\"value\": ") + 9)));
    return out;
}

// The text of a result in summary.json: a number, or an array with its brackets.
std::string summary_value(const fs::path& run, const std::string& key) {
    const std::string summary = read_file(run / "summary.json");
    const size_t at = summary.find("\"" + key + "\" : ");
    if (at == std::string::npos) return "(no " + key + ")";
    const size_t begin = at + key.size() + 5;
    const size_t end = summary[begin] == '[' ? summary.find(']', begin) + 1 : summary.find_first_of(",\n", begin);
    return summary.substr(begin, end - begin);
}

dsk::RunOptions options(const PipelineFixture& f, const std::string& body, const std::string& run) {
    dsk::RunOptions o;
    o.pipeline_path = f.write(body);
    o.run_dir = (f.dir / run).string();
    return o;
}

// One epoch of `model` on 160 training images (batch 32, Adam, seed 3), tested on 100.
std::string short_training(const std::string& model) {
    return "[[stages]]\nkind = \"train\"\nname = \"train\"\nepochs = 1\nbatch_size = 32\nseed = 3\n" + model +
           "optimizer = { name = \"adam\", lr = 0.003 }\n"
           "train_data = { split = \"train\", limit = 160 }\ntest_data = { split = \"test\", limit = 100 }\n";
}

// Runs `head` + `stages` twice: compiled plans into run "graph", execution = "eager" into "eager".
void run_graph_and_eager(dsk::Kernel& kernel, const PipelineFixture& f, const std::string& head,
                         const std::string& stages) {
    kernel.run(options(f, head + stages, "graph"));
    kernel.run(options(f, head + "[pipeline]\nexecution = \"eager\"\n" + stages, "eager"));
}

}  // namespace

TEST_CASE("a tiny real training run: the loss falls and accuracy beats chance") {
    REQUIRE_MESSAGE(fs::exists(kFashion), "install the Debian package dataset-fashion-mnist (scripts/setup does)");
    PipelineFixture f;
    dsk::Kernel kernel;
    kernel.run(options(f, tiny_training(3), "run"));
    auto losses = metric_values(f.dir / "run", "train_loss");
    REQUIRE(losses.size() == 3);
    CHECK(losses[2] < losses[0]);
    auto accuracy = metric_values(f.dir / "run", "test_accuracy");
    REQUIRE(accuracy.size() == 3);
    CHECK(accuracy.back() > 0.4);  // chance is 0.1
    std::string summary = read_file(f.dir / "run" / "summary.json");
    CHECK(has(summary, "\"test_accuracy\""));
    CHECK(has(summary, "\"confusion_matrix\""));
    CHECK(has(summary, "\"per_class_accuracy\""));
    CHECK(fs::exists(f.dir / "run" / "train" / "checkpoints" / "epoch-0003.safetensors"));
}

TEST_CASE("the same seed gives bitwise the same weights") {
    PipelineFixture f;
    dsk::Kernel kernel;
    kernel.run(options(f, tiny_training(2), "a"));
    kernel.run(options(f, tiny_training(2), "b"));
    const auto a = read_file(f.dir / "a" / "train" / "checkpoints" / "last.safetensors");
    const auto b = read_file(f.dir / "b" / "train" / "checkpoints" / "last.safetensors");
    REQUIRE(a.size() > 1000);
    CHECK(a == b);
    dsk::RunOptions other = options(f, tiny_training(2), "d");
    other.overrides = {"stages.train.seed=8"};
    kernel.run(other);
    CHECK(read_file(f.dir / "d" / "train" / "checkpoints" / "last.safetensors") != a);
}

TEST_CASE("a run stopped mid-epoch resumes to exactly the uninterrupted weights") {
    PipelineFixture f;
    dsk::Kernel kernel;
    kernel.run(options(f, tiny_training(3), "full"));

    dsk::RunOptions o = options(f, tiny_training(3), "stopped");
    int progress_lines = 0;
    o.on_log = [&](dsk_log_level level, const std::string& line) {
        // Stop in the second epoch, between two batches (progress comes every 2 batches).
        if (level == DSK_LOG_PROGRESS && has(line, "epoch 2/3") && ++progress_lines == 2) kernel.request_stop();
    };
    try {
        kernel.run(o);
        FAIL("the run should have been cancelled");
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_CANCELLED);
        CHECK(has(e.what(), "dsk run --resume"));
    }
    CHECK(has(read_file(f.dir / "stopped" / "summary.json"), "\"status\" : \"cancelled\""));
    dsk::RunOptions resume;
    resume.resume_dir = (f.dir / "stopped").string();
    kernel.run(resume);
    CHECK(has(read_file(f.dir / "stopped" / "summary.json"), "\"status\" : \"ok\""));
    CHECK(read_file(f.dir / "stopped" / "train" / "checkpoints" / "last.safetensors") ==
          read_file(f.dir / "full" / "train" / "checkpoints" / "last.safetensors"));
    // The results, too: the history of every epoch, and the stopped epoch's loss over all its
    // batches (from the checkpoint), not only over those after the resume.
    for (const char* key : {"test_accuracy_by_epoch", "test_loss_by_epoch", "train_loss", "steps", "test_accuracy"}) {
        CAPTURE(key);
        CHECK(summary_value(f.dir / "stopped", key) == summary_value(f.dir / "full", key));
    }
    CHECK(summary_value(f.dir / "full", "test_accuracy_by_epoch").size() > 10);  // three numbers
    const auto full_losses = metric_values(f.dir / "full", "train_loss");
    CHECK(full_losses.size() == 3);
    CHECK(metric_values(f.dir / "stopped", "train_loss") == full_losses);
    CHECK(metric_values(f.dir / "stopped", "images_per_second").size() == 3);
}

TEST_CASE("resuming a run that left no checkpoint starts training from scratch and says so") {
    PipelineFixture f;
    dsk::Kernel kernel;
    // checkpoint_every = 0 and a run killed before the end: the stage's folder exists and holds no checkpoint.
    dsk::RunOptions o = options(f, tiny_training(1), "killed");
    o.overrides = {"stages.train.checkpoint_every=0"};
    kernel.run(o);
    fs::remove(f.dir / "killed" / "train" / "checkpoints" / "last.safetensors");
    fs::remove(f.dir / "killed" / "train" / "checkpoints" / "epoch-0001.safetensors");
    std::vector<std::string> lines;
    dsk::RunOptions resume;
    resume.resume_dir = (f.dir / "killed").string();
    resume.on_log = [&](dsk_log_level level, const std::string& line) {
        if (level == DSK_LOG_INFO) lines.push_back(line);
    };
    kernel.run(resume);
    bool said = false;
    for (const auto& line : lines) said = said || has(line, "training starts from scratch");
    CHECK(said);
    CHECK(fs::exists(f.dir / "killed" / "train" / "checkpoints" / "last.safetensors"));
}

TEST_CASE("evaluating the last checkpoint reproduces the accuracy training reported") {
    PipelineFixture f;
    dsk::Kernel kernel;
    kernel.run(options(f, tiny_training(2,
                                        "[[stages]]\nkind = \"evaluate\"\nmodel = { name = \"mlp\", hidden = [32], dropout = 0.2 }\n"
                                        "test_data = { split = \"test\", limit = 200 }\n"),
                       "run"));
    auto accuracy = metric_values(f.dir / "run", "test_accuracy");
    REQUIRE(accuracy.size() == 3);  // two epochs, then the evaluate stage
    CHECK(accuracy[2] == accuracy[1]);
}

TEST_CASE("a checkpoint of another model is refused by name") {
    PipelineFixture f;
    dsk::Kernel kernel;
    kernel.run(options(f, tiny_training(1), "run"));
    dsk::RunOptions o = options(f,
                                "[[stages]]\nkind = \"evaluate\"\ncheckpoint = \"" +
                                    (f.dir / "run" / "train" / "checkpoints" / "last.safetensors").string() +
                                    "\"\nmodel = { name = \"mlp\", hidden = [64] }\ntest_data = { split = \"test\", limit = 50 }\n",
                                "eval");
    try {
        kernel.run(o);
        FAIL("expected a refusal");
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_DATA_LOSS);
        CHECK(has(e.what(), "tensor 'fc1."));
        CHECK(has(e.what(), "the model needs F32 [64"));
    }
}

namespace {

// Writes an IDX file from a header and a body size, every body byte `fill`.
void write_idx(const fs::path& path, uint32_t magic, std::vector<uint32_t> dims, size_t body_bytes, char fill = '\1') {
    std::string bytes;
    auto be = [&](uint32_t v) {
        for (int s = 24; s >= 0; s -= 8) bytes += static_cast<char>((v >> s) & 0xff);
    };
    be(magic);
    for (uint32_t d : dims) be(d);
    bytes += std::string(body_bytes, fill);
    std::ofstream(path, std::ios::binary) << bytes;
}

std::string data_error(const PipelineFixture& f, const std::string& images, const std::string& labels) {
    dsk::Kernel kernel;
    dsk::RunOptions o = options(f,
                                "[[stages]]\nkind = \"train\"\nepochs = 1\nbatch_size = 2\n"
                                "model = { name = \"mlp\", hidden = [4] }\n"
                                "train_data = { name = \"custom\", images = \"" + images + "\", labels = \"" + labels + "\" }\n",
                                "run");
    try {
        kernel.run(o);
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_DATA_LOSS);
        std::string summary = read_file(f.dir / "run" / "summary.json");
        CHECK(has(summary, "\"status\" : \"failed\""));
        CHECK_FALSE(fs::exists(f.dir / "run" / "train" / "checkpoints" / "last.safetensors"));
        return e.what();
    }
    FAIL("bad data was accepted");
    return {};
}

}  // namespace

TEST_CASE("bad data files give named errors and no result") {
    PipelineFixture f;
    const std::string images = (f.dir / "images.idx").string(), labels = (f.dir / "labels.idx").string();
    write_idx(labels, 0x801, {10}, 10);
    SUBCASE("truncated") {
        write_idx(images, 0x803, {10, 28, 28}, 100);
        std::string e = data_error(f, images, labels);
        CHECK(has(e, images));
        CHECK(has(e, "trunc"));
    }
    SUBCASE("wrong magic") {
        write_idx(images, 0x1234, {10, 28, 28}, 10 * 784);
        std::string e = data_error(f, images, labels);
        CHECK(has(e, images));
        CHECK(has(e, "magic"));
    }
    SUBCASE("label and image counts differ") {
        write_idx(images, 0x803, {12, 28, 28}, 12 * 784);
        std::string e = data_error(f, images, labels);
        CHECK(has(e, images + " holds 12 images"));
        CHECK(has(e, labels + " holds 10 labels"));
    }
    SUBCASE("a label outside classes") {  // named before the loss kernel runs into it
        write_idx(images, 0x803, {10, 28, 28}, 10 * 784);
        write_idx(labels, 0x801, {10}, 10, '\x0c');
        std::string e = data_error(f, images, labels);
        CHECK(has(e, "train_data: label 12 of sample"));
        CHECK(has(e, "is outside [0, 10); set `classes`"));
    }
}

TEST_CASE("every model of the zoo builds and trains") {
    const std::vector<std::pair<std::string, std::string>> models = {
        {"mlp", "{ name = \"mlp\", hidden = [16, 8], activation = \"gelu\", dropout = 0.1 }"},
        {"cnn", "{ name = \"cnn\", channels = [4, 8], hidden = 16, batch_norm = true }"},
        {"resnet", "{ name = \"resnet\", depth = 8, width = 4 }"},
        {"mobilenet", "{ name = \"mobilenet_v3_small\", width_multiplier = 0.25 }"},
        {"sequential",
         "{ name = \"sequential\", layers = [{ type = \"conv\", out = 4, kernel = 3, groups = 1 }, { type = \"batchnorm\" }, "
         "{ type = \"hardswish\" }, { type = \"avgpool\", kernel = 2 }, { type = \"dropout\", p = 0.2 }, { type = \"flatten\" }, "
         "{ type = \"linear\", out = 16 }, { type = \"activation\", kind = \"silu\" }, { type = \"linear\" }] }"},
        // Skip connections: a 1x1 projection (1 -> 4 channels, 28 -> 14 pixels), then the identity.
        {"sequential-residual",
         "{ name = \"sequential\", layers = [{ type = \"residual\", layers = [{ type = \"conv\", out = 4 }, "
         "{ type = \"maxpool\", kernel = 2 }] }, { type = \"relu\" }, { type = \"residual\", layers = [{ type = \"conv\", out = 4 }, "
         "{ type = \"batchnorm\" }] }, { type = \"relu\" }, { type = \"flatten\" }, { type = \"linear\" }] }"},
    };
    for (const auto& [name, model] : models) {
        SUBCASE(name.c_str()) {
            PipelineFixture f;
            dsk::Kernel kernel;
            kernel.run(options(f,
                               "[[stages]]\nkind = \"train\"\nepochs = 2\nbatch_size = 16\nmodel = " + model +
                                   "\noptimizer = { name = \"sgd\", lr = 0.05, momentum = 0.9, nesterov = true }\n"
                                   "train_data = { split = \"train\", limit = 64, random_crop_padding = 2, horizontal_flip = true }\n",
                               "run"));
            auto losses = metric_values(f.dir / "run", "train_loss");
            REQUIRE(losses.size() == 2);
            CHECK(std::isfinite(losses[1]));
        }
    }
}

TEST_CASE("a residual block whose output no 1x1 projection can match is refused, naming it") {
    PipelineFixture f;
    dsk::Kernel kernel;
    const dsk::Error e = test_support::error_of([&] {
        kernel.run(options(f,
                           "[[stages]]\nkind = \"train\"\nepochs = 1\nbatch_size = 16\nmodel = { name = \"sequential\", layers = ["
                           "{ type = \"conv\", out = 4 }, { type = \"residual\", layers = [{ type = \"flatten\" }] }, { type = \"linear\" }] }\n"
                           "train_data = { split = \"train\", limit = 64 }\n",
                           "run"));
    });
    CHECK(e.code() == DSK_INVALID_ARGUMENT);
    CHECK(has(e.what(), "model.layers.1: the block turns [16, 4, 28, 28] into [16, 3136]"));
    CHECK(has(e.what(), "a 1x1 projection matches channels and stride"));
}

TEST_CASE("model and optimizer tables are validated against their providers before anything runs") {
    PipelineFixture f;
    dsk::Kernel kernel;
    dsk::RunOptions o = options(f,
                                "[[stages]]\nkind = \"train\"\nmodel = { name = \"mlp\", hiden = [4] }\n"
                                "optimizer = { name = \"adma\" }\n",
                                "run");
    try {
        kernel.validate(o);
        FAIL("expected validation errors");
    } catch (const dsk::Error& e) {
        CHECK(has(e.what(), "unknown key 'hiden'; did you mean 'hidden'?"));
        CHECK(has(e.what(), "no optimizer named 'adma'; did you mean 'adam'?"));
    }
    o = options(f, "[[stages]]\nkind = \"train\"\nmodel = { name = \"mlp\" }\noptimizer = { name = \"sgd\", lr = \"fast\" }\n", "run");
    try {
        kernel.validate(o);
        FAIL("expected validation errors");
    } catch (const dsk::Error& e) {
        CHECK(has(e.what(), "lr: expected number, got string 'fast'"));
    }
    CHECK_FALSE(fs::exists(f.dir / "run"));
}

namespace {

// The tiny training run with [devices] prefer = `prefer` and fallback = `policy`.
std::string with_devices(const std::string& prefer, const std::string& policy) {
    return "[devices]\nprefer = " + prefer + "\nfallback = \"" + policy + "\"\n" + tiny_training(1);
}

// Runs the pipeline and returns the warnings it logged.
std::vector<std::string> warnings_of(dsk::Kernel& kernel, dsk::RunOptions options) {
    std::vector<std::string> warnings;
    options.on_log = [&](dsk_log_level level, const std::string& line) {
        if (level == DSK_LOG_WARNING) warnings.push_back(line);
    };
    kernel.run(options);
    return warnings;
}

}  // namespace

TEST_CASE("device preference falls back only as [devices] fallback allows - never silently") {
    PipelineFixture f;
    const std::string prefer = "[\"fake-npu\", \"cpu\"]";
    dsk::Kernel kernel;
    kernel.add_plugin_path(std::string(DSK_FAKE_PLUGINS_DIR) + "/unusable_backend");
    const dsk::Error e = test_support::error_of([&] { kernel.run(options(f, with_devices(prefer, "error"), "error")); });
    CHECK(e.code() == DSK_UNAVAILABLE);
    CHECK(has(e.what(), "fake-npu: no fake-npu driver is installed"));
    CHECK(has(e.what(), "fallback = \"error\""));
    const auto warnings = warnings_of(kernel, options(f, with_devices(prefer, "warn"), "warn"));
    REQUIRE(!warnings.empty());
    CHECK(has(warnings[0], "running on 'cpu'"));
    CHECK(has(read_file(f.dir / "warn" / "log.txt"), "no usable device for the preferred backend"));
    CHECK(has(read_file(f.dir / "warn" / "summary.json"), "\"status\" : \"ok\""));
    CHECK(warnings_of(kernel, options(f, with_devices(prefer, "allow"), "allow")).empty());
}

TEST_CASE("a partly capable device runs what it can - the rest follows [devices] fallback - and summary.json says where") {
    PipelineFixture f;
    const std::string prefer = "[\"fake-accel\"]";
    dsk::Kernel kernel;
    kernel.add_plugin_path(std::string(DSK_FAKE_PLUGINS_DIR) + "/partial_backend");
    const dsk::Error e = test_support::error_of([&] { kernel.run(options(f, with_devices(prefer, "error"), "error")); });
    CHECK(e.code() == DSK_UNAVAILABLE);
    CHECK(has(e.what(), "fake-accel cannot run"));
    CHECK(has(e.what(), "Gemm"));
    CHECK(has(e.what(), "fallback = \"error\""));
    const auto warnings = warnings_of(kernel, options(f, with_devices(prefer, "warn"), "warn"));
    REQUIRE(!warnings.empty());
    CHECK(has(warnings[0], "fallback: "));
    const std::string summary = read_file(f.dir / "warn" / "summary.json");
    CHECK(has(summary, "\"sessions\""));
    CHECK(has(summary, "\"fake-accel\" : "));  // Relu nodes ran there
    CHECK(has(summary, "\"transfer_bytes_per_run\""));
    CHECK(std::stod(summary_value(f.dir / "warn", "test_accuracy")) > 0.2);  // it trained
}

TEST_CASE("without [devices] ops run on cpu, which outscores onednn - named first, onednn takes the ops it has") {
    PipelineFixture f;
    dsk::Kernel kernel;
    auto sessions = [&](const std::string& run) {
        return *dsk::json_parse(read_file(f.dir / run / "summary.json")).find("stages")->items[0].find("sessions");
    };
    kernel.run(options(f, tiny_training(1), "automatic"));
    const dsk::JsonValue automatic = sessions("automatic");
    REQUIRE(!automatic.items.empty());
    for (const dsk::JsonValue& s : automatic.items) {
        CHECK(s.find("automatic")->boolean);
        // cpu last, as always, and onednn nowhere (a real GPU's backend could come first).
        const std::vector<dsk::JsonValue>& backends = s.find("backends")->items;
        REQUIRE(!backends.empty());
        CHECK(backends.back().string == "cpu");
        for (const dsk::JsonValue& b : backends) CHECK(b.string != "onednn");
        CHECK(s.find("nodes")->find("onednn") == nullptr);
    }
#if DSK_TEST_ONEDNN
    kernel.run(options(f, with_devices("[\"onednn\", \"cpu\"]", "allow"), "named"));
    const dsk::JsonValue named = sessions("named").items.at(0);
    CHECK(named.find("backends")->items.at(0).string == "onednn");
    CHECK(named.find("nodes")->find("onednn")->number > 0);  // the Gemms at least
#endif
}

TEST_CASE("execution = eager gives the results of the compiled plan - summary.json says which ran") {
    PipelineFixture f;
    dsk::Kernel kernel;
    kernel.run(options(f, tiny_training(1), "graph"));
    kernel.run(options(f, "[pipeline]\nexecution = \"eager\"\n" + tiny_training(1), "eager"));
    const double graph_loss = std::stod(summary_value(f.dir / "graph", "test_loss"));
    const double eager_loss = std::stod(summary_value(f.dir / "eager", "test_loss"));
    CHECK(std::abs(graph_loss - eager_loss) <= 1e-5 * std::max(1.0, std::abs(eager_loss)));
    CHECK(has(read_file(f.dir / "eager" / "summary.json"), "\"execution\" : \"eager\""));
    CHECK(has(read_file(f.dir / "graph" / "summary.json"), "\"execution\" : \"graph\""));
    try {
        kernel.validate(options(f, "[pipeline]\nexecution = \"eagre\"\n" + tiny_training(1), "typo"));
        FAIL("a misspelt execution mode must be refused");
    } catch (const dsk::Error& e) {
        CHECK(has(e.what(), "did you mean 'eager'?"));
        CHECK(has(e.what(), "is not one of \"graph\", \"eager\""));
    }
}

TEST_CASE("the optimizer's update in the graph gives bitwise the weights of its host step - its state is checkpointed") {
    PipelineFixture f;
    dsk::Kernel kernel;
    kernel.run(options(f, tiny_training(2), "graph"));
    kernel.run(options(f, tiny_training(2, "update = \"host\"\n"), "host"));
    // Same arithmetic (plugins/optim/update_kernels.cpp): the losses agree to the last digit.
    CHECK(summary_value(f.dir / "graph", "test_loss") == summary_value(f.dir / "host", "test_loss"));
    CHECK(summary_value(f.dir / "graph", "train_loss") == summary_value(f.dir / "host", "train_loss"));
    const std::string checkpoint = read_file(f.dir / "graph" / "train" / "checkpoints" / "last.safetensors");
    CHECK(has(checkpoint, ".adam.state0"));  // Adam's moments live in graph variables
    CHECK(has(checkpoint, ".adam.state1"));
    CHECK_FALSE(has(read_file(f.dir / "host" / "train" / "checkpoints" / "last.safetensors"), ".adam.state0"));
}

// The tiny run on the vulkan backend (lavapipe in CI): every node placed there, the loss falls,
// and the trained weights give the cpu run's accuracy and losses (same seed; Dropout draws the
// same mask on both). Skipped, with the reason, where no usable Vulkan device exists.
TEST_CASE("a tiny training run on vulkan: the loss falls and it learns what the cpu learns") {
    REQUIRE_MESSAGE(fs::exists(kFashion), "install the Debian package dataset-fashion-mnist (scripts/setup does)");
    PipelineFixture f;
    dsk::Kernel kernel;
    kernel.load_all();
    std::string why = "the vulkan plugin did not load";
    bool usable = false;
    for (const auto& d : kernel.devices()) {
        if (d.backend != "vulkan") continue;
        usable = usable || d.score > 0;
        why = d.unusable_reason;
    }
    if (!usable) {
        MESSAGE("skipped: no usable Vulkan device (" << why << ")");
        return;
    }
    const std::string body = "[devices]\nprefer = [\"vulkan\"]\nfallback = \"error\"\n" + tiny_training(3);
    kernel.run(options(f, body, "vulkan"));
    kernel.run(options(f, tiny_training(3), "cpu"));
    const std::string summary = read_file(f.dir / "vulkan" / "summary.json");
    CHECK(has(summary, "\"vulkan\" : "));
    auto losses = metric_values(f.dir / "vulkan", "train_loss");
    REQUIRE(losses.size() == 3);
    CHECK(losses[2] < losses[0]);
    const auto cpu_losses = metric_values(f.dir / "cpu", "train_loss");
    REQUIRE(cpu_losses.size() == 3);
    for (size_t e = 0; e < 3; ++e) CHECK(std::abs(losses[e] - cpu_losses[e]) < 1e-3 * std::max(1.0, cpu_losses[e]));
    const double accuracy = std::stod(summary_value(f.dir / "vulkan", "test_accuracy"));
    const double cpu_accuracy = std::stod(summary_value(f.dir / "cpu", "test_accuracy"));
    CHECK(accuracy > 0.4);
    CHECK(std::abs(accuracy - cpu_accuracy) <= 0.01);  // 200 test images: two may flip
}

TEST_CASE("chains of elementwise ops run fused - with the results of execution = eager") {
    // ResNet: Add + Relu after each block (inference), and in training the two gradients that
    // meet at a block's input added and fed to the ActivationGrad of the Relu before it.
    PipelineFixture f;
    dsk::Kernel kernel;
    auto pipeline = [&](const std::string& head) {
        return head + "[[stages]]\nkind = \"train\"\nname = \"train\"\nepochs = 1\nbatch_size = 32\nseed = 5\n"
                      "model = { name = \"resnet\", depth = 8, width = 4 }\n"
                      "optimizer = { name = \"adam\", lr = 0.003 }\n"
                      "train_data = { split = \"train\", limit = 96 }\ntest_data = { split = \"test\", limit = 64 }\n";
    };
    kernel.run(options(f, pipeline("[devices]\nprefer = [\"cpu\"]\n"), "graph"));
    kernel.run(options(f, pipeline("[devices]\nprefer = [\"cpu\"]\n[pipeline]\nexecution = \"eager\"\n"), "eager"));
    const std::string summary = read_file(f.dir / "graph" / "summary.json");
    CHECK(has(summary, "Add + Relu -> FusedElementwise: Add(x0,x1);Relu(t0)"));
    CHECK(has(summary, "Add + ActivationGrad -> FusedElementwise"));
    CHECK_FALSE(has(read_file(f.dir / "eager" / "summary.json"), "FusedElementwise"));
    const double graph_loss = std::stod(summary_value(f.dir / "graph", "test_loss"));
    const double eager_loss = std::stod(summary_value(f.dir / "eager", "test_loss"));
    CHECK(std::abs(graph_loss - eager_loss) <= 1e-5 * std::max(1.0, std::abs(eager_loss)));
}

TEST_CASE("inference pools each conv's planes in the conv (FusedConvMaxPool) - with the results of the unfused graph") {
    PipelineFixture f;
    dsk::Kernel kernel;
    // On the cpu device, which has the kernel (onednn, when named first, has none).
    run_graph_and_eager(kernel, f, "[devices]\nprefer = [\"cpu\"]\n",
                        short_training("model = { name = \"cnn\", channels = [8, 16], hidden = 16 }\n"));
    const std::string summary = read_file(f.dir / "graph" / "summary.json");
    // The cpu kernel is AVX-512 or AVX2 code: elsewhere the pass leaves the conv and the pool apart.
    CHECK(has(summary, "FusedConv + MaxPool -> FusedConvMaxPool") ==
          (__builtin_cpu_supports("avx512f") || __builtin_cpu_supports("avx2")));
    CHECK_FALSE(has(read_file(f.dir / "eager" / "summary.json"), "FusedConvMaxPool"));
    // The evaluation's plan (the second session) has one op that may work in place: Flatten,
    // whose output takes over the pooled planes' memory instead of copying them.
    const dsk::JsonValue sessions = *dsk::json_parse(summary).find("stages")->items[0].find("sessions");
    REQUIRE(sessions.items.size() == 2);
    CHECK(sessions.items[1].find("default_plan")->find("in_place")->number == 1);
    const double graph_loss = std::stod(summary_value(f.dir / "graph", "test_loss"));
    const double eager_loss = std::stod(summary_value(f.dir / "eager", "test_loss"));
    CHECK(std::abs(graph_loss - eager_loss) <= 1e-5 * std::max(1.0, std::abs(eager_loss)));
}

TEST_CASE("inference at batch 4 chains the MLP's layers into one FusedGemmChain - with the eager results") {
    PipelineFixture f;
    dsk::Kernel kernel;
    const std::string mlp = "model = { name = \"mlp\", hidden = [64, 32] }\n";
    run_graph_and_eager(kernel, f, "[devices]\nprefer = [\"cpu\"]\n",
                        short_training(mlp) + "[[stages]]\nkind = \"evaluate\"\nname = \"evaluate\"\nbatch_size = 4\n" +
                            mlp + "test_data = { split = \"test\", limit = 100 }\n");
    auto evaluation = [&](const std::string& run) {
        return *dsk::json_parse(read_file(f.dir / run / "summary.json")).find("stages")->items[1].find("sessions");
    };
    const dsk::JsonValue graph = evaluation("graph");
    REQUIRE(graph.items.size() == 1);
    // The cpu kernel takes 1 to 4 rows where the SGEMM reads B in place (AVX-512 or AVX2).
    bool chained = false;
    for (const dsk::JsonValue& fusion : graph.items[0].find("default_plan")->find("fusions")->items)
        chained |= fusion.string == "FusedGemm + FusedGemm + Gemm -> FusedGemmChain (3 layers)";
    CHECK(chained == (__builtin_cpu_supports("avx512f") || __builtin_cpu_supports("avx2")));
    CHECK_FALSE(has(read_file(f.dir / "eager" / "summary.json"), "FusedGemmChain"));
    auto loss = [&](const std::string& run) {
        return dsk::json_parse(read_file(f.dir / run / "summary.json")).find("stages")->items[1].find("results")->find("test_loss")->number;
    };
    CHECK(std::abs(loss("graph") - loss("eager")) <= 1e-5 * std::max(1.0, std::abs(loss("eager"))));
}

TEST_CASE("inference folds Conv + BatchNormalization - with the results of the unfolded graph") {
    PipelineFixture f;
    dsk::Kernel kernel;
    run_graph_and_eager(kernel, f, "",
                        short_training("model = { name = \"cnn\", channels = [4], hidden = 16, batch_norm = true }\n"));
    const std::string summary = read_file(f.dir / "graph" / "summary.json");
    CHECK(has(summary, "Conv + BatchNormalization -> FoldConvBatchNorm + Conv"));
    CHECK(has(summary, "-> FusedConv"));  // the folded Conv then takes the Relu
    const double graph_loss = std::stod(summary_value(f.dir / "graph", "test_loss"));
    const double eager_loss = std::stod(summary_value(f.dir / "eager", "test_loss"));
    CHECK(std::abs(graph_loss - eager_loss) <= 1e-5 * std::max(1.0, std::abs(eager_loss)));
    CHECK_FALSE(has(read_file(f.dir / "eager" / "summary.json"), "FoldConvBatchNorm"));
}

namespace {

// The bytes of a gzip file, by `gzip -dc`.
std::string gunzip(const std::string& path) {
    FILE* pipe = popen(("gzip -dc '" + path + "'").c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string out;
    char buf[1 << 16];
    while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
    REQUIRE(pclose(pipe) == 0);
    return out;
}

// IDX files holding the samples `indices` of the packaged training set, in that order.
void write_training_samples(const fs::path& images, const fs::path& labels, const std::vector<uint64_t>& indices) {
    static const std::string all_images = gunzip(kFashion);
    static const std::string all_labels = gunzip("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz");
    auto header = [](uint32_t magic, std::vector<uint32_t> dims) {
        std::string bytes;
        for (uint32_t v : (dims.insert(dims.begin(), magic), dims))
            for (int s = 24; s >= 0; s -= 8) bytes += static_cast<char>((v >> s) & 0xff);
        return bytes;
    };
    const auto n = static_cast<uint32_t>(indices.size());
    std::string image_bytes = header(0x803, {n, 28, 28}), label_bytes = header(0x801, {n});
    for (uint64_t i : indices) {
        image_bytes += all_images.substr(16 + i * 784, 784);
        label_bytes += all_labels.substr(8 + i, 1);
    }
    std::ofstream(images, std::ios::binary) << image_bytes;
    std::ofstream(labels, std::ios::binary) << label_bytes;
}

}  // namespace

TEST_CASE("validation_fraction holds out the same samples whatever the seed: never trained on nor augmented, measured every epoch") {
    REQUIRE_MESSAGE(fs::exists(kFashion), "install the Debian package dataset-fashion-mnist (scripts/setup does)");
    PipelineFixture f;
    dsk::Kernel kernel;
    const std::string validation = "validation_fraction = 0.25\n";
    kernel.run(options(f, tiny_training(2, validation), "seed7"));
    dsk::RunOptions other = options(f, tiny_training(2, validation), "seed8");
    other.overrides = {"stages.train.seed=8"};
    kernel.run(other);

    // Per epoch in metrics.jsonl beside the test metrics, the last ones in summary.json.
    for (const char* run : {"seed7", "seed8"}) {
        CAPTURE(run);
        const auto accuracy = metric_values(f.dir / run, "validation_accuracy");
        REQUIRE(accuracy.size() == 2);
        CHECK(metric_values(f.dir / run, "validation_loss").size() == 2);
        CHECK(metric_values(f.dir / run, "test_accuracy").size() == 2);
        CHECK(summary_value(f.dir / run, "validation_samples") == "80");  // 0.25 of 320
        CHECK(std::stod(summary_value(f.dir / run, "validation_accuracy")) == accuracy.back());
        CHECK(has(summary_value(f.dir / run, "validation_accuracy_by_epoch"), "["));
        CHECK(summary_value(f.dir / run, "steps") == "14");  // 240 samples trained on: 7 batches of 32, 2 epochs
    }

    // The held-out samples, as a dataset of their own: the evaluate stage on them (unaugmented)
    // reproduces each run's validation accuracy and loss, for either seed.
    const ValidationSplit split = split_for_validation(320, 0.25);
    const fs::path held_images = f.dir / "held-images.idx", held_labels = f.dir / "held-labels.idx";
    write_training_samples(held_images, held_labels, split.validation);
    for (const char* run : {"seed7", "seed8"}) {
        CAPTURE(run);
        const std::string evaluate = "[[stages]]\nkind = \"evaluate\"\ncheckpoint = \"" +
                                     (f.dir / run / "train" / "checkpoints" / "last.safetensors").string() +
                                     "\"\nmodel = { name = \"mlp\", hidden = [32], dropout = 0.2 }\n"
                                     "test_data = { name = \"custom\", split = \"test\", images = \"" + held_images.string() + "\", labels = \"" +
                                     held_labels.string() + "\" }\n";
        kernel.run(options(f, evaluate, std::string("evaluate-") + run));
        CHECK(summary_value(f.dir / (std::string("evaluate-") + run), "test_accuracy") == summary_value(f.dir / run, "validation_accuracy"));
        CHECK(std::stod(summary_value(f.dir / (std::string("evaluate-") + run), "test_loss")) ==
              doctest::Approx(std::stod(summary_value(f.dir / run, "validation_loss"))));
    }

    // The other samples, as a dataset of their own, trained on without a validation split: the
    // same batches, losses and test accuracies, so the held-out samples were never trained on.
    const fs::path train_images = f.dir / "train-images.idx", train_labels = f.dir / "train-labels.idx";
    write_training_samples(train_images, train_labels, split.train);
    dsk::RunOptions rest = options(f, tiny_training(2), "rest");
    rest.overrides = {"stages.train.train_data={ name = \"custom\", images = \"" + train_images.string() + "\", labels = \"" +
                      train_labels.string() + "\", random_crop_padding = 2, horizontal_flip = true }"};
    kernel.run(rest);
    CHECK(metric_values(f.dir / "rest", "train_loss") == metric_values(f.dir / "seed7", "train_loss"));
    CHECK(summary_value(f.dir / "rest", "test_accuracy_by_epoch") == summary_value(f.dir / "seed7", "test_accuracy_by_epoch"));
    CHECK(metric_values(f.dir / "rest", "validation_accuracy").empty());  // off by default
}

TEST_CASE("a bad validation_fraction fails validation naming the key") {
    PipelineFixture f;
    for (const char* bad : {"-0.1", "1.0"}) {
        CAPTURE(bad);
        const std::string e = f.validation_error(tiny_training(1, std::string("validation_fraction = ") + bad + "\n"));
        CHECK(has(e, "validation_fraction = "));
        CHECK(has(e, "must be in [0, 1)"));
    }
    CHECK(f.validation_error(tiny_training(1, "validation_fraction = 0.1\n")) == "");
    // One that leaves no training sample of the 320 is refused when the stage opens the data.
    dsk::Kernel kernel;
    const dsk::Error e = test_support::error_of([&] { kernel.run(options(f, tiny_training(1, "validation_fraction = 0.999\n"), "run")); });
    CHECK(has(e.what(), "validation_fraction = 0.999 leaves no training sample of the 320"));
}
