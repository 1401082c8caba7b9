// onednn_device.h - the onednn backend: the host CPU as one device, host memory (the cpu
// plugin's host backend, plugins/cpu/cpu_device.h), probe score 20 so that the kernel prefers it
// over cpu (10) for every node it supports, and supports_op from its kernel table.
#ifndef DSK_ONEDNN_ONEDNN_DEVICE_H_
#define DSK_ONEDNN_ONEDNN_DEVICE_H_

#include <dsk/dsk_plugin.h>

namespace dsk::onednn {

// Static storage, valid while the library is loaded (register_backend borrows it).
const dsk_backend_iface& backend_iface();

}  // namespace dsk::onednn

#endif  // DSK_ONEDNN_ONEDNN_DEVICE_H_
