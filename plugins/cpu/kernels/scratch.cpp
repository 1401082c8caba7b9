// scratch.cpp - the pool behind dsk::cpu::Scratch: a few free buffers kept for reuse, the rest
// returned to the system. The pool lives as long as the library.
#include "scratch.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

namespace dsk::cpu {
namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kMaxPooled = 16;                      // buffers kept for reuse
constexpr size_t kMaxPooledFloats = size_t{64} << 20;  // larger ones are freed at once (256 MiB)

struct FreeBuffer {
    float* data;
    size_t count;
};

class ScratchPool {
  public:
    ~ScratchPool() {
        for (const FreeBuffer& buffer : free_) std::free(buffer.data);
    }

    FreeBuffer take(size_t count) {
        {
            const std::lock_guard<std::mutex> lock(mutex_);
            // The smallest free buffer that is large enough.
            size_t best = free_.size();
            for (size_t i = 0; i < free_.size(); ++i) {
                if (free_[i].count >= count &&
                    (best == free_.size() || free_[i].count < free_[best].count))
                    best = i;
            }
            if (best != free_.size()) {
                const FreeBuffer buffer = free_[best];
                free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(best));
                return buffer;
            }
        }
        // Rounded up so that buffers of similar sizes can stand in for each other.
        size_t rounded = 1024;
        while (rounded < count) rounded += rounded / 2;
        rounded = (rounded + 15) / 16 * 16;
        void* data = std::aligned_alloc(kAlignment, rounded * sizeof(float));
        if (data == nullptr) throw std::bad_alloc();
        return {static_cast<float*>(data), rounded};
    }

    void give_back(FreeBuffer buffer) {
        if (buffer.count <= kMaxPooledFloats) {
            const std::lock_guard<std::mutex> lock(mutex_);
            if (free_.size() < kMaxPooled) {
                free_.push_back(buffer);
                return;
            }
            // Full: replace the smallest buffer if this one is larger.
            size_t smallest = 0;
            for (size_t i = 1; i < free_.size(); ++i)
                if (free_[i].count < free_[smallest].count) smallest = i;
            if (free_[smallest].count < buffer.count) std::swap(free_[smallest], buffer);
        }
        std::free(buffer.data);
    }

  private:
    std::mutex mutex_;
    std::vector<FreeBuffer> free_;
};

ScratchPool& pool() {
    static ScratchPool instance;
    return instance;
}

}  // namespace

Scratch::Scratch(size_t count) {
    const FreeBuffer buffer = pool().take(count == 0 ? 1 : count);
    data_ = buffer.data;
    count_ = buffer.count;
}

Scratch::~Scratch() {
    pool().give_back({data_, count_});
}

}  // namespace dsk::cpu
