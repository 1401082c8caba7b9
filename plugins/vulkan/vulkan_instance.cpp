// vulkan_instance.cpp - loading libvulkan, creating the instance, probing devices.
#include "vulkan_instance.h"

#include <dlfcn.h>

#include <cstring>

#include <dsk/dsk_error.hpp>

namespace dsk::vulkan {
namespace {

constexpr const char* kInstallHint =
    "install the Vulkan loader and a driver: on Debian/Ubuntu `apt-get install libvulkan1 "
    "mesa-vulkan-drivers` (Mesa: lavapipe on the CPU, radv, anv) or your GPU vendor's driver";

PhysicalDevice unusable_entry(const std::string& name, const std::string& reason) {
    PhysicalDevice entry;
    entry.name = name;
    entry.description = "no usable Vulkan device";
    entry.unusable_reason = reason;
    entry.score = 0;
    return entry;
}

std::string version_text(uint32_t version) {
    return std::to_string(VK_API_VERSION_MAJOR(version)) + "." +
           std::to_string(VK_API_VERSION_MINOR(version)) + "." +
           std::to_string(VK_API_VERSION_PATCH(version));
}

const char* type_text(VkPhysicalDeviceType type) {
    switch (type) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
        case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU (emulated Vulkan)";
        default: return "other";
    }
}

int32_t type_score(VkPhysicalDeviceType type) {
    switch (type) {
        case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return kScoreDiscrete;
        case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return kScoreIntegrated;
        case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return kScoreVirtual;
        case VK_PHYSICAL_DEVICE_TYPE_CPU: return kScoreCpuEmulated;
        default: return kScoreOther;
    }
}

bool has_extension(const VulkanApi& api, VkPhysicalDevice device, const char* name) {
    uint32_t count = 0;
    if (api.vkEnumerateDeviceExtensionProperties(device, nullptr, &count, nullptr) != VK_SUCCESS)
        return false;
    std::vector<VkExtensionProperties> extensions(count);
    if (api.vkEnumerateDeviceExtensionProperties(device, nullptr, &count, extensions.data()) !=
        VK_SUCCESS)
        return false;
    for (const VkExtensionProperties& e : extensions)
        if (std::strcmp(e.extensionName, name) == 0) return true;
    return false;
}

PhysicalDevice describe(const VulkanApi& api, VkPhysicalDevice handle) {
    PhysicalDevice d;
    d.handle = handle;
    api.vkGetPhysicalDeviceProperties(handle, &d.properties);
    api.vkGetPhysicalDeviceMemoryProperties(handle, &d.memory);
    d.name = d.properties.deviceName;
    d.type = d.properties.deviceType;
    for (uint32_t h = 0; h < d.memory.memoryHeapCount; ++h)
        if (d.memory.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
            d.memory_bytes += d.memory.memoryHeaps[h].size;
    d.description = std::string(type_text(d.type)) + ", Vulkan " +
                    version_text(d.properties.apiVersion);

    if (d.properties.apiVersion < VK_API_VERSION_1_1) {
        d.unusable_reason = "the driver implements Vulkan " +
                            version_text(d.properties.apiVersion) +
                            ", the vulkan backend needs 1.1; update the driver";
        return d;
    }
    VkPhysicalDeviceSubgroupProperties subgroup{};
    subgroup.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES;
    VkPhysicalDeviceProperties2 properties2{};
    properties2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2;
    properties2.pNext = &subgroup;
    api.vkGetPhysicalDeviceProperties2(handle, &properties2);
    d.subgroup_size = subgroup.subgroupSize;

    uint32_t families = 0;
    api.vkGetPhysicalDeviceQueueFamilyProperties(handle, &families, nullptr);
    std::vector<VkQueueFamilyProperties> family(families);
    api.vkGetPhysicalDeviceQueueFamilyProperties(handle, &families, family.data());
    bool found = false;
    for (uint32_t f = 0; f < families && !found; ++f) {
        if (family[f].queueFlags & VK_QUEUE_COMPUTE_BIT) {
            d.compute_family = f;
            found = true;
        }
    }
    if (!found) {
        d.unusable_reason = "the device has no compute queue";
        return d;
    }
    if (!has_extension(api, handle, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME)) {
        d.unusable_reason = "the driver lacks " + std::string(VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME) +
                            ", which the vulkan backend binds its buffers with; update the driver";
        return d;
    }
    VkPhysicalDevice8BitStorageFeatures storage8{};
    storage8.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES;
    VkPhysicalDeviceFeatures2 features{};
    features.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2;
    const bool has_8bit_extension = has_extension(api, handle, VK_KHR_8BIT_STORAGE_EXTENSION_NAME);
    if (has_8bit_extension) features.pNext = &storage8;
    api.vkGetPhysicalDeviceFeatures2(handle, &features);
    d.int64 = features.features.shaderInt64 == VK_TRUE;
    d.storage_8bit = has_8bit_extension && storage8.storageBuffer8BitAccess == VK_TRUE;
    d.score = type_score(d.type);
    d.description += ", subgroup " + std::to_string(d.subgroup_size) +
                     (d.cpu_emulated() ? ", register-blocked shaders" : ", shared-memory shaders");
    return d;
}

}  // namespace

VulkanInstance probe_vulkan(const char* loader_library, VulkanApi& api) {
    VulkanInstance result;
    void* library = dlopen(loader_library, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
        const char* error = dlerror();
        result.devices.push_back(unusable_entry(
            "vulkan (no loader)", std::string("cannot load the Vulkan loader ") + loader_library +
                                      " (" + (error ? error : "unknown error") + "); " +
                                      kInstallHint));
        return result;
    }
    // The library stays loaded for the life of the process (the driver may keep threads).
    api.vkGetInstanceProcAddr =
        reinterpret_cast<PFN_vkGetInstanceProcAddr>(dlsym(library, "vkGetInstanceProcAddr"));
    if (api.vkGetInstanceProcAddr == nullptr) {
        result.devices.push_back(unusable_entry(
            "vulkan (broken loader)",
            std::string(loader_library) + " does not export vkGetInstanceProcAddr; " + kInstallHint));
        return result;
    }
#define DSK_VULKAN_LOAD_GLOBAL(name) \
    api.name = reinterpret_cast<PFN_##name>(api.vkGetInstanceProcAddr(VK_NULL_HANDLE, #name));
    DSK_VULKAN_GLOBAL_FUNCTIONS(DSK_VULKAN_LOAD_GLOBAL)
#undef DSK_VULKAN_LOAD_GLOBAL

    uint32_t loader_version = VK_API_VERSION_1_0;
    if (api.vkEnumerateInstanceVersion) api.vkEnumerateInstanceVersion(&loader_version);
    if (loader_version < VK_API_VERSION_1_1 || api.vkCreateInstance == nullptr) {
        result.devices.push_back(unusable_entry(
            "vulkan (old loader)", "the Vulkan loader implements " + version_text(loader_version) +
                                       ", the vulkan backend needs 1.1; " + kInstallHint));
        return result;
    }

    VkApplicationInfo app{};
    app.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO;
    app.pApplicationName = "dsk";
    app.pEngineName = "dsk";
    app.apiVersion = VK_API_VERSION_1_1;
    VkInstanceCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO;
    info.pApplicationInfo = &app;  // no layers, no extensions
    const VkResult created = api.vkCreateInstance(&info, nullptr, &result.instance);
    if (created != VK_SUCCESS) {
        result.instance = VK_NULL_HANDLE;
        result.devices.push_back(unusable_entry(
            "vulkan (no driver)",
            std::string("vkCreateInstance failed with ") + result_name(created) +
                (created == VK_ERROR_INCOMPATIBLE_DRIVER ? " (no Vulkan driver (ICD) is installed)"
                                                         : "") +
                "; " + kInstallHint));
        return result;
    }
#define DSK_VULKAN_LOAD_INSTANCE(name) \
    api.name = reinterpret_cast<PFN_##name>(api.vkGetInstanceProcAddr(result.instance, #name));
    DSK_VULKAN_INSTANCE_FUNCTIONS(DSK_VULKAN_LOAD_INSTANCE)
#undef DSK_VULKAN_LOAD_INSTANCE

    uint32_t count = 0;
    api.vkEnumeratePhysicalDevices(result.instance, &count, nullptr);
    std::vector<VkPhysicalDevice> handles(count);
    if (count) api.vkEnumeratePhysicalDevices(result.instance, &count, handles.data());
    for (uint32_t i = 0; i < count; ++i) result.devices.push_back(describe(api, handles[i]));
    if (result.devices.empty()) {
        result.devices.push_back(unusable_entry(
            "vulkan (no device)", "the Vulkan loader found no physical device; " +
                                      std::string(kInstallHint)));
    }
    return result;
}

const VulkanInstance& vulkan_instance() {
    static const VulkanInstance instance = probe_vulkan("libvulkan.so.1", vk());
    return instance;
}

VulkanApi& vk() {
    static VulkanApi api;
    return api;
}

const char* result_name(VkResult result) {
    switch (result) {
#define DSK_VULKAN_RESULT(name) \
    case name: return #name;
        DSK_VULKAN_RESULT(VK_SUCCESS)
        DSK_VULKAN_RESULT(VK_NOT_READY)
        DSK_VULKAN_RESULT(VK_TIMEOUT)
        DSK_VULKAN_RESULT(VK_INCOMPLETE)
        DSK_VULKAN_RESULT(VK_ERROR_OUT_OF_HOST_MEMORY)
        DSK_VULKAN_RESULT(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        DSK_VULKAN_RESULT(VK_ERROR_INITIALIZATION_FAILED)
        DSK_VULKAN_RESULT(VK_ERROR_DEVICE_LOST)
        DSK_VULKAN_RESULT(VK_ERROR_MEMORY_MAP_FAILED)
        DSK_VULKAN_RESULT(VK_ERROR_LAYER_NOT_PRESENT)
        DSK_VULKAN_RESULT(VK_ERROR_EXTENSION_NOT_PRESENT)
        DSK_VULKAN_RESULT(VK_ERROR_FEATURE_NOT_PRESENT)
        DSK_VULKAN_RESULT(VK_ERROR_INCOMPATIBLE_DRIVER)
        DSK_VULKAN_RESULT(VK_ERROR_TOO_MANY_OBJECTS)
        DSK_VULKAN_RESULT(VK_ERROR_FORMAT_NOT_SUPPORTED)
        DSK_VULKAN_RESULT(VK_ERROR_FRAGMENTED_POOL)
        DSK_VULKAN_RESULT(VK_ERROR_OUT_OF_POOL_MEMORY)
        DSK_VULKAN_RESULT(VK_ERROR_INVALID_SHADER_NV)
#undef DSK_VULKAN_RESULT
        default: return "VK_ERROR_UNKNOWN";
    }
}

void check_vk(VkResult result, const std::string& what) {
    if (result == VK_SUCCESS) return;
    const std::string prefix = "vulkan: " + what + ": " + result_name(result);
    switch (result) {
        case VK_ERROR_OUT_OF_DEVICE_MEMORY:
            throw Error(DSK_RESOURCE_EXHAUSTED,
                        prefix + " (out of device memory; free buffers or use smaller batches)");
        case VK_ERROR_OUT_OF_HOST_MEMORY:
            throw Error(DSK_RESOURCE_EXHAUSTED, prefix + " (out of host memory)");
        case VK_ERROR_DEVICE_LOST:
            throw Error(DSK_UNAVAILABLE,
                        prefix + " (device lost: the driver reset the GPU, after a hang or a "
                                 "fault; the device must be closed and opened again)");
        default: throw Error(DSK_INTERNAL, prefix);
    }
}

}  // namespace dsk::vulkan
