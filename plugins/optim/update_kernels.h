// The elementwise updates of the optimizers as functions of their per-step constants, and the
// cpu kernels of the update ops (AdamUpdate, SGDUpdate; docs/ops.md) built on them. Optimizer::
// step() and the kernels call the same functions, so a training step that updates in the
// graph gives bitwise the weights of one that calls step() on host memory. The kernels also run
// the ops' functional form (new X and state as outputs, inputs untouched; docs/ops.md).
#pragma once

#include <cstddef>
#include <dsk/dsk_plugin.hpp>
#include <string>

#include "optimizer_base.h"

namespace dsk::optim {

// Updates elements [begin, end) of one parameter from `constants` (the update op's layout):
// reads the parameter and state of `in`, writes those of `out` (`in` itself to update in place,
// other memory for the ops' functional form).
using UpdateFunction = void (*)(const float* constants, const ParamSlot& in, const ParamSlot& out, size_t begin,
                                size_t end);

// The function of an update op: "AdamUpdate" or "SGDUpdate".
UpdateFunction update_function(const std::string& op);

// The whole parameter: on the calling thread when small, else split over the kernel's pool
// (as many threads as its work pays for, dsk_work.hpp).
void apply_update(UpdateFunction update, const float* constants, const ParamSlot& slot);

// Registers the cpu kernels of AdamUpdate and SGDUpdate.
void register_update_kernels(Registrar& reg);

}  // namespace dsk::optim
