#include "optimizer_base.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <dsk/dsk_op.hpp>

#include "optimizer_state.h"
#include "update_kernels.h"

namespace dsk::optim {
namespace {

std::string number(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", value);
    return text;
}


}  // namespace

Optimizer::Optimizer(std::string name, double lr, const LrSchedule& schedule)
    : lr_(lr), schedule_(schedule), name_(std::move(name)) {
    exposed_.push_back({"steps_per_epoch", nullptr, &schedule_.steps_per_epoch, true});
    exposed_.push_back({"total_steps", nullptr, &schedule_.total_steps, true});
    exposed_.push_back({"warmup_epochs", &schedule_.warmup_epochs, nullptr, true});
    exposed_.push_back({"step_epochs", nullptr, &schedule_.step_epochs, true});
    exposed_.push_back({"gamma", &schedule_.gamma, nullptr, true});
    exposed_.push_back({"min_lr", &schedule_.min_lr, nullptr, true});
}

void Optimizer::expose(const char* name, double* value, bool settable) {
    exposed_.push_back({name, value, nullptr, settable});
}

void Optimizer::check_range(const char* key, double value, double low, double high,
                            bool high_inclusive) const {
    const bool below_high = high_inclusive ? value <= high : value < high;
    if (std::isfinite(value) && value >= low && below_high) return;
    const std::string upper =
        std::isinf(high) ? "inf]" : number(high) + (high_inclusive ? "]" : ")");
    throw Error(DSK_INVALID_ARGUMENT, prefix() + key + " = " + number(value) +
                                          " is out of range [" + number(low) + ", " + upper);
}

void Optimizer::validate() const {
    check_range("lr", lr_, 0);
    check_range("warmup_epochs", schedule_.warmup_epochs, 0);
    check_range("step_epochs", static_cast<double>(schedule_.step_epochs), 1);
    check_range("gamma", schedule_.gamma, 0);
    check_range("min_lr", schedule_.min_lr, 0);
    check_range("steps_per_epoch", static_cast<double>(schedule_.steps_per_epoch), 0);
    check_range("total_steps", static_cast<double>(schedule_.total_steps), 0);
}

//==============================================================================================
// Hyperparameters by name
//==============================================================================================

const Optimizer::Exposed* Optimizer::find(const std::string& name) const {
    for (const Exposed& e : exposed_)
        if (e.name == name) return &e;
    return nullptr;
}

std::string Optimizer::known_names() const {
    std::string names = "lr, step";
    for (const Exposed& e : exposed_) names += ", " + e.name;
    return names;
}

void Optimizer::set_hyperparameter(const std::string& name, double value) {
    if (name == "step") {
        throw Error(DSK_INVALID_ARGUMENT, prefix() +
                                              "'step' can be read but not set: it counts "
                                              "the steps taken (load_state restores it)");
    }
    double* real = &lr_;
    int64_t* integer = nullptr;
    if (name != "lr") {
        const Exposed* e = find(name);
        if (e == nullptr) {
            throw Error(DSK_NOT_FOUND, prefix() + "no hyperparameter '" + name +
                                           "' (known: " + known_names() + ")");
        }
        if (!e->settable) {
            throw Error(DSK_INVALID_ARGUMENT, prefix() + "'" + name +
                                                  "' is fixed when the optimizer is created; set "
                                                  "it in the pipeline's optimizer table instead");
        }
        real = e->real;
        integer = e->integer;
    }
    if (integer != nullptr) {
        if (!(std::trunc(value) == value && std::fabs(value) < 9.0e15)) {
            throw Error(DSK_INVALID_ARGUMENT, prefix() + "'" + name +
                                                  "' must be a whole number, "
                                                  "got " +
                                                  number(value));
        }
        const int64_t old = *integer;
        *integer = static_cast<int64_t>(value);
        try {
            validate();
        } catch (...) {
            *integer = old;
            throw;
        }
    } else {
        const double old = *real;
        *real = value;
        try {
            validate();
        } catch (...) {
            *real = old;
            throw;
        }
    }
}

double Optimizer::get_hyperparameter(const std::string& name) const {
    if (name == "lr") {
        if (last_lr_) return *last_lr_;
        if (step_ == 0) return lr_;
        // After load_state: the lr the schedule gave the last step, if it can tell yet.
        try {
            return scheduled_lr(schedule_, lr_, step_ - 1, name_);
        } catch (const Error&) {
            return lr_;
        }
    }
    if (name == "step") return static_cast<double>(step_);
    const Exposed* e = find(name);
    if (e == nullptr) {
        throw Error(DSK_NOT_FOUND,
                    prefix() + "no hyperparameter '" + name + "' (known: " + known_names() + ")");
    }
    return e->real != nullptr ? *e->real : static_cast<double>(*e->integer);
}

//==============================================================================================
// Steps
//==============================================================================================

std::vector<ParamSlot> Optimizer::check_tensors(size_t count, const dsk_tensor_desc* params,
                                                const dsk_tensor_desc* grads) const {
    if (count > 0 && (params == nullptr || grads == nullptr)) {
        throw Error(DSK_INVALID_ARGUMENT, prefix() + "step got " + std::to_string(count) +
                                              " parameters but params or grads is NULL");
    }
    std::vector<ParamSlot> slots(count);
    for (size_t i = 0; i < count; ++i) {
        const dsk_tensor_desc& p = params[i];
        const dsk_tensor_desc& g = grads[i];
        const std::string what = prefix() + "parameter " + std::to_string(i);
        if (p.ndim > DSK_MAX_DIMS || g.ndim > DSK_MAX_DIMS) {
            throw Error(DSK_INVALID_ARGUMENT, what + " (or its gradient) has more than " +
                                                  std::to_string(DSK_MAX_DIMS) + " dimensions");
        }
        if (p.dtype != DSK_DTYPE_F32 || g.dtype != DSK_DTYPE_F32) {
            throw Error(DSK_UNIMPLEMENTED, what + " is " + dtype_name(p.dtype) + " with a " +
                                               dtype_name(g.dtype) +
                                               " gradient; this optimizer updates f32 only");
        }
        if (shape_of(p) != shape_of(g)) {
            throw Error(DSK_INVALID_ARGUMENT, what + " has shape " + shape_text(shape_of(p)) +
                                                  " but its gradient " + shape_text(shape_of(g)));
        }
        for (uint32_t d = 0; d < p.ndim; ++d) {
            if (p.shape[d] < 0) {
                throw Error(DSK_INVALID_ARGUMENT,
                            what + " has a negative extent: " + shape_text(shape_of(p)));
            }
        }
        const size_t size = static_cast<size_t>(numel(p));
        if (size > 0 && (p.data == nullptr || g.data == nullptr)) {
            throw Error(DSK_UNIMPLEMENTED, what +
                                               " or its gradient is not in host memory "
                                               "(data is NULL); this optimizer updates host "
                                               "memory only");
        }
        if (!dsk::is_contiguous(p) || !dsk::is_contiguous(g)) {
            throw Error(DSK_INVALID_ARGUMENT,
                        what + " or its gradient is not contiguous (row-major strides)");
        }
        slots[i] = ParamSlot{static_cast<float*>(p.data),
                             static_cast<const float*>(g.data),
                             {nullptr, nullptr},
                             size};
    }
    return slots;
}

void Optimizer::step(size_t count, const dsk_tensor_desc* params, const dsk_tensor_desc* grads) {
    if (graph_mode_)
        throw Error(DSK_FAILED_PRECONDITION, prefix() + "step() after build_update: the graph updates the parameters "
                                                        "(call feed_update before each run instead)");
    std::vector<ParamSlot> slots = check_tensors(count, params, grads);
    const size_t per = buffers_per_param();
    if (per > 0 && !buffers_.empty()) {
        const dsk_status_code code = loaded_ ? DSK_DATA_LOSS : DSK_INVALID_ARGUMENT;
        const char* origin = loaded_ ? " (the state loaded from the checkpoint belongs to "
                                       "another model?)"
                                     : " (the parameters changed between steps)";
        if (buffers_.size() != count * per) {
            throw Error(code, prefix() + "step got " + std::to_string(count) +
                                  " parameters but its state is for " +
                                  std::to_string(buffers_.size() / per) + origin);
        }
        for (size_t i = 0; i < buffers_.size(); ++i) {
            if (buffers_[i].size() != slots[i / per].size) {
                throw Error(code, prefix() + "parameter " + std::to_string(i / per) + " has " +
                                      std::to_string(slots[i / per].size) +
                                      " elements but its state has " +
                                      std::to_string(buffers_[i].size()) + origin);
            }
        }
    }
    // Computed before anything changes: a schedule that lacks a setting fails the step cleanly.
    const double lr = scheduled_lr(schedule_, lr_, step_, name_);

    const bool fresh = buffers_.empty() && per > 0 && count > 0;
    if (fresh) {
        std::vector<std::vector<float>> created(count * per);
        for (size_t i = 0; i < created.size(); ++i) created[i].assign(slots[i / per].size, 0.0f);
        buffers_ = std::move(created);
    }
    for (size_t i = 0; i < count; ++i)
        for (size_t b = 0; b < per; ++b) slots[i].buffers[b] = buffers_[i * per + b].data();

    begin_step(lr, step_ + 1, fresh);
    const std::vector<float> constants = step_constants();
    const UpdateFunction update = update_function(update_op());
    for (const ParamSlot& slot : slots) apply_update(update, constants.data(), slot);
    ++step_;
    last_lr_ = lr;
}

std::vector<dsk_value_id> Optimizer::build_update(dsk_graph* graph, const std::vector<dsk_value_id>& params,
                                                  const std::vector<dsk_value_id>& grads) {
    if (params.size() != grads.size())
        throw Error(DSK_INVALID_ARGUMENT, prefix() + "build_update got " + std::to_string(params.size()) +
                                              " parameters but " + std::to_string(grads.size()) + " gradients");
    if (graph_mode_) throw Error(DSK_FAILED_PRECONDITION, prefix() + "build_update was already called");
    const Graph g(graph);
    // The names of the parameters, for their state variables.
    std::map<dsk_value_id, std::string> names;
    for (size_t i = 0; i < host().graph_variable_count(graph); ++i) {
        dsk_value_id id = DSK_VALUE_NONE;
        const char* name = nullptr;
        uint32_t flags = 0;
        check(host().graph_variable_at(graph, i, &id, &name, &flags));
        names[id] = name;
    }
    begin_step(scheduled_lr(schedule_, lr_, 0, name_), 1, true);  // for the constants' count only
    const int64_t constant_count = static_cast<int64_t>(step_constants().size());
    constants_input_ = g.input(name_ + ".constants", DSK_DTYPE_F32, {constant_count});
    std::vector<dsk_value_id> updates;
    for (size_t i = 0; i < params.size(); ++i) {
        auto name = names.find(params[i]);
        if (name == names.end())
            throw Error(DSK_INVALID_ARGUMENT, prefix() + "parameter " + std::to_string(i) + " (value " +
                                                  std::to_string(params[i]) + ") is not a variable of the graph");
        std::vector<dsk_value_id> inputs = {constants_input_, params[i], grads[i]};
        for (size_t b = 0; b < buffers_per_param(); ++b)
            inputs.push_back(g.variable(name->second + "." + name_ + ".state" + std::to_string(b), g.shape(params[i]),
                                        "zeros", 0, 0));
        updates.push_back(g.nodes(update_op(), inputs, {}, 1)[0]);
    }
    graph_mode_ = true;
    return updates;
}

void Optimizer::feed_update(dsk_session* session) {
    if (!graph_mode_) throw Error(DSK_FAILED_PRECONDITION, prefix() + "feed_update before build_update");
    const double lr = scheduled_lr(schedule_, lr_, step_, name_);
    begin_step(lr, step_ + 1, step_ == 0);
    std::vector<float> constants = step_constants();
    const dsk_tensor_desc host_data =
        host_tensor(DSK_DTYPE_F32, {static_cast<int64_t>(constants.size())}, constants.data());
    check(host().session_write(session, constants_input_, &host_data), "writing the optimizer's constants");
    ++step_;
    last_lr_ = lr;
}

//==============================================================================================
// State
//==============================================================================================

void Optimizer::save_state(dsk_write_fn write, void* user) const {
    if (write == nullptr) throw Error(DSK_INVALID_ARGUMENT, prefix() + "state_save: write is NULL");
    write_optimizer_state(name_, static_cast<uint64_t>(step_), buffers_, write, user);
}

void Optimizer::load_state(dsk_read_fn read, void* user) {
    if (read == nullptr) throw Error(DSK_INVALID_ARGUMENT, prefix() + "state_load: read is NULL");
    OptimizerState state = read_optimizer_state(name_, read, user);
    const size_t per = buffers_per_param();
    const size_t n = state.buffers.size();
    const std::string saved = prefix() + "the saved state ";
    if (graph_mode_) {  // the buffers are graph variables, checkpointed with the weights
        if (n != 0)
            throw Error(DSK_DATA_LOSS, saved + "holds " + std::to_string(n) +
                                           " buffers, but this optimizer updates in the graph (saved with update = "
                                           "\"host\"? resume with the same setting)");
        step_ = static_cast<int64_t>(state.step);
        last_lr_.reset();
        loaded_ = true;
        return;
    }
    if (per == 0 && n != 0) {
        throw Error(DSK_DATA_LOSS, saved + "holds " + std::to_string(n) +
                                       " buffers but this optimizer keeps none with its "
                                       "hyperparameters (saved with others, e.g. momentum?)");
    }
    if (per > 0 && n % per != 0) {
        throw Error(DSK_DATA_LOSS, saved + "holds " + std::to_string(n) +
                                       " buffers, not a multiple of the " + std::to_string(per) +
                                       " this optimizer keeps per parameter");
    }
    if (per > 0 && state.step > 0 && n == 0) {
        throw Error(DSK_DATA_LOSS, saved + "is at step " + std::to_string(state.step) +
                                       " but has no buffers, while this optimizer keeps " +
                                       std::to_string(per) +
                                       " per parameter (saved with other hyperparameters?)");
    }
    if (!buffers_.empty()) {
        if (n != buffers_.size()) {
            throw Error(DSK_DATA_LOSS, saved + "holds " + std::to_string(n) +
                                           " buffers but this optimizer has " +
                                           std::to_string(buffers_.size()) + " (" +
                                           std::to_string(buffers_.size() / per) +
                                           " parameters): was it saved for another model?");
        }
        for (size_t i = 0; i < n; ++i) {
            if (state.buffers[i].size() != buffers_[i].size()) {
                throw Error(DSK_DATA_LOSS,
                            saved + "has " + std::to_string(state.buffers[i].size()) +
                                " floats in buffer " + std::to_string(i) +
                                " but this optimizer's has " + std::to_string(buffers_[i].size()) +
                                " (parameter " + std::to_string(i / per) + ")");
            }
        }
    }
    step_ = static_cast<int64_t>(state.step);
    buffers_ = std::move(state.buffers);
    last_lr_.reset();
    loaded_ = true;
}

//==============================================================================================
// The C interface
//==============================================================================================

namespace {

Optimizer* from_handle(dsk_optimizer* handle) {
    return reinterpret_cast<Optimizer*>(handle);
}

const char* or_empty(const char* text) {
    return text != nullptr ? text : "";
}

dsk_status optimizer_create(void* self, const dsk_config* hyper, dsk_optimizer** out) {
    return guard([&] {
        if (out == nullptr) throw Error(DSK_INVALID_ARGUMENT, "optimizer create: out is NULL");
        *out = nullptr;
        const auto& kind = *static_cast<const OptimizerKind*>(self);
        std::unique_ptr<Optimizer> optimizer = kind.create(hyper);
        *out = reinterpret_cast<dsk_optimizer*>(optimizer.release());
    });
}

dsk_status optimizer_step(dsk_optimizer* opt, dsk_session* /*session: host tensors only so far*/, size_t count,
                          const dsk_tensor_desc* params, const dsk_tensor_desc* grads) {
    return guard([&] { from_handle(opt)->step(count, params, grads); });
}

dsk_status optimizer_set(dsk_optimizer* opt, const char* name, double value) {
    return guard([&] { from_handle(opt)->set_hyperparameter(or_empty(name), value); });
}

dsk_status optimizer_get(dsk_optimizer* opt, const char* name, double* out_value) {
    return guard([&] {
        if (out_value == nullptr) {
            throw Error(DSK_INVALID_ARGUMENT, "get_hyperparameter: out_value is NULL");
        }
        *out_value = from_handle(opt)->get_hyperparameter(or_empty(name));
    });
}

dsk_status optimizer_save(dsk_optimizer* opt, dsk_write_fn write, void* user) {
    return guard([&] { from_handle(opt)->save_state(write, user); });
}

dsk_status optimizer_load(dsk_optimizer* opt, dsk_read_fn read, void* user) {
    return guard([&] { from_handle(opt)->load_state(read, user); });
}

dsk_status optimizer_build_update(dsk_optimizer* opt, dsk_graph* graph, size_t count, const dsk_value_id* params,
                                  const dsk_value_id* grads, dsk_value_id* out_updates) {
    return guard([&] {
        if ((count && (!params || !grads || !out_updates)) || !graph)
            throw Error(DSK_INVALID_ARGUMENT, "build_update: null graph, params, grads or out_updates");
        const auto updates = from_handle(opt)->build_update(graph, std::vector<dsk_value_id>(params, params + count),
                                                            std::vector<dsk_value_id>(grads, grads + count));
        std::copy(updates.begin(), updates.end(), out_updates);
    });
}

dsk_status optimizer_feed_update(dsk_optimizer* opt, dsk_session* session) {
    return guard([&] { from_handle(opt)->feed_update(session); });
}

void optimizer_destroy(dsk_optimizer* opt) {
    delete from_handle(opt);
}

}  // namespace

dsk_optimizer_iface optimizer_iface(const OptimizerKind& kind) {
    return dsk_optimizer_iface{sizeof(dsk_optimizer_iface),
                               kind.name,
                               kind.description,
                               const_cast<OptimizerKind*>(&kind),
                               kind.params.data(),
                               kind.params.size(),
                               &optimizer_create,
                               &optimizer_step,
                               &optimizer_set,
                               &optimizer_get,
                               &optimizer_save,
                               &optimizer_load,
                               &optimizer_destroy,
                               &optimizer_build_update,
                               &optimizer_feed_update};
}

}  // namespace dsk::optim
