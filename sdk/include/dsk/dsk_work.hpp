// dsk_work.hpp - how many threads a parallel loop is worth: the one rule that dsk::parallel_for
// (dsk_plugin.hpp) and the kernel's own loops apply.
//
// A fork and join of the kernel's OpenMP pool costs about 1 us when the other threads are
// spinning on idle cores, but when another process runs on the other core the worker waits for
// a scheduler time slice: 2-4 ms per fork on average, up to 12 ms, measured on the 2-core build
// machine (docs/benchmarks.md, "Threads per op"). A loop says what its work is, and gets one
// thread per kMinThreadNs of estimated one-core time:
//
//     threads = clamp(floor(estimated_ns(total) / kMinThreadNs), 1, pool size)
//
// Below 2 * kMinThreadNs (100 us) a loop runs on the calling thread, with no trip through the
// pool: batch-1 inference of the MLP and the CNN (largest op about 96 us) never forks, so its
// latency does not depend on what else the machine runs; batch-256 and training products (110 us
// and more) still split. The estimate is a cost model, not a measurement: FLOPs at kFlopsPerNs
// plus bytes read and written at kBytesPerNs, one core's rates on data in its caches.
//
//     dsk::Work per_row{2.0 * k, 4.0 * k};                   // one output row of a dot product
//     dsk::parallel_for(rows, per_row, [&](size_t b, size_t e) { ... });
//
// Header-only and free of the host table, so that the kernel uses the same rule.
#ifndef DSK_WORK_HPP_
#define DSK_WORK_HPP_

#include <atomic>
#include <cstdint>
#include <cstdlib>

namespace dsk {

// The work of one loop (or of one index of it): arithmetic and memory traffic.
struct Work {
    double flops = 0;  // a multiply-add counts 2
    double bytes = 0;  // read and written

    constexpr Work operator*(double times) const { return {flops * times, bytes * times}; }
    constexpr Work operator+(const Work& other) const {
        return {flops + other.flops, bytes + other.bytes};
    }
};

// One core's rates in the cost model, measured on a Zen 4 core (115 GFLOP/s FMA peak; the SGEMM
// gets 70-90% of it; 40-130 bytes per ns streamed from L2/L3), and the work a thread must get.
inline constexpr double kFlopsPerNs = 80.0;
inline constexpr double kBytesPerNs = 64.0;
inline constexpr double kMinThreadNs = 50000.0;

// Estimated nanoseconds of `w` on one core.
constexpr double estimated_ns(const Work& w) {
    return w.flops / kFlopsPerNs + w.bytes / kBytesPerNs;
}

// How many of `available` threads a loop of `total` work uses (at least 1), each getting at least
// `min_thread_ns` of it.
constexpr uint32_t threads_for(const Work& total, uint32_t available, double min_thread_ns) {
    if (available <= 1) return 1;
    if (!(min_thread_ns > 0.0)) return available;
    const double fit = estimated_ns(total) / min_thread_ns;
    if (!(fit >= 2.0)) return 1;  // also for NaN
    return fit >= static_cast<double>(available) ? available : static_cast<uint32_t>(fit);
}

namespace detail {

inline double min_thread_ns_from_environment() {
    const char* text = std::getenv("DSK_MIN_THREAD_NS");
    if (!text || !*text) return kMinThreadNs;
    char* end = nullptr;
    const double value = std::strtod(text, &end);
    return end != text && value >= 0.0 ? value : kMinThreadNs;
}

}  // namespace detail

// The minimum in force: kMinThreadNs, or DSK_MIN_THREAD_NS from the environment (read once per
// library; for measuring the rule). Tests store 0 to split every loop over all threads, as if
// every loop were large.
#if defined(_WIN32)
inline std::atomic<double>& min_thread_ns() {
#else
__attribute__((visibility("hidden"))) inline std::atomic<double>& min_thread_ns() {
#endif
    static std::atomic<double> value{detail::min_thread_ns_from_environment()};
    return value;
}

inline uint32_t threads_for(const Work& total, uint32_t available) {
    return threads_for(total, available, min_thread_ns().load(std::memory_order_relaxed));
}

// Whether a loop of `total` work gets more than one thread from a pool of two or more: the first
// test of threads_for, which needs no pool size (asking the host for it costs as much as a
// 16-float op, and most loops of small ops stop here). estimated_ns(total) >= 2 * min_ns, with
// both sides multiplied by the rates: a division costs more than the rest of the test.
inline bool worth_threads(const Work& total) {
    const double min_ns = min_thread_ns().load(std::memory_order_relaxed);
    return !(min_ns > 0.0) ||
           total.flops * kBytesPerNs + total.bytes * kFlopsPerNs >= 2.0 * min_ns * (kFlopsPerNs * kBytesPerNs);
}

}  // namespace dsk

#endif  // DSK_WORK_HPP_
