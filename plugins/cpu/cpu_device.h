// cpu_device.h - the reference CPU backend: one device, host memory, synchronous queues.
//
// Every other backend is checked against this one (tests/conformance): its kernels (kernels/)
// are tested against reference loops first, and made fast second.
#ifndef DSK_CPU_DEVICE_H_
#define DSK_CPU_DEVICE_H_

#include <dsk/dsk_plugin.h>

namespace dsk::cpu {

// The backend's interface, in static storage: valid while the library is loaded, as
// register_backend requires. Its functions use dsk::host(), so register it from init.
const dsk_backend_iface& backend_iface();

}  // namespace dsk::cpu

#endif  // DSK_CPU_DEVICE_H_
