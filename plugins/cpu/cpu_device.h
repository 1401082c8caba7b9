// cpu_device.h - the reference CPU backend: one device, host memory, synchronous queues.
//
// Every other backend is checked against this one (tests/conformance): its kernels (kernels/)
// are tested against reference loops first, and made fast second.
#ifndef DSK_CPU_DEVICE_H_
#define DSK_CPU_DEVICE_H_

#include <dsk/dsk_plugin.h>

#include <cstdint>

namespace dsk::cpu {

// A backend whose one device is the host CPU and whose buffers are host memory (cpu_device.cpp).
// plugins/onednn shares it: CPU-type devices read and write `data` only, so the kernel may hand
// one such backend's tensors to another's kernels (docs/abi.md, ABI 1.1).
struct HostBackendSpec {
    const char* name;  // the dsk_backend_iface name; also starts every error message
    int32_t score;     // probe score of the device (higher is preferred where both run an op)
    // supports_op: whether the backend has a kernel for this node. Must not throw.
    bool (*supports)(const dsk_node_view* node, const dsk_tensor_desc* tensors) noexcept;
};

// The interface of a host backend. `spec` must be in static storage: the iface and every
// handle it makes point to it.
dsk_backend_iface host_backend_iface(const HostBackendSpec& spec);

// The cpu backend's interface, in static storage: valid while the library is loaded, as
// register_backend requires. Its functions use dsk::host(), so register it from init.
const dsk_backend_iface& backend_iface();

}  // namespace dsk::cpu

#endif  // DSK_CPU_DEVICE_H_
