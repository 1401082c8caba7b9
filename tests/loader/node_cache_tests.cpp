// What kernels keep across runs (ABI 1.3): input versions (exec_input_version) and node caches
// (exec_cache), seen from the kernels of the fake-accel plugin (tests/fake_plugins/
// partial_backend.cpp logs what its Relu and Mul saw); steps derived from variables, run again
// only when they change; and the cpu Gemm's weights packed once per version, which must follow
// every way the weights can change.
#include <doctest/doctest.h>

#include <dlfcn.h>

#include <dsk/dsk.h>
#include <dsk/dsk.hpp>
#include <dsk/dsk_op.hpp>
#include <dsk/dsk_plugin.hpp>
#include <dsk/dsk_tensor.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

struct FakeAccelCacheLog {
    uint64_t calls, version, made, hits, released;
};

// The log of the fake-accel plugin the kernel loaded.
FakeAccelCacheLog& fake_accel_log() {
    const std::string path = std::string(DSK_FAKE_PLUGINS_DIR) + "/partial_backend/dsk_fake-accel.so";
    void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
    REQUIRE(library != nullptr);
    auto* log = static_cast<FakeAccelCacheLog*>(dlsym(library, "fake_accel_cache_log"));
    dlclose(library);  // the kernel still holds it
    REQUIRE(log != nullptr);
    return *log;
}

void write(dsk_session* s, dsk_value_id v, std::vector<float>& data, std::vector<int64_t> shape) {
    const dsk_tensor_desc d = dsk::host_tensor(DSK_DTYPE_F32, shape, data.data());
    REQUIRE(dsk_host()->session_write(s, v, &d) == nullptr);
}

std::vector<float> read(dsk_session* s, dsk_value_id v, std::vector<int64_t> shape) {
    std::vector<float> out(static_cast<size_t>(shape[0] * (shape.size() > 1 ? shape[1] : 1)));
    const dsk_tensor_desc d = dsk::host_tensor(DSK_DTYPE_F32, shape, out.data());
    REQUIRE(dsk_host()->session_read(s, v, &d) == nullptr);
    return out;
}

void run(dsk_session* s, std::vector<dsk_value_id> targets) {
    REQUIRE(dsk_host()->session_run(s, targets.data(), targets.size()) == nullptr);
}

const std::string kFakeAccel = std::string(DSK_FAKE_PLUGINS_DIR) + "/partial_backend";

// A kernel with the project's plugins (and the fake-accel plugin where asked), a graph to build,
// and the session made of it.
struct GraphFixture {
    dsk::Kernel kernel;
    dsk_graph* graph = nullptr;
    dsk_session* s = nullptr;
    explicit GraphFixture(bool fake_accel = false) {
        dsk::detail::host_slot().store(dsk_host());
        if (fake_accel) kernel.add_plugin_path(kFakeAccel);
        kernel.add_plugin_path(DSK_PLUGIN_DIR);
        REQUIRE(dsk_kernel_graph_create(kernel.raw(), &graph) == DSK_OK);
    }
    ~GraphFixture() {
        if (s) dsk_host()->session_destroy(s);
        if (graph) dsk_host()->graph_destroy(graph);
    }
    dsk::Graph builder() const { return dsk::Graph(graph); }
    // Places the graph built so far on `devices`.
    void place(const char* devices) {
        REQUIRE(dsk_kernel_session_create(kernel.raw(), graph, devices, 1, &s) == DSK_OK);
        dsk_host()->graph_destroy(graph);
        graph = nullptr;
    }
};

}  // namespace

// A session of y = w * x (Mul, every run) and r = Relu(w) (a step that reads only a variable:
// derived, run again only when w changes), both on fake-accel.
struct FakeAccelSession : GraphFixture {
    dsk_value_id w = DSK_VALUE_NONE, x = DSK_VALUE_NONE, y = DSK_VALUE_NONE, r = DSK_VALUE_NONE;
    FakeAccelSession() : GraphFixture(true) {
        dsk::Graph g = builder();
        w = g.variable("w", {4}, "ones", 1.0, 0);
        x = g.input("x", DSK_DTYPE_F32, {4});
        y = g.node("Mul", {w, x});
        r = g.node("Relu", {w});
        place("fake-accel,cpu");
        REQUIRE(std::string(dsk_session_node_backend(s, 0)) == "fake-accel");
        REQUIRE(std::string(dsk_session_node_backend(s, 1)) == "fake-accel");
        std::vector<float> in = {1, -1, 2, -2};
        write(s, x, in, {4});
    }
};

TEST_CASE("a node's cache lives while its input keeps its version, and goes with the plan") {
    FakeAccelSession f;
    FakeAccelCacheLog& log = fake_accel_log();
    log = {};

    run(f.s, {f.y});
    const uint64_t first = log.version;
    CHECK(first != 0);
    CHECK(log.made == 1);
    CHECK(log.hits == 0);
    run(f.s, {f.y});
    CHECK(log.version == first);
    CHECK(log.hits == 1);

    std::vector<float> values = {-1, 2, -3, 4};
    write(f.s, f.w, values, {4});
    run(f.s, {f.y});
    CHECK(log.version != first);
    CHECK(log.version != 0);
    CHECK(log.hits == 1);
    CHECK(log.made == 1);  // the same cache, refilled
    run(f.s, {f.y});
    CHECK(log.hits == 2);
    CHECK(read(f.s, f.y, {4}) == std::vector<float>{-1, -2, -6, -8});

    // Memory handed out by session_tensor may be written at any time: no version from then on.
    dsk_tensor_desc t{};
    t.struct_size = sizeof t;
    REQUIRE(dsk_host()->session_tensor(f.s, f.w, &t) == nullptr);
    run(f.s, {f.y});
    CHECK(log.version == 0);

    CHECK(log.released == 0);
    dsk_host()->session_destroy(f.s);
    f.s = nullptr;
    CHECK(log.released == log.made);
}

TEST_CASE("a step that reads only variables runs again only when they change, and what reads its result sees a version") {
    FakeAccelSession f;
    FakeAccelCacheLog& log = fake_accel_log();
    log = {};
    run(f.s, {f.r});
    CHECK(log.calls == 1);
    CHECK(read(f.s, f.r, {4}) == std::vector<float>{1, 1, 1, 1});
    run(f.s, {f.r});
    run(f.s, {f.r});
    CHECK(log.calls == 1);  // w unchanged: Relu(w) kept
    CHECK(read(f.s, f.r, {4}) == std::vector<float>{1, 1, 1, 1});
    std::vector<float> values = {-1, 2, -3, 4};
    write(f.s, f.w, values, {4});
    run(f.s, {f.r});
    CHECK(log.calls == 2);
    CHECK(read(f.s, f.r, {4}) == std::vector<float>{0, 2, 0, 4});
    run(f.s, {f.r});
    CHECK(log.calls == 2);

    // Neg(w) on cpu, derived as well: Mul on fake-accel reads it with a version that stays while
    // w does, and a new one after a write.
    GraphFixture neg(true);
    dsk::Graph g = neg.builder();
    const dsk_value_id w = g.variable("w", {4}, "ones", 1.0, 0);
    const dsk_value_id x = g.input("x", DSK_DTYPE_F32, {4});
    const dsk_value_id y = g.node("Mul", {g.node("Neg", {w}), x});
    neg.place("fake-accel,cpu");
    dsk_session* s = neg.s;
    REQUIRE(std::string(dsk_session_node_backend(s, 0)) == "cpu");
    std::vector<float> in = {1, -1, 2, -2};
    write(s, x, in, {4});
    run(s, {y});
    const uint64_t first = log.version;
    CHECK(first != 0);
    run(s, {y});
    CHECK(log.version == first);
    write(s, w, values, {4});
    run(s, {y});
    CHECK(log.version != first);
    CHECK(log.version != 0);
    CHECK(read(s, y, {4}) == std::vector<float>{1, 2, 6, 8});
}

TEST_CASE("a step that draws random numbers runs on every run, and so does what reads it, even on variables only") {
    GraphFixture f;
    dsk::Graph g = f.builder();
    const dsk_value_id w = g.variable("w", {256}, "ones", 1.0, 0);
    const dsk_value_id dropped = g.node("Dropout", {w}, {dsk::Attr("ratio", 0.5), dsk::Attr("training_mode", 1)});
    const dsk_value_id y = g.node("Neg", {dropped});
    f.place("cpu");
    dsk_session* s = f.s;
    run(s, {y});
    const std::vector<float> first = read(s, y, {256});
    run(s, {y});
    const std::vector<float> second = read(s, y, {256});
    CHECK(first != second);  // a new mask: Dropout and the Neg after it ran again
    run(s, {y});
    CHECK(read(s, y, {256}) != second);
}

TEST_CASE("a Gemm's packed weights follow every change of the weights: writes, updates in a plan, "
          "memory handed out") {
    GraphFixture f;
    dsk::Graph g = f.builder();
    // 8 rows: more than the few-rows path that reads B in place, so B is packed.
    const int64_t m = 8, n = 6, k = 16;
    const dsk_value_id x = g.input("x", DSK_DTYPE_F32, {m, k});
    const dsk_value_id w = g.variable("w", {n, k}, "normal", 1.0);
    const dsk_value_id y = g.node("Gemm", {x, w}, {dsk::Attr("transB", 1)});
    // The same product with -w: Neg(w) is derived from w in the plans that do not write w.
    const dsk_value_id y_neg = g.node("Gemm", {x, g.node("Neg", {w})}, {dsk::Attr("transB", 1)});
    // An SGD step in place on w (X -= 0.5 G), after the Gemm in the same plan.
    const dsk_value_id grad = g.input("g", DSK_DTYPE_F32, {n, k});
    const dsk_value_id constants = g.input("c", DSK_DTYPE_F32, {6});
    const dsk_value_id token = g.node("SGDUpdate", {constants, w, grad});
    f.place("cpu");
    dsk_session* s = f.s;

    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    auto random = [&](size_t count) {
        std::vector<float> v(count);
        for (float& e : v) e = u(rng);
        return v;
    };
    std::vector<float> xs = random(static_cast<size_t>(m * k)), gs = random(static_cast<size_t>(n * k)),
                       cs = {0.5f, 0.0f, 1.0f, 0.0f, 1.0f, 0.0f};
    write(s, x, xs, {m, k});
    write(s, grad, gs, {n, k});
    write(s, constants, cs, {6});
    // y as computed from the weights `ws`, in double; and y_neg, where the plan has it, -y.
    auto check_y = [&](const std::vector<float>& ws, const char* when, bool with_neg = false) {
        const std::string stage = when;
        CAPTURE(stage);
        const std::vector<float> ys = read(s, y, {m, n});
        if (with_neg) {
            std::vector<float> negated = read(s, y_neg, {m, n});
            for (float& v : negated) v = -v;
            CHECK(negated == ys);
        }
        int wrong = 0;
        for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
                double sum = 0;
                for (int64_t l = 0; l < k; ++l) sum += static_cast<double>(xs[i * k + l]) * ws[j * k + l];
                wrong += std::fabs(ys[i * n + j] - sum) > 1e-4;
            }
        CHECK(wrong == 0);
    };

    std::vector<float> ws = read(s, w, {n, k});
    run(s, {y});
    check_y(ws, "first run");
    run(s, {y});
    check_y(ws, "second run, the same weights");

    ws = random(static_cast<size_t>(n * k));
    write(s, w, ws, {n, k});
    run(s, {y});
    check_y(ws, "after session_write");

    for (int step = 0; step < 2; ++step) {
        run(s, {y, token});  // the Gemm reads w, then the update writes it
        check_y(ws, "training plan");
        const std::vector<float> updated = read(s, w, {n, k});
        CHECK(updated != ws);
        ws = updated;
        run(s, {y});
        check_y(ws, "the evaluation plan after an update");
        run(s, {y, y_neg});
        check_y(ws, "the plan with a result derived from w, after an update", true);
    }

    dsk_tensor_desc t{};
    t.struct_size = sizeof t;
    REQUIRE(dsk_host()->session_tensor(s, w, &t) == nullptr);
    run(s, {y});
    for (float& v : ws) v = -v;
    std::copy(ws.begin(), ws.end(), static_cast<float*>(t.data));
    run(s, {y});
    check_y(ws, "after a write through session_tensor's memory");
}
