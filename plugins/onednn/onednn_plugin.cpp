// onednn_plugin.cpp - the onednn plugin's descriptor and registration; the backend is in
// onednn_device.cpp, the kernels in kernels/.
#include <dsk/dsk_plugin.hpp>

#include "kernels/onednn_kernel_table.h"
#include "onednn_device.h"

namespace {

void register_onednn(dsk::Registrar& registrar) {
    registrar.backend(dsk::onednn::backend_iface());
    dsk::onednn::kernel_table().register_all(registrar);
}

// Must match `provides` in onednn.plugin.toml.
const char* const provides[] = {"device:onednn", "kernel:*", nullptr};

}  // namespace

DSK_PLUGIN_DEFINE("oneDNN backend: f32 matmul, convolution, pooling, batch norm, eltwise and "
                  "softmax kernels (with primitive caching), u8s8 int8 matmul and convolution",
                  provides, register_onednn);
