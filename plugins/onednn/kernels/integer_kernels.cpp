// integer_kernels.cpp - MatMulInteger and ConvInteger (ONNX; u8 or i8 activations, i8 weights,
// i32 results) on oneDNN's int8 matmul and convolution (u8s8s32 / s8s8s32), for the coming
// quantization work. The cpu plugin's integer_kernels.cpp is the reference.
//
// Zero points:
//   MatMulInteger  the product of the raw values, then the zero-point terms of
//                    sum_k (a - za)(b - zb) = sum ab - zb sum_k a - za sum_k b + K za zb,
//                  which covers every ONNX form (scalar, per row of A, per column of B) exactly.
//   ConvInteger    x_zero_point through oneDNN's source zero point (the padding then contributes
//                  nothing, as docs/ops.md says: conformance checks it); a non-zero w_zero_point
//                  subtracts
//                  w_zero_point[m] * (the window sum of X - x_zero_point), which is the same
//                  convolution with a weight of ones per group.
//
// Only on CPUs with VNNI (AVX512-VNNI, AVX-VNNI): without it oneDNN's u8s8 products go through
// vpmaddubsw, whose 16-bit sums saturate, so results would not be exact; the cpu kernels run there.
#include <algorithm>
#include <string>
#include <vector>

#include "dnnl_tensors.h"
#include "kernels/onednn_kernel_table.h"
#include "kernels/window_geometry.h"
#include "primitive_cache.h"

namespace dsk::onednn {
namespace {

int32_t element(const dsk_tensor_desc& t, int64_t k) {
    return t.dtype == DSK_DTYPE_U8 ? static_cast<int32_t>(static_cast<const uint8_t*>(t.data)[k])
                                   : static_cast<int32_t>(static_cast<const int8_t*>(t.data)[k]);
}

// The zero points of optional input `i`, one per index of an axis of `count` (empty when the
// input is absent or all zero: nothing to subtract).
std::vector<int32_t> zero_points(const KernelArgs& args, size_t i, int64_t count, const char* name) {
    if (!args.has_input(i)) return {};
    const dsk_tensor_desc& t = args.input(i);
    const int64_t n = numel(t);
    if (n != 1 && n != count)
        args.fail(std::string(name) + " " + shape_text(shape_of(t)) + " must have 1 or " +
                  std::to_string(count) + " values");
    std::vector<int32_t> z(static_cast<size_t>(count));
    bool any = false;
    for (int64_t k = 0; k < count; ++k) {
        z[static_cast<size_t>(k)] = element(t, n == 1 ? 0 : k);
        any = any || z[static_cast<size_t>(k)] != 0;
    }
    return any ? z : std::vector<int32_t>{};
}

//----------------------------------------------------------------------------------------------
// MatMulInteger: A [M, K], B [K, N], [a_zero_point], [b_zero_point] -> Y [M, N] i32
//----------------------------------------------------------------------------------------------

struct MatMulIntegerPlan {
    dnnl::matmul primitive;
    memory::desc a, b, y;
};

void matmul_integer(const KernelArgs& args) {
    const dsk_tensor_desc& a = args.input(0);
    const dsk_tensor_desc& b = args.input(1);
    args.expect_rank(a, 2, "A");
    args.expect_rank(b, 2, "B");
    const int64_t m = a.shape[0], k = a.shape[1], n = b.shape[1];
    const ThreadsFor threads(m * n * k);
    auto plan = cached<MatMulIntegerPlan>(cache_key(args), [&] {
        if (b.shape[0] != k)
            args.fail("A " + shape_text(shape_of(a)) + " and B " + shape_text(shape_of(b)) + " do not chain");
        args.expect_output_shape(0, {m, n});
        return with_dnnl(args, "creating the primitive", [&] {
            MatMulIntegerPlan p;
            p.a = plain_of(a);
            p.b = plain_of(b);
            p.y = plain({m, n}, memory::data_type::s32);
            p.primitive = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(p.a, p.b, p.y), engine()));
            return p;
        });
    });
    int32_t* y = data_of<int32_t>(args.output(0));
    execute(args, plan->primitive,
            {{DNNL_ARG_SRC, wrap(plan->a, a.data)},
             {DNNL_ARG_WEIGHTS, wrap(plan->b, b.data)},
             {DNNL_ARG_DST, wrap(plan->y, y)}});

    const std::vector<int32_t> za = zero_points(args, 2, m, "a_zero_point");
    const std::vector<int32_t> zb = zero_points(args, 3, n, "b_zero_point");
    if (za.empty() && zb.empty()) return;
    // Row sums of A (for zb) and column sums of B (for za).
    std::vector<int32_t> row_sum(zb.empty() ? 0 : static_cast<size_t>(m));
    std::vector<int32_t> column_sum(za.empty() ? 0 : static_cast<size_t>(n));
    for (size_t i = 0; i < row_sum.size(); ++i)
        for (int64_t p = 0; p < k; ++p) row_sum[i] += element(a, static_cast<int64_t>(i) * k + p);
    for (int64_t p = 0; p < k && !column_sum.empty(); ++p)
        for (int64_t j = 0; j < n; ++j) column_sum[static_cast<size_t>(j)] += element(b, p * n + j);
    // A row: n sums read and written, with a column sum each.
    parallel_for(static_cast<size_t>(m), Work{3.0 * static_cast<double>(n), 12.0 * static_cast<double>(n)},
                 [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) {
            const int32_t zai = za.empty() ? 0 : za[i];
            int32_t* row = y + i * static_cast<size_t>(n);
            for (size_t j = 0; j < static_cast<size_t>(n); ++j) {
                const int32_t zbj = zb.empty() ? 0 : zb[j];
                int32_t correction = static_cast<int32_t>(k) * zai * zbj;
                if (zbj != 0) correction -= zbj * row_sum[i];
                if (zai != 0) correction -= zai * column_sum[j];
                row[j] += correction;
            }
        }
    });
}

//----------------------------------------------------------------------------------------------
// ConvInteger: X [N, C, H, W], W [M, C/group, kH, kW], [x_zero_point], [w_zero_point] -> Y i32
//----------------------------------------------------------------------------------------------

// oneDNN's int8 convolutions want blocked / NHWC layouts (with plain NCHW it falls back to its
// reference implementation, ~100x slower): the primitive chooses (format_tag::any) and X, W and Y
// are reordered per call.
struct ConvIntegerPlan {
    dnnl::convolution_forward primitive;
    Relayout x, w, y;
    // With a w_zero_point: the window sums of X - x_zero_point per group, as the convolution
    // of X (in the layout above) with one [1, C/group, kH, kW] filter of ones per group, made
    // once, in the layout that convolution chose.
    dnnl::convolution_forward window_sum;
    memory::desc ones_desc;
    std::vector<uint8_t> ones;
    Relayout sums;
    bool x_zero_point = false, w_zero_point = false;
    int64_t group = 1;
};

dnnl::convolution_forward::primitive_desc conv_desc(const memory::desc& x, const memory::desc& w,
                                                    const memory::desc& y, const cpu::Window2d& win,
                                                    bool x_zero_point) {
    dnnl::primitive_attr attr;
    if (x_zero_point) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    const dnnl::convolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, x, w, y,
        {win.stride_h, win.stride_w}, {win.dilation_h - 1, win.dilation_w - 1},
        {win.pad_top, win.pad_left}, {win.pad_bottom, win.pad_right});
    return dnnl::convolution_forward::primitive_desc(desc, attr, engine());
}

memory::desc any_layout(const Dims& dims, memory::data_type type) {
    return memory::desc(dims, type, memory::format_tag::any);
}

void conv_integer(const KernelArgs& args) {
    const dsk_tensor_desc& x = args.input(0);
    const dsk_tensor_desc& w = args.input(1);
    const ThreadsFor threads(numel(args.output(0)) * (w.ndim == 4 ? w.shape[1] * w.shape[2] * w.shape[3] : 1));
    // Whether the w_zero_point is all zero depends on its values, not only on the key.
    const std::vector<int32_t> zw = zero_points(args, 3, args.input(1).shape[0], "w_zero_point");
    const std::string key = cache_key(args) + (zw.empty() ? "" : "|wzp");
    auto plan = cached<ConvIntegerPlan>(key, [&] {
        args.expect_rank(x, 4, "X");
        args.expect_rank(w, 4, "W");
        const int64_t channels = x.shape[1], m = w.shape[0];
        ConvIntegerPlan p;
        p.group = args.attrs().get_int("group", 1);
        if (p.group < 1 || channels % p.group != 0 || m % p.group != 0 || w.shape[1] * p.group != channels)
            args.fail("group " + std::to_string(p.group) + " does not fit X " + shape_text(shape_of(x)) +
                      " and W " + shape_text(shape_of(w)));
        const cpu::Window2d win = cpu::window_2d(args, x.shape[2], x.shape[3], w.shape[2], w.shape[3]);
        const Dims y_dims = {x.shape[0], m, win.out_h, win.out_w};
        args.expect_output_shape(0, y_dims);
        p.x_zero_point = args.has_input(2);
        p.w_zero_point = !zw.empty();
        return with_dnnl(args, "creating the primitive", [&] {
            const Dims w_dims = dims_of(w);
            // W [M, C/group, kH, kW] is GOIHW with O = M / group: the same bytes.
            const Dims w_grouped = p.group == 1 ? w_dims
                                                : Dims{p.group, m / p.group, w_dims[1], w_dims[2], w_dims[3]};
            const memory::data_type x_type = data_type_of(x.dtype), s8 = memory::data_type::s8,
                                    s32 = memory::data_type::s32;
            const auto pd = conv_desc(any_layout(dims_of(x), x_type), any_layout(w_grouped, s8),
                                      any_layout(y_dims, s32), win, p.x_zero_point);
            p.primitive = dnnl::convolution_forward(pd);
            p.x = input_relayout(plain_of(x), pd.src_desc());
            p.w = input_relayout(plain(w_grouped, s8), pd.weights_desc());
            p.y = output_relayout(plain(y_dims, s32), pd.dst_desc());
            if (p.w_zero_point) {
                const Dims ones_dims = p.group == 1 ? Dims{1, w_dims[1], w_dims[2], w_dims[3]}
                                                    : Dims{p.group, 1, w_dims[1], w_dims[2], w_dims[3]};
                const Dims sums_dims = {x.shape[0], p.group, win.out_h, win.out_w};
                const auto sum_pd = conv_desc(pd.src_desc(), any_layout(ones_dims, s8),
                                              any_layout(sums_dims, s32), win, p.x_zero_point);
                p.window_sum = dnnl::convolution_forward(sum_pd);
                p.ones_desc = sum_pd.weights_desc();
                p.ones.resize(p.ones_desc.get_size());
                std::vector<int8_t> plain_ones(static_cast<size_t>(p.group * w_dims[1] * w_dims[2] * w_dims[3]), 1);
                const Relayout ones = input_relayout(plain(ones_dims, s8), p.ones_desc);
                if (ones.needed)
                    execute(args, ones.reorder,
                            {{DNNL_ARG_FROM, wrap(ones.plain, plain_ones.data())},
                             {DNNL_ARG_TO, wrap(p.ones_desc, p.ones.data())}});
                else
                    std::copy(plain_ones.begin(), plain_ones.end(), reinterpret_cast<int8_t*>(p.ones.data()));
                p.sums = output_relayout(plain(sums_dims, s32), sum_pd.dst_desc());
            }
            return p;
        });
    });

    int32_t zx = 0;
    if (plan->x_zero_point) {
        if (numel(args.input(2)) != 1)
            args.fail("x_zero_point " + shape_text(shape_of(args.input(2))) + " must be a scalar or [1]");
        zx = element(args.input(2), 0);
    }
    const memory zx_memory = wrap(plain(Dims{1}, memory::data_type::s32), &zx);
    Staged x_in(args, plan->x, x.data, true);
    Staged w_in(args, plan->w, w.data, true);
    int32_t* y = data_of<int32_t>(args.output(0));
    Staged y_out(args, plan->y, y, false);
    std::unordered_map<int, memory> arguments = {
        {DNNL_ARG_SRC, x_in.get()}, {DNNL_ARG_WEIGHTS, w_in.get()}, {DNNL_ARG_DST, y_out.get()}};
    if (plan->x_zero_point) arguments.emplace(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, zx_memory);
    execute(args, plan->primitive, arguments);
    y_out.finish();
    if (!plan->w_zero_point) return;

    const Dims& sums_dims = plan->sums.plain.dims();
    std::vector<int32_t> sums(static_cast<size_t>(sums_dims[0] * sums_dims[1] * sums_dims[2] * sums_dims[3]));
    Staged sums_out(args, plan->sums, sums.data(), false);
    arguments[DNNL_ARG_WEIGHTS] = wrap(plan->ones_desc, plan->ones.data());
    arguments[DNNL_ARG_DST] = sums_out.get();
    execute(args, plan->window_sum, arguments);
    sums_out.finish();
    const int64_t batch = sums_dims[0], plane = sums_dims[2] * sums_dims[3];
    const int64_t m = w.shape[0], per_group = m / plan->group;
    // A plane: its sums read and written, the window sums read.
    parallel_for(static_cast<size_t>(batch * m), Work{2.0 * static_cast<double>(plane), 12.0 * static_cast<double>(plane)},
                 [&](size_t begin, size_t end) {
        for (size_t task = begin; task < end; ++task) {
            const int64_t nn = static_cast<int64_t>(task) / m, oc = static_cast<int64_t>(task) % m;
            const int32_t* sum = sums.data() + (nn * plan->group + oc / per_group) * plane;
            int32_t* out = y + static_cast<int64_t>(task) * plane;
            for (int64_t e = 0; e < plane; ++e) out[e] -= zw[static_cast<size_t>(oc)] * sum[e];
        }
    });
}

//----------------------------------------------------------------------------------------------
// What the primitives take
//----------------------------------------------------------------------------------------------

bool is_8bit(uint32_t dtype) { return dtype == DSK_DTYPE_U8 || dtype == DSK_DTYPE_I8; }

// Zero point `i` (when the node has it) has the dtype of input i - 2 and `allowed` elements or 1.
bool zero_point_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors, size_t i, int64_t allowed) {
    if (i >= node->input_count) return true;
    const int64_t n = numel(tensors[i]);
    return tensors[i].dtype == tensors[i - 2].dtype && tensors[i].ndim <= 1 && (n == 1 || n == allowed);
}

bool matmul_integer_accepts(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    const dsk_tensor_desc& a = tensors[0];
    const dsk_tensor_desc& b = tensors[1];
    return has_vnni() && is_8bit(a.dtype) && b.dtype == DSK_DTYPE_I8 && a.ndim == 2 && b.ndim == 2 &&
           zero_point_fits(node, tensors, 2, a.shape[0]) && zero_point_fits(node, tensors, 3, b.shape[1]);
}

bool conv_integer_accepts(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    const dsk_tensor_desc& x = tensors[0];
    const dsk_tensor_desc& w = tensors[1];
    if (!has_vnni() || !is_8bit(x.dtype) || w.dtype != DSK_DTYPE_I8 || x.ndim != 4 || w.ndim != 4) return false;
    return accepts_if([&] {
        const int64_t group = Attrs(node).get_int("group", 1);
        return group >= 1 && x.shape[1] % group == 0 && w.shape[0] % group == 0 &&
               w.shape[1] * group == x.shape[1] && zero_point_fits(node, tensors, 2, 1) &&
               zero_point_fits(node, tensors, 3, w.shape[0]);
    });
}

const KernelDef kIntegerKernels[] = {
    kernel("MatMulInteger", {ANY, I8, ANY, I8}, {I32}, matmul_integer, matmul_integer_accepts) |
        optional_inputs_from(2),
    kernel("ConvInteger", {ANY, I8, ANY, I8}, {I32}, conv_integer, conv_integer_accepts) |
        optional_inputs_from(2),
};

}  // namespace

bool has_vnni() noexcept {
    static const bool vnni = [] {
        try {
            const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
            return isa == dnnl::cpu_isa::avx512_core_vnni || isa == dnnl::cpu_isa::avx512_core_bf16 ||
                   isa == dnnl::cpu_isa::avx512_core_amx || isa == dnnl::cpu_isa::avx2_vnni;
        } catch (...) {
            return false;
        }
    }();
    return vnni;
}

std::span<const KernelDef> integer_kernels() { return kIntegerKernels; }

}  // namespace dsk::onednn
