// kernel_bench.h - what the hand-run kernel benchmarks of this folder share: random tensors, one
// node run through a cpu kernel's compute thunk, and interleaved best-of timing. Not a test.
#pragma once

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <dsk/dsk_op.hpp>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"
#include "openmp_host.h"

namespace kernel_bench {

using Shape = std::vector<int64_t>;

inline std::vector<float> random_values(const Shape& shape, uint32_t seed) {
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

// What best_times measures: wall-clock time, or the CPU time of the whole process (every thread's
// time on a core: on a machine loaded by others, with one thread, the time the kernel itself ran).
enum class Clock { wall, process_cpu };

inline Clock& clock_used() {
    static Clock clock = Clock::wall;
    return clock;
}

inline double now_seconds() {
    if (clock_used() == Clock::wall)
        return std::chrono::duration<double>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Seconds per call of each of `variants`: the best of 25 rounds of about 5 ms each, the variants
// taking turns within a round, so that a neighbour's load on the shared machine hits all alike.
inline std::vector<double> best_times(const std::vector<std::function<void()>>& variants) {
    std::vector<int> reps;
    for (const auto& f : variants) {
        f();
        const double t0 = now_seconds();
        f();
        const double once = std::max(1e-7, now_seconds() - t0);
        reps.push_back(std::max(1, static_cast<int>(5e-3 / once)));
    }
    std::vector<double> best(variants.size(), 1e30);
    for (int round = 0; round < 25; ++round) {
        for (size_t v = 0; v < variants.size(); ++v) {
            const double start = now_seconds();
            for (int r = 0; r < reps[v]; ++r) variants[v]();
            best[v] = std::min(best[v], (now_seconds() - start) / reps[v]);
        }
    }
    return best;
}

}  // namespace kernel_bench
