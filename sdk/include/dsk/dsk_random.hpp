// dsk_random.hpp - SplitMix64, the one generator behind every random draw in dsk: variable
// initialisation, exec_seed, shuffling, augmentation and dropout masks.
//
// Header-only and stateless. Results are part of dsk's reproducibility promise (checkpoints are
// compared bit for bit across runs and versions), so these functions must never change output.
//
//   uint64_t state = seed;
//   uint64_t a = dsk::splitmix64(state), b = dsk::splitmix64(state);  // a stream
//   uint64_t c = dsk::mix(seed, i);  // the i-th draw of the stream at `seed`, in any order
#ifndef DSK_RANDOM_HPP_
#define DSK_RANDOM_HPP_

#include <cstdint>

namespace dsk {

// SplitMix64's increment (the golden ratio in 64-bit fixed point).
constexpr uint64_t kSplitMix64Gamma = 0x9e3779b97f4a7c15ull;

// SplitMix64's output function: a bijective 64-bit finaliser (Stafford's variant 13).
constexpr uint64_t splitmix64_finalize(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// The next output of the SplitMix64 stream whose state is `state` (advanced in place).
constexpr uint64_t splitmix64(uint64_t& state) {
    state += kSplitMix64Gamma;
    return splitmix64_finalize(state);
}

// Counter-based: output `b` (from 0) of the SplitMix64 stream started at state `a`, i.e. what
// the (b + 1)-th splitmix64(state) call returns for state = a. Depends only on (a, b).
constexpr uint64_t mix(uint64_t a, uint64_t b) {
    return splitmix64_finalize(a + kSplitMix64Gamma * (b + 1));
}

}  // namespace dsk

#endif  // DSK_RANDOM_HPP_
