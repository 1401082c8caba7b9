// BatchNormalization and LayerNormalization, their backward ops, and their gradient rules (which
// read the saved statistics outputs; BatchNormalization's running mean/var get no gradient).
#include <cstddef>
#include <initializer_list>

#include "op_definition.h"
#include "op_families.h"

namespace dsk::ops {
namespace {

void check_flag(const ShapeContext& ctx, const char* name) {
    const int64_t flag = ctx.attrs().get_int(name, 0);
    if (flag != 0 && flag != 1)
        ctx.fail(std::string(name) + " = " + std::to_string(flag) + " must be 0 or 1");
}

void check_epsilon(const ShapeContext& ctx) {
    const double epsilon = ctx.attrs().get_float("epsilon", 1e-5);
    if (!(epsilon >= 0)) ctx.fail("epsilon = " + real_text(epsilon) + " must be >= 0");
}

// Inputs first..first+count-1 are per-channel vectors [C] of X's dtype (input x_index).
void expect_channel_vectors(const ShapeContext& ctx, size_t x_index, size_t first,
                            std::initializer_list<const char*> names) {
    const Shape x = ctx.shape(x_index);
    size_t i = first;
    for (const char* name : names) {
        ctx.expect_same_dtype(x_index, "X", i, name);
        ctx.expect_shape(i, name, {x[1]}, "C of X " + shape_text(x));
        ++i;
    }
}

//==============================================================================================
// BatchNormalization
//==============================================================================================

// X [N, C, ...], scale, B, mean, var [C] -> Y [X], saved_mean [C], saved_invstd [C].
void infer_batch_norm(ShapeContext& ctx) {
    ctx.expect_floating(0, "X");
    ctx.expect_min_rank(0, "X", 2);
    expect_channel_vectors(ctx, 0, 1, {"scale", "B", "mean", "var"});
    check_epsilon(ctx);
    const double momentum = ctx.attrs().get_float("momentum", 0.9);
    if (!(momentum >= 0 && momentum <= 1))
        ctx.fail("momentum = " + real_text(momentum) + " must be in [0, 1]");
    check_flag(ctx, "training_mode");
    const Shape x = ctx.shape(0);
    ctx.set_output(0, ctx.dtype(0), x);
    ctx.set_output(1, ctx.dtype(0), {x[1]});
    ctx.set_output(2, ctx.dtype(0), {x[1]});
}

// dY, X [N, C, ...], scale, saved_mean, saved_invstd [C] -> dX [X], dscale [C], dB [C].
void infer_batch_norm_grad(ShapeContext& ctx) {
    ctx.expect_floating(0, "dY");
    ctx.expect_same_dtype(0, "dY", 1, "X");
    ctx.expect_min_rank(1, "X", 2);
    ctx.expect_shape(0, "dY", ctx.shape(1), "the shape of X");
    expect_channel_vectors(ctx, 1, 2, {"scale", "saved_mean", "saved_invstd"});
    check_epsilon(ctx);
    check_flag(ctx, "training_mode");
    const Shape x = ctx.shape(1);
    ctx.set_output(0, ctx.dtype(0), x);
    ctx.set_output(1, ctx.dtype(0), {x[1]});
    ctx.set_output(2, ctx.dtype(0), {x[1]});
}

void gradient_batch_norm(GradientContext& ctx) {
    const dsk_value_id dy = ctx.output_grad(0);
    if (dy == DSK_VALUE_NONE) return;  // only the statistics are used: no gradient flows back
    ctx.require_outputs(3, "saved_mean and saved_invstd");
    const dsk_value_id saved_mean = ctx.output(1);
    const dsk_value_id saved_invstd = ctx.output(2);
    const auto grads = ctx.graph().nodes(
        "BatchNormalizationGrad", {dy, ctx.input(0), ctx.input(1), saved_mean, saved_invstd},
        {Attr("epsilon", ctx.attrs().get_float("epsilon", 1e-5)),
         Attr("training_mode", ctx.attrs().get_int("training_mode", 0))},
        3);
    for (size_t i = 0; i < 3; ++i) ctx.set_input_grad(i, grads[i]);
    // mean and var (inputs 3, 4) are running statistics, not parameters: no gradient.
}

//==============================================================================================
// LayerNormalization
//==============================================================================================

struct LayerNormShapes {
    size_t axis;
    Shape normalized;  // X's dims axis..end: the shape of scale and B
    Shape statistics;  // X's shape with dims axis..end set to 1: saved_mean, saved_invstd
};

LayerNormShapes layer_norm_shapes(const ShapeContext& ctx, const Shape& x) {
    if (x.empty()) ctx.fail("X must have at least 1 dimension, got a scalar");
    LayerNormShapes s;
    s.axis = normalize_axis(ctx.op(), "axis", ctx.attrs().get_int("axis", -1), x.size());
    s.normalized.assign(x.begin() + static_cast<std::ptrdiff_t>(s.axis), x.end());
    s.statistics = x;
    for (size_t k = s.axis; k < x.size(); ++k) s.statistics[k] = 1;
    return s;
}

// X, scale, [B] -> Y [X], saved_mean, saved_invstd [X with dims axis.. set to 1].
void infer_layer_norm(ShapeContext& ctx) {
    ctx.expect_floating(0, "X");
    const Shape x = ctx.shape(0);
    const LayerNormShapes s = layer_norm_shapes(ctx, x);
    const std::string why = "dims " + std::to_string(s.axis) + ".. of X " + shape_text(x);
    ctx.expect_same_dtype(0, "X", 1, "scale");
    ctx.expect_shape(1, "scale", s.normalized, why);
    if (ctx.has_input(2)) {
        ctx.expect_same_dtype(0, "X", 2, "B");
        ctx.expect_shape(2, "B", s.normalized, why);
    }
    check_epsilon(ctx);
    ctx.set_output(0, ctx.dtype(0), x);
    ctx.set_output(1, ctx.dtype(0), s.statistics);
    ctx.set_output(2, ctx.dtype(0), s.statistics);
}

// dY, X, scale, saved_mean, saved_invstd -> dX [X], dscale [scale], dB [scale].
void infer_layer_norm_grad(ShapeContext& ctx) {
    ctx.expect_floating(0, "dY");
    ctx.expect_same_dtype(0, "dY", 1, "X");
    const Shape x = ctx.shape(1);
    ctx.expect_shape(0, "dY", x, "the shape of X");
    const LayerNormShapes s = layer_norm_shapes(ctx, x);
    const std::string why = "dims " + std::to_string(s.axis) + ".. of X " + shape_text(x);
    const std::string stats_why =
        "X " + shape_text(x) + " with dims " + std::to_string(s.axis) + ".. set to 1";
    ctx.expect_same_dtype(1, "X", 2, "scale");
    ctx.expect_shape(2, "scale", s.normalized, why);
    ctx.expect_same_dtype(1, "X", 3, "saved_mean");
    ctx.expect_shape(3, "saved_mean", s.statistics, stats_why);
    ctx.expect_same_dtype(1, "X", 4, "saved_invstd");
    ctx.expect_shape(4, "saved_invstd", s.statistics, stats_why);
    ctx.set_output(0, ctx.dtype(0), x);
    ctx.set_output(1, ctx.dtype(0), s.normalized);
    ctx.set_output(2, ctx.dtype(0), s.normalized);
}

void gradient_layer_norm(GradientContext& ctx) {
    const dsk_value_id dy = ctx.output_grad(0);
    if (dy == DSK_VALUE_NONE) return;
    ctx.require_outputs(3, "saved_mean and saved_invstd");
    const dsk_value_id saved_mean = ctx.output(1);
    const dsk_value_id saved_invstd = ctx.output(2);
    const auto grads = ctx.graph().nodes("LayerNormalizationGrad",
                                         {dy, ctx.input(0), ctx.input(1), saved_mean, saved_invstd},
                                         {Attr("axis", ctx.attrs().get_int("axis", -1))}, 3);
    for (size_t i = 0; i < 3; ++i) ctx.set_input_grad(i, grads[i]);  // dB only when B is given
}

// Training updates the running mean and variance (inputs 3 and 4) in place.
uint64_t batch_norm_written(const dsk_node_view* node) {
    return Attrs(node).get_int("training_mode", 0) != 0 ? (1u << 3) | (1u << 4) : 0;
}

}  // namespace

void register_normalization_ops(Registrar& reg) {
    define_op(reg, "BatchNormalization",
              "normalise over N and the spatial dims with batch statistics (training_mode 1, "
              "updating mean/var in place) or the running ones",
              {5, 5, 1, 3}, {"epsilon", "momentum", "training_mode"}, infer_batch_norm,
              gradient_batch_norm, batch_norm_written);
    define_op(reg, "LayerNormalization", "normalise over dims axis..end, then scale and shift",
              {2, 3, 1, 3}, {"axis", "epsilon"}, infer_layer_norm, gradient_layer_norm);
    define_op(
        reg, "BatchNormalizationGrad",
        "gradient of BatchNormalization: dX, dscale, dB from dY, X, scale and the saved statistics",
        {5, 5, 3, 3}, {"epsilon", "training_mode"}, infer_batch_norm_grad, nullptr);
    define_op(
        reg, "LayerNormalizationGrad",
        "gradient of LayerNormalization: dX, dscale, dB from dY, X, scale and the saved statistics",
        {5, 5, 3, 3}, {"axis"}, infer_layer_norm_grad, nullptr);
}

}  // namespace dsk::ops
