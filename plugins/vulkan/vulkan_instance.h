// vulkan_instance.h - the Vulkan loader, the instance and what each physical device is.
//
// Probed once per process, on first use: dlopen("libvulkan.so.1"), vkCreateInstance (API 1.1,
// no layers, no extensions: compute needs no window system), then every physical device with
// its name, type, device-local memory, subgroup size and a probe score. Every way this can fail
// (no loader, no driver, a device too old) becomes an unusable entry with the reason and the
// fix, never a failed plugin load.
#ifndef DSK_VULKAN_INSTANCE_H_
#define DSK_VULKAN_INSTANCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "vulkan_api.h"

namespace dsk::vulkan {

// Probe scores (dsk_device_info.score). The cpu backend scores 10: a real GPU wins the
// automatic choice, a CPU emulation of Vulkan (lavapipe) does not, unless asked for by name.
constexpr int32_t kScoreDiscrete = 100;
constexpr int32_t kScoreIntegrated = 50;
constexpr int32_t kScoreVirtual = 30;
constexpr int32_t kScoreOther = 20;
constexpr int32_t kScoreCpuEmulated = 5;

struct PhysicalDevice {
    VkPhysicalDevice handle = VK_NULL_HANDLE;  // VK_NULL_HANDLE for the "no driver" entry
    std::string name;
    std::string description;
    std::string unusable_reason;  // empty when usable
    VkPhysicalDeviceType type = VK_PHYSICAL_DEVICE_TYPE_OTHER;
    uint64_t memory_bytes = 0;  // the device-local heaps
    uint32_t subgroup_size = 0;
    int32_t score = 0;
    uint32_t compute_family = 0;  // a queue family with VK_QUEUE_COMPUTE_BIT
    // Optional features, enabled at device creation when present (Dropout needs both).
    bool int64 = false;         // shaderInt64
    bool storage_8bit = false;  // storageBuffer8BitAccess (VK_KHR_8bit_storage)
    VkPhysicalDeviceProperties properties{};
    VkPhysicalDeviceMemoryProperties memory{};

    bool usable() const { return score > 0; }
    // lavapipe / SwiftShader: one CPU thread per workgroup, no real shared memory.
    bool cpu_emulated() const { return type == VK_PHYSICAL_DEVICE_TYPE_CPU; }
};

struct VulkanInstance {
    VkInstance instance = VK_NULL_HANDLE;
    // Never empty: without a loader or driver it holds one unusable entry that says why.
    std::vector<PhysicalDevice> devices;
};

// The process-wide probe (thread-safe, once). Its strings live until the process ends.
const VulkanInstance& vulkan_instance();

// The probe itself, with the loader library to open: tests pass a name that does not exist to
// see the "no Vulkan loader" entry. Fills `api` as far as it gets.
VulkanInstance probe_vulkan(const char* loader_library, VulkanApi& api);

}  // namespace dsk::vulkan

#endif  // DSK_VULKAN_INSTANCE_H_
