#include "adam.h"

#include <cmath>
#include <limits>

namespace dsk::optim {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

const char* kind_name(bool decoupled) {
    return decoupled ? "adamw" : "adam";
}

template <bool kDecoupled>
std::unique_ptr<Optimizer> create_adam(const dsk_config* hyper) {
    const AdamOptions options = hyper != nullptr
                                    ? AdamOptions::from_config(Config(hyper), kDecoupled)
                                    : (kDecoupled ? adamw_options() : AdamOptions{});
    return std::make_unique<Adam>(options);
}

std::vector<dsk_param_spec> adam_params(bool decoupled) {
    std::vector<dsk_param_spec> params = {
        param_float("lr", "learning rate", "0.001", 0, kInf),
        param_float("beta1", "decay of the running mean of gradients, in [0, 1)", "0.9", 0, 1),
        param_float("beta2", "decay of the running mean of squared gradients, in [0, 1)", "0.999",
                    0, 1),
        param_float("eps", "added to the denominator for numerical stability", "1e-08", 0, kInf),
        decoupled
            ? param_float("weight_decay", "decoupled weight decay: p *= 1 - lr * weight_decay",
                          "0.01", 0, kInf)
            : param_float("weight_decay", "L2 penalty, added to the gradient", "0", 0, kInf),
    };
    const std::vector<dsk_param_spec> schedule = schedule_param_specs();
    params.insert(params.end(), schedule.begin(), schedule.end());
    return params;
}

}  // namespace

AdamOptions adamw_options() {
    AdamOptions o;
    o.decoupled = true;
    o.weight_decay = 0.01;
    return o;
}

AdamOptions AdamOptions::from_config(const Config& hyper, bool decoupled) {
    AdamOptions o = decoupled ? adamw_options() : AdamOptions{};
    o.lr = hyper.get_or("lr", o.lr);
    o.beta1 = hyper.get_or("beta1", o.beta1);
    o.beta2 = hyper.get_or("beta2", o.beta2);
    o.eps = hyper.get_or("eps", o.eps);
    o.weight_decay = hyper.get_or("weight_decay", o.weight_decay);
    o.schedule = read_schedule(hyper);
    return o;
}

Adam::Adam(const AdamOptions& options)
    : Optimizer(kind_name(options.decoupled), options.lr, options.schedule), options_(options) {
    expose("beta1", &options_.beta1);
    expose("beta2", &options_.beta2);
    expose("eps", &options_.eps);
    expose("weight_decay", &options_.weight_decay);
    validate();
}

void Adam::validate() const {
    Optimizer::validate();
    check_range("beta1", options_.beta1, 0, 1, /*high_inclusive=*/false);
    check_range("beta2", options_.beta2, 0, 1, /*high_inclusive=*/false);
    check_range("eps", options_.eps, 0);
    check_range("weight_decay", options_.weight_decay, 0);
}

void Adam::begin_step(double lr, int64_t step, bool /*fresh_buffers*/) {
    const double t = static_cast<double>(step);
    const double bias_correction1 = 1 - std::pow(options_.beta1, t);
    const double bias_correction2 = 1 - std::pow(options_.beta2, t);
    beta1_f_ = static_cast<float>(options_.beta1);
    one_minus_beta1_f_ = static_cast<float>(1 - options_.beta1);
    beta2_f_ = static_cast<float>(options_.beta2);
    one_minus_beta2_f_ = static_cast<float>(1 - options_.beta2);
    eps_f_ = static_cast<float>(options_.eps);
    weight_decay_f_ = static_cast<float>(options_.weight_decay);
    decay_factor_f_ = static_cast<float>(1 - lr * options_.weight_decay);
    step_size_f_ = static_cast<float>(lr / bias_correction1);
    bias_correction2_sqrt_f_ = static_cast<float>(std::sqrt(bias_correction2));
}

std::vector<float> Adam::step_constants() const {
    const bool l2 = !options_.decoupled && options_.weight_decay != 0;
    const bool decoupled = options_.decoupled && options_.weight_decay != 0;
    return {beta1_f_, one_minus_beta1_f_, beta2_f_, one_minus_beta2_f_, eps_f_, l2 ? weight_decay_f_ : 0.0f,
            decoupled ? decay_factor_f_ : 1.0f, step_size_f_, bias_correction2_sqrt_f_};
}

const OptimizerKind& adam_kind() {
    static const OptimizerKind kind{"adam", "Adam with L2 weight decay (torch.optim.Adam)",
                                    adam_params(false), &create_adam<false>};
    return kind;
}

const OptimizerKind& adamw_kind() {
    static const OptimizerKind kind{"adamw", "Adam with decoupled weight decay (torch.optim.AdamW)",
                                    adam_params(true), &create_adam<true>};
    return kind;
}

}  // namespace dsk::optim
