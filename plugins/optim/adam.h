// Adam and AdamW, as torch.optim.Adam / torch.optim.AdamW (PyTorch 1.13, amsgrad off), in one
// implementation: `decoupled` selects AdamW's weight decay. For the step numbered t (1-based),
// with g the gradient and p the parameter, per element:
//
//   Adam:   g = g + weight_decay * p                 (L2, into the gradient)
//   AdamW:  p = p * (1 - lr * weight_decay)          (decoupled, before the update)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
#pragma once

#include <memory>

#include "optimizer_base.h"

namespace dsk::optim {

struct AdamOptions {
    bool decoupled = false;  // true: AdamW
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0;  // AdamW's default is 0.01 (from_config / adamw_options())
    LrSchedule schedule;

    static AdamOptions from_config(const Config& hyper, bool decoupled);
};

// AdamW's defaults (weight_decay 0.01).
AdamOptions adamw_options();

class Adam final : public Optimizer {
  public:
    explicit Adam(const AdamOptions& options);

  private:
    size_t buffers_per_param() const override { return 2; }  // exp_avg, exp_avg_sq
    void begin_step(double lr, int64_t step, bool fresh_buffers) override;
    std::vector<float> step_constants() const override;
    const char* update_op() const override { return "AdamUpdate"; }
    void validate() const override;

    AdamOptions options_;
    // This step's constants, computed in double and rounded once to float (as PyTorch does
    // with its Python-float scalars).
    float beta1_f_ = 0, one_minus_beta1_f_ = 0, beta2_f_ = 0, one_minus_beta2_f_ = 0;
    float eps_f_ = 0, weight_decay_f_ = 0, decay_factor_f_ = 1, step_size_f_ = 0,
          bias_correction2_sqrt_f_ = 1;
};

// The registered kinds "adam" and "adamw" (static storage).
const OptimizerKind& adam_kind();
const OptimizerKind& adamw_kind();

}  // namespace dsk::optim
