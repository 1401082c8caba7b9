// vulkan_memory.h - a sub-allocator of Vulkan device memory.
//
// Drivers limit the number of VkDeviceMemory allocations (4096 is common) and make each one
// slow, so buffers are carved out of large blocks: each block is one VkDeviceMemory with one
// VkBuffer over all of it (bound at offset 0), and an allocation is an aligned range of that
// buffer. Free ranges are kept per block, sorted by offset and merged with their neighbours on
// release (first fit). A request larger than the block size gets a block of its own; a block
// that becomes empty is returned to the driver unless it is the last one.
#ifndef DSK_VULKAN_MEMORY_H_
#define DSK_VULKAN_MEMORY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vulkan_instance.h"

namespace dsk::vulkan {

struct MemoryBlock {
    VkDeviceMemory memory = VK_NULL_HANDLE;
    VkBuffer buffer = VK_NULL_HANDLE;
    void* mapped = nullptr;  // host address of offset 0, for host-visible pools
    uint64_t size = 0;
    uint64_t used = 0;
    std::map<uint64_t, uint64_t> free_ranges;  // offset -> size
};

struct Allocation {
    MemoryBlock* block = nullptr;
    uint64_t offset = 0;  // within block->buffer
    uint64_t size = 0;    // rounded up to the pool's granularity

    VkBuffer buffer() const { return block->buffer; }
    // Host address of the allocation (host-visible pools only; nullptr otherwise).
    void* host() const {
        return block->mapped ? static_cast<char*>(block->mapped) + offset : nullptr;
    }
};

class MemoryPool {
  public:
    enum class Kind { device_local, host_visible };

    // `label` names the device in messages ("vulkan#0 (llvmpipe ...)").
    MemoryPool(VkDevice device, const PhysicalDevice& physical, Kind kind, uint64_t block_size,
               std::string label);
    ~MemoryPool();
    MemoryPool(const MemoryPool&) = delete;
    MemoryPool& operator=(const MemoryPool&) = delete;

    // Throws dsk::Error: RESOURCE_EXHAUSTED when the memory is not there, with a message naming
    // the device, the size and what is in use.
    Allocation allocate(uint64_t size, uint64_t alignment);
    void release(const Allocation& allocation) noexcept;

    uint64_t bytes_in_use() const;
    size_t block_count() const;
    uint64_t heap_size() const { return heap_size_; }

  private:
    MemoryBlock* new_block(uint64_t size);
    void destroy_block(MemoryBlock* block) noexcept;
    uint64_t used_unlocked() const;
    bool carve(MemoryBlock& block, uint64_t size, uint64_t alignment, uint64_t* out_offset);

    VkDevice device_;
    Kind kind_;
    uint64_t block_size_;
    std::string label_;
    uint32_t memory_type_ = 0;
    uint64_t heap_size_ = 0;
    uint64_t min_alignment_ = 16;
    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<MemoryBlock>> blocks_;
};

}  // namespace dsk::vulkan

#endif  // DSK_VULKAN_MEMORY_H_
