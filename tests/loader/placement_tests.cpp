// Placement across backends: a graph split between the real cpu backend and "fake-accel" (a
// test accelerator with memory of its own and an asynchronous queue that runs only Relu,
// tests/fake_plugins/partial_backend.cpp). Checks where each node goes, the transfers the
// kernel inserts, the report, and that the mixed result equals the cpu-only one.
#include <doctest/doctest.h>

#include <dsk/dsk.h>
#include <dsk/dsk.hpp>
#include <dsk/dsk_op.hpp>
#include <dsk/dsk_plugin.hpp>
#include <dsk/dsk_tensor.hpp>

#include <string>
#include <vector>

namespace {

struct Fixture {
    dsk::Kernel kernel;
    dsk_graph* graph = nullptr;
    Fixture() {
        dsk::detail::host_slot().store(dsk_host());
        kernel.add_plugin_path(std::string(DSK_FAKE_PLUGINS_DIR) + "/partial_backend");
        kernel.add_plugin_path(DSK_PLUGIN_DIR);
        REQUIRE(dsk_kernel_graph_create(kernel.raw(), &graph) == DSK_OK);
    }
    ~Fixture() { dsk_host()->graph_destroy(graph); }
};

// y = Relu(x W) + x W: MatMul (cpu only), Relu (fake-accel), Add (declined by fake-accel).
struct SmallGraph {
    dsk_value_id x, y;
    explicit SmallGraph(dsk_graph* raw) {
        dsk::Graph g(raw);
        static const float w[] = {1, -2, 0.5f, 3, -1, 2};
        x = g.input("x", DSK_DTYPE_F32, {2, 2});
        dsk_value_id weights = g.constant(dsk::host_tensor(DSK_DTYPE_F32, {2, 3}, const_cast<float*>(w)));
        dsk_value_id h = g.node("MatMul", {x, weights});
        dsk_value_id r = g.node("Relu", {h});
        y = g.node("Add", {r, h});
    }
};

void write(dsk_session* s, dsk_value_id v, const dsk_tensor_desc& d) {
    REQUIRE(dsk_host()->session_write(s, v, &d) == nullptr);
}

std::vector<float> run(dsk_session* s, const SmallGraph& g) {
    std::vector<float> x = {1, 2, -3, 0.5f}, y(6);
    write(s, g.x, dsk::host_tensor(DSK_DTYPE_F32, {2, 2}, x.data()));
    REQUIRE(dsk_host()->session_run(s, &g.y, 1) == nullptr);
    dsk_tensor_desc out = dsk::host_tensor(DSK_DTYPE_F32, {2, 3}, y.data());
    REQUIRE(dsk_host()->session_read(s, g.y, &out) == nullptr);
    return y;
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("each node runs on the first listed backend that can run it - with transfers between memories") {
    Fixture f;
    SmallGraph g(f.graph);

    dsk_session* cpu_only = nullptr;
    REQUIRE(dsk_kernel_session_create(f.kernel.raw(), f.graph, "cpu", 1, &cpu_only) == DSK_OK);
    const std::vector<float> expected = run(cpu_only, g);
    dsk_host()->session_destroy(cpu_only);

    dsk_session* mixed = nullptr;
    REQUIRE(dsk_kernel_session_create(f.kernel.raw(), f.graph, "fake-accel,cpu", 1, &mixed) == DSK_OK);
    CHECK(std::string(dsk_session_node_backend(mixed, 0)) == "cpu");         // MatMul: no fake-accel kernel
    CHECK(std::string(dsk_session_node_backend(mixed, 1)) == "fake-accel");  // Relu
    CHECK(std::string(dsk_session_node_backend(mixed, 2)) == "cpu");         // Add: declined by supports_op
    CHECK(dsk_session_node_backend(mixed, 3) == nullptr);
    const std::string report = dsk_session_placement_json(mixed);
    CHECK(has(report, "\"fake-accel\" : 1"));
    CHECK(has(report, "\"cpu\" : 2"));
    CHECK(has(report, "no fake-accel kernel for these input types"));
    CHECK(has(report, "fake-accel declines it (supports_op)"));
    // MatMul's output goes to the accelerator, Relu's comes back: 2 x 6 floats each way.
    CHECK(has(report, "\"transfer_bytes_per_run\" : 48"));
    for (int repeat = 0; repeat < 2; ++repeat) CHECK(run(mixed, g) == expected);
    dsk_host()->session_destroy(mixed);
}

TEST_CASE("a single backend that cannot run a node is an error naming the op - never a silent fallback") {
    Fixture f;
    SmallGraph g(f.graph);
    dsk_session* s = nullptr;
    CHECK(dsk_kernel_session_create(f.kernel.raw(), f.graph, "fake-accel", 1, &s) == DSK_UNIMPLEMENTED);
    CHECK(has(dsk_kernel_last_error(f.kernel.raw()), "no fake-accel kernel for op MatMul"));
    CHECK(s == nullptr);
}

TEST_CASE("variables and inputs on device-only memory are written and read through copies") {
    Fixture f;
    dsk::Graph g(f.graph);
    dsk_value_id x = g.input("x", DSK_DTYPE_F32, {4});
    dsk_value_id y = g.node("Relu", {x});
    dsk_session* s = nullptr;
    REQUIRE(dsk_kernel_session_create(f.kernel.raw(), f.graph, "fake-accel", 1, &s) == DSK_OK);
    std::vector<float> in = {-1, 2, -3, 4}, out(4);
    write(s, x, dsk::host_tensor(DSK_DTYPE_F32, {4}, in.data()));
    REQUIRE(dsk_host()->session_run(s, &y, 1) == nullptr);
    dsk_tensor_desc host_out = dsk::host_tensor(DSK_DTYPE_F32, {4}, out.data());
    REQUIRE(dsk_host()->session_read(s, y, &host_out) == nullptr);
    CHECK(out == std::vector<float>{0, 2, 0, 4});
    dsk_tensor_desc t{};
    t.struct_size = sizeof t;
    REQUIRE(dsk_host()->session_tensor(s, y, &t) == nullptr);
    CHECK(t.data == nullptr);  // not host-visible: a plugin must copy, and can tell
    CHECK(t.buffer != nullptr);
    CHECK(has(dsk_session_placement_json(s), "\"transfer_bytes_per_run\" : 0"));
    dsk_host()->session_destroy(s);
}
