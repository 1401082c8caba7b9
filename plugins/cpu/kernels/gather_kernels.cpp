// gather_kernels.cpp - Gather (axis 0: embedding lookup) and GatherGrad (scatter-add of rows).
//
// Gather copies rows of any dtype. GatherGrad splits the rows of dData over the thread pool;
// each thread walks all indices in order and adds the dY rows that land in its range, so every
// row of dData is summed in index order whatever the split.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kernel_table.h"

namespace dsk::cpu {
namespace {


// Indices checked against `rows` (negative ones count from the end, as in ONNX).
std::vector<int64_t> row_indices(const KernelArgs& args, const dsk_tensor_desc& indices,
                                 int64_t rows) {
    const int64_t count = numel(indices);
    const int64_t* raw = data_of<const int64_t>(indices);
    std::vector<int64_t> out(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
        int64_t v = raw[i];
        if (v < -rows || v >= rows)
            args.fail("index " + std::to_string(v) + " (position " + std::to_string(i) +
                      ") is outside [-" + std::to_string(rows) + ", " + std::to_string(rows) + ")");
        out[static_cast<size_t>(i)] = v < 0 ? v + rows : v;
    }
    return out;
}

void check_axis_zero(const KernelArgs& args) {
    if (args.attrs().get_int("axis", 0) != 0) args.fail("only axis 0 is supported");
}

void gather(const KernelArgs& args) {
    check_axis_zero(args);
    const dsk_tensor_desc& data = args.input(0);
    if (data.ndim < 1) args.fail("data must have at least 1 dimension");
    const std::vector<int64_t> index = row_indices(args, args.input(1), data.shape[0]);
    std::vector<int64_t> out_shape = shape_of(args.input(1));
    for (uint32_t k = 1; k < data.ndim; ++k) out_shape.push_back(data.shape[k]);
    args.expect_output_shape(0, out_shape);
    if (args.output(0).dtype != data.dtype) args.fail("the output's dtype differs from data's");
    const size_t es = dtype_size(data.dtype);
    const int64_t row_bytes =
        (data.shape[0] == 0 ? 0 : numel(data) / data.shape[0]) * static_cast<int64_t>(es);
    const char* src = static_cast<const char*>(data.data);
    char* dst = static_cast<char*>(args.output(0).data);
    if (row_bytes == 0) return;
    parallel_for(index.size(), dsk::Work{0.0, 2.0 * static_cast<double>(row_bytes)},
                 [&](size_t b, size_t e) {
        for (size_t i = b; i < e; ++i)
            std::memcpy(dst + static_cast<int64_t>(i) * row_bytes, src + index[i] * row_bytes,
                        static_cast<size_t>(row_bytes));
    });
}

void gather_grad(const KernelArgs& args) {
    check_axis_zero(args);
    const std::vector<int64_t> data_shape = args.attrs().require_ints("input_shape");
    if (data_shape.empty()) args.fail("attribute 'input_shape' must have at least 1 dimension");
    args.expect_output_shape(0, data_shape);
    const int64_t rows = data_shape[0];
    const std::vector<int64_t> index = row_indices(args, args.input(1), rows);
    const int64_t width = rows == 0 ? 0 : numel(args.output(0)) / rows;
    std::vector<int64_t> dy_shape = shape_of(args.input(1));
    dy_shape.insert(dy_shape.end(), data_shape.begin() + 1, data_shape.end());
    if (shape_of(args.input(0)) != dy_shape)
        args.fail("dY " + shape_text(shape_of(args.input(0))) + " must have shape " +
                  shape_text(dy_shape));
    const float* dy = args.in(0);
    float* dd = args.out(0);
    // Each row zeroed, and on average index.size() / rows rows of dY added to it.
    const double adds = static_cast<double>(index.size()) / static_cast<double>(std::max<int64_t>(rows, 1));
    const dsk::Work per_row{adds * static_cast<double>(width),
                            4.0 * (1.0 + 2.0 * adds) * static_cast<double>(width)};
    parallel_for(static_cast<size_t>(rows), per_row, [&](size_t b, size_t e) {
        const int64_t v0 = static_cast<int64_t>(b), v1 = static_cast<int64_t>(e);
        std::fill(dd + v0 * width, dd + v1 * width, 0.0f);
        for (size_t i = 0; i < index.size(); ++i) {
            const int64_t v = index[i];
            if (v < v0 || v >= v1) continue;
            float* out = dd + v * width;
            const float* g = dy + static_cast<int64_t>(i) * width;
            for (int64_t j = 0; j < width; ++j) out[j] += g[j];
        }
    });
}

bool axis_is_zero(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    (void)tensors;
    const dsk_attr* axis = Attrs(node).find("axis");
    return axis == nullptr || (axis->type == DSK_ATTR_INT && axis->i == 0);
}

const KernelDef kGatherKernels[] = {
    kernel("Gather", {ANY, I64}, {ANY}, gather, axis_is_zero),
    kernel("GatherGrad", {F32, I64}, {F32}, gather_grad, axis_is_zero),
};

}  // namespace

std::span<const KernelDef> gather_kernels() {
    return kGatherKernels;
}

}  // namespace dsk::cpu
