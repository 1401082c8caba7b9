// The optim plugin: descriptor and registration only (the optimizers are in sgd.cpp and
// adam.cpp, their shared base in optimizer_base.cpp).
#include "adam.h"
#include "sgd.h"
#include "update_kernels.h"

static void register_optim(dsk::Registrar& reg) {
    // Borrowed by the kernel until shutdown: static storage.
    static const dsk_optimizer_iface sgd = dsk::optim::optimizer_iface(dsk::optim::sgd_kind());
    static const dsk_optimizer_iface adam = dsk::optim::optimizer_iface(dsk::optim::adam_kind());
    static const dsk_optimizer_iface adamw = dsk::optim::optimizer_iface(dsk::optim::adamw_kind());
    reg.optimizer(sgd);
    reg.optimizer(adam);
    reg.optimizer(adamw);
    dsk::optim::register_update_kernels(reg);  // the update ops on the cpu (update_kernels.cpp)
}

static const char* const provides[] = {"optimizer:sgd", "optimizer:adam", "optimizer:adamw",
                                       "kernel:AdamUpdate@cpu", "kernel:SGDUpdate@cpu", nullptr};
DSK_PLUGIN_DEFINE("Optimizers SGD, Adam and AdamW with learning-rate schedules", provides,
                  register_optim);
