// vulkan_plugin.cpp - the vulkan plugin's descriptor and registration; the backend is in
// vulkan_backend.cpp, the op kernels in kernels/, the shaders in shaders/.
#include <dsk/dsk_plugin.hpp>

#include "kernels/kernel_table.h"
#include "vulkan_backend.h"

namespace {

void register_vulkan(dsk::Registrar& registrar) {
    registrar.backend(dsk::vulkan::backend_iface());
    dsk::vulkan::register_kernels(registrar);
}

// Must match `provides` in vulkan.plugin.toml.
const char* const provides[] = {"device:vulkan", "kernel:*", nullptr};

}  // namespace

DSK_PLUGIN_DEFINE(
    "Vulkan compute backend: device memory, command-buffer queues and f32 op kernels from "
    "embedded SPIR-V",
    provides, register_vulkan);
