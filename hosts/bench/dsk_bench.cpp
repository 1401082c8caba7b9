// dsk_bench: times forward passes and GEMMs through the host C API, for scripts/bench.
//
//   dsk_bench mlp  --batch 256          MLP 784-256-128-10 forward (Gemm, Relu)
//   dsk_bench cnn  --batch 1            the CNN of configs/cnn.toml, forward in eval mode
//   dsk_bench gemm --n 1024 --mode static|kept
//                                       one Gemm node, C[n, n] = A[n, n] B[n, n], A and B inputs
//                                       written once (static), or B a variable that kernels may
//                                       keep in their own layout across runs (kept: weights)
//   dsk_bench dispatch --n 1000 --mode static|eager
//                                       a chain of n Relu ops on 16 floats: the cost of
//                                       dispatching one op, compiled (a session's plan, every
//                                       result a target so that nothing fuses) or eager
//                                       (dsk_eager_op); seconds per run / n = per op
//   dsk_bench chain --n 1048576 --mode static|unfused
//                                       6 elementwise ops over n floats (Sub, Relu, Mul by a
//                                       scalar, Sigmoid, Add, Tanh): static runs the plan, where
//                                       they fuse into one FusedElementwise; unfused makes every
//                                       intermediate value a run target, so that the plan keeps
//                                       the 6 ops, each value in a buffer of its own (as
//                                       execution = "eager" does)
//   dsk_bench weights --mode static|plain
//                                       the floors under MLP batch-1 latency (weight_stream.h):
//                                       only reading the MLP's weights once (static), or its
//                                       forward pass in plain loops with a new input (plain);
//                                       split as FusedGemmChain splits the layers at batch 1
//   dsk_bench peak --n 200000          FMA chains in registers on every thread of the pool,
//                                       n rounds of 12 vector FMAs each (fma_peak.h): this
//                                       machine's FP32 FMA peak, FLOPs per run in "flops_per_run"
//   dsk_bench train-step --batch 32 --mode eager|jit
//                                       one training step of the MLP 784-256-128-10 (softmax
//                                       cross-entropy, Adam) written eagerly with dsk_eager.hpp:
//                                       forward, dsk::grad, AdamUpdate's functional form, and the
//                                       loss read back; run as it is (eager) or compiled by
//                                       dsk::jit (one graph per step)
//   options: --warmup-s S (0.3)  --rep-s S (0.5)  --reps R (5)  --device NAME (cpu)
//
// The graph is built with dsk_kernel_graph_create and dsk::Graph (dsk_op.hpp), placed on the
// device with dsk_kernel_session_create, and run after a warm-up in R repetitions of about
// --rep-s seconds each. Prints one JSON object on stdout: the seconds per run of every
// repetition (the caller picks the best or the median). Threads: the kernel's OpenMP pool
// (OMP_NUM_THREADS).
//
// What one timed run includes: the graph's run and, for inference, reading the logits back. Every
// input is written once before the timing and stays in the session, as PyTorch's side calls
// model(x) on one tensor x made before its timing (a per-run session_write of the MLP's batch-256
// input copied 800 KB on one thread, about 3% of the run, while the pool's other thread waited).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "dsk/dsk.h"
#include "dsk/dsk_eager.hpp"
#include "dsk/dsk_op.hpp"
#include "fma_peak.h"
#include "weight_stream.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    std::string what;
    int64_t batch = 1;
    int64_t n = 1024;
    double warmup_s = 0.3;
    double rep_s = 0.5;
    int reps = 5;
    std::string device = "cpu";
    std::string mode = "static";
};

[[noreturn]] void usage(const std::string& message) {
    std::fprintf(stderr,
                 "dsk_bench: %s\nusage: dsk_bench mlp|cnn|gemm|dispatch|weights|chain|train-step|peak [--batch N] [--n N] [--warmup-s S] "
                 "[--rep-s S] [--reps R] [--device NAME] [--mode static|eager|unfused|jit]\n",
                 message.c_str());
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    if (argc < 2) usage("missing the case");
    o.what = argv[1];
    if (o.what != "mlp" && o.what != "cnn" && o.what != "gemm" && o.what != "dispatch" && o.what != "weights" &&
        o.what != "chain" && o.what != "train-step" && o.what != "peak")
        usage("unknown case '" + o.what + "'");
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) usage("missing the value of " + a);
        const char* v = argv[++i];
        if (a == "--batch") o.batch = std::atoll(v);
        else if (a == "--n") o.n = std::atoll(v);
        else if (a == "--warmup-s") o.warmup_s = std::atof(v);
        else if (a == "--rep-s") o.rep_s = std::atof(v);
        else if (a == "--reps") o.reps = std::atoi(v);
        else if (a == "--device") o.device = v;
        else if (a == "--mode") o.mode = v;
        else usage("unknown option " + a);
    }
    if (o.batch < 1 || o.n < 1 || o.reps < 1) usage("batch, n and reps must be positive");
    const char* modes = o.what == "train-step" ? "eager or jit"
                        : o.what == "chain"    ? "static or unfused"
                        : o.what == "gemm"     ? "static or kept"
                        : o.what == "weights"  ? "static or plain"
                                               : "static or eager";
    const bool mode_ok = o.what == "train-step" ? o.mode == "eager" || o.mode == "jit"
                         : o.what == "chain"    ? o.mode == "static" || o.mode == "unfused"
                         : o.what == "gemm"     ? o.mode == "static" || o.mode == "kept"
                         : o.what == "weights"  ? o.mode == "static" || o.mode == "plain"
                                                : o.mode == "static" || o.mode == "eager";
    if (!mode_ok) usage(std::string("--mode is ") + modes + " for " + o.what);
    return o;
}

void check_code(dsk_kernel* k, dsk_status_code code, const char* what) {
    if (code != DSK_OK) throw std::runtime_error(std::string(what) + ": " + dsk_kernel_last_error(k));
}

// y = x W^T + b, with PyTorch's default initialisation bounds (as plugins/models does).
dsk_value_id linear(const dsk::Graph& g, const std::string& name, dsk_value_id x, int64_t out) {
    const int64_t in = g.shape(x).at(1);
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    dsk_value_id w = g.variable(name + ".weight", {out, in}, "uniform", bound);
    dsk_value_id b = g.variable(name + ".bias", {out}, "uniform", bound);
    return g.node("Gemm", {x, w, b}, {dsk::Attr("transB", 1)});
}

// 3x3 "same" convolution with bias.
dsk_value_id conv3x3(const dsk::Graph& g, const std::string& name, dsk_value_id x, int64_t out) {
    const int64_t in = g.shape(x).at(1);
    const double bound = 1.0 / std::sqrt(static_cast<double>(in * 9));
    dsk_value_id w = g.variable(name + ".weight", {out, in, 3, 3}, "uniform", bound);
    dsk_value_id b = g.variable(name + ".bias", {out}, "uniform", bound);
    return g.nodes("Conv", {x, w, b},
                   {dsk::Attr("strides", std::vector<int64_t>{1, 1}), dsk::Attr("pads", std::vector<int64_t>{1, 1, 1, 1})}, 1)[0];
}

dsk_value_id maxpool2(const dsk::Graph& g, dsk_value_id x) {
    return g.node("MaxPool", {x},
                  {dsk::Attr("kernel_shape", std::vector<int64_t>{2, 2}), dsk::Attr("strides", std::vector<int64_t>{2, 2})});
}

// The MLP of configs/quickstart.toml: 784-256-128-10.
dsk_value_id build_mlp(const dsk::Graph& g, dsk_value_id x) {
    dsk_value_id h = g.node("Relu", {linear(g, "fc1", x, 256)});
    h = g.node("Relu", {linear(g, "fc2", h, 128)});
    return linear(g, "fc3", h, 10);
}

// The CNN of configs/cnn.toml (plugins/models/cnn.cpp) in eval mode: dropout is the identity.
dsk_value_id build_cnn(const dsk::Graph& g, dsk_value_id x) {
    dsk_value_id h = maxpool2(g, g.node("Relu", {conv3x3(g, "conv1", x, 32)}));
    h = maxpool2(g, g.node("Relu", {conv3x3(g, "conv2", h, 64)}));
    h = g.node("Flatten", {h}, {dsk::Attr("axis", 1)});
    h = g.node("Relu", {linear(g, "fc1", h, 128)});
    h = g.nodes("Dropout", {h}, {dsk::Attr("ratio", 0.25), dsk::Attr("training_mode", 0)}, 2)[0];
    return linear(g, "fc2", h, 10);
}

// Warm-up, then R repetitions of about rep_s seconds; the seconds per call of `once` in each.
template <class F>
std::pair<int64_t, std::vector<double>> time_runs(const Options& o, F&& once, int64_t* runs_per_rep_out) {
    auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
    int64_t warmup_runs = 0;
    const auto w0 = Clock::now();
    do {
        once();
        ++warmup_runs;
    } while (seconds_since(w0) < o.warmup_s || warmup_runs < 3);
    const double estimate = seconds_since(w0) / static_cast<double>(warmup_runs);
    const int64_t runs_per_rep = std::max<int64_t>(1, static_cast<int64_t>(o.rep_s / std::max(estimate, 1e-9)));
    std::vector<double> per_run;
    for (int r = 0; r < o.reps; ++r) {
        const auto t0 = Clock::now();
        for (int64_t i = 0; i < runs_per_rep; ++i) once();
        per_run.push_back(seconds_since(t0) / static_cast<double>(runs_per_rep));
    }
    *runs_per_rep_out = runs_per_rep;
    return {warmup_runs, per_run};
}

// Values uniform in [-1, 1) for a tensor of `shape`.
std::vector<float> uniform_values(const std::vector<int64_t>& shape, uint32_t seed) {
    size_t count = 1;
    for (int64_t d : shape) count *= static_cast<size_t>(d);
    std::vector<float> values(count);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (float& v : values) v = u(rng);
    return values;
}

// `extra`: more members of the JSON object, each `"name": value, ` (the peak case's).
void print_result(const Options& o, uint32_t threads, int64_t warmup_runs, int64_t runs_per_rep, double checksum,
                  const std::vector<double>& per_run, const std::string& extra = "") {
    const bool batched = o.what == "mlp" || o.what == "cnn" || o.what == "train-step";
    std::printf("{\"case\": \"%s\", \"device\": \"%s\", \"mode\": \"%s\", \"threads\": %u, \"batch\": %lld, \"n\": %lld, "
                "\"warmup_runs\": %lld, \"runs_per_rep\": %lld, \"checksum\": %.6g, %s"
                "\"seconds_per_run\": [",
                o.what.c_str(), o.device.c_str(), o.mode.c_str(), threads,
                static_cast<long long>(batched ? o.batch : 0), static_cast<long long>(batched ? 0 : o.n), static_cast<long long>(warmup_runs),
                static_cast<long long>(runs_per_rep), checksum, extra.c_str());
    for (size_t i = 0; i < per_run.size(); ++i) std::printf("%s%.9g", i ? ", " : "", per_run[i]);
    std::printf("]}\n");
}

// n Relu ops on 16 floats, eagerly: each call is schema lookup (cached), shape inference, an
// output buffer, the kernel.
int run_eager_dispatch(const Options& o, dsk_kernel* k) {
    dsk_eager* eager = nullptr;
    check_code(k, dsk_eager_create(k, o.device.c_str(), 1, &eager), "dsk_eager_create");
    std::vector<float> values(16, 0.5f);
    const dsk_tensor_desc host_x = dsk::host_tensor(DSK_DTYPE_F32, {16}, values.data());
    dsk_eager_tensor* x = nullptr;
    check_code(k, dsk_eager_tensor_create(eager, &host_x, &x), "dsk_eager_tensor_create");
    auto once = [&] {
        dsk_eager_tensor* t = x;
        dsk_eager_tensor_retain(t);
        for (int64_t i = 0; i < o.n; ++i) {
            dsk_eager_tensor* y = nullptr;
            check_code(k, dsk_eager_op(eager, "Relu", nullptr, 0, &t, 1, &y, 1), "dsk_eager_op");
            dsk_eager_tensor_release(t);
            t = y;
        }
        dsk_eager_tensor_release(t);
    };
    int64_t runs_per_rep = 0;
    const auto [warmup_runs, per_run] = time_runs(o, once, &runs_per_rep);
    print_result(o, dsk_host()->thread_count(), warmup_runs, runs_per_rep, 0, per_run);
    dsk_eager_tensor_release(x);
    dsk_eager_destroy(eager);
    dsk_kernel_destroy(k);
    return 0;
}

// One Adam step of the MLP 784-256-128-10 on a batch, as eager code: the weights and Adam's
// state go in and their new values come out (tensors are immutable). Layers are Gemm with
// transB (weights [out, in], PyTorch's layout and initialisation bounds).
int run_train_step(const Options& o) {
    const int64_t widths[] = {784, 256, 128, 10};
    std::vector<std::vector<int64_t>> shapes;
    for (int l = 0; l < 3; ++l) {
        shapes.push_back({widths[l + 1], widths[l]});
        shapes.push_back({widths[l + 1]});
    }
    const size_t n = shapes.size();
    auto step = [n](const std::vector<dsk::Tensor>& in) {  // constants, x, labels, w..., m..., v...
        std::vector<dsk::Tensor> w(in.begin() + 3, in.begin() + 3 + static_cast<std::ptrdiff_t>(n));
        for (const dsk::Tensor& t : w) t.requires_grad();
        dsk::Tensor h = in[1];
        for (size_t l = 0; l < 3; ++l) {
            h = gemm(h, w[2 * l], w[2 * l + 1], true);
            if (l < 2) h = relu(h);
        }
        dsk::Tensor loss = softmax_cross_entropy(h, in[2]);
        const std::vector<dsk::Tensor> g = dsk::grad(loss, w);
        std::vector<dsk::Tensor> out(3 * n + 1);
        for (size_t i = 0; i < n; ++i) {
            const std::vector<dsk::Tensor> next = adam_step(in[0], w[i], g[i], in[3 + n + i], in[3 + 2 * n + i]);
            for (size_t s = 0; s < 3; ++s) out[s * n + i] = next[s];
        }
        out[3 * n] = loss;
        return out;
    };

    int64_t runs_per_rep = 0, warmup_runs = 0;
    std::vector<double> per_run;
    float loss = 0;
    {
        dsk::Kernel kernel;
        dsk::Eager eager(kernel, o.device, 1);
        std::mt19937 rng(7);
        std::vector<dsk::Tensor> state;  // w..., m..., v...
        for (size_t i = 0; i < 3 * n; ++i) {
            const std::vector<int64_t>& shape = shapes[i % n];
            size_t count = 1;
            for (int64_t d : shape) count *= static_cast<size_t>(d);
            std::vector<float> v(count, 0.0f);
            if (i < n) {
                std::uniform_real_distribution<float> u(-1.0f, 1.0f);
                const float bound = 1.0f / std::sqrt(static_cast<float>(shape.size() == 2 ? shape[1] : shapes[i - 1][1]));
                for (float& x : v) x = bound * u(rng);
            }
            state.push_back(eager.tensor(shape, v));
        }
        std::vector<float> images(static_cast<size_t>(o.batch * 784));
        std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
        for (float& x : images) x = pixel(rng);
        std::vector<int64_t> labels(static_cast<size_t>(o.batch));
        for (int64_t& y : labels) y = static_cast<int64_t>(rng() % 10);
        const dsk::Tensor x = eager.tensor({o.batch, 784}, images), y = eager.tensor({o.batch}, labels);

        auto compiled = dsk::jit(eager, step);
        const double lr = 1e-3, beta1 = 0.9, beta2 = 0.999;
        int64_t t = 0;
        auto once = [&] {
            ++t;
            const std::vector<float> c = {float(beta1), float(1 - beta1), float(beta2), float(1 - beta2), 1e-8f, 0.0f, 1.0f,
                                          float(lr / (1 - std::pow(beta1, t))), float(std::sqrt(1 - std::pow(beta2, t)))};
            std::vector<dsk::Tensor> in = {eager.tensor({9}, c), x, y};
            in.insert(in.end(), state.begin(), state.end());
            std::vector<dsk::Tensor> out = o.mode == "jit" ? compiled(in) : step(in);
            loss = out[3 * n].values<float>()[0];  // what a training loop reads every step
            state.assign(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(3 * n));
        };
        std::tie(warmup_runs, per_run) = time_runs(o, once, &runs_per_rep);
    }
    print_result(o, dsk_host()->thread_count(), warmup_runs, runs_per_rep, loss, per_run);
    return 0;
}

int run(const Options& o) {
    if (o.what == "train-step") return run_train_step(o);
    dsk_kernel* k = nullptr;
    if (dsk_kernel_create(&k) != DSK_OK) throw std::runtime_error("dsk_kernel_create failed");
    // dsk_op.hpp's helpers call dsk::host(); in a host program the table comes from dsk_host().
    dsk::detail::host_slot().store(dsk_host(), std::memory_order_release);
    const dsk_host_api& host = *dsk_host();
    if (o.what == "dispatch" && o.mode == "eager") return run_eager_dispatch(o, k);
    if (o.what == "peak") {
        const uint32_t threads = host.thread_count();
        volatile float sink = 0;
        int64_t runs_per_rep = 0;
        const auto [warmup_runs, per_run] =
            time_runs(o, [&] { sink = sink + dsk_bench::fma_burst(host, o.n); }, &runs_per_rep);
        char extra[128];
        std::snprintf(extra, sizeof extra, "\"isa\": \"%s\", \"flops_per_run\": %.17g, ", dsk_bench::fma_isa(),
                      threads * dsk_bench::fma_burst_flops(o.n));
        print_result(o, threads, warmup_runs, runs_per_rep, sink, per_run, extra);
        dsk_kernel_destroy(k);
        return 0;
    }
    if (o.what == "weights") {
        dsk_bench::WeightStream weights;
        const bool plain = o.mode == "plain";
        if (plain) {
            weights.forward_once(host);
            if (const std::string why = weights.check_forward(); !why.empty())
                throw std::runtime_error("weights --mode plain: " + why);
        }
        volatile float sink = 0;
        int64_t runs_per_rep = 0;
        const auto [warmup_runs, per_run] = time_runs(
            o, [&] { sink = sink + (plain ? weights.forward_once(host) : weights.read_once(host)); }, &runs_per_rep);
        print_result(o, host.thread_count(), warmup_runs, runs_per_rep, sink, per_run);
        dsk_kernel_destroy(k);
        return 0;
    }

    dsk_graph* graph = nullptr;
    check_code(k, dsk_kernel_graph_create(k, &graph), "dsk_kernel_graph_create");
    dsk::Graph g(graph);

    dsk_value_id input = DSK_VALUE_NONE, output = DSK_VALUE_NONE;
    std::vector<int64_t> in_shape;
    std::vector<dsk_value_id> targets;
    // Inputs written once, before the timing (operands that stay in place): as inputs, not
    // variables, so that the plan neither computes their product once (a step that reads only
    // variables runs again only when they change) nor lets kernels keep their weights' layout.
    std::vector<std::pair<dsk_value_id, std::vector<int64_t>>> written_once;
    try {
        if (o.what == "dispatch") {
            in_shape = {16};
            input = g.input("x", DSK_DTYPE_F32, in_shape);
            written_once.push_back({input, in_shape});
            output = input;
            // Every result is a run target, so that the plan keeps one kernel call per Relu
            // (elementwise fusion would otherwise make the chain one node).
            for (int64_t i = 0; i < o.n; ++i) targets.push_back(output = g.node("Relu", {output}));
        } else if (o.what == "chain") {
            const dsk_value_id x = g.input("x", DSK_DTYPE_F32, {o.n});
            written_once.push_back({x, {o.n}});
            const dsk_value_id b = g.variable("b", {o.n}, "uniform", 1.0, 0);
            const dsk_value_id s = g.variable("s", {}, "uniform", 1.0, 0);
            std::vector<dsk_value_id> chain = {g.node("Sub", {x, b})};
            chain.push_back(g.node("Relu", {chain.back()}));
            chain.push_back(g.node("Mul", {chain.back(), s}));
            chain.push_back(g.node("Sigmoid", {chain.back()}));
            chain.push_back(g.node("Add", {chain.back(), x}));
            chain.push_back(g.node("Tanh", {chain.back()}));
            output = chain.back();
            if (o.mode == "unfused") targets = chain;
        } else if (o.what == "gemm") {
            const dsk_value_id a = g.input("A", DSK_DTYPE_F32, {o.n, o.n});
            written_once.push_back({a, {o.n, o.n}});
            // kept: B a variable, the weights of an inference session, which kernels may keep in
            // their own layout (packed panels, oneDNN's blocked layout) across runs.
            dsk_value_id b = DSK_VALUE_NONE;
            if (o.mode == "kept") {
                b = g.variable("B", {o.n, o.n}, "uniform", 1.0, 0);
            } else {
                b = g.input("B", DSK_DTYPE_F32, {o.n, o.n});
                written_once.push_back({b, {o.n, o.n}});
            }
            output = g.node("Gemm", {a, b});
        } else {
            in_shape = o.what == "mlp" ? std::vector<int64_t>{o.batch, 784} : std::vector<int64_t>{o.batch, 1, 28, 28};
            input = g.input("images", DSK_DTYPE_F32, in_shape);
            written_once.push_back({input, in_shape});
            output = o.what == "mlp" ? build_mlp(g, input) : build_cnn(g, input);
        }
    } catch (const dsk::Error& e) {
        host.graph_destroy(graph);
        throw std::runtime_error(std::string("building the graph: ") + e.what() + " (" + dsk_kernel_last_error(k) + ")");
    }

    dsk_session* session_raw = nullptr;
    const dsk_status_code code = dsk_kernel_session_create(k, graph, o.device.c_str(), 1, &session_raw);
    host.graph_destroy(graph);
    check_code(k, code, "dsk_kernel_session_create");

    for (const auto& [value, shape] : written_once) {
        std::vector<float> data = uniform_values(shape, static_cast<uint32_t>(value) + 11);
        const dsk_tensor_desc d = dsk::host_tensor(DSK_DTYPE_F32, shape, data.data());
        dsk::check(host.session_write(session_raw, value, &d));
    }
    const std::vector<int64_t> out_shape = o.what == "gemm" || o.what == "chain" ? std::vector<int64_t>{o.n, o.n}
                                           : o.what == "dispatch" ? std::vector<int64_t>{16}
                                                                  : std::vector<int64_t>{o.batch, 10};
    std::vector<float> y(o.what == "gemm" || o.what == "chain" ? 0 : o.what == "dispatch" ? 16 : static_cast<size_t>(o.batch * 10));
    if (targets.empty()) targets = {output};

    auto once = [&] {
        dsk::check(host.session_run(session_raw, targets.data(), targets.size()));
        if (!y.empty()) {
            const dsk_tensor_desc d = dsk::host_tensor(DSK_DTYPE_F32, out_shape, y.data());
            dsk::check(host.session_read(session_raw, output, &d));
        }
    };
    int64_t runs_per_rep = 0;
    const auto [warmup_runs, per_run] = time_runs(o, once, &runs_per_rep);
    double checksum = 0;
    for (float v : y) checksum += v;
    print_result(o, host.thread_count(), warmup_runs, runs_per_rep, checksum, per_run);

    host.session_destroy(session_raw);
    dsk_kernel_destroy(k);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    try {
        return run(o);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dsk_bench: %s\n", e.what());
        return 1;
    }
}
