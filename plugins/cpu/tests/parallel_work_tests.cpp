// The rule that sizes parallel loops by their work (sdk/include/dsk/dsk_work.hpp) and its use by
// dsk::parallel_for and the cpu kernels: a loop too small to pay for a second thread runs on the
// calling thread without a trip through the host's pool; a large one is split into at most one
// chunk per thread. No timing here: only which calls reach the pool.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <utility>
#include <vector>

#include "kernels/gemm.h"
#include "threaded_host.h"

namespace {

// A host of `threads` threads that records every parallel_for reaching it (the chunks it was
// asked for) and runs them in order on the calling thread.
struct PoolLog {
    uint32_t threads = 2;
    size_t calls = 0;
    size_t thread_count_calls = 0;  // how often the pool size was asked for
    std::vector<size_t> chunks;  // per call: how many chunks of `grain` [0, n) makes
};

PoolLog& pool_log() {
    static PoolLog log;
    return log;
}

uint32_t logged_thread_count() {
    ++pool_log().thread_count_calls;
    return pool_log().threads;
}

void logged_parallel_for(size_t n, size_t grain, dsk_parallel_fn fn, void* user) {
    PoolLog& log = pool_log();
    ++log.calls;
    grain = grain ? grain : 1;
    log.chunks.push_back((n + grain - 1) / grain);
    for (size_t begin = 0; begin < n; begin += grain) fn(user, begin, std::min(n, begin + grain));
}

// Installs the logging host with `threads` threads and the rule's default minimum for the scope
// of a test; the threaded host (one thread) again afterwards.
struct LoggedHost {
    explicit LoggedHost(uint32_t threads) {
        pool_log() = PoolLog{};
        pool_log().threads = threads;
        static const dsk_host_api table = [] {
            dsk_host_api t = fake_host::api();
            t.thread_count = logged_thread_count;
            t.parallel_for = logged_parallel_for;
            return t;
        }();
        dsk::detail::host_slot().store(&table, std::memory_order_release);
        dsk::min_thread_ns().store(dsk::kMinThreadNs);
    }
    ~LoggedHost() { threaded_host::install(1); }
};

}  // namespace

TEST_CASE("threads_for gives one thread per kMinThreadNs of estimated work, within the pool") {
    const double ns = dsk::kMinThreadNs;
    const dsk::Work one_thread{ns * dsk::kFlopsPerNs, 0.0};  // kMinThreadNs of FLOPs
    CHECK(dsk::threads_for(dsk::Work{}, 4, ns) == 1);
    CHECK(dsk::threads_for(one_thread * 1.9, 4, ns) == 1);
    CHECK(dsk::threads_for(one_thread * 2.0, 4, ns) == 2);
    CHECK(dsk::threads_for(one_thread * 3.5, 4, ns) == 3);
    CHECK(dsk::threads_for(one_thread * 100.0, 4, ns) == 4);
    CHECK(dsk::threads_for(one_thread * 100.0, 1, ns) == 1);
    // Bytes count at kBytesPerNs: the same time in memory traffic gives the same threads.
    CHECK(dsk::threads_for(dsk::Work{0.0, 2.0 * ns * dsk::kBytesPerNs}, 4, ns) == 2);
    CHECK(dsk::threads_for(one_thread + dsk::Work{0.0, ns * dsk::kBytesPerNs}, 4, ns) == 2);
    // A minimum of 0 splits every loop over the whole pool (what the threaded tests use).
    CHECK(dsk::threads_for(dsk::Work{}, 4, 0.0) == 4);
}

TEST_CASE("worth_threads is threads_for's first test: more than one thread on a pool of two") {
    const dsk::Work one_thread{dsk::kMinThreadNs * dsk::kFlopsPerNs, 0.0};
    const dsk::Work one_thread_of_bytes{0.0, dsk::kMinThreadNs * dsk::kBytesPerNs};
    dsk::min_thread_ns().store(dsk::kMinThreadNs);  // not what an earlier test left (0 splits every loop)
    for (double times : {0.0, 0.5, 1.0, 1.9, 1.99, 2.01, 2.1, 3.0, 1e6})
        for (const dsk::Work& w : {one_thread * times, one_thread_of_bytes * times, (one_thread + one_thread_of_bytes) * (times / 2)}) {
            CAPTURE(times);
            CHECK(dsk::worth_threads(w) == (dsk::threads_for(w, 2) > 1));
        }
    dsk::min_thread_ns().store(0.0);  // every loop split, as the threaded tests ask
    CHECK(dsk::worth_threads(dsk::Work{}));
    dsk::min_thread_ns().store(dsk::kMinThreadNs);
}

TEST_CASE("parallel_for with a small work estimate runs the body once on the calling thread") {
    LoggedHost host(2);
    const std::thread::id caller = std::this_thread::get_id();
    std::vector<std::pair<size_t, size_t>> ranges;
    bool on_caller = true;
    // 1000 elements of a Relu: 8 KB of traffic, about 0.1 us: far below what waking a thread
    // costs.
    dsk::parallel_for(1000, dsk::Work{1.0, 8.0}, [&](size_t b, size_t e) {
        ranges.emplace_back(b, e);
        on_caller = on_caller && std::this_thread::get_id() == caller;
    });
    CHECK(pool_log().calls == 0);
    CHECK(pool_log().thread_count_calls == 0);  // nor asked for its size
    REQUIRE(ranges.size() == 1);
    CHECK(ranges[0] == std::make_pair(size_t{0}, size_t{1000}));
    CHECK(on_caller);
}

TEST_CASE("parallel_for with a large work estimate asks the pool for one chunk per thread") {
    for (uint32_t threads : {2u, 3u, 8u}) {
        LoggedHost host(threads);
        CAPTURE(threads);
        std::vector<int> seen(100000, 0);
        // 100000 x 1000 FLOPs: over a millisecond on one core, worth every thread.
        dsk::parallel_for(seen.size(), dsk::Work{1000.0, 0.0}, [&](size_t b, size_t e) {
            for (size_t i = b; i < e; ++i) ++seen[i];
        });
        REQUIRE(pool_log().calls == 1);
        CHECK(pool_log().chunks[0] == threads);
        CHECK(std::count(seen.begin(), seen.end(), 1) == static_cast<std::ptrdiff_t>(seen.size()));
    }
    // Chunks stay multiples of the grain, and no more than the work pays for: 2.5 threads' worth
    // on a pool of 8 uses 2.
    LoggedHost host(8);
    const double per_item = 2.5 * dsk::kMinThreadNs * dsk::kFlopsPerNs / 1000.0;
    size_t misaligned = 0;
    dsk::parallel_for(1000, 64, dsk::Work{per_item, 0.0}, [&](size_t b, size_t e) {
        if (b % 64 != 0 || (e % 64 != 0 && e != 1000)) ++misaligned;
    });
    REQUIRE(pool_log().calls == 1);
    CHECK(pool_log().chunks[0] == 2);
    CHECK(misaligned == 0);
}

TEST_CASE("the cpu SGEMM runs batch-1 layers on the calling thread and splits large products") {
    LoggedHost host(2);
    auto multiply = [](int64_t m, int64_t n, int64_t k) {
        std::vector<float> a(static_cast<size_t>(m * k), 0.5f), b(static_cast<size_t>(k * n), 0.25f),
            c(static_cast<size_t>(m * n), 0.0f);
        dsk::cpu::sgemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c.data(), n);
        return c[0];
    };
    // The MLP's layers at batch 1 (784 -> 256 -> 128 -> 10) and the CNN's conv2 as one image's
    // SGEMM (64 x 196 x 288, its largest op at batch 1): each under two threads' minimum. Before
    // the rule, fc1 and conv2 forked (more than 64K and 262K multiply-adds).
    CHECK(multiply(1, 256, 784) == doctest::Approx(0.125f * 784));
    CHECK(multiply(1, 128, 256) == doctest::Approx(0.125f * 256));
    CHECK(multiply(1, 10, 128) == doctest::Approx(0.125f * 128));
    CHECK(multiply(64, 196, 288) == doctest::Approx(0.125f * 288));
    CHECK(pool_log().calls == 0);
    // Batch 256 through the first layer: 51 MFLOP, split over both threads.
    CHECK(multiply(256, 256, 784) == doctest::Approx(0.125f * 784));
    REQUIRE(pool_log().calls == 1);
    CHECK(pool_log().chunks[0] == 2);
}
