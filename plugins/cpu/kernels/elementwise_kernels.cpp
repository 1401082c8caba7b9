// elementwise_kernels.cpp - Add, Sub, Mul, Div with numpy broadcasting.
//
// The shapes are right-aligned to the output's rank; dimensions of size 1 in the output are
// dropped and neighbours that are contiguous in both inputs are merged, so that [M, N] + [N],
// [M, N] * [M, 1] and same-shape operands all become a few rows of one tight inner loop whose
// operands have stride 1 or 0 (broadcast). Rows (or, for a 1-D problem, 16K-element chunks) are
// split over the thread pool; every output element is computed on its own.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "binary_functions.h"
#include "kernel_table.h"
#include "vector_math.h"

namespace dsk::cpu {
namespace {

constexpr int64_t kRowChunk = 16384;  // elements: longer rows are split into chunks

template <class F>
inline void row_loop(F f, const float* a, int64_t sa, const float* b, int64_t sb, float* c,
                     int64_t n) {
    if (sa != 0 && sb != 0) {
        for (int64_t i = 0; i < n; ++i) c[i] = f(a[i], b[i]);
    } else if (sa != 0) {
        const float bv = b[0];
        for (int64_t i = 0; i < n; ++i) c[i] = f(a[i], bv);
    } else if (sb != 0) {
        const float av = a[0];
        for (int64_t i = 0; i < n; ++i) c[i] = f(av, b[i]);
    } else {
        const float v = f(a[0], b[0]);
        for (int64_t i = 0; i < n; ++i) c[i] = v;
    }
}

}  // namespace

DSK_CPU_VECTOR_CLONES
void binary_row(BinaryOp op, const float* a, int64_t sa, const float* b, int64_t sb, float* c,
                int64_t n) {
    switch (op) {
        case BinaryOp::add:
            row_loop([](float x, float y) { return x + y; }, a, sa, b, sb, c, n);
            break;
        case BinaryOp::sub:
            row_loop([](float x, float y) { return x - y; }, a, sa, b, sb, c, n);
            break;
        case BinaryOp::mul:
            row_loop([](float x, float y) { return x * y; }, a, sa, b, sb, c, n);
            break;
        case BinaryOp::div:
            row_loop([](float x, float y) { return x / y; }, a, sa, b, sb, c, n);
            break;
    }
}

std::optional<BinaryOp> binary_op(const std::string& name) {
    if (name == "Add") return BinaryOp::add;
    if (name == "Sub") return BinaryOp::sub;
    if (name == "Mul") return BinaryOp::mul;
    if (name == "Div") return BinaryOp::div;
    return std::nullopt;
}

namespace {

// The broadcast problem after dropping size-1 dimensions and merging contiguous ones.
struct BroadcastPlan {
    int ndim = 0;
    std::array<int64_t, DSK_MAX_DIMS> size{};
    std::array<int64_t, DSK_MAX_DIMS> stride_a{}, stride_b{};  // 0 where broadcast
};

BroadcastPlan plan_broadcast(const KernelArgs& args, const dsk_tensor_desc& a,
                             const dsk_tensor_desc& b, std::vector<int64_t>* out_shape) {
    const uint32_t rank = std::max(a.ndim, b.ndim);
    std::vector<int64_t> shape(rank), sa(rank), sb(rank);
    // Row-major strides of each operand, aligned to the right, 0 where its dimension is 1.
    int64_t stride_a = 1, stride_b = 1;
    for (uint32_t k = rank; k-- > 0;) {
        const uint32_t from_end = rank - 1 - k;
        const int64_t da = from_end < a.ndim ? a.shape[a.ndim - 1 - from_end] : 1;
        const int64_t db = from_end < b.ndim ? b.shape[b.ndim - 1 - from_end] : 1;
        if (da != db && da != 1 && db != 1)
            args.fail("cannot broadcast A " + shape_text(shape_of(a)) + " with B " +
                      shape_text(shape_of(b)) + " (dimension " + std::to_string(k) + ": " +
                      std::to_string(da) + " vs " + std::to_string(db) + ")");
        shape[k] = da == 1 ? db : da;
        sa[k] = da == 1 ? 0 : stride_a;
        sb[k] = db == 1 ? 0 : stride_b;
        stride_a *= da;
        stride_b *= db;
    }
    *out_shape = shape;

    BroadcastPlan plan;
    for (uint32_t k = 0; k < rank; ++k) {
        if (shape[k] == 1) continue;
        if (plan.ndim > 0) {
            const int last = plan.ndim - 1;
            // Merge when the previous dimension steps over exactly this one in both operands.
            if (plan.stride_a[last] == sa[k] * shape[k] &&
                plan.stride_b[last] == sb[k] * shape[k]) {
                plan.size[last] *= shape[k];
                plan.stride_a[last] = sa[k];
                plan.stride_b[last] = sb[k];
                continue;
            }
        }
        plan.size[plan.ndim] = shape[k];
        plan.stride_a[plan.ndim] = sa[k];
        plan.stride_b[plan.ndim] = sb[k];
        ++plan.ndim;
    }
    if (plan.ndim == 0) {  // a single element
        plan.ndim = 1;
        plan.size[0] = 1;
        plan.stride_a[0] = plan.stride_b[0] = 1;
    }
    return plan;
}

void binary(const KernelArgs& args) {
    const dsk_tensor_desc& a_desc = args.input(0);
    const dsk_tensor_desc& b_desc = args.input(1);
    std::vector<int64_t> shape;
    const BroadcastPlan plan = plan_broadcast(args, a_desc, b_desc, &shape);
    args.expect_output_shape(0, shape);
    const std::optional<BinaryOp> op = binary_op(args.op());
    if (!op) args.fail("is not a binary op");
    const float* a = args.in(0);
    const float* b = args.in(1);
    float* c = args.out(0);

    const int inner_dim = plan.ndim - 1;
    const int64_t inner = plan.size[inner_dim];
    const int64_t sa = plan.stride_a[inner_dim];
    const int64_t sb = plan.stride_b[inner_dim];
    int64_t rows = 1;
    for (int k = 0; k < inner_dim; ++k) rows *= plan.size[k];
    if (rows * inner == 0) return;

    // Work items: (row, chunk of the row); long rows are cut into kRowChunk-element chunks.
    // Each element: one operation, A and B read, C written.
    const int64_t chunks_per_row = (inner + kRowChunk - 1) / kRowChunk;
    const int64_t chunk = (inner + chunks_per_row - 1) / chunks_per_row;
    const size_t items = static_cast<size_t>(rows * chunks_per_row);
    const double elements = static_cast<double>(chunk);
    parallel_for(items, dsk::Work{elements, 12.0 * elements}, [&](size_t begin, size_t end) {
        for (size_t item = begin; item < end; ++item) {
            const int64_t row = static_cast<int64_t>(item) / chunks_per_row;
            const int64_t j0 = static_cast<int64_t>(item) % chunks_per_row * chunk;
            const int64_t j1 = std::min(inner, j0 + chunk);
            // Offsets of this row in A and B, from its index over the outer dimensions.
            int64_t offset_a = 0, offset_b = 0, rest = row;
            for (int k = inner_dim - 1; k >= 0; --k) {
                const int64_t index = rest % plan.size[k];
                rest /= plan.size[k];
                offset_a += index * plan.stride_a[k];
                offset_b += index * plan.stride_b[k];
            }
            binary_row(*op, a + offset_a + j0 * sa, sa, b + offset_b + j0 * sb, sb,
                       c + row * inner + j0, j1 - j0);
        }
    });
}

const KernelDef kElementwiseKernels[] = {
    kernel("Add", {F32, F32}, {F32}, binary),
    kernel("Sub", {F32, F32}, {F32}, binary),
    kernel("Mul", {F32, F32}, {F32}, binary),
    kernel("Div", {F32, F32}, {F32}, binary),
};

}  // namespace

std::span<const KernelDef> elementwise_kernels() {
    return kElementwiseKernels;
}

}  // namespace dsk::cpu
