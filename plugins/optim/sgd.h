// SGD with momentum, dampening, Nesterov momentum and L2 weight decay, as torch.optim.SGD
// (PyTorch 1.13). For each element, with g the gradient and p the parameter:
//
//   d = g + weight_decay * p
//   if momentum != 0:
//       b = d                                     (first step: the buffer starts as d)
//       b = momentum * b + (1 - dampening) * d    (later steps)
//       d = nesterov ? d + momentum * b : b
//   p = p - lr * d
#pragma once

#include <limits>
#include <memory>

#include "optimizer_base.h"

namespace dsk::optim {

struct SgdOptions {
    double lr = std::numeric_limits<double>::quiet_NaN();  // required, as in PyTorch 1.13
    double momentum = 0;
    double dampening = 0;
    double weight_decay = 0;
    bool nesterov = false;
    LrSchedule schedule;

    // From the optimizer's pipeline table; INVALID_ARGUMENT when lr is missing.
    static SgdOptions from_config(const Config& hyper);
};

class Sgd final : public Optimizer {
  public:
    explicit Sgd(const SgdOptions& options);

  private:
    size_t buffers_per_param() const override { return options_.momentum != 0 ? 1 : 0; }
    void begin_step(double lr, int64_t step, bool fresh_buffers) override;
    std::vector<float> step_constants() const override;
    const char* update_op() const override { return "SGDUpdate"; }
    void validate() const override;

    SgdOptions options_;
    // This step's constants, in the precision of the update.
    float lr_f_ = 0, momentum_f_ = 0, one_minus_dampening_f_ = 0, weight_decay_f_ = 0;
    bool first_ = false;
};

// The registered kind "sgd" (static storage).
const OptimizerKind& sgd_kind();

}  // namespace dsk::optim
