// vulkan_backend.cpp - dsk_backend_iface over VulkanDevice, VulkanBuffer, VulkanQueue and
// VulkanFence. Every function checks its arguments and runs under dsk::guard, so errors cross
// the ABI as statuses that name the call and the device.
#include "vulkan_backend.h"

#include <string>

#include <dsk/dsk_plugin.hpp>

#include "kernels/kernel_table.h"

namespace dsk::vulkan {
namespace {

void require(const void* pointer, const char* function, const char* parameter) {
    if (pointer == nullptr)
        throw Error(DSK_INVALID_ARGUMENT,
                    std::string("vulkan: ") + function + ": `" + parameter + "` is null");
}

const PhysicalDevice& physical_device(uint32_t index, const char* function) {
    const VulkanInstance& instance = vulkan_instance();
    if (index >= instance.devices.size())
        throw Error(DSK_NOT_FOUND, std::string("vulkan: ") + function + ": device index " +
                                       std::to_string(index) + " does not exist (the vulkan backend has " +
                                       std::to_string(instance.devices.size()) + ")");
    return instance.devices[index];
}

void require_in_bounds(const VulkanBuffer& buffer, uint64_t offset, uint64_t size,
                       const char* function, const char* role) {
    if (offset > buffer.size || size > buffer.size - offset)
        throw Error(DSK_INVALID_ARGUMENT,
                    std::string("vulkan: ") + function + ": " + std::to_string(size) +
                        " bytes at offset " + std::to_string(offset) + " do not fit the " +
                        std::to_string(buffer.size) + "-byte " + role + " buffer");
}

void require_same_device(const VulkanQueue& queue, const VulkanBuffer& buffer, const char* function) {
    if (buffer.device != &queue.device())
        throw Error(DSK_INVALID_ARGUMENT, std::string("vulkan: ") + function + ": the buffer is on " +
                                              buffer.device->label() + ", the queue on " +
                                              queue.device().label());
}

//----------------------------------------------------------------------------------------------
// Devices
//----------------------------------------------------------------------------------------------

dsk_status device_count(void* /*self*/, uint32_t* out_count) {
    return guard([&] {
        require(out_count, "device_count", "out_count");
        *out_count = static_cast<uint32_t>(vulkan_instance().devices.size());
    });
}

dsk_status device_info(void* /*self*/, uint32_t index, dsk_device_info* out_info) {
    return guard([&] {
        require(out_info, "device_info", "out_info");
        const PhysicalDevice& d = physical_device(index, "device_info");
        // Always GPU, also for lavapipe: only DSK_DEVICE_CPU devices share host memory (ABI 1.1),
        // and these buffers are the device's own.
        if (DSK_HAS_MEMBER(out_info, dsk_device_info, type)) out_info->type = DSK_DEVICE_GPU;
        if (DSK_HAS_MEMBER(out_info, dsk_device_info, name)) out_info->name = d.name.c_str();
        if (DSK_HAS_MEMBER(out_info, dsk_device_info, description))
            out_info->description = d.description.c_str();
        if (DSK_HAS_MEMBER(out_info, dsk_device_info, memory_bytes))
            out_info->memory_bytes = d.memory_bytes;
        if (DSK_HAS_MEMBER(out_info, dsk_device_info, score)) out_info->score = d.score;
        if (DSK_HAS_MEMBER(out_info, dsk_device_info, unusable_reason))
            out_info->unusable_reason = d.unusable_reason.c_str();
        if (DSK_HAS_MEMBER(out_info, dsk_device_info, subgroup_size))
            out_info->subgroup_size = d.subgroup_size;
    });
}

dsk_status device_open(void* /*self*/, uint32_t index, dsk_device** out_device) {
    return guard([&] {
        require(out_device, "device_open", "out_device");
        *out_device = nullptr;
        const PhysicalDevice& d = physical_device(index, "device_open");
        if (!d.usable())
            throw Error(DSK_UNAVAILABLE, "vulkan: device_open: device " + std::to_string(index) +
                                             " (" + d.name + ") is unusable: " + d.unusable_reason);
        *out_device = to_handle(new VulkanDevice(d, index));
    });
}

void device_close(dsk_device* device) { delete from_handle(device); }

//----------------------------------------------------------------------------------------------
// Memory
//----------------------------------------------------------------------------------------------

dsk_status buffer_alloc(dsk_device* device, uint64_t size, uint64_t alignment, uint32_t flags,
                        dsk_buffer** out_buffer) {
    return guard([&] {
        require(out_buffer, "buffer_alloc", "out_buffer");
        *out_buffer = nullptr;
        require(device, "buffer_alloc", "device");
        VulkanDevice& d = *from_handle(device);
        d.check_not_lost("buffer_alloc");
        const bool host_visible = (flags & DSK_BUFFER_HOST_VISIBLE) != 0;
        MemoryPool& pool = host_visible ? d.staging_memory() : d.device_memory();
        auto buffer = std::make_unique<VulkanBuffer>();
        buffer->device = &d;
        buffer->size = size;
        buffer->host_visible = host_visible;
        buffer->allocation = pool.allocate(size, alignment);
        *out_buffer = to_handle(buffer.release());
    });
}

void buffer_free(dsk_buffer* buffer) {
    VulkanBuffer* owned = from_handle(buffer);
    if (owned == nullptr) return;
    (owned->host_visible ? owned->device->staging_memory() : owned->device->device_memory())
        .release(owned->allocation);
    delete owned;
}

dsk_status buffer_map(dsk_buffer* buffer, void** out_host_ptr) {
    return guard([&] {
        require(out_host_ptr, "buffer_map", "out_host_ptr");
        *out_host_ptr = nullptr;
        require(buffer, "buffer_map", "buffer");
        const VulkanBuffer& b = *from_handle(buffer);
        if (!b.host_visible)
            throw Error(DSK_UNIMPLEMENTED,
                        "vulkan: buffer_map: the buffer is device-local memory of " +
                            b.device->label() +
                            "; use copy_to_host/copy_to_device, or allocate it with "
                            "DSK_BUFFER_HOST_VISIBLE");
        *out_host_ptr = b.allocation.host();
    });
}

//----------------------------------------------------------------------------------------------
// Queues, copies and fences
//----------------------------------------------------------------------------------------------

dsk_status queue_create(dsk_device* device, dsk_queue** out_queue) {
    return guard([&] {
        require(out_queue, "queue_create", "out_queue");
        *out_queue = nullptr;
        require(device, "queue_create", "device");
        *out_queue = to_handle(new VulkanQueue(from_handle(device)));
    });
}

void queue_destroy(dsk_queue* queue) { delete from_handle(queue); }

dsk_status copy_to_device(dsk_queue* queue, const void* src, dsk_buffer* dst, uint64_t dst_offset,
                          uint64_t size) {
    return guard([&] {
        require(queue, "copy_to_device", "queue");
        require(dst, "copy_to_device", "dst");
        const VulkanBuffer& target = *from_handle(dst);
        require_same_device(*from_handle(queue), target, "copy_to_device");
        require_in_bounds(target, dst_offset, size, "copy_to_device", "destination");
        if (size == 0) return;
        require(src, "copy_to_device", "src");
        from_handle(queue)->copy_to_device(src, target, dst_offset, size);
    });
}

dsk_status copy_to_host(dsk_queue* queue, dsk_buffer* src, uint64_t src_offset, void* dst,
                        uint64_t size) {
    return guard([&] {
        require(queue, "copy_to_host", "queue");
        require(src, "copy_to_host", "src");
        const VulkanBuffer& source = *from_handle(src);
        require_same_device(*from_handle(queue), source, "copy_to_host");
        require_in_bounds(source, src_offset, size, "copy_to_host", "source");
        if (size == 0) return;
        require(dst, "copy_to_host", "dst");
        from_handle(queue)->copy_to_host(source, src_offset, dst, size);
    });
}

dsk_status copy_on_device(dsk_queue* queue, dsk_buffer* src, uint64_t src_offset, dsk_buffer* dst,
                          uint64_t dst_offset, uint64_t size) {
    return guard([&] {
        require(queue, "copy_on_device", "queue");
        require(src, "copy_on_device", "src");
        require(dst, "copy_on_device", "dst");
        const VulkanBuffer& source = *from_handle(src);
        const VulkanBuffer& target = *from_handle(dst);
        require_same_device(*from_handle(queue), source, "copy_on_device");
        require_same_device(*from_handle(queue), target, "copy_on_device");
        require_in_bounds(source, src_offset, size, "copy_on_device", "source");
        require_in_bounds(target, dst_offset, size, "copy_on_device", "destination");
        from_handle(queue)->copy_on_device(source, src_offset, target, dst_offset, size);
    });
}

dsk_status queue_flush(dsk_queue* queue, dsk_fence** out_fence) {
    return guard([&] {
        require(out_fence, "queue_flush", "out_fence");
        *out_fence = nullptr;
        require(queue, "queue_flush", "queue");
        *out_fence = to_handle(flush(*from_handle(queue)).release());
    });
}

dsk_status fence_wait(dsk_fence* fence, uint64_t timeout_ns) {
    return guard([&] {
        require(fence, "fence_wait", "fence");
        if (!from_handle(fence)->wait(timeout_ns))
            throw Error(DSK_UNAVAILABLE, "vulkan: fence_wait: timeout after " +
                                             std::to_string(timeout_ns) + " ns on " +
                                             from_handle(fence)->device->label());
    });
}

void fence_destroy(dsk_fence* fence) { delete from_handle(fence); }

//----------------------------------------------------------------------------------------------
// Operators
//----------------------------------------------------------------------------------------------

// The same table register_kernels() registers, so placement and execution cannot disagree.
int32_t supports_op(dsk_device* device, const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    return device != nullptr && has_kernel(node, tensors, &from_handle(device)->physical()) ? 1 : 0;
}

dsk_backend_iface make_backend_iface() {
    dsk_backend_iface iface{};
    iface.struct_size = sizeof(dsk_backend_iface);
    iface.name = "vulkan";
    iface.self = nullptr;  // the instance is process-wide (vulkan_instance())
    iface.device_count = &device_count;
    iface.device_info = &device_info;
    iface.device_open = &device_open;
    iface.device_close = &device_close;
    iface.buffer_alloc = &buffer_alloc;
    iface.buffer_free = &buffer_free;
    iface.buffer_map = &buffer_map;
    iface.queue_create = &queue_create;
    iface.queue_destroy = &queue_destroy;
    iface.copy_to_device = &copy_to_device;
    iface.copy_to_host = &copy_to_host;
    iface.copy_on_device = &copy_on_device;
    iface.queue_flush = &queue_flush;
    iface.fence_wait = &fence_wait;
    iface.fence_destroy = &fence_destroy;
    iface.supports_op = &supports_op;
    // Op by op, recorded into command buffers; no whole-subgraph compilation (yet).
    iface.get_capability = nullptr;
    iface.compile = nullptr;
    iface.execute = nullptr;
    iface.executable_release = nullptr;
    return iface;
}

}  // namespace

const dsk_backend_iface& backend_iface() {
    static const dsk_backend_iface iface = make_backend_iface();
    return iface;
}

}  // namespace dsk::vulkan
