// The kernel's one thread pool, offered to plugins as host->parallel_for. It is OpenMP, the same
// runtime oneDNN uses in Debian's build, so dsk's loops and oneDNN's never oversubscribe the
// cores with two pools (see docs/design-notes.md).
#include <omp.h>

#include <algorithm>

#include "thread_pool.h"

namespace dsk::kernel {

uint32_t thread_count() { return static_cast<uint32_t>(omp_get_max_threads()); }

void parallel_for(size_t n, size_t grain, dsk_parallel_fn fn, void* user) {
    if (n == 0) return;
    if (grain == 0) grain = 1;
    const size_t chunks = (n + grain - 1) / grain;
    const size_t threads = std::min<size_t>(chunks, static_cast<size_t>(omp_get_max_threads()));
    // One thread (one chunk, OMP_NUM_THREADS=1, or inside another region): no team of one.
    if (threads <= 1 || omp_in_parallel()) {
        fn(user, 0, n);
        return;
    }
#pragma omp parallel num_threads(static_cast<int>(threads))
    {
        const size_t t = static_cast<size_t>(omp_get_thread_num());
        const size_t nt = static_cast<size_t>(omp_get_num_threads());
        // Contiguous, grain-aligned ranges: one per thread.
        const size_t per = (chunks + nt - 1) / nt;
        const size_t begin = std::min(n, t * per * grain);
        const size_t end = std::min(n, (t + 1) * per * grain);
        if (begin < end) fn(user, begin, end);
    }
}

}  // namespace dsk::kernel
