// onednn_device.h - the onednn backend: the host CPU as one device, host memory (the cpu
// plugin's host backend, plugins/cpu/cpu_device.h), probe score 5 (below cpu's 10: used where a
// pipeline names it, first for every node it supports), and supports_op from its kernel table.
#ifndef DSK_ONEDNN_ONEDNN_DEVICE_H_
#define DSK_ONEDNN_ONEDNN_DEVICE_H_

#include <dsk/dsk_plugin.h>

namespace dsk::onednn {

// Static storage, valid while the library is loaded (register_backend borrows it).
const dsk_backend_iface& backend_iface();

}  // namespace dsk::onednn

#endif  // DSK_ONEDNN_ONEDNN_DEVICE_H_
