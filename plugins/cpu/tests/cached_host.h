// cached_host.h - threaded_host's table (one thread) with ABI 1.3's exec_input_version,
// exec_cache and exec_set_cache: input 1 (B of Gemm and MatMul, W of the convolutions) has the
// version the test sets, and there is one node cache slot. Lets the kernel tests check what
// kernels keep across runs.
#pragma once

#include <cstdint>

#include "threaded_host.h"

namespace cached_host {

inline uint64_t& version() {
    static uint64_t v = 0;
    return v;
}

struct Slot {
    void* data = nullptr;
    void (*release)(void*) = nullptr;
    void reset(void* new_data, void (*new_release)(void*)) {
        if (data && release) release(data);
        data = new_data;
        release = new_release;
    }
};

inline Slot& slot() {
    static Slot s;
    return s;
}

inline uint64_t exec_input_version(dsk_exec_context*, uint32_t input) { return input == 1 ? version() : 0; }
inline void* exec_cache(dsk_exec_context*) { return slot().data; }
inline void exec_set_cache(dsk_exec_context*, void* cache, void (*release)(void*)) { slot().reset(cache, release); }

inline void install() {
    threaded_host::install(1);
    static const dsk_host_api table = [] {
        dsk_host_api t = threaded_host::api();
        t.exec_input_version = exec_input_version;
        t.exec_cache = exec_cache;
        t.exec_set_cache = exec_set_cache;
        return t;
    }();
    dsk::detail::host_slot().store(&table, std::memory_order_release);
}

// Installs the table for a scope; the slot emptied and threaded_host's one thread back after.
struct Scope {
    Scope() { install(); }
    ~Scope() {
        slot().reset(nullptr, nullptr);
        version() = 0;
        threaded_host::install(1);
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
};

}  // namespace cached_host
