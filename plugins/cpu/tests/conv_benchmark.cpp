// conv_benchmark - Conv, ConvGradInput, ConvGradWeight and MaxPool / MaxPoolGrad / MaxPoolReluGrad
// (what training runs: the pool's and the Relu's gradients in one) at the layers of
// the CNN of configs/cnn.toml (conv 1->32 at 28x28, conv 32->64 at 14x14, 3x3, pad 1; 2x2 pools),
// through the kernels' compute thunks on an OpenMP pool like the kernel's. Not a test: run it by
// hand, e.g.
//
//     OMP_NUM_THREADS=2 build/bin/dsk_cpu_conv_benchmark          # batch 128
//     OMP_NUM_THREADS=2 build/bin/dsk_cpu_conv_benchmark 1 256    # other batch sizes
//     OMP_NUM_THREADS=1 build/bin/dsk_cpu_conv_benchmark --cpu-time 128
//     OMP_NUM_THREADS=1 build/bin/dsk_cpu_conv_benchmark "32->64" Conv   # only rows so named
//
// Other arguments select rows: each must be the row's op (Conv, ConvGradInput, ConvGradWeight,
// MaxPool, MaxPoolGrad, MaxPoolReluGrad) or a part of its layer's name (for perf on one kernel at a time).
// --cpu-time measures the process's CPU time instead of wall-clock time: with one thread on a
// machine others load, that is the time the kernels themselves ran.
// Prints microseconds per call (best of 25 interleaved rounds) and, for the convolutions,
// GFLOP/s (2 FLOP per multiply-add, the padding's included as a dense 3x3 would count it).
#include <omp.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "kernel_bench.h"

namespace {

using kernel_bench::Node;
using kernel_bench::Shape;

struct ConvLayer {
    int64_t in_c, out_c, size;
};

// The filters of the command line: a row runs when each one is its op's name or a part of its
// layer's name.
std::vector<std::string>& filters() {
    static std::vector<std::string> words;
    return words;
}

bool selected(const std::string& layer, const std::string& op) {
    for (const std::string& word : filters())
        if (word != op && layer.find(word) == std::string::npos) return false;
    return true;
}

void bench_batch(int64_t batch) {
    uint32_t seed = 1;
    const std::vector<dsk::Attr> pads = {dsk::Attr("pads", std::vector<int64_t>{1, 1, 1, 1})};
    const std::vector<dsk::Attr> pool = {dsk::Attr("kernel_shape", std::vector<int64_t>{2, 2}),
                                         dsk::Attr("strides", std::vector<int64_t>{2, 2})};
    for (const ConvLayer& l : {ConvLayer{1, 32, 28}, ConvLayer{32, 64, 14}}) {
        const Shape xs = {batch, l.in_c, l.size, l.size}, ws = {l.out_c, l.in_c, 3, 3},
                    ys = {batch, l.out_c, l.size, l.size},
                    ps = {batch, l.out_c, l.size / 2, l.size / 2};
        std::vector<float> x = kernel_bench::random_values(xs, seed++),
                           w = kernel_bench::random_values(ws, seed++),
                           b = kernel_bench::random_values({l.out_c}, seed++),
                           dy = kernel_bench::random_values(ys, seed++),
                           dp = kernel_bench::random_values(ps, seed++);
        std::vector<float> y(dy.size()), dx(x.size()), dw(w.size()), p(dp.size()), dyp(dy.size());
        std::vector<dsk::Attr> in_attrs = pads, w_attrs = pads;
        in_attrs.emplace_back("input_shape", xs);
        w_attrs.emplace_back("weight_shape", ws);
        const Node conv("Conv", pads, {{xs, x.data()}, {ws, w.data()}, {{l.out_c}, b.data()}},
                        {{ys, y.data()}});
        const Node grad_in("ConvGradInput", in_attrs, {{ys, dy.data()}, {ws, w.data()}},
                           {{xs, dx.data()}});
        const Node grad_w("ConvGradWeight", w_attrs, {{ys, dy.data()}, {xs, x.data()}},
                          {{ws, dw.data()}});
        const Node max_pool("MaxPool", pool, {{ys, y.data()}}, {{ps, p.data()}});
        const Node max_pool_grad("MaxPoolGrad", pool, {{ps, dp.data()}, {ys, y.data()}},
                                 {{ys, dyp.data()}});
        const Node max_pool_relu_grad("MaxPoolReluGrad", pool, {{ps, dp.data()}, {ys, y.data()}},
                                      {{ys, dyp.data()}});
        const double flop = 2.0 * batch * l.out_c * l.in_c * 9 * l.size * l.size;
        const std::string name = "conv " + std::to_string(l.in_c) + "->" +
                                 std::to_string(l.out_c) + " " + std::to_string(l.size) + "x" +
                                 std::to_string(l.size);
        const char* const ops[] = {"Conv", "ConvGradInput", "ConvGradWeight", "MaxPool",
                                   "MaxPoolGrad", "MaxPoolReluGrad"};
        const std::function<void()> runs[] = {[&] { conv.run(); }, [&] { grad_in.run(); },
                                              [&] { grad_w.run(); }, [&] { max_pool.run(); },
                                              [&] { max_pool_grad.run(); }, [&] { max_pool_relu_grad.run(); }};
        std::vector<std::function<void()>> chosen;
        std::vector<size_t> which;
        for (size_t i = 0; i < std::size(ops); ++i) {
            if (!selected(name, ops[i])) continue;
            chosen.push_back(runs[i]);
            which.push_back(i);
        }
        if (chosen.empty()) continue;
        const std::vector<double> t = kernel_bench::best_times(chosen);
        for (size_t k = 0; k < t.size(); ++k) {
            const size_t i = which[k];
            const double seconds = t[k];
            if (i < 3)
                std::printf("%-18s batch %-4lld %-15s %10.1f us %8.1f GFLOP/s\n", name.c_str(),
                            static_cast<long long>(batch), ops[i], seconds * 1e6,
                            flop / seconds * 1e-9);
            else
                std::printf("%-18s batch %-4lld %-15s %10.1f us\n", name.c_str(),
                            static_cast<long long>(batch), ops[i], seconds * 1e6);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    openmp_host::install();
    
    std::vector<int64_t> batches;
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--cpu-time")
            kernel_bench::clock_used() = kernel_bench::Clock::process_cpu;
        else if (const std::string a = argv[i];
                 !a.empty() && std::all_of(a.begin(), a.end(), [](unsigned char c) { return std::isdigit(c); }))
            batches.push_back(std::atoll(argv[i]));
        else
            filters().push_back(argv[i]);
    }
    if (batches.empty()) batches.push_back(128);
    std::printf("%d threads; best of 25 interleaved rounds, %s time\n", omp_get_max_threads(),
                kernel_bench::clock_used() == kernel_bench::Clock::wall ? "wall-clock" : "CPU");
    for (int64_t batch : batches) bench_batch(batch);
    return 0;
}
