// vulkan_pipelines.cpp - PipelineCache (see vulkan_pipelines.h).
#include "vulkan_pipelines.h"

#include <dsk/dsk_error.hpp>

namespace dsk::vulkan {

PipelineCache::PipelineCache(VkDevice device, std::string label)
    : device_(device), label_(std::move(label)) {
    VkPipelineCacheCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO;
    check_vk(vk().vkCreatePipelineCache(device_, &info, nullptr, &cache_),
             "creating the pipeline cache of " + label_);
}

PipelineCache::~PipelineCache() {
    for (auto& [key, p] : pipelines_) vk().vkDestroyPipeline(device_, p.pipeline, nullptr);
    for (auto& [name, m] : modules_) vk().vkDestroyShaderModule(device_, m, nullptr);
    for (auto& [count, l] : layouts_) {
        vk().vkDestroyPipelineLayout(device_, l.pipeline_layout, nullptr);
        vk().vkDestroyDescriptorSetLayout(device_, l.set_layout, nullptr);
    }
    vk().vkDestroyPipelineCache(device_, cache_, nullptr);
}

const PipelineCache::Layout& PipelineCache::layout(uint32_t bindings) {
    auto found = layouts_.find(bindings);
    if (found != layouts_.end()) return found->second;
    VkDescriptorSetLayoutBinding binding[kMaxBindings]{};
    for (uint32_t b = 0; b < bindings; ++b) {
        binding[b].binding = b;
        binding[b].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        binding[b].descriptorCount = 1;
        binding[b].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
    }
    Layout l;
    VkDescriptorSetLayoutCreateInfo set_info{};
    set_info.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO;
    set_info.flags = VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR;
    set_info.bindingCount = bindings;
    set_info.pBindings = binding;
    check_vk(vk().vkCreateDescriptorSetLayout(device_, &set_info, nullptr, &l.set_layout),
             "creating a descriptor set layout on " + label_);
    VkPushConstantRange push{};
    push.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
    push.size = kPushConstantBytes;
    VkPipelineLayoutCreateInfo layout_info{};
    layout_info.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO;
    layout_info.setLayoutCount = 1;
    layout_info.pSetLayouts = &l.set_layout;
    layout_info.pushConstantRangeCount = 1;
    layout_info.pPushConstantRanges = &push;
    const VkResult result =
        vk().vkCreatePipelineLayout(device_, &layout_info, nullptr, &l.pipeline_layout);
    if (result != VK_SUCCESS) {
        vk().vkDestroyDescriptorSetLayout(device_, l.set_layout, nullptr);
        check_vk(result, "creating a pipeline layout on " + label_);
    }
    return layouts_.emplace(bindings, l).first->second;
}

VkShaderModule PipelineCache::module(std::string_view shader) {
    auto found = modules_.find(shader);
    if (found != modules_.end()) return found->second;
    for (const ShaderCode& code : embedded_shaders()) {
        if (shader != code.name) continue;
        VkShaderModuleCreateInfo info{};
        info.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO;
        info.codeSize = code.word_count * sizeof(uint32_t);
        info.pCode = code.words;
        VkShaderModule m = VK_NULL_HANDLE;
        check_vk(vk().vkCreateShaderModule(device_, &info, nullptr, &m),
                 "creating shader module '" + std::string(shader) + "' on " + label_);
        return modules_.emplace(std::string(shader), m).first->second;
    }
    throw Error(DSK_INTERNAL, "vulkan: no embedded shader is named '" + std::string(shader) +
                                  "' (shaders/" + std::string(shader) +
                                  ".comp is missing from the build)");
}

const Pipeline& PipelineCache::get(std::string_view shader, uint32_t bindings,
                                   std::span<const int32_t> specialization) {
    if (bindings == 0 || bindings > kMaxBindings)
        throw Error(DSK_INTERNAL, "vulkan: shader '" + std::string(shader) + "' wants " +
                                      std::to_string(bindings) + " bindings (1 to " +
                                      std::to_string(kMaxBindings) + ")");
    std::string key = std::string(shader) + "/" + std::to_string(bindings);
    for (int32_t value : specialization) key += "/" + std::to_string(value);
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = pipelines_.find(key);
    if (found != pipelines_.end()) return found->second;

    const Layout& l = layout(bindings);
    std::vector<VkSpecializationMapEntry> entries(specialization.size());
    for (size_t i = 0; i < entries.size(); ++i)
        entries[i] = {static_cast<uint32_t>(i), static_cast<uint32_t>(i * sizeof(int32_t)),
                      sizeof(int32_t)};
    VkSpecializationInfo spec{};
    spec.mapEntryCount = static_cast<uint32_t>(entries.size());
    spec.pMapEntries = entries.data();
    spec.dataSize = specialization.size() * sizeof(int32_t);
    spec.pData = specialization.data();

    VkComputePipelineCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO;
    info.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    info.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    info.stage.module = module(shader);
    info.stage.pName = "main";
    info.stage.pSpecializationInfo = specialization.empty() ? nullptr : &spec;
    info.layout = l.pipeline_layout;
    Pipeline p;
    p.layout = l.pipeline_layout;
    p.bindings = bindings;
    check_vk(vk().vkCreateComputePipelines(device_, cache_, 1, &info, nullptr, &p.pipeline),
             "building pipeline '" + key + "' on " + label_);
    return pipelines_.emplace(key, p).first->second;
}

size_t PipelineCache::pipeline_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pipelines_.size();
}

}  // namespace dsk::vulkan
