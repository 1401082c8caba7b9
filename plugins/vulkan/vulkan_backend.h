// vulkan_backend.h - dsk_backend_iface for Vulkan devices (the objects are in vulkan_device.h).
#ifndef DSK_VULKAN_BACKEND_H_
#define DSK_VULKAN_BACKEND_H_

#include <dsk/dsk_plugin.h>

#include "vulkan_device.h"

namespace dsk::vulkan {

// The backend's interface, in static storage (valid while the library is loaded). Its
// functions use dsk::host(), so register it from init.
const dsk_backend_iface& backend_iface();

// Handle conversions, shared with the kernels and the tests.
inline VulkanDevice* from_handle(dsk_device* device) { return reinterpret_cast<VulkanDevice*>(device); }
inline VulkanBuffer* from_handle(dsk_buffer* buffer) { return reinterpret_cast<VulkanBuffer*>(buffer); }
inline VulkanQueue* from_handle(dsk_queue* queue) { return reinterpret_cast<VulkanQueue*>(queue); }
inline VulkanFence* from_handle(dsk_fence* fence) { return reinterpret_cast<VulkanFence*>(fence); }
inline dsk_device* to_handle(VulkanDevice* device) { return reinterpret_cast<dsk_device*>(device); }
inline dsk_buffer* to_handle(VulkanBuffer* buffer) { return reinterpret_cast<dsk_buffer*>(buffer); }
inline dsk_queue* to_handle(VulkanQueue* queue) { return reinterpret_cast<dsk_queue*>(queue); }
inline dsk_fence* to_handle(VulkanFence* fence) { return reinterpret_cast<dsk_fence*>(fence); }

}  // namespace dsk::vulkan

#endif  // DSK_VULKAN_BACKEND_H_
