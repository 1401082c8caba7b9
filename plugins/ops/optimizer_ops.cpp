// The optimizer updates as ops (ONNX has them as ai.onnx.preview.training Adam / Momentum), so
// that a training step's update runs on the device that holds the parameters, inside the
// compiled step. They update their parameter and state inputs in place (like
// BatchNormalization's running statistics) and output a scalar token that a run targets; or,
// given one more output per parameter and state input (the functional form, for eager code and
// traced steps whose tensors are immutable), leave their inputs alone and write the new values
// there.
// The per-step constants come as a small f32 input, computed on the host by the optimizer
// (plugins/optim), so every backend does exactly the optimizer's arithmetic.
#include "op_definition.h"
#include "op_families.h"

namespace dsk::ops {
namespace {

void expect_constants(ShapeContext& ctx, int64_t count) {
    ctx.expect_dtype(0, "constants", DSK_DTYPE_F32);
    ctx.expect_shape(0, "constants", {count}, "the op's constants");
}

// Inputs 1.. are the parameter, its gradient and its state: f32 and all of one shape. Outputs:
// the token, then (functional form) the new parameter and the new state.
void expect_same_tensors(ShapeContext& ctx, const std::vector<const char*>& names) {
    for (size_t i = 1; i < ctx.input_count(); ++i) {
        ctx.expect_dtype(i, names[i - 1], DSK_DTYPE_F32);
        if (i > 1) ctx.expect_shape(i, names[i - 1], ctx.shape(1), std::string("the shape of ") + names[0]);
    }
    const size_t functional = ctx.input_count() - 2;  // the parameter and its states
    if (ctx.output_count() != 1 && ctx.output_count() != 1 + functional)
        ctx.fail("has 1 output (the token: updates in place) or " + std::to_string(1 + functional) +
                 " (the token, then the new " + names[0] + " and state: leaves the inputs alone), asked for " +
                 std::to_string(ctx.output_count()));
    ctx.set_output(0, DSK_DTYPE_F32, {});
    for (size_t i = 1; i < ctx.output_count(); ++i) ctx.set_output_like(i, DSK_DTYPE_F32, 1);
}

void infer_adam_update(ShapeContext& ctx) {
    expect_constants(ctx, 9);
    expect_same_tensors(ctx, {"X", "G", "M", "V"});
}

void infer_sgd_update(ShapeContext& ctx) {
    expect_constants(ctx, 6);
    expect_same_tensors(ctx, {"X", "G", "B"});
}

// The in-place forms (one output) write X and the state; the functional forms write nothing.
uint64_t adam_written(const dsk_node_view* node) {
    return node->output_count == 1 ? (1u << 1) | (1u << 3) | (1u << 4) : 0;
}

uint64_t sgd_written(const dsk_node_view* node) {
    return node->output_count == 1 ? (1u << 1) | (1u << 3) : 0;
}

}  // namespace

void register_optimizer_ops(Registrar& reg) {
    define_op(reg, "AdamUpdate",
              "Adam/AdamW step in place on X, M, V from G; constants = [beta1, 1-beta1, beta2, 1-beta2, eps, "
              "l2_weight_decay, decay_factor, step_size, sqrt(1-beta2^t)]; outputs a scalar token (with 4 outputs: the "
              "token, new X, M, V, and the inputs stay as they are)",
              {5, 5, 1, 4}, {}, infer_adam_update, nullptr, adam_written);
    define_op(reg, "SGDUpdate",
              "SGD step in place on X (and the momentum buffer B) from G; constants = [lr, momentum, "
              "1-dampening, weight_decay, first_step, nesterov]; outputs a scalar token (with 2 or 3 outputs: the token, "
              "new X and B, and the inputs stay as they are)",
              {3, 4, 1, 3}, {}, infer_sgd_update, nullptr, sgd_written);
}

}  // namespace dsk::ops
