// weight_stream.cpp - the `dsk_bench weights` case: the floors under the MLP's batch-1 latency.
//
// `--mode static`: how long merely reading the MLP's weights takes, the floor for any fp32
// kernel (each weight is used once per image, so a matrix-vector product is bound by how fast
// its matrix streams from cache). `--mode plain`: the forward pass itself in plain loops (a new
// input, the products with their biases and Relus), what dsk's session would take with no
// framework around the kernels.
//
// One timed call reads fc1's 256 x 784 weights split over the kernel's thread pool
// (host->parallel_for, as the cpu Gemm kernel splits them: one fork and join included), then
// fc2's 128 x 256 and fc3's 10 x 128 on the calling thread, as the kernel runs layers that small.
// Each thread keeps its share in its own core's cache from one call to the next.
#include "weight_stream.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <new>
#include <utility>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace dsk_bench {
namespace {

#if defined(__x86_64__)
__attribute__((target("avx512f"))) float sum_avx512(const float* p, size_t n) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + i + 48));
    }
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    float s = 0;
    for (float v : lanes) s += v;
    return s;
}
#endif

float sum_portable(const float* p, size_t n) {
    float s[8] = {};
    for (size_t i = 0; i < n; i += 8)
        for (int j = 0; j < 8; ++j) s[j] += p[i + j];
    float total = 0;
    for (float v : s) total += v;
    return total;
}

// The sum of n floats, n a multiple of 64 (every layer and every share of fc1 here is).
float sum(const float* p, size_t n) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return sum_avx512(p, n);
#endif
    return sum_portable(p, n);
}

#if defined(__x86_64__)
// y[r] = b[r] + dot(w row r, x) for rows [r0, r1), four rows at a time; cols a multiple of 16.
__attribute__((target("avx512f,fma"))) void rows_avx512(const float* w, const float* b, const float* x,
                                                       size_t r0, size_t r1, size_t cols, bool relu, float* y) {
    for (size_t r = r0; r < r1; r += 4) {
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        const size_t rows = std::min<size_t>(4, r1 - r);
        for (size_t l = 0; l < cols; l += 16) {
            const __m512 xv = _mm512_loadu_ps(x + l);
            for (size_t i = 0; i < 4; ++i)
                acc[i] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w + (r + std::min(i, rows - 1)) * cols + l), acc[i]);
        }
        for (size_t i = 0; i < rows; ++i) {
            // The 16 lanes added as a tree (a serial chain of 16 additions would cost more than
            // the row's loads); masked shuffles, which GCC 12 does not warn about.
            __m512 v = acc[i];
            v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xffff, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
            v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xffff, v, v, _MM_SHUFFLE(2, 3, 0, 1)));
            v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, 0xffff, v, _MM_SHUFFLE(1, 0, 3, 2)));
            v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, 0xffff, v, _MM_SHUFFLE(2, 3, 0, 1)));
            const float sum = b[r + i] + _mm512_cvtss_f32(v);
            y[r + i] = relu && sum < 0.0f ? 0.0f : sum;
        }
    }
}
#endif

void rows_portable(const float* w, const float* b, const float* x, size_t r0, size_t r1, size_t cols, bool relu,
                   float* y) {
    for (size_t r = r0; r < r1; ++r) {
        float v = b[r];
        for (size_t l = 0; l < cols; ++l) v += w[r * cols + l] * x[l];
        y[r] = relu && v < 0.0f ? 0.0f : v;
    }
}

void rows(const float* w, const float* b, const float* x, size_t r0, size_t r1, size_t cols, bool relu, float* y) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return rows_avx512(w, b, x, r0, r1, cols, relu, y);
#endif
    rows_portable(w, b, x, r0, r1, cols, relu, y);
}

// The MLP's layers: weights [rows, cols], where their biases start in the bias buffer, and
// whether a Relu follows.
struct Layer {
    size_t rows, cols, bias;
    bool relu;
};
constexpr Layer kLayers[] = {{256, 784, 0, true}, {128, 256, 256, true}, {10, 128, 384, false}};
constexpr size_t kFc1 = kLayers[0].rows * kLayers[0].cols, kFc2 = kLayers[1].rows * kLayers[1].cols,
                 kFc3 = kLayers[2].rows * kLayers[2].cols;

// fc1's rows [first, second) for `part` of `parts` (one part per thread of the pool): equal
// slices of whole groups of four, as the dot loops take them.
std::pair<size_t, size_t> fc1_slice(size_t part, size_t parts) {
    return {256 * part / parts / 4 * 4, 256 * (part + 1) / parts / 4 * 4};
}

// fc1's sums per part, for read_once.
struct Split {
    const float* w;
    size_t parts;
    std::vector<float> sums;
};

}  // namespace

WeightStream::Weights WeightStream::filled(size_t count) {
    Weights w(static_cast<float*>(std::aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64)));
    if (!w) throw std::bad_alloc();
    // Values in [-0.005, 0.005) that differ from row to row, so that check_forward would see a
    // row computed from the wrong weights.
    for (size_t i = 0; i < count; ++i) w[i] = static_cast<float>((i * 2654435761u >> 16) % 1000) * 1e-5f - 0.005f;
    return w;
}

WeightStream::WeightStream()
    : fc1_(filled(kFc1)), fc2_(filled(kFc2)), fc3_(filled(kFc3)), bias_(filled(256 + 128 + 16)), x_(filled(784)),
      h1_(filled(256)), h2_(filled(128)), logits_(filled(16)) {}

float WeightStream::read_once(const dsk_host_api& host) const {
    const size_t parts = host.thread_count();
    Split split{fc1_.get(), parts, std::vector<float>(parts)};
    host.parallel_for(
        parts, 1,
        [](void* user, size_t begin, size_t end) {
            auto& s = *static_cast<Split*>(user);
            for (size_t part = begin; part < end; ++part) {
                const auto [r0, r1] = fc1_slice(part, s.parts);
                s.sums[part] = sum(s.w + r0 * 784, (r1 - r0) * 784);
            }
        },
        &split);
    float total = 0;
    for (float v : split.sums) total += v;
    return total + sum(fc2_.get(), kFc2) + sum(fc3_.get(), kFc3);
}

float WeightStream::forward_once(const dsk_host_api& host) {
    step_ = step_ < 1.0f ? step_ + 1e-6f : 0.0f;
    for (size_t i = 0; i < 784; ++i) x_[i] = static_cast<float>(i) * 1e-3f + step_;  // vectorised: a 3 KB write
    struct Layer1 {
        const WeightStream& w;
        size_t parts;
    } layer1{*this, host.thread_count()};
    host.parallel_for(
        layer1.parts, 1,
        [](void* user, size_t begin, size_t end) {
            const auto& l = *static_cast<Layer1*>(user);
            for (size_t part = begin; part < end; ++part) {
                const auto [r0, r1] = fc1_slice(part, l.parts);
                rows(l.w.fc1_.get(), l.w.bias_.get(), l.w.x_.get(), r0, r1, 784, true, l.w.h1_.get());
            }
        },
        &layer1);
    const Layer &fc2 = kLayers[1], &fc3 = kLayers[2];
    rows(fc2_.get(), bias_.get() + fc2.bias, h1_.get(), 0, fc2.rows, fc2.cols, fc2.relu, h2_.get());
    rows(fc3_.get(), bias_.get() + fc3.bias, h2_.get(), 0, fc3.rows, fc3.cols, fc3.relu, logits_.get());
    float total = 0;
    for (size_t i = 0; i < 10; ++i) total += logits_[i];
    return total;
}

std::string WeightStream::check_forward() const {
    // Each layer from its input in forward_once's buffers, so that the first wrong one is named.
    const float* weights[] = {fc1_.get(), fc2_.get(), fc3_.get()};
    const float* inputs[] = {x_.get(), h1_.get(), h2_.get()};
    const float* outputs[] = {h1_.get(), h2_.get(), logits_.get()};
    for (size_t l = 0; l < 3; ++l) {
        const Layer& layer = kLayers[l];
        std::vector<float> reference(layer.rows);
        rows_portable(weights[l], bias_.get() + layer.bias, inputs[l], 0, layer.rows, layer.cols, layer.relu,
                      reference.data());
        for (size_t i = 0; i < layer.rows; ++i)
            if (!(std::fabs(outputs[l][i] - reference[i]) <= 1e-5f + 1e-4f * std::fabs(reference[i])))
                return "fc" + std::to_string(l + 1) + " output " + std::to_string(i) + " is " +
                       std::to_string(outputs[l][i]) + ", the scalar reference " + std::to_string(reference[i]);
    }
    return "";
}

}  // namespace dsk_bench
