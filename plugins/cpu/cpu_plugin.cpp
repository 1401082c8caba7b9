// cpu_plugin.cpp - the cpu plugin's descriptor and registration; the backend is in
// cpu_device.cpp, the op kernels in kernels/.
#include <dsk/dsk_plugin.hpp>

#include "cpu_device.h"
#include "kernels/kernel_table.h"

namespace {

void register_cpu(dsk::Registrar& registrar) {
    registrar.backend(dsk::cpu::backend_iface());
    dsk::cpu::register_kernels(registrar);
}

// Must match `provides` in cpu.plugin.toml.
const char* const provides[] = {"device:cpu", "kernel:*", nullptr};

}  // namespace

DSK_PLUGIN_DEFINE("Reference CPU backend: host memory and f32 op kernels, always available",
                  provides, register_cpu);
