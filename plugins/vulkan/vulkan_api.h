// vulkan_api.h - the Vulkan functions this plugin calls, loaded at run time from libvulkan.so.1.
//
// The plugin does not link libvulkan: on a machine without the Vulkan loader it still loads, and
// its one device reports what to install (architecture rule 10, "loading is loud and isolated").
// load_vulkan() dlopens the loader once and resolves every function of the lists below through
// vkGetInstanceProcAddr (device functions through the instance: they dispatch on their handle).
#ifndef DSK_VULKAN_API_H_
#define DSK_VULKAN_API_H_

#define VK_NO_PROTOTYPES
#include <vulkan/vulkan.h>

#include <string>

namespace dsk::vulkan {

// Global functions (no instance yet).
#define DSK_VULKAN_GLOBAL_FUNCTIONS(X) \
    X(vkCreateInstance)                \
    X(vkEnumerateInstanceVersion)

// Instance and device functions, resolved once the instance exists.
#define DSK_VULKAN_INSTANCE_FUNCTIONS(X)       \
    X(vkDestroyInstance)                       \
    X(vkEnumeratePhysicalDevices)              \
    X(vkGetPhysicalDeviceProperties)           \
    X(vkGetPhysicalDeviceProperties2)          \
    X(vkGetPhysicalDeviceFeatures2)            \
    X(vkGetPhysicalDeviceMemoryProperties)     \
    X(vkGetPhysicalDeviceQueueFamilyProperties) \
    X(vkEnumerateDeviceExtensionProperties)    \
    X(vkCreateDevice)                          \
    X(vkDestroyDevice)                         \
    X(vkGetDeviceQueue)                        \
    X(vkDeviceWaitIdle)                        \
    X(vkAllocateMemory)                        \
    X(vkFreeMemory)                            \
    X(vkMapMemory)                             \
    X(vkUnmapMemory)                           \
    X(vkCreateBuffer)                          \
    X(vkDestroyBuffer)                         \
    X(vkGetBufferMemoryRequirements)           \
    X(vkBindBufferMemory)                      \
    X(vkCreateCommandPool)                     \
    X(vkDestroyCommandPool)                    \
    X(vkResetCommandPool)                      \
    X(vkAllocateCommandBuffers)                \
    X(vkBeginCommandBuffer)                    \
    X(vkEndCommandBuffer)                      \
    X(vkQueueSubmit)                           \
    X(vkCreateFence)                           \
    X(vkDestroyFence)                          \
    X(vkWaitForFences)                         \
    X(vkGetFenceStatus)                        \
    X(vkResetFences)                           \
    X(vkCmdCopyBuffer)                         \
    X(vkCmdFillBuffer)                         \
    X(vkCmdPipelineBarrier)                    \
    X(vkCmdBindPipeline)                       \
    X(vkCmdPushConstants)                      \
    X(vkCmdDispatch)                           \
    X(vkCmdPushDescriptorSetKHR)               \
    X(vkCreateShaderModule)                    \
    X(vkDestroyShaderModule)                   \
    X(vkCreateDescriptorSetLayout)             \
    X(vkDestroyDescriptorSetLayout)            \
    X(vkCreatePipelineLayout)                  \
    X(vkDestroyPipelineLayout)                 \
    X(vkCreatePipelineCache)                   \
    X(vkDestroyPipelineCache)                  \
    X(vkCreateComputePipelines)                \
    X(vkDestroyPipeline)

struct VulkanApi {
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr = nullptr;
#define DSK_VULKAN_DECLARE(name) PFN_##name name = nullptr;
    DSK_VULKAN_GLOBAL_FUNCTIONS(DSK_VULKAN_DECLARE)
    DSK_VULKAN_INSTANCE_FUNCTIONS(DSK_VULKAN_DECLARE)
#undef DSK_VULKAN_DECLARE
};

// The one table, filled by the probe (vulkan_instance.cpp). Valid once vulkan_instance()
// reports a usable instance; it is never unloaded (the driver's threads may outlive the
// plugin's shutdown).
VulkanApi& vk();

// "VK_ERROR_OUT_OF_DEVICE_MEMORY" for a VkResult.
const char* result_name(VkResult result);

// Throws dsk::Error unless `result` is VK_SUCCESS: out-of-memory results become
// RESOURCE_EXHAUSTED, VK_ERROR_DEVICE_LOST UNAVAILABLE ("device lost"), anything else INTERNAL.
// The message reads "vulkan: <what>: <VK_ERROR_...> (<explanation>)".
void check_vk(VkResult result, const std::string& what);

}  // namespace dsk::vulkan

#endif  // DSK_VULKAN_API_H_
