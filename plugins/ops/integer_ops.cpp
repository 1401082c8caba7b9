// MatMulInteger and ConvInteger (ONNX): u8/i8 inputs with optional zero points, i32 output, for
// quantized inference. No gradient: quantized graphs are not trained.
#include "conv_shape.h"
#include "op_definition.h"
#include "op_families.h"

namespace dsk::ops {
namespace {

void expect_8bit(const ShapeContext& ctx, size_t i, const char* name) {
    if (ctx.dtype(i) != DSK_DTYPE_U8 && ctx.dtype(i) != DSK_DTYPE_I8)
        ctx.fail(std::string(name) + " must be u8 or i8, got " + dtype_name(ctx.dtype(i)));
}

// Zero point `i` (optional input) of tensor `of`: its dtype, and a scalar, [1] or (when
// `per_axis` > 0) [per_axis] (one per row of A, per column of B, per output channel of W).
void expect_zero_point(const ShapeContext& ctx, size_t i, const char* name, size_t of,
                       const char* of_name, int64_t per_axis, const char* axis_name) {
    if (!ctx.has_input(i)) return;
    ctx.expect_same_dtype(i, name, of, of_name);
    const Shape z = ctx.shape(i);
    const bool scalar = z.empty() || (z.size() == 1 && z[0] == 1);
    const bool per_axis_shape = per_axis > 0 && z.size() == 1 && z[0] == per_axis;
    if (!scalar && !per_axis_shape)
        ctx.fail(std::string(name) + " is " + shape_text(z) + "; give a scalar or [1]" +
                 (per_axis > 0 ? " or [" + std::to_string(per_axis) + "] (one per " + axis_name + ")"
                               : std::string()));
}

// Y [M, N] i32 = (A - a_zero_point) * (B - b_zero_point), A [M, K], B [K, N].
void infer_matmul_integer(ShapeContext& ctx) {
    ctx.expect_rank(0, "A", 2);
    ctx.expect_rank(1, "B", 2);
    expect_8bit(ctx, 0, "A");
    expect_8bit(ctx, 1, "B");
    const Shape a = ctx.shape(0);
    const Shape b = ctx.shape(1);
    if (a[1] != b[0])
        ctx.fail("inner dimensions differ: A is " + shape_text(a) + " (K=" + std::to_string(a[1]) +
                 "), B is " + shape_text(b) + " (K=" + std::to_string(b[0]) + ")");
    expect_zero_point(ctx, 2, "a_zero_point", 0, "A", a[0], "row of A");
    expect_zero_point(ctx, 3, "b_zero_point", 1, "B", b[1], "column of B");
    ctx.set_output(0, DSK_DTYPE_I32, {a[0], b[1]});
}

// Y [N, M, oH, oW] i32 = Conv(X - x_zero_point, W - w_zero_point), padding contributing 0.
void infer_conv_integer(ShapeContext& ctx) {
    expect_8bit(ctx, 0, "X");
    expect_8bit(ctx, 1, "W");
    const Shape y = conv_output_shape(ctx, ctx.shape(0), "X", ctx.shape(1), "W");
    expect_zero_point(ctx, 2, "x_zero_point", 0, "X", 0, "");
    expect_zero_point(ctx, 3, "w_zero_point", 1, "W", y[1], "output channel");
    ctx.set_output(0, DSK_DTYPE_I32, y);
}

}  // namespace

void register_integer_ops(Registrar& reg) {
    define_op(reg, "MatMulInteger",
              "Y (i32) = (A - a_zero_point) * (B - b_zero_point) for 2-D u8/i8 A, B (ONNX)",
              {2, 4, 1, 1}, {}, infer_matmul_integer, nullptr);
    define_op(reg, "ConvInteger",
              "Y (i32) = Conv(X - x_zero_point, W - w_zero_point) for u8/i8 X, W (ONNX)",
              {2, 4, 1, 1}, {"strides", "pads", "dilations", "group"}, infer_conv_integer, nullptr);
}

}  // namespace dsk::ops
