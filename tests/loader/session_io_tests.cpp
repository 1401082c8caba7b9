// A session's input writes and result reads on the cpu backend, across runs: large copies (split
// over the thread pool) arrive whole, and a plan's steps (whose tensors are described once, on
// the plan's first run) see each run's new data.
#include <doctest/doctest.h>

#include <dsk/dsk.h>
#include <dsk/dsk.hpp>
#include <dsk/dsk_op.hpp>
#include <dsk/dsk_plugin.hpp>
#include <dsk/dsk_tensor.hpp>

#include <cstdint>
#include <vector>

TEST_CASE("large inputs and results are copied whole, and every run of a plan reads that run's input") {
    dsk::Kernel kernel;
    dsk::detail::host_slot().store(dsk_host());
    kernel.add_plugin_path(DSK_PLUGIN_DIR);
    dsk_graph* graph = nullptr;
    REQUIRE(dsk_kernel_graph_create(kernel.raw(), &graph) == DSK_OK);
    // 300001 floats: above the size whose copies are split, and not a multiple of a cache line.
    const int64_t n = 300001;
    dsk::Graph g(graph);
    const dsk_value_id x = g.input("x", DSK_DTYPE_F32, {n});
    const dsk_value_id y = g.node("Neg", {g.node("Relu", {x})});
    dsk_session* s = nullptr;
    REQUIRE(dsk_kernel_session_create(kernel.raw(), graph, "cpu", 1, &s) == DSK_OK);
    dsk_host()->graph_destroy(graph);
    for (int run = 0; run < 3; ++run) {
        std::vector<float> in(n), out(n, 7.0f);
        for (int64_t i = 0; i < n; ++i) in[i] = static_cast<float>((i * 7 + run * 13) % 101) - 50.0f;
        const dsk_tensor_desc host_in = dsk::host_tensor(DSK_DTYPE_F32, {n}, in.data());
        REQUIRE(dsk_host()->session_write(s, x, &host_in) == nullptr);
        REQUIRE(dsk_host()->session_run(s, &y, 1) == nullptr);
        const dsk_tensor_desc host_out = dsk::host_tensor(DSK_DTYPE_F32, {n}, out.data());
        REQUIRE(dsk_host()->session_read(s, y, &host_out) == nullptr);
        int64_t wrong = 0;
        for (int64_t i = 0; i < n; ++i) wrong += out[i] != -(in[i] > 0.0f ? in[i] : 0.0f);
        CHECK(wrong == 0);
    }
    dsk_host()->session_destroy(s);
}
