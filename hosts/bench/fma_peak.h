// fma_peak.h - the `dsk_bench peak` case (fma_peak.cpp): this machine's FP32 FMA peak, measured
// in the run that uses it, so that scripts/bench's "% of peak" columns compare with what the
// cores do now, not with a figure written down on another day.
#pragma once

#include <cstdint>

#include "dsk/dsk_plugin.h"

namespace dsk_bench {

// FLOPs one call of fma_burst does on each thread (2 per lane per fused multiply-add).
double fma_burst_flops(int64_t iterations);

// Every thread of the kernel's pool (host.parallel_for, one part per thread) runs `iterations`
// rounds of independent FMAs on registers only: 12 chains of 16-lane (AVX-512) or 8-lane (AVX2)
// vectors, enough to cover the FMA latency on two pipes. Returns a value that depends on them
// all, so that none is optimised away.
float fma_burst(const dsk_host_api& host, int64_t iterations);

// "avx512", "avx2" or "scalar": what fma_burst runs here (and so what the peak is a peak of).
const char* fma_isa();

}  // namespace dsk_bench
