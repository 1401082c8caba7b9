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
// writes Z (training, where ActivationGrad reads Z). Best of 25 rounds of a few milliseconds,
// the three taking turns.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <dsk/dsk_op.hpp>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"
#include "openmp_host.h"

namespace {

using Shape = std::vector<int64_t>;

std::vector<float> random_values(const Shape& shape, uint32_t seed) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = u(rng);
    return v;
}

// One node of `op` over borrowed float tensors: inputs, then outputs.
class Node {
  public:
    Node(const char* op, std::vector<dsk::Attr> attrs,
         const std::vector<std::pair<Shape, float*>>& inputs,
         const std::vector<std::pair<Shape, float*>>& outputs)
        : op_(op), attrs_(std::move(attrs)) {
        for (const dsk::Attr& a : attrs_) views_.push_back(a.view());
        for (const auto& [shape, data] : inputs) add(shape, data, ins_);
        for (const auto& [shape, data] : outputs) add(shape, data, outs_);
        view_.struct_size = sizeof view_;
        view_.op_version = 1;
        view_.op = op_.c_str();
        view_.domain = "";
        view_.attrs = views_.data();
        view_.attr_count = views_.size();
        view_.inputs = ins_.data();
        view_.input_count = ins_.size();
        view_.outputs = outs_.data();
        view_.output_count = outs_.size();
        def_ = dsk::cpu::find_kernel(&view_, tensors_.data());
        if (def_ == nullptr) {
            std::fprintf(stderr, "no cpu kernel takes this %s node\n", op);
            std::exit(1);
        }
    }

    void run() const {
        const fake_host::Outcome o =
            fake_host::take(dsk::cpu::compute(*def_, nullptr, &view_, tensors_.data()));
        if (o.code != DSK_OK) {
            std::fprintf(stderr, "%s failed: %s\n", op_.c_str(), o.message.c_str());
            std::exit(1);
        }
    }

  private:
    void add(const Shape& shape, float* data, std::vector<uint32_t>& ids) {
        ids.push_back(static_cast<uint32_t>(tensors_.size()));
        tensors_.push_back(dsk::host_tensor(DSK_DTYPE_F32, shape, data));
    }

    std::string op_;
    std::vector<dsk::Attr> attrs_;
    std::vector<dsk_attr> views_;
    std::vector<uint32_t> ins_, outs_;
    std::vector<dsk_tensor_desc> tensors_;
    dsk_node_view view_{};
    const dsk::cpu::KernelDef* def_ = nullptr;
};

// Seconds per call of each of `variants`: the best of 25 rounds of about 5 ms each, the variants
// taking turns within a round, so that a neighbour's load on the shared machine hits all alike.
std::vector<double> best_times(const std::vector<std::function<void()>>& variants) {
    std::vector<int> reps;
    for (const auto& f : variants) {
        f();
        const auto t0 = std::chrono::steady_clock::now();
        f();
        const double once = std::max(
            1e-7, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        reps.push_back(std::max(1, static_cast<int>(5e-3 / once)));
    }
    std::vector<double> best(variants.size(), 1e30);
    for (int round = 0; round < 25; ++round) {
        for (size_t v = 0; v < variants.size(); ++v) {
            const auto start = std::chrono::steady_clock::now();
            for (int r = 0; r < reps[v]; ++r) variants[v]();
            const double t =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            best[v] = std::min(best[v], t / reps[v]);
        }
    }
    return best;
}

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
