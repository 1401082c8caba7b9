// onednn_device.cpp - see onednn_device.h.
#include "onednn_device.h"

#include "cpu_device.h"
#include "kernels/onednn_kernel_table.h"

namespace dsk::onednn {
namespace {

bool supports(const dsk_node_view* node, const dsk_tensor_desc* tensors) noexcept {
    return kernel_table().find(node, tensors) != nullptr;
}

}  // namespace

// Score 5, below cpu's 10: automatic placement (no [devices]) leaves onednn out, and a pipeline
// that names it gets it first for the ops it has. On this project's machines (Zen 4) the cpu
// plugin is as fast or faster on every measured case (README.md, "Placement").
const dsk_backend_iface& backend_iface() {
    static const cpu::HostBackendSpec spec{"onednn", 5, &supports};
    static const dsk_backend_iface iface = cpu::host_backend_iface(spec);
    return iface;
}

}  // namespace dsk::onednn
