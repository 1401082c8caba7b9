// vulkan_device.h - the objects behind the vulkan backend's handles: an opened device, its
// buffers, queues that record into command buffers, and fences.
//
// A VulkanQueue records everything (copies through staging buffers, dispatches) into the
// command buffer of its open Batch, with a pipeline barrier before each command, and touches
// the device only when flushed: queue_flush submits the batch with a VkFence and hands the
// batch to the VulkanFence, which keeps its command buffer and staging memory alive until the
// GPU is done. So a graph segment is one submission, not a host round trip per op.
// copy_to_host lands in the caller's memory when fence_wait returns (the fence copies the
// staging buffer out), as the ABI's "valid until the fence after them signals" allows.
#ifndef DSK_VULKAN_DEVICE_H_
#define DSK_VULKAN_DEVICE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "vulkan_instance.h"
#include "vulkan_memory.h"
#include "vulkan_pipelines.h"

namespace dsk::vulkan {

class VulkanDevice;

struct VulkanBuffer {
    VulkanDevice* device = nullptr;
    Allocation allocation;
    uint64_t size = 0;  // as requested
    bool host_visible = false;
};

// A range of a buffer bound to a shader: `offset` and `size` in bytes from the buffer's start.
struct BufferRange {
    const VulkanBuffer* buffer = nullptr;
    uint64_t offset = 0;
    uint64_t size = 0;
};

// Recorded work and what it needs until the GPU has run it.
struct Batch {
    struct Readback {
        Allocation staging;
        void* host = nullptr;
        uint64_t size = 0;
    };
    VulkanDevice* device = nullptr;
    VkCommandPool pool = VK_NULL_HANDLE;
    VkCommandBuffer commands = VK_NULL_HANDLE;
    std::vector<Allocation> staging;  // released when the batch is
    std::vector<Readback> readbacks;  // copied to the host when the fence signals
    uint32_t command_count = 0;
    uint32_t dispatch_count = 0;

    ~Batch();
};

class VulkanDevice {
  public:
    VulkanDevice(const PhysicalDevice& physical, uint32_t index);
    ~VulkanDevice();
    VulkanDevice(const VulkanDevice&) = delete;
    VulkanDevice& operator=(const VulkanDevice&) = delete;

    const PhysicalDevice& physical() const { return physical_; }
    const std::string& label() const { return label_; }  // "vulkan#0 (llvmpipe ...)"
    VkDevice handle() const { return device_; }
    MemoryPool& device_memory() { return *device_memory_; }
    MemoryPool& staging_memory() { return *staging_memory_; }
    PipelineCache& pipelines() { return *pipelines_; }

    // A fresh batch whose command buffer is recording (pools are recycled).
    std::unique_ptr<Batch> begin_batch();
    void recycle(Batch& batch) noexcept;

    // An unsignalled fence, and its return once signalled. Fences are kept and reset rather than
    // destroyed: on an H200 (a VM) vkCreateFence took 270 us and vkDestroyFence 250 us, which was
    // most of a session run's time.
    VkFence acquire_fence();
    void release_fence(VkFence fence) noexcept;
    size_t idle_fences();  // kept for reuse (tests)

    // Submits `commands` (may be VK_NULL_HANDLE: a fence after all earlier work) with `fence`.
    void submit(VkCommandBuffer commands, VkFence fence);

    // After VK_ERROR_DEVICE_LOST every later call fails at once with that error.
    void check_not_lost(const char* function) const;
    void mark_lost() { lost_ = true; }
    bool lost() const { return lost_; }

  private:
    const PhysicalDevice& physical_;
    std::string label_;
    VkDevice device_ = VK_NULL_HANDLE;
    VkQueue queue_ = VK_NULL_HANDLE;
    std::mutex submit_mutex_;  // vkQueueSubmit needs external synchronisation
    std::mutex pool_mutex_;
    std::vector<VkCommandPool> free_pools_;
    std::vector<VkFence> free_fences_;  // unsignalled, guarded by pool_mutex_
    std::unique_ptr<MemoryPool> device_memory_;
    std::unique_ptr<MemoryPool> staging_memory_;
    std::unique_ptr<PipelineCache> pipelines_;
    std::atomic<bool> lost_{false};
};

class VulkanQueue {
  public:
    explicit VulkanQueue(VulkanDevice* device) : device_(device) {}

    VulkanDevice& device() const { return *device_; }

    void copy_to_device(const void* src, const VulkanBuffer& dst, uint64_t dst_offset,
                        uint64_t size);
    void copy_to_host(const VulkanBuffer& src, uint64_t src_offset, void* dst, uint64_t size);
    void copy_on_device(const VulkanBuffer& src, uint64_t src_offset, const VulkanBuffer& dst,
                        uint64_t dst_offset, uint64_t size);
    void fill(const VulkanBuffer& dst, uint64_t offset, uint64_t size, uint32_t word);

    // Records one dispatch: binds `bindings` as storage buffers 0..n-1 and pushes
    // [element offset of each binding in 32-bit words][params]. Each binding is bound from its
    // offset rounded down to the device's storage-buffer alignment; the shader adds the pushed
    // word offset. Throws when a range is not 4-byte aligned or exceeds maxStorageBufferRange.
    void dispatch(const Pipeline& pipeline, std::span<const BufferRange> bindings,
                  std::span<const uint32_t> params, uint32_t groups_x, uint32_t groups_y = 1,
                  uint32_t groups_z = 1);

    // Submits what was recorded; the caller owns the returned batch's fence (VulkanFence).
    std::unique_ptr<Batch> take_batch() { return std::move(open_); }
    bool has_work() const { return open_ && open_->command_count > 0; }
    uint32_t recorded_dispatches() const { return open_ ? open_->dispatch_count : 0; }

  private:
    Batch& batch();
    void barrier(Batch& batch);

    VulkanDevice* device_;
    std::unique_ptr<Batch> open_;
};

struct VulkanFence {
    VulkanDevice* device = nullptr;
    VkFence fence = VK_NULL_HANDLE;
    std::unique_ptr<Batch> batch;  // released once the fence has signalled
    bool signalled = false;

    // Waits up to timeout_ns; false on timeout. Finishes the batch (read-backs) once.
    bool wait(uint64_t timeout_ns);
    ~VulkanFence();
};

// Submits the queue's recorded work (or nothing: the fence then follows all earlier work).
std::unique_ptr<VulkanFence> flush(VulkanQueue& queue);

}  // namespace dsk::vulkan

#endif  // DSK_VULKAN_DEVICE_H_
