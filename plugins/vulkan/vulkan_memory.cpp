// vulkan_memory.cpp - MemoryPool (see vulkan_memory.h).
#include "vulkan_memory.h"

#include <algorithm>

#include <dsk/dsk_error.hpp>

namespace dsk::vulkan {
namespace {

constexpr VkBufferUsageFlags kUsage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT;

uint64_t align_up(uint64_t value, uint64_t alignment) {
    return (value + alignment - 1) / alignment * alignment;
}

std::string mib(uint64_t bytes) {
    return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB";
}

// The memory type for buffers of this pool: device-local memory for tensors; host-visible and
// coherent memory (cached where offered: staging is read back by the host) for staging.
uint32_t choose_memory_type(const PhysicalDevice& physical, uint32_t allowed,
                            MemoryPool::Kind kind, const std::string& label) {
    const VkPhysicalDeviceMemoryProperties& memory = physical.memory;
    const VkMemoryPropertyFlags required =
        kind == MemoryPool::Kind::host_visible
            ? VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
            : 0;
    const VkMemoryPropertyFlags preferred = kind == MemoryPool::Kind::host_visible
                                                ? VK_MEMORY_PROPERTY_HOST_CACHED_BIT
                                                : VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    int best = -1;
    for (uint32_t t = 0; t < memory.memoryTypeCount; ++t) {
        const VkMemoryPropertyFlags flags = memory.memoryTypes[t].propertyFlags;
        if (!(allowed & (1u << t)) || (flags & required) != required) continue;
        if (best < 0 || ((flags & preferred) && !(memory.memoryTypes[best].propertyFlags & preferred)))
            best = static_cast<int>(t);
    }
    if (best < 0)
        throw Error(DSK_UNAVAILABLE,
                    "vulkan: " + label + " offers no " +
                        (kind == MemoryPool::Kind::host_visible ? "host-visible coherent"
                                                                : "usable") +
                        " memory type for storage buffers");
    return static_cast<uint32_t>(best);
}

}  // namespace

MemoryPool::MemoryPool(VkDevice device, const PhysicalDevice& physical, Kind kind,
                       uint64_t block_size, std::string label)
    : device_(device), kind_(kind), block_size_(block_size), label_(std::move(label)) {
    // Which memory types a storage buffer may live in: ask with a small probe buffer.
    VkBufferCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
    info.size = 256;
    info.usage = kUsage;
    info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    VkBuffer probe = VK_NULL_HANDLE;
    check_vk(vk().vkCreateBuffer(device_, &info, nullptr, &probe), "creating a probe buffer on " + label_);
    VkMemoryRequirements requirements{};
    vk().vkGetBufferMemoryRequirements(device_, probe, &requirements);
    vk().vkDestroyBuffer(device_, probe, nullptr);
    memory_type_ = choose_memory_type(physical, requirements.memoryTypeBits, kind_, label_);
    heap_size_ = physical.memory.memoryHeaps[physical.memory.memoryTypes[memory_type_].heapIndex].size;
    min_alignment_ = std::max<uint64_t>({16, requirements.alignment,
                                         physical.properties.limits.minStorageBufferOffsetAlignment});
}

MemoryPool::~MemoryPool() {
    for (auto& block : blocks_) destroy_block(block.get());
}

MemoryBlock* MemoryPool::new_block(uint64_t size) {
    auto block = std::make_unique<MemoryBlock>();
    block->size = size;
    VkBufferCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
    info.size = size;
    info.usage = kUsage;
    info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    try {
        check_vk(vk().vkCreateBuffer(device_, &info, nullptr, &block->buffer),
                 "creating a " + mib(size) + " buffer on " + label_);
        VkMemoryRequirements requirements{};
        vk().vkGetBufferMemoryRequirements(device_, block->buffer, &requirements);
        VkMemoryAllocateInfo allocate{};
        allocate.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
        allocate.allocationSize = requirements.size;
        allocate.memoryTypeIndex = memory_type_;
        check_vk(vk().vkAllocateMemory(device_, &allocate, nullptr, &block->memory),
                 "allocating a " + mib(size) + " memory block on " + label_ + " (" +
                     mib(used_unlocked()) + " of " + mib(heap_size_) + " in use)");
        check_vk(vk().vkBindBufferMemory(device_, block->buffer, block->memory, 0),
                 "binding memory on " + label_);
        if (kind_ == Kind::host_visible)
            check_vk(vk().vkMapMemory(device_, block->memory, 0, VK_WHOLE_SIZE, 0, &block->mapped),
                     "mapping staging memory on " + label_);
    } catch (...) {
        destroy_block(block.get());
        throw;
    }
    block->free_ranges[0] = size;
    blocks_.push_back(std::move(block));
    return blocks_.back().get();
}

void MemoryPool::destroy_block(MemoryBlock* block) noexcept {
    if (block->mapped) vk().vkUnmapMemory(device_, block->memory);
    if (block->buffer) vk().vkDestroyBuffer(device_, block->buffer, nullptr);
    if (block->memory) vk().vkFreeMemory(device_, block->memory, nullptr);
    block->mapped = nullptr;
    block->buffer = VK_NULL_HANDLE;
    block->memory = VK_NULL_HANDLE;
}

bool MemoryPool::carve(MemoryBlock& block, uint64_t size, uint64_t alignment,
                       uint64_t* out_offset) {
    for (auto it = block.free_ranges.begin(); it != block.free_ranges.end(); ++it) {
        const uint64_t start = it->first;
        const uint64_t end = start + it->second;
        const uint64_t aligned = align_up(start, alignment);
        if (aligned > end || end - aligned < size) continue;
        block.free_ranges.erase(it);
        if (aligned > start) block.free_ranges[start] = aligned - start;
        if (aligned + size < end) block.free_ranges[aligned + size] = end - (aligned + size);
        block.used += size;
        *out_offset = aligned;
        return true;
    }
    return false;
}

Allocation MemoryPool::allocate(uint64_t size, uint64_t alignment) {
    if (alignment != 0 && (alignment & (alignment - 1)) != 0)
        throw Error(DSK_INVALID_ARGUMENT,
                    "vulkan: buffer_alloc: alignment " + std::to_string(alignment) +
                        " is not a power of two");
    alignment = std::max(alignment, min_alignment_);
    const uint64_t rounded = align_up(std::max<uint64_t>(size, 1), min_alignment_);
    if (size > heap_size_)
        throw Error(DSK_RESOURCE_EXHAUSTED,
                    "vulkan: buffer_alloc: " + std::to_string(size) + " bytes (" + mib(size) +
                        ") do not fit the " + mib(heap_size_) + " memory heap of " + label_ +
                        "; use smaller batches or a device with more memory");
    std::lock_guard<std::mutex> lock(mutex_);
    Allocation out;
    out.size = rounded;
    for (auto& block : blocks_) {
        if (block->size - block->used < rounded) continue;
        if (carve(*block, rounded, alignment, &out.offset)) {
            out.block = block.get();
            return out;
        }
    }
    MemoryBlock* block = new_block(std::max(block_size_, align_up(rounded, min_alignment_)));
    if (!carve(*block, rounded, alignment, &out.offset))
        throw Error(DSK_INTERNAL, "vulkan: a new memory block cannot hold its first allocation");
    out.block = block;
    return out;
}

void MemoryPool::release(const Allocation& allocation) noexcept {
    if (allocation.block == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    MemoryBlock& block = *allocation.block;
    uint64_t start = allocation.offset;
    uint64_t size = allocation.size;
    auto next = block.free_ranges.lower_bound(start);
    if (next != block.free_ranges.end() && start + size == next->first) {
        size += next->second;
        next = block.free_ranges.erase(next);
    }
    if (next != block.free_ranges.begin()) {
        auto previous = std::prev(next);
        if (previous->first + previous->second == start) {
            start = previous->first;
            size += previous->second;
            block.free_ranges.erase(previous);
        }
    }
    block.free_ranges[start] = size;
    block.used -= allocation.size;
    if (block.used == 0 && blocks_.size() > 1) {
        for (auto it = blocks_.begin(); it != blocks_.end(); ++it) {
            if (it->get() != &block) continue;
            destroy_block(it->get());
            blocks_.erase(it);
            break;
        }
    }
}

uint64_t MemoryPool::bytes_in_use() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return used_unlocked();
}

uint64_t MemoryPool::used_unlocked() const {
    uint64_t used = 0;
    for (const auto& block : blocks_) used += block->used;
    return used;
}

size_t MemoryPool::block_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return blocks_.size();
}

}  // namespace dsk::vulkan
