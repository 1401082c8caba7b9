// fused_benchmark - FusedGemm / FusedConv against the unfused pair (Gemm or Conv, then Relu) at
// the layers of the MLP (784-256-128) and of the CNN of configs/cnn.toml, through the kernels'
// compute thunks on an OpenMP pool like the kernel's. Not a test: run it by hand on a quiet
// machine, e.g.
//
//     OMP_NUM_THREADS=2 build/bin/dsk_cpu_fused_benchmark               # every layer
//     OMP_NUM_THREADS=2 build/bin/dsk_cpu_fused_benchmark "Conv 1->32"  # layers named so
//
// For each layer: the time of Gemm/Conv (with bias) followed by Relu into a second tensor, as an
// unfused graph runs them; of the fused node with Y only (inference); of the fused node that also
// writes Z (a graph that still reads the pre-activation: training with an activation other than
// Relu, whose gradient reads Y). Best of 25 rounds of a few milliseconds,
// the three taking turns.
#include <omp.h>

#include <cstdio>
#include <string>
#include <vector>

#include "kernel_bench.h"

namespace {

using kernel_bench::Node;
using kernel_bench::Shape;
using kernel_bench::best_times;
using kernel_bench::random_values;

// Only the layers whose name contains this (the program's argument; empty: all).
std::string& layer_filter() {
    static std::string filter;
    return filter;
}

// Times op+Relu, the fused op with Y only, and with Y and Z, on the given inputs.
void compare(const char* what, const char* op, const char* fused_op,
             const std::vector<dsk::Attr>& attrs, const std::vector<std::pair<Shape, float*>>& in,
             const Shape& y_shape) {
    if (std::string(what).find(layer_filter()) == std::string::npos) return;
    int64_t n = 1;
    for (int64_t d : y_shape) n *= d;
    std::vector<float> z(static_cast<size_t>(n)), y(z.size()), fy(z.size()), fz(z.size());
    const Node unfused(op, attrs, in, {{y_shape, z.data()}});
    const Node relu("Relu", {}, {{y_shape, z.data()}}, {{y_shape, y.data()}});
    std::vector<dsk::Attr> fused_attrs = attrs;
    fused_attrs.emplace_back("activation", "Relu");
    const Node fused(fused_op, fused_attrs, in, {{y_shape, fy.data()}});
    const Node fused_z(fused_op, fused_attrs, in, {{y_shape, fy.data()}, {y_shape, fz.data()}});
    const std::vector<double> t = best_times({[&] {
                                                  unfused.run();
                                                  relu.run();
                                              },
                                              [&] { fused.run(); }, [&] { fused_z.run(); }});
    const double t_unfused = t[0], t_fused = t[1], t_fused_z = t[2];
    std::printf("%-34s %10.1f %10.1f %10.1f %8.2fx %8.2fx\n", what, t_unfused * 1e6, t_fused * 1e6,
                t_fused_z * 1e6, t_unfused / t_fused, t_unfused / t_fused_z);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1) layer_filter() = argv[1];
    openmp_host::install();
    std::printf("%d threads; times in us per call (best of 25 interleaved rounds)\n",
                omp_get_max_threads());
    std::printf("%-34s %10s %10s %10s %9s %9s\n", "layer", "op+Relu", "fused", "fused+Z", "speedup",
                "(with Z)");
    uint32_t seed = 1;
    for (const auto& [in, out] : {std::pair<int64_t, int64_t>{784, 256}, {256, 128}}) {
        std::vector<float> w = random_values({out, in}, seed++), b = random_values({out}, seed++);
        for (int64_t batch : {1, 32, 128, 256}) {
            std::vector<float> x = random_values({batch, in}, seed++);
            const std::string what = "Gemm " + std::to_string(in) + "->" + std::to_string(out) +
                                     " batch " + std::to_string(batch);
            compare(what.c_str(), "Gemm", "FusedGemm", {dsk::Attr("transB", 1)},
                    {{{batch, in}, x.data()}, {{out, in}, w.data()}, {{out}, b.data()}},
                    {batch, out});
        }
    }
    struct ConvLayer {
        int64_t in_c, out_c, size;
    };
    for (const ConvLayer& l : {ConvLayer{1, 32, 28}, ConvLayer{32, 64, 14}}) {
        std::vector<float> w = random_values({l.out_c, l.in_c, 3, 3}, seed++),
                           b = random_values({l.out_c}, seed++);
        for (int64_t batch : {1, 128}) {
            std::vector<float> x = random_values({batch, l.in_c, l.size, l.size}, seed++);
            const std::string what = "Conv " + std::to_string(l.in_c) + "->" +
                                     std::to_string(l.out_c) + " 3x3 " + std::to_string(l.size) +
                                     "x" + std::to_string(l.size) + " batch " +
                                     std::to_string(batch);
            compare(what.c_str(), "Conv", "FusedConv",
                    {dsk::Attr("pads", std::vector<int64_t>{1, 1, 1, 1})},
                    {{{batch, l.in_c, l.size, l.size}, x.data()},
                     {{l.out_c, l.in_c, 3, 3}, w.data()},
                     {{l.out_c}, b.data()}},
                    {batch, l.out_c, l.size, l.size});
        }
    }
    return 0;
}
