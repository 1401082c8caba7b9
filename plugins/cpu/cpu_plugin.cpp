// cpu_plugin.cpp - the cpu plugin's descriptor and registration; the backend is in cpu_device.cpp.
#include <dsk/dsk_plugin.hpp>

#include "cpu_device.h"

namespace {

void register_cpu(dsk::Registrar& registrar) { registrar.backend(dsk::cpu::backend_iface()); }

// Must match `provides` in cpu.plugin.toml.
const char* const provides[] = {"device:cpu", nullptr};

}  // namespace

DSK_PLUGIN_DEFINE("Reference CPU backend: host memory, always available", provides, register_cpu);
