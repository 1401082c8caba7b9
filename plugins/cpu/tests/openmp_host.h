// openmp_host.h - the fake host table (tests/support/fake_host.h) with the kernel's OpenMP thread
// pool (kernel/thread_pool.cpp) behind thread_count and parallel_for, for the benchmarks: they
// time the kernels as a session runs them (OMP_NUM_THREADS sets the threads).
#pragma once

#include <fake_host.h>
#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace openmp_host {

inline uint32_t thread_count() {
    return static_cast<uint32_t>(omp_get_max_threads());
}

// One contiguous grain-aligned range per thread, as the kernel's pool splits.
inline void parallel_for(size_t n, size_t grain, dsk_parallel_fn fn, void* user) {
    if (n == 0) return;
    grain = std::max<size_t>(grain, 1);
    const size_t chunks = (n + grain - 1) / grain;
    if (chunks == 1 || omp_in_parallel()) {
        fn(user, 0, n);
        return;
    }
    const int threads =
        static_cast<int>(std::min<size_t>(chunks, static_cast<size_t>(omp_get_max_threads())));
#pragma omp parallel num_threads(threads)
    {
        const size_t t = static_cast<size_t>(omp_get_thread_num());
        const size_t nt = static_cast<size_t>(omp_get_num_threads());
        const size_t per = (chunks + nt - 1) / nt;
        const size_t begin = std::min(n, t * per * grain), end = std::min(n, (t + 1) * per * grain);
        if (begin < end) fn(user, begin, end);
    }
}

// Makes dsk::host() this table.
inline void install() {
    static dsk_host_api api = [] {
        dsk_host_api t = fake_host::api();
        t.thread_count = thread_count;
        t.parallel_for = parallel_for;
        return t;
    }();
    dsk::detail::host_slot().store(&api);
}

}  // namespace openmp_host
