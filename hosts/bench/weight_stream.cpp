// weight_stream.cpp - the `dsk_bench weights` case: the floors under the MLP's batch-1 latency.
//
// `--mode static`: how long merely reading the MLP's weights takes, the floor for any fp32
// kernel (each weight is used once per image, so a matrix-vector product is bound by how fast
// its matrix streams from cache). `--mode plain`: the forward pass itself in plain loops (a new
// input, the products with their biases and Relus), what dsk's session would take with no
// framework around the kernels.
//
// Both split the work as the cpu backend's FusedGemmChain does at batch 1 (the plan makes one of
// the three layers): one fork and join over the kernel's thread pool (host->parallel_for), where
// each thread takes its rows of fc1 and, from those outputs alone, its partial sums of fc2 (its
// columns of fc2's weights); then on the calling thread the partial sums added, and fc3. Each
// thread keeps its share in its own core's cache from one call to the next. AVX-512 or AVX2,
// as the CPU has (plain C++ otherwise).
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

__attribute__((target("avx2"))) float sum_avx2(const float* p, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
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
    if (__builtin_cpu_supports("avx2")) return sum_avx2(p, n);
#endif
    return sum_portable(p, n);
}

// y[r] = b[r] + dot(row r of w, x) (b null: no bias) for rows [r0, r1), rows `ld` floats apart,
// with a Relu when `relu`. The products in registers, four rows at a time; `cols` a multiple of
// the vector width.
struct Rows {
    const float* w;
    size_t ld;
    const float* b;
    const float* x;
    size_t r0, r1, cols;
    bool relu;
    float* y;

    void store(size_t r, float dot) const {
        const float v = (b ? b[r] : 0.0f) + dot;
        y[r] = relu && v < 0.0f ? 0.0f : v;
    }
};

#if defined(__x86_64__)
__attribute__((target("avx512f,fma"))) void rows_avx512(const Rows& p) {
    for (size_t r = p.r0; r < p.r1; r += 4) {
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
        const size_t rows = std::min<size_t>(4, p.r1 - r);
        for (size_t l = 0; l < p.cols; l += 16) {
            const __m512 xv = _mm512_loadu_ps(p.x + l);
            for (size_t i = 0; i < 4; ++i)
                acc[i] = _mm512_fmadd_ps(xv, _mm512_loadu_ps(p.w + (r + std::min(i, rows - 1)) * p.ld + l), acc[i]);
        }
        for (size_t i = 0; i < rows; ++i) {
            // The 16 lanes added as a tree (a serial chain of 16 additions would cost more than
            // the row's loads); masked shuffles, which GCC 12 does not warn about.
            __m512 v = acc[i];
            v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xffff, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
            v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xffff, v, v, _MM_SHUFFLE(2, 3, 0, 1)));
            v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, 0xffff, v, _MM_SHUFFLE(1, 0, 3, 2)));
            v = _mm512_add_ps(v, _mm512_mask_permute_ps(v, 0xffff, v, _MM_SHUFFLE(2, 3, 0, 1)));
            p.store(r + i, _mm512_cvtss_f32(v));
        }
    }
}

__attribute__((target("avx2,fma"))) void rows_avx2(const Rows& p) {
    for (size_t r = p.r0; r < p.r1; r += 4) {
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        const size_t rows = std::min<size_t>(4, p.r1 - r);
        for (size_t l = 0; l < p.cols; l += 8) {
            const __m256 xv = _mm256_loadu_ps(p.x + l);
            for (size_t i = 0; i < 4; ++i)
                acc[i] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(p.w + (r + std::min(i, rows - 1)) * p.ld + l), acc[i]);
        }
        for (size_t i = 0; i < rows; ++i) {
            __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc[i]), _mm256_extractf128_ps(acc[i], 1));
            v = _mm_add_ps(v, _mm_movehl_ps(v, v));
            v = _mm_add_ss(v, _mm_movehdup_ps(v));
            p.store(r + i, _mm_cvtss_f32(v));
        }
    }
}
#endif

void rows_portable(const Rows& p) {
    for (size_t r = p.r0; r < p.r1; ++r) {
        float v = 0.0f;
        for (size_t l = 0; l < p.cols; ++l) v += p.w[r * p.ld + l] * p.x[l];
        p.store(r, v);
    }
}

void rows(const Rows& p) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) return rows_avx512(p);
    if (__builtin_cpu_supports("avx2")) return rows_avx2(p);
#endif
    rows_portable(p);
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

// fc1's rows [first, second) for `part` of `parts`, as FusedGemmChain splits fc1: in groups of
// 128 rows, whole groups to each thread (fc2's columns the same).
constexpr size_t kGroup = 128, kGroups = 256 / kGroup;
std::pair<size_t, size_t> fc1_slice(size_t part, size_t parts) {
    return {kGroup * (kGroups * part / parts), kGroup * (kGroups * (part + 1) / parts)};
}

// One fork and join of the pool, body(part, parts) for each part: a part per thread, at most one
// per group. Returns the number of parts.
template <class F>
size_t over_parts(const dsk_host_api& host, const F& body) {
    struct Job {
        const F& body;
        size_t parts;
    } job{body, std::min<size_t>(host.thread_count(), kGroups)};
    host.parallel_for(
        job.parts, 1,
        [](void* user, size_t begin, size_t end) {
            const auto& j = *static_cast<const Job*>(user);
            for (size_t p = begin; p < end; ++p) j.body(p, j.parts);
        },
        &job);
    return job.parts;
}

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
      h1_(filled(256)), h2_(filled(128)), logits_(filled(16)), partial_(filled(kGroups * 128)) {}

float WeightStream::read_once(const dsk_host_api& host) const {
    float sums[kGroups] = {};
    const size_t parts = over_parts(host, [&](size_t part, size_t parts) {
        const auto [r0, r1] = fc1_slice(part, parts);
        float total = sum(fc1_.get() + r0 * 784, (r1 - r0) * 784);
        for (size_t o = 0; o < 128; ++o) total += sum(fc2_.get() + o * 256 + r0, r1 - r0);  // fc2's columns [r0, r1)
        sums[part] = total;
    });
    float total = 0;
    for (size_t p = 0; p < parts; ++p) total += sums[p];
    return total + sum(fc3_.get(), kFc3);
}

float WeightStream::forward_once(const dsk_host_api& host) {
    step_ = step_ < 1.0f ? step_ + 1e-6f : 0.0f;
    for (size_t i = 0; i < 784; ++i) x_[i] = static_cast<float>(i) * 1e-3f + step_;  // vectorised: a 3 KB write
    const Layer &fc1 = kLayers[0], &fc2 = kLayers[1], &fc3 = kLayers[2];
    const size_t parts = over_parts(host, [&](size_t part, size_t parts) {
        const auto [r0, r1] = fc1_slice(part, parts);
        rows({fc1_.get(), fc1.cols, bias_.get() + fc1.bias, x_.get(), r0, r1, fc1.cols, fc1.relu, h1_.get()});
        rows({fc2_.get() + r0, fc2.cols, nullptr, h1_.get() + r0, 0, fc2.rows, r1 - r0, false,
              partial_.get() + part * fc2.rows});
    });
    for (size_t i = 0; i < fc2.rows; ++i) {
        float v = partial_[i];
        for (size_t p = 1; p < parts; ++p) v += partial_[p * fc2.rows + i];
        v += bias_[fc2.bias + i];
        h2_[i] = fc2.relu && v < 0.0f ? 0.0f : v;
    }
    rows({fc3_.get(), fc3.cols, bias_.get() + fc3.bias, h2_.get(), 0, fc3.rows, fc3.cols, fc3.relu, logits_.get()});
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
        rows_portable({weights[l], layer.cols, bias_.get() + layer.bias, inputs[l], 0, layer.rows, layer.cols,
                       layer.relu, reference.data()});
        for (size_t i = 0; i < layer.rows; ++i)
            if (!(std::fabs(outputs[l][i] - reference[i]) <= 1e-5f + 1e-4f * std::fabs(reference[i])))
                return "fc" + std::to_string(l + 1) + " output " + std::to_string(i) + " is " +
                       std::to_string(outputs[l][i]) + ", the scalar reference " + std::to_string(reference[i]);
    }
    return "";
}

}  // namespace dsk_bench
