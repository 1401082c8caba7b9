// matmul_kernels.cpp - MatMul, Gemm (ONNX: Y = alpha * op(A) * op(B) + beta * C) and FusedGemm
// (Gemm + activation, made by the kernel's fusion pass) on oneDNN's matmul primitive, over the
// tensors' row-major memory (transposes are strides, not copies). FusedGemm's activation is an
// eltwise post-op: applied to each tile of Y while it is still in registers.
//
// Weights: where B keeps its contents from run to run (dsk::input_version: a layer's weights in
// an inference session), the primitive takes B in the layout it chooses (format_tag::any) and B
// is reordered into it once per version, kept in the node's cache (oneDNN's weight reorder).
// Elsewhere (training, where an optimizer updates B in place on every step, and eager ops) B
// stays in the plain layout, since a blocked copy would have to be made again on every call.
// hosts/bench and scripts/bench measure what the layout is worth.
#include <cstring>
#include <optional>
#include <string>

#include "dnnl_tensors.h"
#include "kernels/eltwise_algorithms.h"
#include "kernels/onednn_kernel_table.h"
#include "primitive_cache.h"

namespace dsk::onednn {
namespace {

struct MatMulPlan {
    dnnl::matmul primitive;
    memory::desc a, b, c, y;
    bool bias = false;    // C ([N] or [1, N]) is added as the primitive's bias
    bool prefill = false; // Y is filled with beta * C first and added by a sum post-op
    // FusedGemm with its pre-activation output Z (kept for the activation's gradient): the
    // matmul writes Z and this eltwise computes Y from it.
    dnnl::eltwise_forward activation;
    bool separate_activation = false;
    // B in the primitive's own layout: the reorder from the plain one (kept weights only).
    Relayout weights;
};

// What a node keeps across runs: B in the primitive's layout, for the version of B reordered.
struct KeptWeights {
    uint64_t version = 0;
    const float* source = nullptr;
    memory::desc desc;
    memory reordered;
};

struct GemmShape {
    int64_t m, k, n;
    bool trans_a, trans_b;
};

GemmShape gemm_shape(const KernelArgs& args, bool gemm) {
    const dsk_tensor_desc& a = args.input(0);
    const dsk_tensor_desc& b = args.input(1);
    args.expect_rank(a, 2, "A");
    args.expect_rank(b, 2, "B");
    const bool trans_a = gemm && args.attrs().get_int("transA", 0) != 0;
    const bool trans_b = gemm && args.attrs().get_int("transB", 0) != 0;
    GemmShape s{trans_a ? a.shape[1] : a.shape[0], trans_a ? a.shape[0] : a.shape[1],
                trans_b ? b.shape[0] : b.shape[1], trans_a, trans_b};
    const int64_t kb = trans_b ? b.shape[1] : b.shape[0];
    if (s.k != kb)
        args.fail("op(A) is [" + std::to_string(s.m) + ", " + std::to_string(s.k) +
                  "] but op(B) is [" + std::to_string(kb) + ", " + std::to_string(s.n) + "]");
    args.expect_output_shape(0, {s.m, s.n});
    return s;
}

// C as a 2-D [rows, cols] view that broadcasts to [M, N] (C: [], [N], [1, N], [M, 1], [M, N]).
Dims c_dims(const KernelArgs& args, const dsk_tensor_desc& c, int64_t m, int64_t n) {
    if (c.ndim > 2) args.fail("C " + shape_text(shape_of(c)) + " must have at most 2 dimensions");
    const int64_t rows = c.ndim == 2 ? c.shape[0] : 1;
    const int64_t cols = c.ndim >= 1 ? c.shape[c.ndim - 1] : 1;
    if ((rows != 1 && rows != m) || (cols != 1 && cols != n))
        args.fail("C " + shape_text(shape_of(c)) + " does not broadcast to [" + std::to_string(m) +
                  ", " + std::to_string(n) + "]");
    return {rows, cols};
}

// y[i, j] = beta * c[i or 0, j or 0]: C broadcast over the dimensions where it has size 1.
void fill_beta_c(const float* c, const Dims& c2, float beta, float* y, int64_t m, int64_t n) {
    const int64_t row_step = c2[0] == 1 ? 0 : c2[1];
    const int64_t col_step = c2[1] == 1 ? 0 : 1;
    parallel_for(static_cast<size_t>(m), Work{static_cast<double>(n), 8.0 * static_cast<double>(n)},
                 [&](size_t begin, size_t end) {
        for (int64_t i = static_cast<int64_t>(begin); i < static_cast<int64_t>(end); ++i)
            for (int64_t j = 0; j < n; ++j) y[i * n + j] = beta * c[i * row_step + j * col_step];
    });
}

// FusedGemm's activation ("" = none), or nothing for Gemm and MatMul.
std::optional<Eltwise> fused_activation(const KernelArgs& args) {
    if (std::strcmp(args.op(), "FusedGemm") != 0) return std::nullopt;
    const std::string name = args.attrs().get_string("activation", "");
    if (name.empty()) return std::nullopt;
    const std::optional<Eltwise> e = eltwise_for(name, args.attrs());
    if (!e) args.fail("activation \"" + name + "\" has no oneDNN eltwise algorithm here");
    return e;
}

void run_matmul(const KernelArgs& args, bool gemm) {
    const GemmShape s = gemm_shape(args, gemm);
    const ThreadsFor threads(s.m * s.n * s.k);
    const std::optional<Eltwise> activation = fused_activation(args);
    const bool with_z = activation && args.has_output(1);
    if (with_z) args.expect_output_shape(1, {s.m, s.n});
    const float alpha = gemm ? static_cast<float>(args.attrs().get_float("alpha", 1.0)) : 1.0f;
    const float beta = gemm ? static_cast<float>(args.attrs().get_float("beta", 1.0)) : 1.0f;
    const bool with_c = gemm && args.has_input(2) && beta != 0.0f;
    const Dims c2 = with_c ? c_dims(args, args.input(2), s.m, s.n) : Dims{};

    const uint64_t version = dsk::input_version(args.context(), 1);
    KeptWeights* kept = version ? dsk::node_cache<KeptWeights>(args.context()) : nullptr;
    const memory::desc plain_b = matrix(args.input(1).shape[0], args.input(1).shape[1], s.trans_b);
    auto plan = cached<MatMulPlan>(cache_key(args) + (kept ? "|B in oneDNN's layout" : ""), [&] {
        return with_dnnl(args, "creating the primitive", [&] {
            MatMulPlan p;
            p.a = matrix(args.input(0).shape[0], args.input(0).shape[1], s.trans_a);
            p.b = kept ? memory::desc({s.k, s.n}, memory::data_type::f32, memory::format_tag::any) : plain_b;
            p.y = plain({s.m, s.n});
            dnnl::primitive_attr attr;
            // The bias is added after the output scale: it is C itself only when both are 1.
            // A row of N (a layer's bias, the common case) is the bias; other broadcasts of C
            // are written into Y first.
            p.bias = with_c && alpha == 1.0f && beta == 1.0f && c2[0] == 1 && c2[1] == s.n;
            p.prefill = with_c && !p.bias;
            if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
            dnnl::post_ops ops;
            if (p.prefill) ops.append_sum(1.0f);
            p.separate_activation = with_z;
            if (activation && !with_z)
                ops.append_eltwise(1.0f, activation->algorithm, activation->alpha, activation->beta);
            if (ops.len() > 0) attr.set_post_ops(ops);
            if (with_z)
                p.activation = dnnl::eltwise_forward(dnnl::eltwise_forward::primitive_desc(
                    dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference,
                                                activation->algorithm, p.y, activation->alpha,
                                                activation->beta),
                    engine()));
            if (p.bias) p.c = plain(c2);
            const dnnl::matmul::desc desc =
                p.bias ? dnnl::matmul::desc(p.a, p.b, p.c, p.y) : dnnl::matmul::desc(p.a, p.b, p.y);
            const dnnl::matmul::primitive_desc pd(desc, attr, engine());
            p.primitive = dnnl::matmul(pd);
            if (kept) {
                p.b = pd.weights_desc();
                p.weights = input_relayout(plain_b, p.b);
            }
            return p;
        });
    });

    // With Z, the product goes to Z and the activation from there to Y.
    float* y = plan->separate_activation ? args.out(1) : args.out(0);
    if (plan->prefill) fill_beta_c(args.in(2), c2, beta, y, s.m, s.n);
    memory weights = wrap(plan->b, args.in(1));
    if (kept && plan->weights.needed) {
        if (kept->version != version || kept->source != args.in(1) || kept->desc != plan->b) {
            kept->version = 0;  // not valid until reordered
            kept->reordered = with_dnnl(args, "allocating B in the primitive's layout",
                                        [&] { return memory(plan->b, engine()); });
            execute(args, plan->weights.reorder,
                    {{DNNL_ARG_FROM, wrap(plain_b, args.in(1))}, {DNNL_ARG_TO, kept->reordered}});
            kept->desc = plan->b;
            kept->source = args.in(1);
            kept->version = version;
        }
        weights = kept->reordered;
    }
    std::unordered_map<int, memory> arguments = {{DNNL_ARG_SRC, wrap(plan->a, args.in(0))},
                                                  {DNNL_ARG_WEIGHTS, weights},
                                                  {DNNL_ARG_DST, wrap(plan->y, y)}};
    if (plan->bias) arguments.emplace(DNNL_ARG_BIAS, wrap(plan->c, args.in(2)));
    execute(args, plan->primitive, arguments);
    if (plan->separate_activation)
        execute(args, plan->activation,
                {{DNNL_ARG_SRC, wrap(plan->y, y)}, {DNNL_ARG_DST, wrap(plan->y, args.out(0))}});
}

void matmul(const KernelArgs& args) { run_matmul(args, false); }
void gemm(const KernelArgs& args) { run_matmul(args, true); }  // Gemm and FusedGemm

// 2-D A and B, and a C of at most 2 dimensions (the broadcasts are checked when it runs).
// One row (M = 1, a batch-1 linear layer) stays on cpu: oneDNN 2.6's matmul is a poor GEMV,
// half as fast as cpu's dot products (one thread, y = W x: 34 against 16 us for W 256x784,
// 8 against 3 us for 128x256; computing Y^T = W x^T instead was slower still).
bool matmul_2d(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    if (tensors[0].ndim != 2 || tensors[1].ndim != 2) return false;
    const bool trans_a = accepts_if([&] { return Attrs(node).get_int("transA", 0) != 0; });
    const int64_t m = trans_a ? tensors[0].shape[1] : tensors[0].shape[0];
    return m > 1 && (node->input_count < 3 || tensors[2].ndim <= 2);
}

// FusedGemm: Gemm's limits, and an activation oneDNN has an eltwise algorithm for.
bool fused_gemm_accepts(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    return matmul_2d(node, tensors) && accepts_if([&] {
               const Attrs attrs(node);
               const std::string name = attrs.get_string("activation", "");
               if (name.empty()) return node->output_count == 1;  // Z only comes with an activation
               return name != "Neg" && eltwise_for(name, attrs).has_value();
           });
}

const KernelDef kMatMulKernels[] = {
    kernel("Gemm", {F32, F32, F32}, {F32}, gemm, matmul_2d) | optional_inputs_from(2),
    // Outputs: Y = activation(Gemm), and optionally Z = the Gemm before the activation.
    kernel("FusedGemm", {F32, F32, F32}, {F32, F32}, gemm, fused_gemm_accepts) |
        optional_inputs_from(2) | optional_outputs_from(1),
    kernel("MatMul", {F32, F32}, {F32}, matmul, matmul_2d),
};

}  // namespace

std::span<const KernelDef> matmul_kernels() { return kMatMulKernels; }

}  // namespace dsk::onednn
