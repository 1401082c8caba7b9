// Learning-rate schedules shared by every optimizer of this plugin: constant, step and cosine,
// each with an optional linear warmup. The formulas are in README.md; in short, for the update
// with 0-based index t (t updates were done before it), S = steps_per_epoch, T = total_steps:
//
//   W        = round(warmup_epochs * S)                       warmup steps
//   base(t)  = lr                                             constant
//            = lr * gamma^floor(floor(t / S) / step_epochs)   step (PyTorch StepLR, per epoch)
//            = min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2 cosine, p = clamp((t - W) / (T - W))
//   lr(t)    = base(t) * (t + 1) / W   while t < W, else base(t)
#pragma once

#include <cstdint>
#include <dsk/dsk_plugin.hpp>
#include <string>
#include <vector>

namespace dsk::optim {

enum class ScheduleKind { constant, step, cosine };

// The schedule's settings. steps_per_epoch and total_steps are not pipeline keys: the training
// stage sets them (set_hyperparameter) before the first step; 0 means "not set yet".
struct LrSchedule {
    ScheduleKind kind = ScheduleKind::constant;
    double warmup_epochs = 0;
    int64_t step_epochs = 30;
    double gamma = 0.1;
    double min_lr = 0;
    int64_t steps_per_epoch = 0;
    int64_t total_steps = 0;
};

// "constant" | "step" | "cosine"; anything else is INVALID_ARGUMENT naming the choices.
ScheduleKind parse_schedule_kind(const std::string& name);
const char* schedule_kind_name(ScheduleKind kind);

// The schedule keys of an optimizer's pipeline table (schedule, warmup_epochs, step_epochs,
// gamma, min_lr), read with their defaults. Throws dsk::Error for a wrong type.
LrSchedule read_schedule(const Config& hyper);

// Their parameter specs, appended to every optimizer's own (strings are literals).
std::vector<dsk_param_spec> schedule_param_specs();

// Number of warmup steps: round(warmup_epochs * steps_per_epoch) (0 without warmup).
int64_t warmup_steps(const LrSchedule& schedule, const std::string& optimizer);

// The learning rate of the update with 0-based index `step`. Throws FAILED_PRECONDITION, naming
// `optimizer` and the missing setting, when the schedule needs steps_per_epoch or total_steps
// and they were not set.
double scheduled_lr(const LrSchedule& schedule, double base_lr, int64_t step,
                    const std::string& optimizer);

}  // namespace dsk::optim
