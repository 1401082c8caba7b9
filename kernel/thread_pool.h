// The kernel's one thread pool (thread_pool.cpp): what the host table offers plugins as
// thread_count and parallel_for, and what the kernel's own loops (a session's large copies) use.
#pragma once

#include <cstddef>
#include <cstdint>

#include "dsk/dsk_plugin.h"

namespace dsk::kernel {

uint32_t thread_count();
// fn(user, begin, end) over [0, n) in chunks of at least `grain`: one contiguous range per
// thread, thread t always getting the t-th range (so repeated loops touch the same memory from
// the same core). Runs on the calling thread alone inside another parallel region.
void parallel_for(size_t n, size_t grain, dsk_parallel_fn fn, void* user);

}  // namespace dsk::kernel
