// Every onednn kernel against the cpu plugin's kernel for the same node (the reference backend,
// itself checked against float64 in tests/conformance): forward ops, and the backward ops that
// the conformance suite can only reach through mixed placement. Inputs the op updates in place
// (BatchNormalization's running statistics) are compared after the run too.
#include <doctest/doctest.h>

#include <dnnl.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "kernels/onednn_kernel_table.h"
#include "cached_host.h"
#include "node_call.h"
#include "threaded_host.h"

namespace {

using namespace onednn_tests;

const bool host_installed = (threaded_host::install(1), true);

void expect_close(const Tensor& got, const Tensor& want, double tolerance, const std::string& what) {
    REQUIRE(got.f.size() == want.f.size());
    size_t bad = 0;
    double worst = 0;
    for (size_t k = 0; k < got.f.size(); ++k) {
        const double diff = std::fabs(double(got.f[k]) - double(want.f[k]));
        const double allowed = tolerance * std::max(1.0, std::fabs(double(want.f[k])));
        worst = std::max(worst, diff);
        if (!(diff <= allowed) && bad++ < 3)
            FAIL_CHECK(what << " element " << k << ": onednn " << got.f[k] << ", cpu " << want.f[k]);
    }
    CHECK_MESSAGE(bad == 0, what << ": " << bad << " elements differ (worst " << worst << ")");
}

// Runs `op` on cpu and on onednn with copies of the same inputs and compares every output and
// every input (in-place updates) within `tolerance` relative to max(1, |cpu|).
void same_as_cpu(const char* op, const std::vector<Attr>& attrs, const std::vector<Tensor>& inputs,
                 const std::vector<Tensor>& outputs, double tolerance = 1e-5) {
    std::vector<Tensor> cpu_in = inputs, cpu_out = outputs, dnn_in = inputs, dnn_out = outputs;
    run_on(dsk::cpu::cpu_kernel_table(), op, attrs, cpu_in, cpu_out);
    run_on(dsk::onednn::kernel_table(), op, attrs, dnn_in, dnn_out);
    for (size_t i = 0; i < outputs.size(); ++i)
        expect_close(dnn_out[i], cpu_out[i], tolerance, std::string(op) + " output " + std::to_string(i));
    for (size_t i = 0; i < inputs.size(); ++i)
        if (inputs[i].dtype == DSK_DTYPE_F32)
            expect_close(dnn_in[i], cpu_in[i], tolerance, std::string(op) + " input " + std::to_string(i) + " after the run");
}

const std::vector<int64_t> kPads1 = {1, 1, 1, 1};

}  // namespace

TEST_CASE("onednn MatMul and Gemm match cpu") {
    same_as_cpu("MatMul", {}, {f32({17, 33}, 1), f32({33, 9}, 2)}, {f32({17, 9})});
    same_as_cpu("MatMul", {}, {f32({130, 300}, 3), f32({300, 70}, 4)}, {f32({130, 70})}, 1e-4);
    // C as the primitive's bias (alpha = beta = 1, C a row).
    same_as_cpu("Gemm", {Attr("transB", 1)}, {f32({8, 20}, 5), f32({12, 20}, 6), f32({12}, 7)}, {f32({8, 12})});
    // C written into Y first (a column, alpha and beta, transposed A).
    same_as_cpu("Gemm", {Attr("transA", 1), Attr("alpha", 0.5), Attr("beta", 2.0)},
                {f32({20, 8}, 8), f32({20, 12}, 9), f32({8, 1}, 10)}, {f32({8, 12})});
    same_as_cpu("Gemm", {Attr("beta", 0.0)}, {f32({3, 4}, 11), f32({4, 5}, 12), f32({}, 13)}, {f32({3, 5})});
    same_as_cpu("Gemm", {Attr("alpha", -1.5)}, {f32({3, 4}, 14), f32({4, 5}, 15), f32({}, 16)}, {f32({3, 5})});
    same_as_cpu("Gemm", {}, {f32({6, 4}, 17), f32({4, 5}, 18), f32({6, 5}, 19)}, {f32({6, 5})});
    same_as_cpu("Gemm", {}, {f32({6, 4}, 20), f32({4, 5}, 21)}, {f32({6, 5})});
}

namespace {

// Whether oneDNN's f32 matmul of op(A) [m, k] by op(B) [k, n] (B stored [n, k] when trans_b)
// takes B in a layout of its own, which the kernel then keeps: with AVX-512 it does; with AVX2
// its GEMM-based matmul reads the plain B, and there is nothing to keep.
bool matmul_keeps_b(int64_t m, int64_t k, int64_t n, bool trans_b) {
    using dnnl::memory;
    const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    const memory::desc a({m, k}, memory::data_type::f32, memory::format_tag::ab);
    const memory::desc any({k, n}, memory::data_type::f32, memory::format_tag::any);
    const memory::desc y({m, n}, memory::data_type::f32, memory::format_tag::ab);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, any, y), engine);
    const memory::desc plain({k, n}, memory::data_type::f32, trans_b ? memory::format_tag::ba : memory::format_tag::ab);
    return pd.weights_desc() != plain;
}

}  // namespace

TEST_CASE("onednn Gemm and MatMul keep B in the primitive's layout while its version stays") {
    cached_host::Scope scope;
    struct Case {
        const char* op;
        std::vector<Attr> attrs;
        std::vector<Tensor> inputs;
        Shape y;
    };
    const Case cases[] = {
        {"Gemm", {Attr("transB", 1)}, {f32({64, 256}, 31), f32({128, 256}, 32), f32({128}, 33)}, {64, 128}},
        {"MatMul", {}, {f32({96, 200}, 34), f32({200, 160}, 35)}, {96, 160}},
    };
    for (const Case& c : cases) {
        CAPTURE(c.op);
        std::vector<Tensor> in = c.inputs, cpu_out = {f32(c.y)}, first = {f32(c.y)}, again = {f32(c.y)},
                            renewed = {f32(c.y)};
        run_on(dsk::cpu::cpu_kernel_table(), c.op, c.attrs, in, cpu_out);
        cached_host::version() = 5;
        run_on(dsk::onednn::kernel_table(), c.op, c.attrs, in, first);
        expect_close(first[0], cpu_out[0], 1e-4, "with B reordered");
        REQUIRE(cached_host::slot().data != nullptr);
        // B changed in place while its version did not: the reordered copy is what runs.
        for (float& v : in[1].f) v = -v;
        run_on(dsk::onednn::kernel_table(), c.op, c.attrs, in, again);
        const bool trans_b = c.attrs.size() == 1;  // the Gemm's transB
        if (matmul_keeps_b(c.y[0], in[0].shape[1], c.y[1], trans_b))
            CHECK(again[0].f == first[0].f);
        else
            MESSAGE(std::string(c.op) << ": oneDNN reads B in its plain layout on this CPU, so nothing is kept");
        // A new version: B reordered again. (The cpu reference runs without a version: the slot
        // is the onednn kernel's.)
        cached_host::version() = 6;
        run_on(dsk::onednn::kernel_table(), c.op, c.attrs, in, renewed);
        cached_host::version() = 0;
        run_on(dsk::cpu::cpu_kernel_table(), c.op, c.attrs, in, cpu_out);
        expect_close(renewed[0], cpu_out[0], 1e-4, "after a new version of B");
        cached_host::slot().reset(nullptr, nullptr);
    }
}

TEST_CASE("onednn Conv and its gradients match cpu") {
    struct Case {
        Shape x, w, y;
        std::vector<Attr> attrs;
    };
    const std::vector<int64_t> strides2 = {2, 2}, asymmetric = {1, 0, 2, 1}, dilations = {2, 1};
    const std::vector<Case> cases = {
        {{2, 3, 7, 7}, {4, 3, 3, 3}, {2, 4, 7, 7}, {Attr("pads", kPads1)}},
        {{1, 2, 7, 6}, {3, 2, 3, 3}, {1, 3, 4, 3}, {Attr("strides", strides2), Attr("pads", asymmetric)}},
        {{1, 2, 9, 9}, {2, 2, 3, 3}, {1, 2, 7, 9}, {Attr("dilations", dilations), Attr("pads", kPads1)}},
        {{2, 4, 6, 6}, {6, 2, 3, 3}, {2, 6, 4, 4}, {Attr("group", 2)}},
        {{2, 8, 10, 10}, {8, 1, 3, 3}, {2, 8, 10, 10}, {Attr("group", 8), Attr("pads", kPads1)}},
        // A first layer (the CNN's: one channel in, 32 out): plain X, oneDNN's blocked W and Y.
        {{3, 1, 12, 12}, {32, 1, 3, 3}, {3, 32, 12, 12}, {Attr("pads", kPads1)}},
        // 16 and more input channels per group: X blocked too.
        {{2, 16, 12, 12}, {32, 16, 1, 1}, {2, 32, 12, 12}, {}},
        {{2, 32, 7, 7}, {16, 32, 3, 3}, {2, 16, 4, 4}, {Attr("strides", strides2), Attr("pads", kPads1)}},
        {{1, 64, 9, 9}, {32, 32, 3, 3}, {1, 32, 5, 7}, {Attr("group", 2), Attr("dilations", dilations)}},
    };
    for (const Case& c : cases) {
        CAPTURE(c.x);
        CAPTURE(c.w);
        same_as_cpu("Conv", c.attrs, {f32(c.x, 1), f32(c.w, 2), f32({c.w[0]}, 3)}, {f32(c.y)}, 1e-4);
        same_as_cpu("Conv", c.attrs, {f32(c.x, 4), f32(c.w, 5)}, {f32(c.y)}, 1e-4);
        std::vector<Attr> grad_input = c.attrs, grad_weight = c.attrs;
        grad_input.emplace_back("input_shape", c.x);
        grad_weight.emplace_back("weight_shape", c.w);
        same_as_cpu("ConvGradInput", grad_input, {f32(c.y, 6), f32(c.w, 7)}, {f32(c.x)}, 1e-4);
        same_as_cpu("ConvGradWeight", grad_weight, {f32(c.y, 8), f32(c.x, 9)}, {f32(c.w)}, 1e-4);
    }
}

TEST_CASE("onednn pooling and its gradients match cpu") {
    const std::vector<int64_t> k3 = {3, 3}, k2 = {2, 2}, s2 = {2, 2}, asymmetric = {0, 1, 1, 0};
    struct Case {
        Shape x, y;
        std::vector<Attr> attrs;
    };
    const std::vector<Case> cases = {
        {{2, 3, 6, 6}, {2, 3, 3, 3}, {Attr("kernel_shape", k2), Attr("strides", s2)}},
        {{1, 2, 5, 5}, {1, 2, 5, 5}, {Attr("kernel_shape", k3), Attr("pads", kPads1)}},
        {{1, 2, 7, 6}, {1, 2, 3, 3}, {Attr("kernel_shape", k3), Attr("strides", s2), Attr("pads", asymmetric)}},
        {{2, 8, 40, 40}, {2, 8, 20, 20}, {Attr("kernel_shape", k3), Attr("strides", s2), Attr("pads", kPads1)}},
    };
    for (const Case& c : cases) {
        CAPTURE(c.x);
        // Distinct values: one maximum per window, so the gradient's target is the same.
        Tensor x = f32(c.x);
        for (size_t k = 0; k < x.f.size(); ++k) x.f[k] = static_cast<float>((k * 7919) % 10007) * 0.01f - 50.0f;
        same_as_cpu("MaxPool", c.attrs, {x}, {f32(c.y)});
        same_as_cpu("MaxPoolGrad", c.attrs, {f32(c.y, 1), x}, {f32(c.x)});
        for (int include_pad : {0, 1}) {
            CAPTURE(include_pad);
            std::vector<Attr> attrs = c.attrs;
            attrs.emplace_back("count_include_pad", include_pad);
            same_as_cpu("AveragePool", attrs, {f32(c.x, 2)}, {f32(c.y)});
            attrs.emplace_back("input_shape", c.x);
            same_as_cpu("AveragePoolGrad", attrs, {f32(c.y, 3)}, {f32(c.x)});
        }
    }
}

TEST_CASE("onednn BatchNormalization and its gradient match cpu") {
    for (const Shape& x : {Shape{2, 3, 4, 4}, Shape{6, 3}, Shape{3, 2, 5}, Shape{4, 3, 20, 20}}) {
        CAPTURE(x);
        const Shape c = {x[1]};
        const std::vector<Tensor> inputs = {f32(x, 1, -2, 2), f32(c, 2, 0.5f, 1.5f), f32(c, 3),
                                            f32(c, 4, -0.5f, 0.5f), f32(c, 5, 0.5f, 2)};
        for (int training : {0, 1}) {
            CAPTURE(training);
            const std::vector<Attr> attrs = {Attr("training_mode", training), Attr("momentum", 0.8),
                                             Attr("epsilon", 1e-3)};
            same_as_cpu("BatchNormalization", attrs, inputs, {f32(x), f32(c), f32(c)}, 1e-4);
            same_as_cpu("BatchNormalization", attrs, inputs, {f32(x)}, 1e-4);
            // The saved statistics the forward gives.
            std::vector<Tensor> in = inputs, out = {f32(x), f32(c), f32(c)};
            run_on(dsk::cpu::cpu_kernel_table(), "BatchNormalization", attrs, in, out);
            same_as_cpu("BatchNormalizationGrad", attrs, {f32(x, 6), inputs[0], inputs[1], out[1], out[2]},
                        {f32(x), f32(c), f32(c)}, 1e-4);
            same_as_cpu("BatchNormalizationGrad", attrs, {f32(x, 6), inputs[0], inputs[1], out[1], out[2]},
                        {f32(x)}, 1e-4);
        }
    }
}

TEST_CASE("onednn activations and ActivationGrad match cpu") {
    const Shape shape = {3, 37};
    struct Case {
        const char* name;
        std::vector<Attr> attrs;
    };
    const std::vector<Case> cases = {{"Relu", {}},      {"Sigmoid", {}}, {"Tanh", {}}, {"Silu", {}},
                                     {"HardSwish", {}}, {"Gelu", {}},    {"Gelu", {Attr("approximate", "tanh")}}};
    for (const Case& c : cases) {
        CAPTURE(c.name);
        // Away from the kinks (0 for Relu, +-3 for HardSwish), where the derivative jumps.
        Tensor x = f32(shape, 1, -6, 6);
        for (float& v : x.f)
            if (std::fabs(v) < 0.01f || std::fabs(std::fabs(v) - 3.0f) < 0.01f) v += 0.05f;
        same_as_cpu(c.name, c.attrs, {x}, {f32(shape)}, 1e-5);
        std::vector<Attr> grad_attrs = c.attrs;
        grad_attrs.emplace_back("activation", c.name);
        same_as_cpu("ActivationGrad", grad_attrs, {f32(shape, 2), x}, {f32(shape)}, 1e-5);
    }
    same_as_cpu("Neg", {}, {f32(shape, 3)}, {f32(shape)}, 0);
    // Large and small arguments, where a careless formula overflows.
    same_as_cpu("Sigmoid", {}, {f32({50, 700}, 4, -30, 30)}, {f32({50, 700})}, 1e-5);
    same_as_cpu("Tanh", {}, {f32({50, 700}, 5, -30, 30)}, {f32({50, 700})}, 1e-5);
}

TEST_CASE("onednn Softmax LogSoftmax and their gradients match cpu") {
    struct Case {
        Shape x;
        int64_t axis;
    };
    for (const Case& c : {Case{{4, 7}, -1}, Case{{2, 5, 3}, 1}, Case{{6, 4}, 0}, Case{{2, 3, 4, 2}, -2},
                          Case{{300, 130}, 1}}) {
        CAPTURE(c.x);
        CAPTURE(c.axis);
        const std::vector<Attr> attrs = {Attr("axis", c.axis)};
        for (const char* op : {"Softmax", "LogSoftmax"}) {
            CAPTURE(op);
            const Tensor x = f32(c.x, 1, -3, 3);
            same_as_cpu(op, attrs, {x}, {f32(c.x)}, 1e-5);
            std::vector<Tensor> in = {x}, out = {f32(c.x)};
            run_on(dsk::cpu::cpu_kernel_table(), op, attrs, in, out);
            const std::string grad = std::string(op) + "Grad";
            same_as_cpu(grad.c_str(), attrs, {f32(c.x, 2), out[0]}, {f32(c.x)}, 1e-5);
        }
    }
    // exp(100) overflows f32: only a max-subtracted softmax gets these right.
    same_as_cpu("Softmax", {}, {f32({3, 10}, 3, -100, 100)}, {f32({3, 10})}, 1e-5);
    same_as_cpu("LogSoftmax", {}, {f32({3, 10}, 4, -100, 100)}, {f32({3, 10})}, 1e-5);
}

//----------------------------------------------------------------------------------------------
// int8: exact, so onednn must give the cpu reference's i32 results bit for bit
//----------------------------------------------------------------------------------------------

namespace {

void exact_as_cpu(const char* op, const std::vector<Attr>& attrs, const std::vector<Tensor>& inputs, const Shape& y) {
    std::vector<Tensor> cpu_in = inputs, dnn_in = inputs, cpu_out = {i32(y)}, dnn_out = {i32(y)};
    run_on(dsk::cpu::cpu_kernel_table(), op, attrs, cpu_in, cpu_out);
    run_on(dsk::onednn::kernel_table(), op, attrs, dnn_in, dnn_out);
    size_t bad = 0;
    for (size_t k = 0; k < cpu_out[0].i.size(); ++k)
        if (dnn_out[0].i[k] != cpu_out[0].i[k] && bad++ < 3)
            FAIL_CHECK(op << " element " << k << ": onednn " << dnn_out[0].i[k] << ", cpu " << cpu_out[0].i[k]);
    CHECK_MESSAGE(bad == 0, op << ": " << bad << " elements differ");
}

// oneDNN's int8 kernels need VNNI: elsewhere they decline every node (cpu runs them) and these
// tests have nothing to compare.
bool int8_runs_here() {
    if (dsk::onednn::has_vnni()) return true;
    MESSAGE("skipped: this CPU has no VNNI, so the onednn int8 kernels decline (cpu runs the ops)");
    return false;
}

Tensor scalar(uint32_t dtype, int value) {
    Tensor t = bytes(dtype, {}, 1, 0, 0);
    t.b[0] = static_cast<int8_t>(value);
    return t;
}

}  // namespace

TEST_CASE("onednn MatMulInteger is exact against the cpu reference") {
    if (!int8_runs_here()) return;
    constexpr uint32_t U8 = DSK_DTYPE_U8, I8 = DSK_DTYPE_I8;
    for (const Shape& mkn : {Shape{5, 37, 11}, Shape{64, 300, 96}, Shape{128, 1024, 64}}) {
        CAPTURE(mkn);
        const int64_t m = mkn[0], k = mkn[1], n = mkn[2];
        const Tensor a = bytes(U8, {m, k}, 1, 0, 255), b = bytes(I8, {k, n}, 2, -128, 127);
        exact_as_cpu("MatMulInteger", {}, {a, b}, {m, n});
        exact_as_cpu("MatMulInteger", {}, {a, b, scalar(U8, 128), scalar(I8, -7)}, {m, n});
        // Per row of A and per column of B.
        exact_as_cpu("MatMulInteger", {}, {a, b, bytes(U8, {m}, 3, 0, 255), bytes(I8, {n}, 4, -128, 127)}, {m, n});
        exact_as_cpu("MatMulInteger", {}, {bytes(I8, {m, k}, 5, -128, 127), b, scalar(I8, -3)}, {m, n});
    }
}

TEST_CASE("onednn's zero-point corrections of a small product stay on the calling thread") {
    // oneDNN's primitive runs on its own (the same OpenMP pool); the corrections after it are
    // dsk loops, which used to split any product of more than 16 rows over the pool.
    if (!int8_runs_here()) return;
    constexpr uint32_t U8 = DSK_DTYPE_U8, I8 = DSK_DTYPE_I8;
    const int64_t m = 64, k = 37, n = 11;
    std::vector<Tensor> in = {bytes(U8, {m, k}, 1, 0, 255), bytes(I8, {k, n}, 2, -128, 127), bytes(U8, {m}, 3, 0, 255),
                              bytes(I8, {n}, 4, -128, 127)};
    std::vector<Tensor> out = {i32({m, n})};
    {
        threaded_host::CountedPool pool;
        run_on(dsk::onednn::kernel_table(), "MatMulInteger", {}, in, out);
        CHECK(threaded_host::pool_calls() == 0);
    }
}

TEST_CASE("onednn ConvInteger is exact against the cpu reference") {
    if (!int8_runs_here()) return;
    constexpr uint32_t U8 = DSK_DTYPE_U8, I8 = DSK_DTYPE_I8;
    const std::vector<int64_t> pads1 = {1, 1, 1, 1}, strides2 = {2, 2};
    struct Case {
        Shape x, w, y;
        std::vector<Attr> attrs;
    };
    const std::vector<Case> cases = {
        {{2, 3, 6, 6}, {4, 3, 3, 3}, {2, 4, 6, 6}, {Attr("pads", pads1)}},
        {{1, 16, 14, 14}, {32, 16, 3, 3}, {1, 32, 7, 7}, {Attr("pads", pads1), Attr("strides", strides2)}},
        {{2, 8, 9, 9}, {8, 4, 3, 3}, {2, 8, 9, 9}, {Attr("group", 2), Attr("pads", pads1)}},
        {{2, 32, 8, 8}, {64, 32, 1, 1}, {2, 64, 8, 8}, {}},
    };
    for (const Case& c : cases) {
        CAPTURE(c.x);
        CAPTURE(c.w);
        const Tensor x = bytes(U8, c.x, 1, 0, 255), w = bytes(I8, c.w, 2, -128, 127);
        exact_as_cpu("ConvInteger", c.attrs, {x, w}, c.y);
        exact_as_cpu("ConvInteger", c.attrs, {x, w, scalar(U8, 100)}, c.y);
        exact_as_cpu("ConvInteger", c.attrs, {x, w, scalar(U8, 100), bytes(I8, {c.w[0]}, 3, -5, 5)}, c.y);
        exact_as_cpu("ConvInteger", c.attrs, {x, w, scalar(U8, 0), scalar(I8, 0)}, c.y);
        exact_as_cpu("ConvInteger", c.attrs, {bytes(I8, c.x, 4, -128, 127), w, scalar(I8, -9)}, c.y);
    }
}

//----------------------------------------------------------------------------------------------
// FusedGemm / FusedConv (the kernel's fusion pass): activation(Gemm or Conv), and the optional
// pre-activation output, against cpu's Gemm or Conv followed by cpu's activation
//----------------------------------------------------------------------------------------------

namespace {

// Runs `head` then `activation` on cpu, and the fused op on onednn with one and two outputs.
void fused_matches_unfused(const char* fused, const char* head, const std::vector<Attr>& head_attrs,
                           const std::vector<Tensor>& inputs, const Shape& y_shape, const char* activation) {
    CAPTURE(activation);
    std::vector<Tensor> in = inputs, z = {f32(y_shape)}, y = {f32(y_shape)};
    run_on(dsk::cpu::cpu_kernel_table(), head, head_attrs, in, z);
    run_on(dsk::cpu::cpu_kernel_table(), activation, {}, z, y);
    std::vector<Attr> attrs = head_attrs;
    attrs.emplace_back("activation", activation);
    for (size_t outputs : {1, 2}) {
        CAPTURE(outputs);
        std::vector<Tensor> fused_in = inputs, fused_out(outputs, f32(y_shape));
        run_on(dsk::onednn::kernel_table(), fused, attrs, fused_in, fused_out);
        expect_close(fused_out[0], y[0], 1e-4, std::string(fused) + " Y");
        if (outputs == 2) expect_close(fused_out[1], z[0], 1e-4, std::string(fused) + " Z (pre-activation)");
    }
}

}  // namespace

TEST_CASE("onednn FusedGemm and FusedConv match cpu's op followed by the activation") {
    for (const char* activation : {"Relu", "Sigmoid", "Tanh", "Gelu", "Silu", "HardSwish"}) {
        // The bias path and the C-written-first path of Gemm.
        fused_matches_unfused("FusedGemm", "Gemm", {Attr("transB", 1)}, {f32({16, 40}, 1, -2, 2), f32({24, 40}, 2), f32({24}, 3)},
                              {16, 24}, activation);
        fused_matches_unfused("FusedGemm", "Gemm", {Attr("alpha", 0.5), Attr("beta", 2.0)},
                              {f32({16, 40}, 4, -2, 2), f32({40, 24}, 5), f32({16, 1}, 6)}, {16, 24}, activation);
        fused_matches_unfused("FusedConv", "Conv", {Attr("pads", kPads1)}, {f32({2, 3, 8, 8}, 7, -2, 2), f32({5, 3, 3, 3}, 8), f32({5}, 9)},
                              {2, 5, 8, 8}, activation);
    }
    // No activation: the op itself.
    same_as_cpu("Gemm", {}, {f32({3, 4}, 10), f32({4, 5}, 11)}, {f32({3, 5})});
    std::vector<Tensor> in = {f32({3, 4}, 10), f32({4, 5}, 11)}, out = {f32({3, 5})};
    run_on(dsk::onednn::kernel_table(), "FusedGemm", {Attr("activation", "")}, in, out);
}

TEST_CASE("onednn activations and ActivationGrad may write over their input 0") {
    // Execution plans may give an activation's output the memory of input 0 (docs/abi.md).
    const Shape shape = {4, 33};
    for (const char* name : {"Relu", "Sigmoid", "Tanh", "Gelu", "Silu", "HardSwish", "Neg"}) {
        CAPTURE(name);
        const Tensor x = f32(shape, 1, -4, 4);
        std::vector<Tensor> in = {x}, want = {f32(shape)};
        run_on(dsk::cpu::cpu_kernel_table(), name, {}, in, want);
        Tensor shared = x;
        std::vector<Tensor> none;
        Call c(name, {}, none, none);  // a node whose input and output are one tensor
        const dsk_tensor_desc t = shared.desc();
        std::vector<dsk_tensor_desc> tensors = {t, t};
        const uint32_t in_index = 0, out_index = 1;
        c.node.inputs = &in_index;
        c.node.input_count = 1;
        c.node.outputs = &out_index;
        c.node.output_count = 1;
        const dsk::cpu::KernelDef* def = dsk::onednn::kernel_table().find(&c.node, tensors.data());
        REQUIRE(def != nullptr);
        REQUIRE(fake_host::take(dsk::onednn::kernel_table().compute(*def, nullptr, &c.node, tensors.data())).code == DSK_OK);
        expect_close(shared, want[0], 1e-5, std::string(name) + " in place");
        if (std::string(name) == "Neg") continue;
        // ActivationGrad: dX over dY.
        const Tensor dy = f32(shape, 2);
        std::vector<Tensor> grad_in = {dy, x}, grad_want = {f32(shape)};
        run_on(dsk::cpu::cpu_kernel_table(), "ActivationGrad", {Attr("activation", name)}, grad_in, grad_want);
        Tensor dy_shared = dy;
        Tensor x_copy = x;
        const std::vector<Attr> attrs = {Attr("activation", name)};
        Call g("ActivationGrad", attrs, none, none);
        std::vector<dsk_tensor_desc> grad_tensors = {dy_shared.desc(), x_copy.desc(), dy_shared.desc()};
        const uint32_t grad_inputs[] = {0, 1}, grad_output = 2;
        g.node.inputs = grad_inputs;
        g.node.input_count = 2;
        g.node.outputs = &grad_output;
        g.node.output_count = 1;
        const dsk::cpu::KernelDef* grad_def = dsk::onednn::kernel_table().find(&g.node, grad_tensors.data());
        REQUIRE(grad_def != nullptr);
        REQUIRE(fake_host::take(dsk::onednn::kernel_table().compute(*grad_def, nullptr, &g.node, grad_tensors.data())).code == DSK_OK);
        expect_close(dy_shared, grad_want[0], 1e-5, std::string(name) + " ActivationGrad in place");
    }
}
