// The base every optimizer of this plugin derives from: the base learning rate and its schedule,
// the step counter, the per-parameter state buffers (and their save/load), hyperparameters
// reached by name, the checks on the tensors a step receives, and the C interface thunks.
// A subclass (sgd.cpp, adam.cpp) supplies only its own hyperparameters and its elementwise
// update.
//
// Threads: step() splits large tensors into element ranges on the kernel's pool
// (dsk::parallel_for). Every element is updated by the same arithmetic whatever the split, so a
// step gives bitwise the same result on any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <dsk/dsk_plugin.hpp>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lr_schedule.h"

namespace dsk::optim {

// One parameter tensor as update() sees it: `size` f32 elements of the parameter (updated in
// place), its gradient, and its state buffers (buffers_per_param() of them, `size` each).
struct ParamSlot {
    float* param;
    const float* grad;
    float* buffers[2];
    size_t size;
};

class Optimizer {
  public:
    virtual ~Optimizer() = default;
    Optimizer(const Optimizer&) = delete;
    Optimizer& operator=(const Optimizer&) = delete;

    const std::string& name() const { return name_; }
    int64_t step_count() const { return step_; }

    // One update of `count` parameters from their gradients (f32, host memory, contiguous, the
    // same shapes at every step). Throws dsk::Error; on error nothing has been changed.
    void step(size_t count, const dsk_tensor_desc* params, const dsk_tensor_desc* grads);

    // By name: "lr" (set: the base lr; get: the lr of the last step, the base lr before any),
    // "steps_per_epoch", "total_steps", "warmup_epochs", "step_epochs", "gamma", "min_lr",
    // "step" (get only) and the subclass's own. NOT_FOUND for an unknown name,
    // INVALID_ARGUMENT for a value out of range (the old value is kept).
    void set_hyperparameter(const std::string& name, double value);
    double get_hyperparameter(const std::string& name) const;

    // The update as graph nodes (dsk_optimizer_iface.build_update): `update_op()` nodes reading
    // a constants input, the parameter, its gradient and its state variables. Afterwards the
    // optimizer is in graph mode: step() refuses, and feed_update() writes each step's constants.
    std::vector<dsk_value_id> build_update(dsk_graph* graph, const std::vector<dsk_value_id>& params,
                                           const std::vector<dsk_value_id>& grads);
    void feed_update(dsk_session* session);

    // Checkpoints: optimizer_state.h has the format. load_state replaces the step count and the
    // buffers; DATA_LOSS when the state does not fit this optimizer.
    void save_state(dsk_write_fn write, void* user) const;
    void load_state(dsk_read_fn read, void* user);

  protected:
    Optimizer(std::string name, double lr, const LrSchedule& schedule);

    // Makes a numeric hyperparameter of the subclass reachable by name. `settable` = false: it
    // can be read but only set at creation (e.g. SGD's momentum decides whether buffers exist).
    void expose(const char* name, double* value, bool settable = true);

    // State buffers per parameter tensor, 0 to 2; constant over the optimizer's life.
    virtual size_t buffers_per_param() const = 0;
    // Called once per step, before any update(): `lr` is this step's scheduled learning rate,
    // `step` its 1-based number, `fresh_buffers` whether the buffers were just created (zeros).
    virtual void begin_step(double lr, int64_t step, bool fresh_buffers) = 0;
    // This step's constants, after begin_step: what the update reads, in the layout of the
    // update op (docs/ops.md). The update itself is a free function of them (update_kernels.h),
    // shared by step() and the op's kernels, so both do the same arithmetic.
    virtual std::vector<float> step_constants() const = 0;
    // The op that applies the update in a graph ("AdamUpdate", "SGDUpdate").
    virtual const char* update_op() const = 0;
    // Throws INVALID_ARGUMENT naming the optimizer and the key when the hyperparameters are out
    // of range or do not go together. Subclasses extend it and call it at the end of their
    // constructor; set_hyperparameter calls it after every change.
    virtual void validate() const;

    // For messages: "optimizer 'adam': ".
    std::string prefix() const { return "optimizer '" + name_ + "': "; }
    // Throws INVALID_ARGUMENT ("optimizer 'adam': beta1 = 1 is out of range [0, 1)") unless
    // `value` is finite and in [low, high] ([low, high) when !high_inclusive).
    void check_range(const char* key, double value, double low,
                     double high = std::numeric_limits<double>::infinity(),
                     bool high_inclusive = true) const;

    double lr_;  // the base learning rate
    LrSchedule schedule_;

  private:
    struct Exposed {
        std::string name;
        double* real;  // one of real / integer is set
        int64_t* integer;
        bool settable;
    };
    const Exposed* find(const std::string& name) const;
    std::string known_names() const;
    std::vector<ParamSlot> check_tensors(size_t count, const dsk_tensor_desc* params,
                                         const dsk_tensor_desc* grads) const;

    std::string name_;
    int64_t step_ = 0;
    std::optional<double> last_lr_;            // the lr of the last step, until a load
    std::vector<std::vector<float>> buffers_;  // buffers_per_param() per parameter, in order
    bool loaded_ = false;                      // buffers_ came from load_state (for messages)
    bool graph_mode_ = false;                  // build_update was called
    dsk_value_id constants_input_ = DSK_VALUE_NONE;
    std::vector<Exposed> exposed_;
};

// One optimizer kind as the kernel sees it. `params` are the pipeline keys (the kind's own,
// then schedule_param_specs()); `create` builds an instance from the validated table (NULL:
// every key at its default).
struct OptimizerKind {
    const char* name;
    const char* description;
    std::vector<dsk_param_spec> params;
    std::unique_ptr<Optimizer> (*create)(const dsk_config* hyper);
};

// The C interface over `kind`, which it borrows (give it static storage): the thunks turn
// exceptions into statuses and the handle into the Optimizer.
dsk_optimizer_iface optimizer_iface(const OptimizerKind& kind);

}  // namespace dsk::optim
