#include "lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace dsk::optim {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kPi = 3.14159265358979323846;

const char* const kScheduleChoices[] = {"constant", "step", "cosine", nullptr};

[[noreturn]] void missing(const std::string& optimizer, const char* setting, const char* why) {
    throw Error(DSK_FAILED_PRECONDITION,
                "optimizer '" + optimizer + "': " + why + " needs " + setting +
                    ", which is not set; the training stage must call set_hyperparameter(\"" +
                    setting + "\", n) before the first step");
}

}  // namespace

ScheduleKind parse_schedule_kind(const std::string& name) {
    if (name == "constant") return ScheduleKind::constant;
    if (name == "step") return ScheduleKind::step;
    if (name == "cosine") return ScheduleKind::cosine;
    throw Error(DSK_INVALID_ARGUMENT,
                "schedule = \"" + name + "\" is not one of \"constant\", \"step\", \"cosine\"");
}

const char* schedule_kind_name(ScheduleKind kind) {
    switch (kind) {
        case ScheduleKind::step:
            return "step";
        case ScheduleKind::cosine:
            return "cosine";
        default:
            return "constant";
    }
}

LrSchedule read_schedule(const Config& hyper) {
    LrSchedule s;
    s.kind = parse_schedule_kind(hyper.get_or("schedule", "constant"));
    s.warmup_epochs = hyper.get_or("warmup_epochs", s.warmup_epochs);
    s.step_epochs = hyper.get_or("step_epochs", s.step_epochs);
    s.gamma = hyper.get_or("gamma", s.gamma);
    s.min_lr = hyper.get_or("min_lr", s.min_lr);
    return s;
}

std::vector<dsk_param_spec> schedule_param_specs() {
    return {
        param_string("schedule",
                     "learning-rate schedule: constant, step (times gamma every step_epochs "
                     "epochs) or cosine (down to min_lr at total_steps)",
                     "\"constant\"", kScheduleChoices),
        param_float("warmup_epochs",
                    "linear warmup from 0 to lr over this many epochs (counted in steps)", "0", 0,
                    kInf),
        param_int("step_epochs", "step schedule: multiply lr by gamma every this many epochs", "30",
                  1, 1e9),
        param_float("gamma", "step schedule: the factor applied every step_epochs epochs", "0.1", 0,
                    kInf),
        param_float("min_lr", "cosine schedule: the learning rate it ends at", "0", 0, kInf),
    };
}

int64_t warmup_steps(const LrSchedule& s, const std::string& optimizer) {
    if (!(s.warmup_epochs > 0)) return 0;
    if (s.steps_per_epoch <= 0) missing(optimizer, "steps_per_epoch", "warmup_epochs > 0");
    const double steps = s.warmup_epochs * static_cast<double>(s.steps_per_epoch);
    return static_cast<int64_t>(std::llround(std::min(steps, 1e18)));
}

double scheduled_lr(const LrSchedule& s, double base_lr, int64_t step,
                    const std::string& optimizer) {
    const int64_t warmup = warmup_steps(s, optimizer);
    double lr = base_lr;
    switch (s.kind) {
        case ScheduleKind::constant:
            break;
        case ScheduleKind::step: {
            if (s.steps_per_epoch <= 0)
                missing(optimizer, "steps_per_epoch", "schedule = \"step\"");
            const int64_t epoch = step / s.steps_per_epoch;
            lr = base_lr * std::pow(s.gamma, static_cast<double>(epoch / s.step_epochs));
            break;
        }
        case ScheduleKind::cosine: {
            if (s.total_steps <= 0) missing(optimizer, "total_steps", "schedule = \"cosine\"");
            const double span = static_cast<double>(std::max<int64_t>(1, s.total_steps - warmup));
            const double progress = std::clamp(static_cast<double>(step - warmup) / span, 0.0, 1.0);
            lr = s.min_lr + (base_lr - s.min_lr) * (1 + std::cos(kPi * progress)) / 2;
            break;
        }
    }
    if (step < warmup) lr *= static_cast<double>(step + 1) / static_cast<double>(warmup);
    return lr;
}

}  // namespace dsk::optim
