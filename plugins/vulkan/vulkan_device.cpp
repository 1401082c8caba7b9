// vulkan_device.cpp - devices, queues, batches and fences (see vulkan_device.h).
#include "vulkan_device.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <dsk/dsk_error.hpp>

namespace dsk::vulkan {
namespace {

// Tensors live in blocks of this size (larger ones get a block each); staging in smaller ones.
constexpr uint64_t kDeviceBlockBytes = 64ull << 20;
constexpr uint64_t kStagingBlockBytes = 16ull << 20;

// Everything earlier (compute or transfer) happens before, and is visible to, everything later.
void full_barrier(VkCommandBuffer commands, VkPipelineStageFlags dst_stages,
                  VkAccessFlags dst_access) {
    VkMemoryBarrier barrier{};
    barrier.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER;
    barrier.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    barrier.dstAccessMask = dst_access;
    vk().vkCmdPipelineBarrier(commands,
                              VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                              dst_stages, 0, 1, &barrier, 0, nullptr, 0, nullptr);
}

}  // namespace

//----------------------------------------------------------------------------------------------
// VulkanDevice
//----------------------------------------------------------------------------------------------

VulkanDevice::VulkanDevice(const PhysicalDevice& physical, uint32_t index)
    : physical_(physical), label_("vulkan#" + std::to_string(index) + " (" + physical.name + ")") {
    const float priority = 1.0f;
    VkDeviceQueueCreateInfo queue_info{};
    queue_info.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO;
    queue_info.queueFamilyIndex = physical.compute_family;
    queue_info.queueCount = 1;
    queue_info.pQueuePriorities = &priority;
    const char* extensions[] = {VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME, VK_KHR_8BIT_STORAGE_EXTENSION_NAME};
    VkPhysicalDevice8BitStorageFeatures storage8{};
    storage8.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES;
    storage8.storageBuffer8BitAccess = physical.storage_8bit ? VK_TRUE : VK_FALSE;
    VkPhysicalDeviceFeatures2 features{};
    features.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
    features.features.shaderInt64 = physical.int64 ? VK_TRUE : VK_FALSE;
    if (physical.storage_8bit) features.pNext = &storage8;
    VkDeviceCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO;
    info.pNext = &features;
    info.queueCreateInfoCount = 1;
    info.pQueueCreateInfos = &queue_info;
    info.enabledExtensionCount = physical.storage_8bit ? 2 : 1;
    info.ppEnabledExtensionNames = extensions;
    check_vk(vk().vkCreateDevice(physical.handle, &info, nullptr, &device_), "opening " + label_);
    vk().vkGetDeviceQueue(device_, physical.compute_family, 0, &queue_);
    try {
        device_memory_ = std::make_unique<MemoryPool>(device_, physical, MemoryPool::Kind::device_local,
                                                       kDeviceBlockBytes, label_);
        staging_memory_ = std::make_unique<MemoryPool>(device_, physical, MemoryPool::Kind::host_visible,
                                                       kStagingBlockBytes, label_);
        pipelines_ = std::make_unique<PipelineCache>(device_, label_);
    } catch (...) {
        pipelines_.reset();
        staging_memory_.reset();
        device_memory_.reset();
        vk().vkDestroyDevice(device_, nullptr);
        throw;
    }
}

VulkanDevice::~VulkanDevice() {
    vk().vkDeviceWaitIdle(device_);
    for (VkCommandPool pool : free_pools_) vk().vkDestroyCommandPool(device_, pool, nullptr);
    for (VkFence fence : free_fences_) vk().vkDestroyFence(device_, fence, nullptr);
    pipelines_.reset();
    staging_memory_.reset();
    device_memory_.reset();
    vk().vkDestroyDevice(device_, nullptr);
}

void VulkanDevice::check_not_lost(const char* function) const {
    if (lost_)
        throw Error(DSK_UNAVAILABLE, std::string("vulkan: ") + function + ": " + label_ +
                                         " was lost (VK_ERROR_DEVICE_LOST); close the device "
                                         "and open it again");
}

std::unique_ptr<Batch> VulkanDevice::begin_batch() {
    auto batch = std::make_unique<Batch>();
    batch->device = this;
    {
        std::lock_guard<std::mutex> lock(pool_mutex_);
        if (!free_pools_.empty()) {
            batch->pool = free_pools_.back();
            free_pools_.pop_back();
        }
    }
    if (batch->pool == VK_NULL_HANDLE) {
        VkCommandPoolCreateInfo info{};
        info.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
        info.flags = VK_COMMAND_POOL_CREATE_TRANSIENT_BIT;
        info.queueFamilyIndex = physical_.compute_family;
        check_vk(vk().vkCreateCommandPool(device_, &info, nullptr, &batch->pool),
                 "creating a command pool on " + label_);
    }
    VkCommandBufferAllocateInfo allocate{};
    allocate.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
    allocate.commandPool = batch->pool;
    allocate.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    allocate.commandBufferCount = 1;
    check_vk(vk().vkAllocateCommandBuffers(device_, &allocate, &batch->commands),
             "allocating a command buffer on " + label_);
    VkCommandBufferBeginInfo begin{};
    begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
    begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    check_vk(vk().vkBeginCommandBuffer(batch->commands, &begin),
             "beginning a command buffer on " + label_);
    return batch;
}

void VulkanDevice::recycle(Batch& batch) noexcept {
    for (const Allocation& a : batch.staging) staging_memory_->release(a);
    for (const Batch::Readback& r : batch.readbacks) staging_memory_->release(r.staging);
    batch.staging.clear();
    batch.readbacks.clear();
    if (batch.pool == VK_NULL_HANDLE) return;
    // Resetting the pool frees its command buffer.
    vk().vkResetCommandPool(device_, batch.pool, 0);
    std::lock_guard<std::mutex> lock(pool_mutex_);
    free_pools_.push_back(batch.pool);
    batch.pool = VK_NULL_HANDLE;
    batch.commands = VK_NULL_HANDLE;
}

VkFence VulkanDevice::acquire_fence() {
    {
        std::lock_guard<std::mutex> lock(pool_mutex_);
        if (!free_fences_.empty()) {
            const VkFence fence = free_fences_.back();
            free_fences_.pop_back();
            return fence;
        }
    }
    VkFenceCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
    VkFence fence = VK_NULL_HANDLE;
    check_vk(vk().vkCreateFence(device_, &info, nullptr, &fence), "queue_flush: creating a fence on " + label_);
    return fence;
}

void VulkanDevice::release_fence(VkFence fence) noexcept {
    if (lost_ || vk().vkResetFences(device_, 1, &fence) != VK_SUCCESS) {
        vk().vkDestroyFence(device_, fence, nullptr);
        return;
    }
    std::lock_guard<std::mutex> lock(pool_mutex_);
    free_fences_.push_back(fence);
}

size_t VulkanDevice::idle_fences() {
    std::lock_guard<std::mutex> lock(pool_mutex_);
    return free_fences_.size();
}

void VulkanDevice::submit(VkCommandBuffer commands, VkFence fence) {
    check_not_lost("queue_flush");
    VkSubmitInfo submit{};
    submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
    submit.commandBufferCount = commands != VK_NULL_HANDLE ? 1 : 0;
    submit.pCommandBuffers = &commands;
    VkResult result;
    {
        std::lock_guard<std::mutex> lock(submit_mutex_);
        result = vk().vkQueueSubmit(queue_, commands != VK_NULL_HANDLE ? 1 : 0, &submit, fence);
    }
    if (result == VK_ERROR_DEVICE_LOST) mark_lost();
    check_vk(result, "queue_flush: submitting to " + label_);
}

Batch::~Batch() {
    if (device != nullptr) device->recycle(*this);
}

//----------------------------------------------------------------------------------------------
// VulkanQueue
//----------------------------------------------------------------------------------------------

Batch& VulkanQueue::batch() {
    device_->check_not_lost("recording");
    if (!open_) open_ = device_->begin_batch();
    return *open_;
}

void VulkanQueue::barrier(Batch& b) {
    // Also before a batch's first command: submission order alone makes no memory dependency
    // between batches.
    full_barrier(b.commands, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                 VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                     VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT);
    ++b.command_count;
}

void VulkanQueue::copy_to_device(const void* src, const VulkanBuffer& dst, uint64_t dst_offset,
                                 uint64_t size) {
    if (size == 0) return;
    Batch& b = batch();
    // The host data is copied into staging now, so the caller's memory is free on return.
    const Allocation staging = device_->staging_memory().allocate(size, 16);
    b.staging.push_back(staging);
    std::memcpy(staging.host(), src, size);
    barrier(b);
    const VkBufferCopy region{staging.offset, dst.allocation.offset + dst_offset, size};
    vk().vkCmdCopyBuffer(b.commands, staging.buffer(), dst.allocation.buffer(), 1, &region);
}

void VulkanQueue::copy_to_host(const VulkanBuffer& src, uint64_t src_offset, void* dst,
                               uint64_t size) {
    if (size == 0) return;
    Batch& b = batch();
    const Allocation staging = device_->staging_memory().allocate(size, 16);
    b.readbacks.push_back({staging, dst, size});
    barrier(b);
    const VkBufferCopy region{src.allocation.offset + src_offset, staging.offset, size};
    vk().vkCmdCopyBuffer(b.commands, src.allocation.buffer(), staging.buffer(), 1, &region);
}

void VulkanQueue::copy_on_device(const VulkanBuffer& src, uint64_t src_offset,
                                 const VulkanBuffer& dst, uint64_t dst_offset, uint64_t size) {
    if (size == 0) return;
    Batch& b = batch();
    const uint64_t from = src.allocation.offset + src_offset;
    const uint64_t to = dst.allocation.offset + dst_offset;
    const bool same = src.allocation.buffer() == dst.allocation.buffer();
    if (same && from == to) return;
    if (same && from < to + size && to < from + size) {
        // vkCmdCopyBuffer forbids overlapping regions: go through staging (memmove semantics).
        const Allocation staging = device_->staging_memory().allocate(size, 16);
        b.staging.push_back(staging);
        barrier(b);
        const VkBufferCopy out{from, staging.offset, size};
        vk().vkCmdCopyBuffer(b.commands, src.allocation.buffer(), staging.buffer(), 1, &out);
        barrier(b);
        const VkBufferCopy in{staging.offset, to, size};
        vk().vkCmdCopyBuffer(b.commands, staging.buffer(), dst.allocation.buffer(), 1, &in);
        return;
    }
    barrier(b);
    const VkBufferCopy region{from, to, size};
    vk().vkCmdCopyBuffer(b.commands, src.allocation.buffer(), dst.allocation.buffer(), 1, &region);
}

void VulkanQueue::fill(const VulkanBuffer& dst, uint64_t offset, uint64_t size, uint32_t word) {
    if (size == 0) return;
    Batch& b = batch();
    barrier(b);
    vk().vkCmdFillBuffer(b.commands, dst.allocation.buffer(), dst.allocation.offset + offset, size,
                         word);
}

void VulkanQueue::dispatch(const Pipeline& pipeline, std::span<const BufferRange> bindings,
                           std::span<const uint32_t> params, uint32_t groups_x, uint32_t groups_y,
                           uint32_t groups_z) {
    if (bindings.size() != pipeline.bindings)
        throw Error(DSK_INTERNAL, "vulkan: dispatch with " + std::to_string(bindings.size()) +
                                      " buffers for a pipeline of " +
                                      std::to_string(pipeline.bindings));
    uint32_t push[kPushConstantBytes / 4] = {};
    if (bindings.size() + params.size() > std::size(push))
        throw Error(DSK_INTERNAL, "vulkan: dispatch pushes more than " +
                                      std::to_string(kPushConstantBytes) + " bytes of constants");
    const VkPhysicalDeviceLimits& limits = device_->physical().properties.limits;
    const uint64_t alignment = std::max<uint64_t>(limits.minStorageBufferOffsetAlignment, 4);
    VkDescriptorBufferInfo infos[kMaxBindings]{};
    VkWriteDescriptorSet writes[kMaxBindings]{};
    for (size_t i = 0; i < bindings.size(); ++i) {
        const BufferRange& r = bindings[i];
        const uint64_t start = r.buffer->allocation.offset + r.offset;
        const uint64_t bound = start / alignment * alignment;
        if ((start - bound) % 4 != 0)
            throw Error(DSK_INVALID_ARGUMENT, "vulkan: a tensor at byte offset " +
                                                  std::to_string(r.offset) +
                                                  " is not 4-byte aligned; shaders read 32-bit words");
        const uint64_t range = std::max<uint64_t>(start - bound + r.size, 4);
        if (range > limits.maxStorageBufferRange)
            throw Error(DSK_RESOURCE_EXHAUSTED,
                        "vulkan: a tensor of " + std::to_string(r.size) + " bytes exceeds the " +
                            std::to_string(limits.maxStorageBufferRange) +
                            "-byte storage buffer range of " + device_->label() +
                            "; use smaller batches");
        infos[i] = {r.buffer->allocation.buffer(), bound, range};
        push[i] = static_cast<uint32_t>((start - bound) / 4);
        writes[i].sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET;
        writes[i].dstBinding = static_cast<uint32_t>(i);
        writes[i].descriptorCount = 1;
        writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        writes[i].pBufferInfo = &infos[i];
    }
    std::copy(params.begin(), params.end(), push + bindings.size());
    if (groups_x == 0 || groups_y == 0 || groups_z == 0) return;  // nothing to compute
    const uint32_t* max_groups = limits.maxComputeWorkGroupCount;
    if (groups_x > max_groups[0] || groups_y > max_groups[1] || groups_z > max_groups[2])
        throw Error(DSK_INTERNAL, "vulkan: a dispatch of " + std::to_string(groups_x) + "x" +
                                      std::to_string(groups_y) + "x" + std::to_string(groups_z) +
                                      " workgroups exceeds the limits of " + device_->label());
    Batch& b = batch();
    barrier(b);
    ++b.dispatch_count;
    vk().vkCmdBindPipeline(b.commands, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.pipeline);
    vk().vkCmdPushDescriptorSetKHR(b.commands, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline.layout, 0,
                                   static_cast<uint32_t>(bindings.size()), writes);
    vk().vkCmdPushConstants(b.commands, pipeline.layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                            kPushConstantBytes, push);
    vk().vkCmdDispatch(b.commands, groups_x, groups_y, groups_z);
}

//----------------------------------------------------------------------------------------------
// Flush and fences
//----------------------------------------------------------------------------------------------

std::unique_ptr<VulkanFence> flush(VulkanQueue& queue) {
    VulkanDevice& device = queue.device();
    device.check_not_lost("queue_flush");
    auto fence = std::make_unique<VulkanFence>();
    fence->device = &device;
    fence->batch = queue.take_batch();
    VkCommandBuffer commands = VK_NULL_HANDLE;
    if (fence->batch) {
        Batch& b = *fence->batch;
        // Make the read-backs' staging writes visible to the host.
        if (!b.readbacks.empty()) full_barrier(b.commands, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
        check_vk(vk().vkEndCommandBuffer(b.commands), "queue_flush: ending a command buffer on " + device.label());
        commands = b.commands;
    }
    fence->fence = device.acquire_fence();
    try {
        device.submit(commands, fence->fence);
    } catch (...) {
        fence->signalled = true;  // never submitted: nothing to wait for before it is reused
        throw;
    }
    return fence;
}

namespace {

// How long a wait polls the fence before it blocks. A thread blocked in vkWaitForFences on a GPU
// wakes up late: on an H200 (a VM) the wait for one 64^3 Gemm took 113 us blocked and 28 us
// polling, and a training step pays it once. Polling costs the waiting core, which has nothing
// else to do; this is what CUDA does by default (cudaDeviceScheduleAuto spins while there are
// cores to spare). A device that emulates Vulkan on the CPU needs every core for the work itself
// and blocks at once.
// DSK_VULKAN_SPIN_US overrides it (0: always block).
std::chrono::microseconds spin_time(const VulkanDevice& device) {
    if (const char* env = std::getenv("DSK_VULKAN_SPIN_US")) return std::chrono::microseconds(std::atoll(env));
    return std::chrono::microseconds(device.physical().cpu_emulated() ? 0 : 5000);
}

}  // namespace

bool VulkanFence::wait(uint64_t timeout_ns) {
    if (signalled) return true;
    device->check_not_lost("fence_wait");
    VkResult result = VK_NOT_READY;
    const uint64_t spin = std::min<uint64_t>(
        timeout_ns, static_cast<uint64_t>(std::max<int64_t>(0, std::chrono::nanoseconds(spin_time(*device)).count())));
    if (spin > 0) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(spin);
        while ((result = vk().vkGetFenceStatus(device->handle(), fence)) == VK_NOT_READY &&
               std::chrono::steady_clock::now() < until)
            std::this_thread::yield();
        if (result == VK_NOT_READY)
            timeout_ns -= timeout_ns == UINT64_MAX ? 0 : spin;
    }
    if (result == VK_NOT_READY) result = vk().vkWaitForFences(device->handle(), 1, &fence, VK_TRUE, timeout_ns);
    if (result == VK_TIMEOUT) return false;
    if (result == VK_ERROR_DEVICE_LOST) device->mark_lost();
    check_vk(result, "fence_wait on " + device->label());
    signalled = true;
    if (batch) {
        for (const Batch::Readback& r : batch->readbacks) std::memcpy(r.host, r.staging.host(), r.size);
        batch.reset();
    }
    return true;
}

VulkanFence::~VulkanFence() {
    if (fence == VK_NULL_HANDLE) return;
    // The batch's memory and command buffer may be in use until the GPU is done with them.
    if (!signalled && !device->lost()) vk().vkWaitForFences(device->handle(), 1, &fence, VK_TRUE, UINT64_MAX);
    device->release_fence(fence);
}

}  // namespace dsk::vulkan
