// threaded_host.h - the fake host table (tests/support/fake_host.h) with a real thread pool:
// parallel_for splits [0, n) into `threads` contiguous grain-aligned ranges, as the kernel's
// OpenMP pool does, and runs them on std::threads; exec_seed returns a fixed seed. Lets the
// kernel tests check that results do not depend on the thread count.
#pragma once

#include <fake_host.h>

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace threaded_host {

inline uint32_t& threads() {
    static uint32_t count = 1;
    return count;
}

inline uint64_t& seed() {
    static uint64_t value = 0x5eed;
    return value;
}

inline uint32_t thread_count() {
    return threads();
}

inline void parallel_for(size_t n, size_t grain, dsk_parallel_fn fn, void* user) {
    if (n == 0) return;
    grain = std::max<size_t>(grain, 1);
    const size_t chunks = (n + grain - 1) / grain;
    const size_t parts = std::min<size_t>(chunks, threads());
    if (parts <= 1) {
        fn(user, 0, n);
        return;
    }
    const size_t per = (chunks + parts - 1) / parts;
    std::vector<std::thread> pool;
    for (size_t t = 1; t < parts; ++t) {
        const size_t begin = std::min(n, t * per * grain), end = std::min(n, (t + 1) * per * grain);
        if (begin < end) pool.emplace_back([=] { fn(user, begin, end); });
    }
    fn(user, 0, std::min(n, per * grain));
    for (std::thread& thread : pool) thread.join();
}

inline uint64_t exec_seed(dsk_exec_context*) {
    return seed();
}

inline const dsk_host_api& api() {
    static const dsk_host_api table = [] {
        dsk_host_api t = fake_host::api();
        t.thread_count = thread_count;
        t.parallel_for = parallel_for;
        t.exec_seed = exec_seed;
        return t;
    }();
    return table;
}

// Makes dsk::host() the threaded table with `count` threads. Every loop is split over them,
// however small (dsk::min_thread_ns() = 0), so that the tests' small shapes take the threaded
// paths; parallel_work_tests.cpp checks the rule itself.
inline void install(uint32_t count = 1) {
    threads() = count;
    dsk::min_thread_ns().store(0.0);
    dsk::detail::host_slot().store(&api(), std::memory_order_release);
}

// threaded_host's pool of 2 threads, counting the parallel_for calls that reach it, with the
// rule's default minimum of work per thread (threaded_host::install sets 0 for the other tests).
inline size_t& pool_calls() {
    static size_t calls = 0;
    return calls;
}

inline void counted_parallel_for(size_t n, size_t grain, dsk_parallel_fn fn, void* user) {
    ++pool_calls();
    parallel_for(n, grain, fn, user);
}

struct CountedPool {
    CountedPool() {
        install(2);
        static const dsk_host_api table = [] {
            dsk_host_api t = api();
            t.parallel_for = counted_parallel_for;
            return t;
        }();
        dsk::detail::host_slot().store(&table, std::memory_order_release);
        dsk::min_thread_ns().store(dsk::kMinThreadNs);
        pool_calls() = 0;
    }
    ~CountedPool() { install(1); }
};

}  // namespace threaded_host
