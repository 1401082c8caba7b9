// elementwise_kernels.cpp - Add, Sub, Mul, Div (numpy broadcasting), the activations (Relu,
// Sigmoid, Tanh, Gelu, Silu, HardSwish, HardSigmoid, Neg) and ActivationGrad. Shaders:
// binary.comp, unary.comp, activation_grad.comp; formulas in activation.glsl.
#include <string>

#include "kernel_table.h"
#include "strided_dims.h"

namespace dsk::vulkan {
namespace {

constexpr size_t kBinaryRank = 4;   // binary.comp's dimensions
constexpr uint32_t kPerInvocation = 4;  // elements per invocation of the elementwise shaders

// The index space of Y = A op B: Y's dimensions, with A's and B's strides (0 where they
// broadcast; shapes aligned on the right). False when the shapes do not broadcast to `out`.
bool broadcast_dims(const dsk_tensor_desc& a, const dsk_tensor_desc& b, const dsk_tensor_desc& y,
                    StridedDims* dims) {
    if (a.ndim > y.ndim || b.ndim > y.ndim) return false;
    const std::vector<int64_t> sa = contiguous_strides(shape_of(a));
    const std::vector<int64_t> sb = contiguous_strides(shape_of(b));
    for (uint32_t d = 0; d < y.ndim; ++d) {
        const int64_t n = y.shape[d];
        const int64_t da = static_cast<int64_t>(d) - (static_cast<int64_t>(y.ndim) - a.ndim);
        const int64_t db = static_cast<int64_t>(d) - (static_cast<int64_t>(y.ndim) - b.ndim);
        const int64_t ea = da >= 0 ? a.shape[da] : 1;
        const int64_t eb = db >= 0 ? b.shape[db] : 1;
        if ((ea != n && ea != 1) || (eb != n && eb != 1)) return false;
        dims->add(n, {ea == 1 ? 0 : sa[static_cast<size_t>(da)], eb == 1 ? 0 : sb[static_cast<size_t>(db)]});
    }
    dims->collapse();
    return true;
}

bool binary_fits(const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    if (node->input_count != 2 || node->output_count != 1) return false;
    StridedDims dims(2);
    return broadcast_dims(tensors[0], tensors[1], tensors[2], &dims) && dims.rank() <= kBinaryRank;
}

int32_t binary_op_code(const std::string& op) {
    if (op == "Add") return 0;
    if (op == "Sub") return 1;
    if (op == "Mul") return 2;
    return 3;  // Div
}

void binary(const KernelArgs& args) {
    const dsk_tensor_desc& a = args.input(0);
    const dsk_tensor_desc& b = args.input(1);
    const dsk_tensor_desc& y = args.output(0);
    StridedDims dims(2);
    if (!broadcast_dims(a, b, y, &dims))
        args.fail("A " + shape_text(shape_of(a)) + " and B " + shape_text(shape_of(b)) +
                  " do not broadcast to the output " + shape_text(shape_of(y)));
    if (dims.rank() > kBinaryRank)
        args.fail("the broadcast needs " + std::to_string(dims.rank()) + " dimensions, the shader has " +
                  std::to_string(kBinaryRank));
    const std::vector<int64_t> shape = dims.padded_extent(kBinaryRank);
    const std::vector<int64_t> stride_a = dims.padded_strides(0, kBinaryRank);
    const std::vector<int64_t> stride_b = dims.padded_strides(1, kBinaryRank);
    const uint64_t n = static_cast<uint64_t>(numel(y));
    std::vector<uint32_t> params = {u32(args, static_cast<int64_t>(n), "elements")};
    for (int64_t v : shape) params.push_back(u32(args, v, "extent"));
    for (int64_t v : stride_a) params.push_back(u32(args, v, "stride"));
    for (int64_t v : stride_b) params.push_back(u32(args, v, "stride"));
    params.push_back(float_bits(1.0f));
    args.dispatch_items("binary", {&a, &b, &y}, {binary_op_code(args.op())}, params,
                        (n + kPerInvocation - 1) / kPerInvocation);
}

//----------------------------------------------------------------------------------------------
// Activations
//----------------------------------------------------------------------------------------------

// activation.glsl's ACT_* codes.
enum Activation : int32_t { relu, sigmoid, tanh_, gelu, gelu_tanh, silu, hard_swish, hard_sigmoid, neg };

struct ActivationParams {
    int32_t code;
    float alpha = 0.0f, beta = 0.0f;
};

// The activation named `name` (an op, or ActivationGrad's `activation` attribute); false when
// there is none of that name.
bool activation_of(const std::string& name, const Attrs& attrs, ActivationParams* out) {
    if (name == "Relu") *out = {relu};
    else if (name == "Sigmoid") *out = {sigmoid};
    else if (name == "Tanh") *out = {tanh_};
    else if (name == "Silu") *out = {silu};
    else if (name == "HardSwish") *out = {hard_swish};
    else if (name == "Neg") *out = {neg};
    else if (name == "HardSigmoid")
        *out = {hard_sigmoid, static_cast<float>(attrs.get_float("alpha", 0.2)),
                static_cast<float>(attrs.get_float("beta", 0.5))};
    else if (name == "Gelu") {
        const std::string approximate = attrs.get_string("approximate", "none");
        if (approximate == "none") *out = {gelu};
        else if (approximate == "tanh") *out = {gelu_tanh};
        else return false;
    } else
        return false;
    return true;
}

bool activation_grad_fits(const dsk_node_view* node, const dsk_tensor_desc* /*tensors*/) {
    try {
        const Attrs attrs(node);
        ActivationParams p;
        return activation_of(attrs.get_string("activation", ""), attrs, &p) && p.code != neg;
    } catch (...) {
        return false;
    }
}

bool activation_fits(const dsk_node_view* node, const dsk_tensor_desc* /*tensors*/) {
    try {
        ActivationParams p;
        return activation_of(node->op, Attrs(node), &p);
    } catch (...) {
        return false;
    }
}

void activation(const KernelArgs& args) {
    ActivationParams p;
    if (!activation_of(args.op(), args.attrs(), &p))
        args.fail("attribute 'approximate' = \"" + args.attrs().get_string("approximate", "") +
                  "\" is not one of \"none\", \"tanh\"");
    const dsk_tensor_desc& x = args.input(0);
    args.expect_output_shape(0, shape_of(x));
    const uint64_t n = static_cast<uint64_t>(numel(x));
    const uint32_t params[] = {u32(args, static_cast<int64_t>(n), "elements"), float_bits(p.alpha),
                               float_bits(p.beta)};
    args.dispatch_items("unary", {&x, &args.output(0)}, {p.code}, params,
                        (n + kPerInvocation - 1) / kPerInvocation);
}

void activation_grad(const KernelArgs& args) {
    const std::string name = args.attrs().get_string("activation", "");
    ActivationParams p;
    if (!activation_of(name, args.attrs(), &p) || p.code == neg)
        args.fail("attribute 'activation' = \"" + name +
                  "\" is not one of Relu, Sigmoid, Tanh, Gelu, Silu, HardSwish, HardSigmoid");
    const dsk_tensor_desc& dy = args.input(0);
    const dsk_tensor_desc& x = args.input(1);
    if (shape_of(dy) != shape_of(x))
        args.fail("dY " + shape_text(shape_of(dy)) + " and X " + shape_text(shape_of(x)) + " differ");
    args.expect_output_shape(0, shape_of(x));
    const uint64_t n = static_cast<uint64_t>(numel(x));
    const uint32_t params[] = {u32(args, static_cast<int64_t>(n), "elements"), float_bits(p.alpha),
                               float_bits(p.beta)};
    args.dispatch_items("activation_grad", {&dy, &x, &args.output(0)}, {p.code}, params,
                        (n + kPerInvocation - 1) / kPerInvocation);
}

const KernelDef kElementwiseKernels[] = {
    {"Add", 2, 2, 1, 1, {F32, F32}, {F32}, binary, binary_fits},
    {"Sub", 2, 2, 1, 1, {F32, F32}, {F32}, binary, binary_fits},
    {"Mul", 2, 2, 1, 1, {F32, F32}, {F32}, binary, binary_fits},
    {"Div", 2, 2, 1, 1, {F32, F32}, {F32}, binary, binary_fits},
    {"Relu", 1, 1, 1, 1, {F32}, {F32}, activation, activation_fits},
    {"Sigmoid", 1, 1, 1, 1, {F32}, {F32}, activation, activation_fits},
    {"Tanh", 1, 1, 1, 1, {F32}, {F32}, activation, activation_fits},
    {"Gelu", 1, 1, 1, 1, {F32}, {F32}, activation, activation_fits},
    {"Silu", 1, 1, 1, 1, {F32}, {F32}, activation, activation_fits},
    {"HardSwish", 1, 1, 1, 1, {F32}, {F32}, activation, activation_fits},
    {"HardSigmoid", 1, 1, 1, 1, {F32}, {F32}, activation, activation_fits},
    {"Neg", 1, 1, 1, 1, {F32}, {F32}, activation, activation_fits},
    {"ActivationGrad", 2, 2, 1, 1, {F32, F32}, {F32}, activation_grad, activation_grad_fits},
};

}  // namespace

std::span<const KernelDef> elementwise_kernels() { return kElementwiseKernels; }

}  // namespace dsk::vulkan
