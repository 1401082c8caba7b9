#include "sgd.h"

#include <cmath>
#include <iterator>
#include <limits>

namespace dsk::optim {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

std::unique_ptr<Optimizer> create_sgd(const dsk_config* hyper) {
    if (hyper == nullptr) {
        throw Error(DSK_INVALID_ARGUMENT,
                    "optimizer 'sgd': lr is required (SGD has no default learning rate)");
    }
    return std::make_unique<Sgd>(SgdOptions::from_config(Config(hyper)));
}

}  // namespace

SgdOptions SgdOptions::from_config(const Config& hyper) {
    SgdOptions o;
    if (!hyper.has("lr")) {
        throw Error(DSK_INVALID_ARGUMENT,
                    "optimizer 'sgd': lr is required (SGD has no default "
                    "learning rate); add lr = 0.1, say, to its table");
    }
    o.lr = hyper.get<double>("lr");
    o.momentum = hyper.get_or("momentum", o.momentum);
    o.dampening = hyper.get_or("dampening", o.dampening);
    o.weight_decay = hyper.get_or("weight_decay", o.weight_decay);
    o.nesterov = hyper.get_or("nesterov", o.nesterov);
    o.schedule = read_schedule(hyper);
    return o;
}

Sgd::Sgd(const SgdOptions& options)
    : Optimizer("sgd", options.lr, options.schedule), options_(options) {
    expose("momentum", &options_.momentum, /*settable=*/false);  // decides whether buffers exist
    expose("dampening", &options_.dampening);
    expose("weight_decay", &options_.weight_decay);
    validate();
}

void Sgd::validate() const {
    Optimizer::validate();
    check_range("momentum", options_.momentum, 0);
    check_range("weight_decay", options_.weight_decay, 0);
    check_range("dampening", options_.dampening, -std::numeric_limits<double>::infinity());
    if (options_.nesterov && (options_.momentum <= 0 || options_.dampening != 0)) {
        throw Error(DSK_INVALID_ARGUMENT, prefix() +
                                              "nesterov = true needs momentum > 0 and "
                                              "dampening = 0 (as in PyTorch)");
    }
}

void Sgd::begin_step(double lr, int64_t /*step*/, bool fresh_buffers) {
    lr_f_ = static_cast<float>(lr);
    momentum_f_ = static_cast<float>(options_.momentum);
    one_minus_dampening_f_ = static_cast<float>(1.0 - options_.dampening);
    weight_decay_f_ = static_cast<float>(options_.weight_decay);
    first_ = fresh_buffers;
}

std::vector<float> Sgd::step_constants() const {
    return {lr_f_, momentum_f_, one_minus_dampening_f_, weight_decay_f_, first_ ? 1.0f : 0.0f,
            options_.nesterov ? 1.0f : 0.0f};
}

const OptimizerKind& sgd_kind() {
    static const OptimizerKind kind = [] {
        std::vector<dsk_param_spec> params = {
            required(
                param_float("lr", "learning rate (required, as in PyTorch)", nullptr, 0, kInf)),
            param_float("momentum", "momentum factor (0: plain SGD)", "0", 0, kInf),
            param_float("dampening", "dampening of the momentum", "0"),
            param_float("weight_decay", "L2 penalty, added to the gradient", "0", 0, kInf),
            param_bool("nesterov", "Nesterov momentum (needs momentum > 0, dampening = 0)",
                       "false"),
        };
        const std::vector<dsk_param_spec> schedule = schedule_param_specs();
        params.insert(params.end(), schedule.begin(), schedule.end());
        return OptimizerKind{"sgd",
                             "Stochastic gradient descent with momentum, Nesterov and weight "
                             "decay (torch.optim.SGD)",
                             std::move(params), &create_sgd};
    }();
    return kind;
}

}  // namespace dsk::optim
