// The cpu kernels called through their compute thunks, as the kernel's executor calls them, with
// a fake host table: results against double-precision references written out here (and
// central differences of the forward ops for the gradients), the error messages, the kernel
// table (registration and supports_op), and bitwise reproducibility across thread counts.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "kernels/conv_direct.h"
#include "kernels/conv_winograd.h"
#include "kernels/cpu_features.h"
#include "kernels/kernel_table.h"
#include "cached_host.h"
#include "threaded_host.h"

namespace {

using dsk::Attr;
using Shape = std::vector<int64_t>;

//----------------------------------------------------------------------------------------------
// Tensors and calls
//----------------------------------------------------------------------------------------------

struct Tensor {
    uint32_t dtype = DSK_DTYPE_F32;
    Shape shape;
    std::vector<float> f;
    std::vector<int64_t> i;
    std::vector<uint8_t> u;

    int64_t size() const {
        return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
    }
    dsk_tensor_desc desc() {
        void* data = dtype == DSK_DTYPE_F32   ? static_cast<void*>(f.data())
                     : dtype == DSK_DTYPE_I64 ? static_cast<void*>(i.data())
                     : dtype == DSK_DTYPE_U8  ? static_cast<void*>(u.data())
                                              : static_cast<void*>(f.data());
        return dsk::host_tensor(dtype, shape, data);
    }
};

Tensor f32(const Shape& shape, std::vector<float> values = {}) {
    Tensor t;
    t.shape = shape;
    t.f = values.empty() ? std::vector<float>(static_cast<size_t>(t.size()), 0.0f)
                         : std::move(values);
    REQUIRE(static_cast<int64_t>(t.f.size()) == t.size());
    return t;
}

// Bit for bit (NaN equal to the same NaN, -0 not equal to +0), which == on floats is not.
bool same_bits(const std::vector<float>& got, const std::vector<float>& want) {
    return got.size() == want.size() && std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0;
}

Tensor random(const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    Tensor t = f32(shape);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    for (float& v : t.f) v = u(rng);
    return t;
}

Tensor i64(const Shape& shape, std::vector<int64_t> values) {
    Tensor t;
    t.dtype = DSK_DTYPE_I64;
    t.shape = shape;
    t.i = std::move(values);
    REQUIRE(static_cast<int64_t>(t.i.size()) == t.size());
    return t;
}

Tensor u8(const Shape& shape) {
    Tensor t;
    t.dtype = DSK_DTYPE_U8;
    t.shape = shape;
    t.u.assign(static_cast<size_t>(t.size()), 0);
    return t;
}

// A node and its tensors, laid out as the executor hands them to a kernel.
struct Call {
    std::string op;
    std::vector<Attr> attrs;
    std::vector<dsk_attr> attr_views;
    std::vector<uint32_t> ins, outs;
    std::vector<dsk_tensor_desc> tensors;
    dsk_node_view node{};

    Call(const char* name, const std::vector<Attr>& attributes, const std::vector<Tensor*>& inputs,
         const std::vector<Tensor*>& outputs)
        : op(name), attrs(attributes) {
        for (const Attr& a : attrs) attr_views.push_back(a.view());
        for (Tensor* t : inputs) {
            ins.push_back(static_cast<uint32_t>(tensors.size()));
            tensors.push_back(t->desc());
        }
        for (Tensor* t : outputs) {
            outs.push_back(static_cast<uint32_t>(tensors.size()));
            tensors.push_back(t->desc());
        }
        node.struct_size = sizeof node;
        node.op_version = 1;
        node.op = op.c_str();
        node.domain = "";
        node.attrs = attr_views.data();
        node.attr_count = attr_views.size();
        node.inputs = ins.data();
        node.input_count = ins.size();
        node.outputs = outs.data();
        node.output_count = outs.size();
    }
};

fake_host::Outcome call(const char* op, const std::vector<Attr>& attrs,
                        const std::vector<Tensor*>& inputs, const std::vector<Tensor*>& outputs) {
    Call c(op, attrs, inputs, outputs);
    const dsk::cpu::KernelDef* def = dsk::cpu::find_kernel(&c.node, c.tensors.data());
    if (def == nullptr) {
        // Run the first kernel of that op anyway, to see the message a wrong node gets.
        for (const dsk::cpu::KernelDef* k : dsk::cpu::all_kernels())
            if (op == std::string(k->op)) def = k;
        REQUIRE_MESSAGE(def != nullptr, "no cpu kernel for " << op);
    }
    return fake_host::take(dsk::cpu::compute(*def, nullptr, &c.node, c.tensors.data()));
}

void run(const char* op, const std::vector<Attr>& attrs, const std::vector<Tensor*>& inputs,
         const std::vector<Tensor*>& outputs) {
    const fake_host::Outcome o = call(op, attrs, inputs, outputs);
    REQUIRE_MESSAGE(o.code == DSK_OK, op << ": " << o.message);
}

void check_close(const std::vector<float>& got, const std::vector<double>& want, double rtol = 1e-5,
                 double atol = 1e-6) {
    REQUIRE(got.size() == want.size());
    int bad = 0;
    for (size_t k = 0; k < got.size(); ++k) {
        const double tol = atol + rtol * std::fabs(want[k]);
        const bool ok = std::fabs(got[k] - want[k]) <= tol ||
                        (std::isnan(want[k]) && std::isnan(got[k])) ||
                        (std::isinf(want[k]) && got[k] == want[k]);
        if (!ok && bad++ < 5)
            FAIL_CHECK("element " << k << ": got " << got[k] << ", want " << want[k]);
    }
    CHECK(bad == 0);
}

// d(sum(w * f(x)))/dx by central differences, f returning its output as floats.
std::vector<double> numeric_gradient(const std::function<std::vector<float>(const Tensor&)>& f,
                                     const Tensor& x, const std::vector<float>& w,
                                     float h = 1e-2f) {
    std::vector<double> grad(x.f.size());
    for (size_t k = 0; k < x.f.size(); ++k) {
        Tensor plus = x, minus = x;
        plus.f[k] += h;
        minus.f[k] -= h;
        const std::vector<float> yp = f(plus), ym = f(minus);
        double d = 0.0;
        for (size_t j = 0; j < w.size(); ++j)
            d += static_cast<double>(w[j]) * (double(yp[j]) - double(ym[j]));
        grad[k] = d / (2.0 * h);
    }
    return grad;
}

// Row-major index helpers.
int64_t offset4(const Shape& s, int64_t a, int64_t b, int64_t c, int64_t d) {
    return ((a * s[1] + b) * s[2] + c) * s[3] + d;
}

struct Threads {  // restores one thread at the end of a test
    explicit Threads(uint32_t n) { threaded_host::install(n); }
    ~Threads() { threaded_host::install(1); }
};

}  // namespace

//----------------------------------------------------------------------------------------------
// The kernel table
//----------------------------------------------------------------------------------------------

namespace {
// Every test case may run alone (ctest runs them one by one): the host table is there from the
// start, one thread unless a test asks for more.
const bool host_installed = (threaded_host::install(1), true);

std::vector<dsk_op_kernel> registered;
dsk_status record_kernel(dsk_registrar*, const dsk_op_kernel* k) {
    registered.push_back(*k);
    return nullptr;
}
}  // namespace

TEST_CASE("register_kernels registers a cpu kernel for every op of docs/ops.md") {
    static dsk_host_api recording = threaded_host::api();
    recording.register_op_kernel = record_kernel;
    dsk::detail::host_slot().store(&recording);
    registered.clear();
    dsk::detail::LoadState state;
    dsk::Registrar registrar(nullptr, state);
    dsk::cpu::register_kernels(registrar);
    threaded_host::install(1);

    std::set<std::string> ops;
    for (const dsk_op_kernel& k : registered) {
        CHECK(k.struct_size == sizeof(dsk_op_kernel));
        CHECK(std::string(k.backend) == "cpu");
        CHECK(std::string(k.domain) == "");
        CHECK(static_cast<bool>(k.compute));
        CHECK(k.input_dtype_count >= 1);
        ops.insert(k.op);
    }
    const char* const documented[] = {"Gemm",
                                      "MatMul",
                                      "Conv",
                                      "MaxPool",
                                      "AveragePool",
                                      "GlobalAveragePool",
                                      "BatchNormalization",
                                      "LayerNormalization",
                                      "Relu",
                                      "Sigmoid",
                                      "Tanh",
                                      "Gelu",
                                      "Silu",
                                      "HardSwish",
                                      "HardSigmoid",
                                      "Neg",
                                      "Add",
                                      "Sub",
                                      "Mul",
                                      "Div",
                                      "Softmax",
                                      "LogSoftmax",
                                      "SoftmaxCrossEntropyLoss",
                                      "Reshape",
                                      "Flatten",
                                      "Transpose",
                                      "Concat",
                                      "Slice",
                                      "Dropout",
                                      "Gather",
                                      "ReduceSum",
                                      "ReduceMean",
                                      "ReduceMax",
                                      "MatMulInteger",
                                      "ConvInteger",
                                      "ActivationGrad",
                                      "SumToShape",
                                      "ConvGradInput",
                                      "ConvGradWeight",
                                      "MaxPoolGrad",
                                      "MaxPoolReluGrad",
                                      "AveragePoolGrad",
                                      "GlobalAveragePoolGrad",
                                      "BatchNormalizationGrad",
                                      "LayerNormalizationGrad",
                                      "SoftmaxGrad",
                                      "LogSoftmaxGrad",
                                      "SoftmaxCrossEntropyLossGrad",
                                      "SliceGrad",
                                      "DropoutGrad",
                                      "GatherGrad",
                                      "ReduceGrad",
                                      "FusedGemm",
                                      "FusedConv",
                                      "FusedConvMaxPool",
                                      "FusedGemmChain",
                                      "FoldConvBatchNorm",
                                      "FusedElementwise"};
    for (const char* op : documented) CHECK_MESSAGE(ops.count(op) == 1, op);
    CHECK(ops.size() == std::size(documented));
    CHECK(registered.size() == dsk::cpu::all_kernels().size());
}

TEST_CASE(
    "supports_op answers from the kernel table: op, domain, counts, dtypes, attribute limits") {
    Tensor x = random({2, 3}, 1), y = f32({2, 3});
    auto supported = [](const char* op, const std::vector<Attr>& attrs,
                        const std::vector<Tensor*>& in, const std::vector<Tensor*>& out,
                        const char* domain = "") {
        Call c(op, attrs, in, out);
        c.node.domain = domain;
        return dsk::cpu::has_kernel(&c.node, c.tensors.data());
    };
    CHECK(supported("Relu", {}, {&x}, {&y}));
    CHECK_FALSE(supported("Relu", {}, {&x}, {&y}, "custom"));
    CHECK_FALSE(supported("NoSuchOp", {}, {&x}, {&y}));
    Tensor x64 = x;
    x64.dtype = DSK_DTYPE_F64;
    CHECK_FALSE(supported("Relu", {}, {&x64}, {&y}));

    Tensor w = random({4, 3}, 2), c = f32({4}), g = f32({2, 4});
    CHECK(supported("Gemm", {Attr("transB", 1)}, {&x, &w}, {&g}));
    CHECK(supported("Gemm", {Attr("transB", 1)}, {&x, &w, &c}, {&g}));
    CHECK_FALSE(supported("Gemm", {Attr("transB", 1)}, {&x, &w, &c, &c}, {&g}));
    CHECK_FALSE(supported("Gemm", {}, {&x}, {&g}));

    Tensor cat = f32({2, 12});
    CHECK(supported("Concat", {Attr("axis", 1)}, {&x, &x, &x, &x}, {&cat}));

    Tensor labels = i64({2}, {0, 1}), labels_f = f32({2}), loss = f32({});
    CHECK(supported("SoftmaxCrossEntropyLoss", {}, {&x, &labels}, {&loss}));
    CHECK(supported("SoftmaxCrossEntropyLoss", {}, {&x, &labels}, {&loss, &y}));
    CHECK_FALSE(supported("SoftmaxCrossEntropyLoss", {}, {&x, &labels_f}, {&loss}));

    Tensor mask = u8({2, 3}), mask_f = f32({2, 3});
    CHECK(supported("Dropout", {}, {&x}, {&y, &mask}));
    CHECK_FALSE(supported("Dropout", {}, {&x}, {&y, &mask_f}));

    Tensor idx = i64({2}, {0, 1}), rows = f32({2, 3});
    CHECK(supported("Gather", {}, {&x, &idx}, {&rows}));
    CHECK(supported("Gather", {Attr("axis", 0)}, {&x, &idx}, {&rows}));
    CHECK_FALSE(supported("Gather", {Attr("axis", 1)}, {&x, &idx}, {&rows}));
    Tensor li = labels, lo = i64({2}, {0, 0});  // data-movement ops take any dtype
    CHECK(supported("Reshape", {Attr("shape", Shape{2})}, {&li}, {&lo}));

    Tensor x3 = random({1, 2, 3}, 3), w3 = random({1, 2, 1}, 4), y3 = f32({1, 1, 3});
    CHECK_FALSE(supported("Conv", {}, {&x3, &w3}, {&y3}));  // 1-D convolution: not implemented
}

TEST_CASE("kernels fail with INVALID_ARGUMENT naming the op and the problem") {
    Tensor x = random({2, 3}, 1), wrong = f32({3, 2});
    fake_host::Outcome o = call("Relu", {}, {&x}, {&wrong});
    CHECK(o.code == DSK_INVALID_ARGUMENT);
    CHECK(o.message.find("cpu kernel Relu") != std::string::npos);
    CHECK(o.message.find("[3, 2]") != std::string::npos);

    Tensor labels = i64({2}, {0, 3}), loss = f32({});
    o = call("SoftmaxCrossEntropyLoss", {}, {&x, &labels}, {&loss});
    CHECK(o.code == DSK_INVALID_ARGUMENT);
    CHECK(o.message.find("label 3 of row 1") != std::string::npos);

    Tensor cat = f32({4, 3});
    o = call("Concat", {}, {&x, &x}, {&cat});
    CHECK(o.message.find("'axis' is required") != std::string::npos);

    Tensor w = random({5, 4}, 2), y = f32({2, 5});
    o = call("Gemm", {Attr("transB", 1)}, {&x, &w}, {&y});
    CHECK(o.code == DSK_INVALID_ARGUMENT);
    CHECK(o.message.find("op(A)") != std::string::npos);

    Tensor idx = i64({1}, {7}), rows = f32({1, 3});
    o = call("Gather", {}, {&x, &idx}, {&rows});
    CHECK(o.message.find("index 7") != std::string::npos);

    Tensor missing = f32({2, 3});
    std::vector<float>().swap(missing.f);  // data NULL
    o = call("Relu", {}, {&missing}, {&wrong});
    CHECK(o.code == DSK_INVALID_ARGUMENT);
}

//----------------------------------------------------------------------------------------------
// Gemm, MatMul
//----------------------------------------------------------------------------------------------

TEST_CASE("Gemm: transposes, alpha, beta and every broadcast shape of C") {
    const int64_t m = 5, n = 7, k = 9;
    for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        Tensor a = random(ta ? Shape{k, m} : Shape{m, k}, 10 + t);
        Tensor b = random(tb ? Shape{n, k} : Shape{k, n}, 20 + t);
        for (const Shape& cs :
             {Shape{}, Shape{n}, Shape{1, n}, Shape{m, 1}, Shape{m, n}, Shape{1}}) {
            Tensor c = random(cs, 30);
            Tensor y = f32({m, n});
            const float alpha = 0.5f, beta = -1.5f;
            run("Gemm",
                {Attr("transA", ta ? 1 : 0), Attr("transB", tb ? 1 : 0),
                 Attr("alpha", double(alpha)), Attr("beta", double(beta))},
                {&a, &b, &c}, {&y});
            std::vector<double> want(static_cast<size_t>(m * n));
            for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j) {
                    double s = 0;
                    for (int64_t l = 0; l < k; ++l)
                        s += double(ta ? a.f[l * m + i] : a.f[i * k + l]) *
                             (tb ? b.f[j * k + l] : b.f[l * n + j]);
                    const int64_t ci = cs.size() == 2
                                           ? (cs[0] == 1 ? 0 : i) * cs[1] + (cs[1] == 1 ? 0 : j)
                                       : cs.size() == 1 && cs[0] == n ? j
                                                                      : 0;
                    want[static_cast<size_t>(i * n + j)] =
                        alpha * s + beta * c.f[static_cast<size_t>(ci)];
                }
            CAPTURE(t);
            CAPTURE(cs.size());
            check_close(y.f, want);
        }
    }
    // Without C, and MatMul.
    Tensor a = random({3, 4}, 1), b = random({4, 2}, 2), y = f32({3, 2}), z = f32({3, 2});
    run("Gemm", {}, {&a, &b}, {&y});
    run("MatMul", {}, {&a, &b}, {&z});
    std::vector<double> want(6);
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 2; ++j)
            for (int l = 0; l < 4; ++l) want[i * 2 + j] += double(a.f[i * 4 + l]) * b.f[l * 2 + j];
    check_close(y.f, want);
    check_close(z.f, want);
}

//----------------------------------------------------------------------------------------------
// Conv and its gradients
//----------------------------------------------------------------------------------------------

namespace {

struct ConvCase {
    int64_t n, c, h, w, m, kh, kw, group;
    Shape strides, pads, dilations;
    bool bias;
};

std::vector<Attr> conv_attrs(const ConvCase& cc) {
    return {Attr("strides", cc.strides), Attr("pads", cc.pads), Attr("dilations", cc.dilations),
            Attr("group", cc.group)};
}

int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t d) {
    return (in + p0 + p1 - d * (k - 1) - 1) / s + 1;
}

// Calls f(n, m, oh, ow, ci, ih, iw, weight_index) for every product term of the convolution.
template <class F>
void for_each_conv_term(const ConvCase& cc, F&& f) {
    const int64_t oh_n =
        conv_out(cc.h, cc.kh, cc.strides[0], cc.pads[0], cc.pads[2], cc.dilations[0]);
    const int64_t ow_n =
        conv_out(cc.w, cc.kw, cc.strides[1], cc.pads[1], cc.pads[3], cc.dilations[1]);
    const int64_t cg = cc.c / cc.group, mg = cc.m / cc.group;
    for (int64_t n = 0; n < cc.n; ++n)
        for (int64_t m = 0; m < cc.m; ++m)
            for (int64_t oh = 0; oh < oh_n; ++oh)
                for (int64_t ow = 0; ow < ow_n; ++ow)
                    for (int64_t c = 0; c < cg; ++c)
                        for (int64_t kh = 0; kh < cc.kh; ++kh)
                            for (int64_t kw = 0; kw < cc.kw; ++kw) {
                                const int64_t ih =
                                    oh * cc.strides[0] - cc.pads[0] + kh * cc.dilations[0];
                                const int64_t iw =
                                    ow * cc.strides[1] - cc.pads[1] + kw * cc.dilations[1];
                                if (ih < 0 || ih >= cc.h || iw < 0 || iw >= cc.w) continue;
                                const int64_t ci = (m / mg) * cg + c;
                                f(n, m, oh, ow, ci, ih, iw,
                                  ((m * cg + c) * cc.kh + kh) * cc.kw + kw);
                            }
}

Shape conv_y_shape(const ConvCase& cc) {
    return {cc.n, cc.m,
            conv_out(cc.h, cc.kh, cc.strides[0], cc.pads[0], cc.pads[2], cc.dilations[0]),
            conv_out(cc.w, cc.kw, cc.strides[1], cc.pads[1], cc.pads[3], cc.dilations[1])};
}

void check_conv_case(const ConvCase& cc) {
    const Shape xs{cc.n, cc.c, cc.h, cc.w}, ws{cc.m, cc.c / cc.group, cc.kh, cc.kw},
        ys = conv_y_shape(cc);
    Tensor x = random(xs, 1), w = random(ws, 2), b = random({cc.m}, 3), y = f32(ys);
    std::vector<Tensor*> inputs{&x, &w};
    if (cc.bias) inputs.push_back(&b);
    run("Conv", conv_attrs(cc), inputs, {&y});
    std::vector<double> want(y.f.size(), 0.0);
    for (size_t i = 0; i < want.size(); ++i)
        want[i] = cc.bias ? b.f[(i / (ys[2] * ys[3])) % cc.m] : 0.0;
    for_each_conv_term(cc, [&](int64_t n, int64_t m, int64_t oh, int64_t ow, int64_t ci, int64_t ih,
                               int64_t iw, int64_t wi) {
        want[offset4(ys, n, m, oh, ow)] += double(x.f[offset4(xs, n, ci, ih, iw)]) * w.f[wi];
    });
    check_close(y.f, want, 1e-5, 1e-5);

    // Gradients for the loss sum(dy * y).
    Tensor dy = random(ys, 4), dx = f32(xs), dw = f32(ws);
    std::vector<Attr> gi = conv_attrs(cc), gw = conv_attrs(cc);
    gi.emplace_back("input_shape", xs);
    gw.emplace_back("weight_shape", ws);
    run("ConvGradInput", gi, {&dy, &w}, {&dx});
    run("ConvGradWeight", gw, {&dy, &x}, {&dw});
    std::vector<double> want_dx(dx.f.size(), 0.0), want_dw(dw.f.size(), 0.0);
    for_each_conv_term(cc, [&](int64_t n, int64_t m, int64_t oh, int64_t ow, int64_t ci, int64_t ih,
                               int64_t iw, int64_t wi) {
        const double g = dy.f[offset4(ys, n, m, oh, ow)];
        want_dx[offset4(xs, n, ci, ih, iw)] += g * w.f[wi];
        want_dw[wi] += g * x.f[offset4(xs, n, ci, ih, iw)];
    });
    check_close(dx.f, want_dx, 1e-5, 1e-5);
    check_close(dw.f, want_dw, 1e-4, 1e-4);

    // With a second output, ConvGradWeight also gives the bias gradient (the plan's fusion of
    // ReduceSum(dY, axes [0, 2, 3])), and dW stays bitwise the same.
    Tensor dw2 = f32(ws), db = random({cc.m}, 5);
    run("ConvGradWeight", gw, {&dy, &x}, {&dw2, &db});
    std::vector<double> want_db(static_cast<size_t>(cc.m), 0.0);
    for (size_t i = 0; i < dy.f.size(); ++i) want_db[(i / (ys[2] * ys[3])) % cc.m] += dy.f[i];
    check_close(db.f, want_db, 1e-5, 1e-5);
    CHECK(dw2.f == dw.f);
}

}  // namespace

TEST_CASE("Conv, ConvGradInput and ConvGradWeight match the direct sums") {
    const ConvCase cases[] = {
        // general: strides, asymmetric pads, dilations
        {2, 3, 7, 6, 4, 3, 2, 1, {2, 1}, {1, 0, 2, 1}, {1, 2}, true},
        // the CNN's layers: 3x3 "same"
        {3, 1, 8, 8, 5, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {2, 4, 6, 5, 6, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, false},
        // groups
        {2, 4, 5, 5, 6, 3, 3, 2, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        // depthwise, with a channel multiplier, stride 2
        {2, 3, 7, 7, 6, 3, 3, 3, {2, 2}, {1, 1, 1, 1}, {1, 1}, true},
        {1, 4, 6, 6, 4, 5, 3, 4, {1, 1}, {2, 1, 2, 1}, {1, 1}, false},
        {2, 3, 8, 7, 3, 3, 3, 3, {1, 2}, {2, 1, 1, 2}, {2, 1}, true},
        // one image: fewer tasks than threads, so the SGEMM itself runs in parallel
        {1, 3, 9, 9, 16, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        // pointwise (1x1, the columns are the input)
        {3, 5, 4, 3, 7, 1, 1, 1, {1, 1}, {0, 0, 0, 0}, {1, 1}, true},
        // 1x1 with stride (not pointwise), and more images than weight-gradient blocks
        {11, 2, 5, 5, 3, 1, 1, 1, {2, 2}, {0, 0, 0, 0}, {1, 1}, false},
        {10, 3, 5, 4, 2, 2, 2, 1, {1, 1}, {0, 1, 1, 0}, {1, 1}, true},
        // fewer column rows (C/group x kH x kW) than output channels per group: the weight
        // gradient goes transposed; one image, and several with groups
        {1, 1, 6, 7, 12, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {5, 2, 6, 5, 24, 3, 3, 2, {1, 1}, {1, 1, 1, 1}, {1, 1}, false},
        // small planes, many images: several images side by side in one forward SGEMM
        {9, 3, 4, 4, 5, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        // stride 1, output planes the size of the input, 8 or more channels: the direct
        // convolution (conv_direct.h), forward, input and weight gradients alike. Planes of 77 and 185
        // positions (tiles of 3, 2 and 1 vectors of 16, the last one partial), 784 (the CNN's
        // first layer), a plane smaller than the kernel; channel blocks of 8 and a remainder;
        // dilations, asymmetric pads, groups.
        {2, 9, 7, 11, 10, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {1, 8, 5, 37, 9, 2, 4, 1, {1, 1}, {0, 1, 1, 2}, {1, 1}, true},
        {2, 8, 9, 6, 8, 3, 3, 1, {1, 1}, {2, 2, 2, 2}, {2, 2}, false},
        {2, 3, 9, 10, 8, 3, 3, 1, {1, 1}, {2, 2, 2, 2}, {2, 2}, true},  // AVX2's dW sums: rows of 8 and a tail
        {2, 16, 6, 6, 16, 3, 3, 2, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {1, 8, 3, 3, 8, 5, 5, 1, {1, 1}, {2, 2, 2, 2}, {1, 1}, true},
        {2, 1, 28, 28, 32, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {3, 12, 14, 14, 20, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        // ... and more images than weight-gradient blocks (several images summed per block)
        {19, 4, 6, 7, 8, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, false},
        // planes ending in a short vector of 1 to 8 positions (49, 24, 6, 36: the last ones in
        // the lanes of output channels, conv_direct.h), odd and even channel counts both ways
        {2, 9, 7, 7, 9, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {2, 3, 4, 6, 8, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, false},
        {1, 8, 2, 3, 16, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {2, 11, 6, 6, 13, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        // planes one and two columns wide (AVX2's row tiles store a row's last vector into the
        // rows after it, masked only at the end of the plane)
        {2, 8, 9, 1, 8, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {1, 3, 7, 2, 9, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, false},
        // 3x3 pad 1 with channels in multiples of 16: Winograd's F(2x2, 3x3) (conv_winograd.h).
        // The CNN's second layer; odd planes (partial 2x2 tiles); planes of one row, one column,
        // one position; groups; more images than weight-gradient blocks; one image (its tile rows
        // split over the 3 threads; its weight gradient direct); a plane in 2 blocks of tile rows.
        {2, 32, 14, 14, 64, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {1, 32, 5, 7, 48, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {2, 48, 24, 24, 48, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},  // 2 blocks of tile rows
        {3, 16, 7, 9, 48, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {2, 48, 5, 4, 16, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, false},
        {2, 16, 1, 6, 16, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {2, 16, 5, 1, 32, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, false},
        {2, 16, 1, 1, 16, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {2, 64, 6, 6, 32, 3, 3, 2, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
        {19, 16, 4, 5, 16, 3, 3, 1, {1, 1}, {1, 1, 1, 1}, {1, 1}, true},
    };
    for (uint32_t threads : {1u, 3u}) {
        Threads scope(threads);
        for (const ConvCase& cc : cases) {
            CAPTURE(cc.n);
            CAPTURE(cc.c);
            CAPTURE(cc.m);
            CAPTURE(cc.group);
            CAPTURE(threads);
            check_conv_case(cc);
        }
    }
}

//----------------------------------------------------------------------------------------------
// Pooling
//----------------------------------------------------------------------------------------------

TEST_CASE("MaxPool, MaxPoolGrad and MaxPoolReluGrad: padding never wins, the gradient goes to the first maximum") {
    struct PoolCase {
        int64_t kh, kw, sh, sw;
        Shape pads;
    };
    // The generic path (3x2) and the unrolled 2x2 / 3x3 ones, inside and at padded edges.
    const PoolCase cases[] = {{3, 2, 2, 2, {1, 1, 1, 0}}, {2, 2, 2, 2, {0, 0, 0, 0}},
                              {2, 2, 1, 1, {1, 1, 1, 1}}, {3, 3, 2, 2, {1, 1, 1, 1}},
                              {3, 3, 1, 2, {0, 1, 2, 0}}, {2, 2, 2, 2, {1, 0, 0, 1}}};
    // 7 x 6, and 5 x 37 (the vectorized 2x2 / stride 2 rows: a full 16 windows and a tail, an
    // odd last row and column that no window covers); 6 x 14 and 5 x 9, rows of 7 and 4 windows
    // (AVX2's 4-lane rows).
    for (const Shape& xs : {Shape{2, 3, 7, 6}, Shape{2, 3, 5, 37}, Shape{2, 3, 6, 14}, Shape{2, 3, 5, 9}})
    for (const PoolCase& pc : cases) {
        const int64_t in_h = xs[2], in_w = xs[3];
        for (int variant = 0; variant < 4; ++variant) {
            CAPTURE(pc.kh);
            CAPTURE(pc.kw);
            CAPTURE(pc.sh);
            CAPTURE(variant);
            CAPTURE(in_w);
            Tensor x = random(xs, 5);
            x.f[offset4(xs, 0, 0, 0, 0)] = x.f[offset4(xs, 0, 0, 0, 1)] = 5.0f;  // a tie
            x.f[offset4(xs, 1, 2, 3, 3)] = x.f[offset4(xs, 1, 2, 4, 3)] = 5.0f;
            if (variant == 1)
                for (float& v : x.f) v = -std::fabs(v) - 1.0f;  // zero padding would win
            if (variant == 2)
                x.f[offset4(xs, 0, 1, 2, 2)] = x.f[offset4(xs, 1, 0, in_h - 2, 4)] = NAN;  // NaN wins
            if (variant == 3)  // zeros of both signs (and a few negatives): the first zero's sign wins
                for (size_t i = 0; i < x.f.size(); ++i)
                    x.f[i] = i % 7 == 3 ? -1.0f : static_cast<uint32_t>(i * 2654435761u) >> 31 ? -0.0f : 0.0f;
            const std::vector<Attr> attrs{Attr("kernel_shape", Shape{pc.kh, pc.kw}),
                                          Attr("strides", Shape{pc.sh, pc.sw}),
                                          Attr("pads", pc.pads)};
            const int64_t oh_n = (in_h + pc.pads[0] + pc.pads[2] - pc.kh) / pc.sh + 1;
            const int64_t ow_n = (in_w + pc.pads[1] + pc.pads[3] - pc.kw) / pc.sw + 1;
            const Shape ys{2, 3, oh_n, ow_n};
            Tensor y = f32(ys), dy = random(ys, 6), dx = random(xs, 7);
            run("MaxPool", attrs, {&x}, {&y});
            run("MaxPoolGrad", attrs, {&dy, &x}, {&dx});
            std::vector<double> want(y.f.size()), want_dx(dx.f.size(), 0.0);
            for (int64_t n = 0; n < 2; ++n)
                for (int64_t c = 0; c < 3; ++c)
                    for (int64_t oh = 0; oh < oh_n; ++oh)
                        for (int64_t ow = 0; ow < ow_n; ++ow) {
                            double best = -INFINITY;
                            int64_t at = -1;
                            for (int64_t kh = 0; kh < pc.kh; ++kh)
                                for (int64_t kw = 0; kw < pc.kw; ++kw) {
                                    const int64_t ih = oh * pc.sh - pc.pads[0] + kh,
                                                  iw = ow * pc.sw - pc.pads[1] + kw;
                                    if (ih < 0 || ih >= in_h || iw < 0 || iw >= in_w) continue;
                                    const int64_t i = offset4(xs, n, c, ih, iw);
                                    const bool nan = std::isnan(x.f[i]);
                                    if (at < 0 || (!std::isnan(best) && (nan || x.f[i] > best)))
                                        best = x.f[i], at = i;
                                }
                            want[offset4(ys, n, c, oh, ow)] = best;
                            want_dx[at] += dy.f[offset4(ys, n, c, oh, ow)];
                        }
            check_close(y.f, want, 0, 0);
            for (size_t i = 0; i < want.size(); ++i)
                if (want[i] == 0.0 && std::signbit(y.f[i]) != std::signbit(want[i])) FAIL("the sign of zero at " << i);
            check_close(dx.f, want_dx, 1e-6, 1e-6);

            // MaxPoolReluGrad: bitwise MaxPoolGrad then ActivationGrad[Relu] on the same X (the
            // fusion the plan makes), windows of negative maxima included.
            Tensor relu_dx = f32(xs), fused_dx = random(xs, 8);
            run("ActivationGrad", {Attr("activation", "Relu")}, {&dx, &x}, {&relu_dx});
            run("MaxPoolReluGrad", attrs, {&dy, &x}, {&fused_dx});
            CHECK(same_bits(fused_dx.f, relu_dx.f));
        }
    }
}

TEST_CASE(
    "AveragePool (with and without count_include_pad), GlobalAveragePool and their gradients") {
    const Shape xs{2, 2, 5, 4};
    Tensor x = random(xs, 7);
    for (int include_pad = 0; include_pad < 2; ++include_pad) {
        const std::vector<Attr> attrs{Attr("kernel_shape", Shape{2, 3}),
                                      Attr("strides", Shape{2, 1}), Attr("pads", Shape{1, 1, 0, 1}),
                                      Attr("count_include_pad", include_pad)};
        const int64_t oh_n = (5 + 1 - 2) / 2 + 1, ow_n = (4 + 2 - 3) / 1 + 1;
        const Shape ys{2, 2, oh_n, ow_n};
        Tensor y = f32(ys);
        run("AveragePool", attrs, {&x}, {&y});
        std::vector<double> want(y.f.size());
        for (int64_t p = 0; p < 4; ++p)
            for (int64_t oh = 0; oh < oh_n; ++oh)
                for (int64_t ow = 0; ow < ow_n; ++ow) {
                    double s = 0;
                    int count = 0;
                    for (int64_t kh = 0; kh < 2; ++kh)
                        for (int64_t kw = 0; kw < 3; ++kw) {
                            const int64_t ih = oh * 2 - 1 + kh, iw = ow - 1 + kw;
                            if (ih < 0 || ih >= 5 || iw < 0 || iw >= 4) continue;
                            s += x.f[p * 20 + ih * 4 + iw];
                            ++count;
                        }
                    want[(p * oh_n + oh) * ow_n + ow] = s / (include_pad ? 6 : count);
                }
        check_close(y.f, want);

        // The gradient against central differences of the forward op.
        Tensor dy = random(ys, 8), dx = f32(xs);
        std::vector<Attr> grad_attrs = attrs;
        grad_attrs.emplace_back("input_shape", xs);
        run("AveragePoolGrad", grad_attrs, {&dy}, {&dx});
        const auto forward = [&](const Tensor& in) {
            Tensor xi = in, yi = f32(ys);
            run("AveragePool", attrs, {&xi}, {&yi});
            return yi.f;
        };
        check_close(dx.f, numeric_gradient(forward, x, dy.f), 1e-3, 1e-4);
    }

    Tensor y = f32({2, 2, 1, 1}), dy = random({2, 2, 1, 1}, 9), dx = f32(xs);
    run("GlobalAveragePool", {}, {&x}, {&y});
    run("GlobalAveragePoolGrad", {Attr("input_shape", xs)}, {&dy}, {&dx});
    std::vector<double> want(4, 0.0), want_dx(dx.f.size());
    for (size_t i = 0; i < x.f.size(); ++i) {
        want[i / 20] += x.f[i] / 20.0;
        want_dx[i] = dy.f[i / 20] / 20.0;
    }
    check_close(y.f, want);
    check_close(dx.f, want_dx);
}

//----------------------------------------------------------------------------------------------
// Normalization
//----------------------------------------------------------------------------------------------

TEST_CASE(
    "BatchNormalization: batch statistics, running averages updated in place, and the gradient") {
    for (const Shape& xs : {Shape{4, 3, 2, 3}, Shape{6, 5}}) {
        const int64_t c_n = xs[1], count = xs[0] * (xs.size() == 4 ? xs[2] * xs[3] : 1);
        const int64_t spatial = count / xs[0];
        Tensor x = random(xs, 11, -2, 3), scale = random({c_n}, 12, 0.5, 1.5),
               bias = random({c_n}, 13);
        Tensor mean = random({c_n}, 14), var = random({c_n}, 15, 0.5, 2);
        const Tensor mean0 = mean, var0 = var;
        Tensor y = f32(xs), saved_mean = f32({c_n}), saved_invstd = f32({c_n});
        const std::vector<Attr> attrs{Attr("epsilon", 1e-3), Attr("momentum", 0.8),
                                      Attr("training_mode", 1)};
        run("BatchNormalization", attrs, {&x, &scale, &bias, &mean, &var},
            {&y, &saved_mean, &saved_invstd});

        std::vector<double> want(y.f.size()), want_mean(c_n), want_var(c_n), want_inv(c_n);
        auto at = [&](int64_t n, int64_t c, int64_t s) { return (n * c_n + c) * spatial + s; };
        for (int64_t c = 0; c < c_n; ++c) {
            double s = 0, ss = 0;
            for (int64_t n = 0; n < xs[0]; ++n)
                for (int64_t i = 0; i < spatial; ++i) s += x.f[at(n, c, i)];
            const double mu = s / count;
            for (int64_t n = 0; n < xs[0]; ++n)
                for (int64_t i = 0; i < spatial; ++i)
                    ss += (x.f[at(n, c, i)] - mu) * (x.f[at(n, c, i)] - mu);
            const double v = ss / count, inv = 1 / std::sqrt(v + 1e-3);
            for (int64_t n = 0; n < xs[0]; ++n)
                for (int64_t i = 0; i < spatial; ++i)
                    want[at(n, c, i)] = (x.f[at(n, c, i)] - mu) * inv * scale.f[c] + bias.f[c];
            want_mean[c] = 0.8 * mean0.f[c] + 0.2 * mu;
            want_var[c] = 0.8 * var0.f[c] + 0.2 * v * count / (count - 1);
            want_inv[c] = inv;
            CHECK(saved_mean.f[c] == doctest::Approx(mu).epsilon(1e-5));
        }
        check_close(y.f, want, 1e-4, 1e-5);
        check_close(mean.f, want_mean, 1e-5, 1e-6);
        check_close(var.f, want_var, 1e-5, 1e-6);
        check_close(saved_invstd.f, want_inv, 1e-5, 1e-6);

        // Gradients of sum(dy * y) in training mode, against central differences.
        Tensor dy = random(xs, 16), dx = f32(xs), dscale = f32({c_n}), dbias = f32({c_n});
        run("BatchNormalizationGrad", {Attr("epsilon", 1e-3), Attr("training_mode", 1)},
            {&dy, &x, &scale, &saved_mean, &saved_invstd}, {&dx, &dscale, &dbias});
        auto forward_x = [&](const Tensor& in) {
            Tensor xi = in, m = mean0, v = var0, yi = f32(xs);
            run("BatchNormalization", attrs, {&xi, &scale, &bias, &m, &v}, {&yi});
            return yi.f;
        };
        auto forward_scale = [&](const Tensor& s) {
            Tensor si = s, m = mean0, v = var0, yi = f32(xs);
            run("BatchNormalization", attrs, {&x, &si, &bias, &m, &v}, {&yi});
            return yi.f;
        };
        check_close(dx.f, numeric_gradient(forward_x, x, dy.f), 2e-2, 2e-3);
        check_close(dscale.f, numeric_gradient(forward_scale, scale, dy.f), 1e-2, 1e-3);
        std::vector<double> want_db(c_n, 0.0);
        for (size_t i = 0; i < dy.f.size(); ++i) want_db[(i / spatial) % c_n] += dy.f[i];
        check_close(dbias.f, want_db, 1e-5, 1e-5);

        // Eval mode: the running statistics, untouched; dX = dY * scale * invstd.
        Tensor m = mean0, v = var0, ye = f32(xs), sm = f32({c_n}), si = f32({c_n});
        run("BatchNormalization", {Attr("epsilon", 1e-3)}, {&x, &scale, &bias, &m, &v},
            {&ye, &sm, &si});
        CHECK(m.f == mean0.f);
        CHECK(v.f == var0.f);
        std::vector<double> want_eval(ye.f.size()), want_dx_eval(ye.f.size());
        for (size_t i = 0; i < ye.f.size(); ++i) {
            const int64_t c = static_cast<int64_t>(i / spatial) % c_n;
            const double inv = 1 / std::sqrt(double(var0.f[c]) + 1e-3);
            want_eval[i] = (x.f[i] - mean0.f[c]) * inv * scale.f[c] + bias.f[c];
            want_dx_eval[i] = dy.f[i] * scale.f[c] * inv;
        }
        check_close(ye.f, want_eval, 1e-5, 1e-5);
        run("BatchNormalizationGrad", {Attr("epsilon", 1e-3)}, {&dy, &x, &scale, &sm, &si},
            {&dx, &dscale, &dbias});
        check_close(dx.f, want_dx_eval, 1e-5, 1e-6);
    }
}

TEST_CASE("LayerNormalization and its gradient (axis -1 and axis 1, with and without B)") {
    for (int64_t axis : {int64_t{-1}, int64_t{1}}) {
        const Shape xs{3, 4, 5};
        const Shape ps = axis == -1 ? Shape{5} : Shape{4, 5};
        const int64_t width = axis == -1 ? 5 : 20, rows = 60 / width;
        const Shape ss = axis == -1 ? Shape{3, 4, 1} : Shape{3, 1, 1};
        Tensor x = random(xs, 21, -2, 2), scale = random(ps, 22, 0.5, 1.5), bias = random(ps, 23);
        Tensor y = f32(xs), mean = f32(ss), inv = f32(ss);
        const std::vector<Attr> attrs{Attr("axis", axis), Attr("epsilon", 1e-4)};
        run("LayerNormalization", attrs, {&x, &scale, &bias}, {&y, &mean, &inv});
        std::vector<double> want(y.f.size());
        for (int64_t r = 0; r < rows; ++r) {
            double s = 0, ss2 = 0;
            for (int64_t i = 0; i < width; ++i) s += x.f[r * width + i];
            const double mu = s / width;
            for (int64_t i = 0; i < width; ++i) ss2 += std::pow(x.f[r * width + i] - mu, 2);
            const double iv = 1 / std::sqrt(ss2 / width + 1e-4);
            for (int64_t i = 0; i < width; ++i)
                want[r * width + i] = (x.f[r * width + i] - mu) * iv * scale.f[i] + bias.f[i];
            CHECK(mean.f[r] == doctest::Approx(mu).epsilon(1e-5));
            CHECK(inv.f[r] == doctest::Approx(iv).epsilon(1e-5));
        }
        check_close(y.f, want, 1e-4, 1e-5);

        Tensor dy = random(xs, 24), dx = f32(xs), dscale = f32(ps), dbias = f32(ps);
        run("LayerNormalizationGrad", {Attr("axis", axis)}, {&dy, &x, &scale, &mean, &inv},
            {&dx, &dscale, &dbias});
        auto forward_x = [&](const Tensor& in) {
            Tensor xi = in, yi = f32(xs);
            run("LayerNormalization", attrs, {&xi, &scale, &bias}, {&yi});
            return yi.f;
        };
        auto forward_scale = [&](const Tensor& s) {
            Tensor si = s, yi = f32(xs);
            run("LayerNormalization", attrs, {&x, &si, &bias}, {&yi});
            return yi.f;
        };
        check_close(dx.f, numeric_gradient(forward_x, x, dy.f), 2e-2, 2e-3);
        check_close(dscale.f, numeric_gradient(forward_scale, scale, dy.f), 1e-2, 1e-3);
        std::vector<double> want_db(static_cast<size_t>(width), 0.0);
        for (size_t i = 0; i < dy.f.size(); ++i) want_db[i % width] += dy.f[i];
        check_close(dbias.f, want_db, 1e-5, 1e-5);

        Tensor y2 = f32(xs);
        run("LayerNormalization", attrs, {&x, &scale}, {&y2});  // no B
        for (size_t i = 0; i < y2.f.size(); ++i)
            CHECK(y2.f[i] == doctest::Approx(y.f[i] - bias.f[i % width]).epsilon(1e-5));
    }
}

//----------------------------------------------------------------------------------------------
// Activations
//----------------------------------------------------------------------------------------------

namespace {

double phi(double x) {
    return 0.5 * (1 + std::erf(x / std::sqrt(2.0)));
}
double sigmoid(double x) {
    return 1 / (1 + std::exp(-x));
}

struct ActivationCase {
    const char* op;
    std::vector<Attr> attrs;
    std::function<double(double)> f, df;
};

std::vector<ActivationCase> activation_cases() {
    const double k = std::sqrt(2 / M_PI);
    auto gelu_tanh = [k](double x) {
        return 0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x)));
    };
    auto gelu_tanh_d = [k](double x) {
        const double t = std::tanh(k * (x + 0.044715 * x * x * x));
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x);
    };
    return {
        {"Relu",
         {},
         [](double x) { return x > 0 ? x : 0; },
         [](double x) { return x > 0 ? 1.0 : 0.0; }},
        {"Sigmoid", {}, sigmoid, [](double x) { return sigmoid(x) * (1 - sigmoid(x)); }},
        {"Tanh",
         {},
         [](double x) { return std::tanh(x); },
         [](double x) { return 1 - std::pow(std::tanh(x), 2); }},
        {"Gelu",
         {},
         [](double x) { return x * phi(x); },
         [](double x) { return phi(x) + x * std::exp(-x * x / 2) / std::sqrt(2 * M_PI); }},
        {"Gelu", {Attr("approximate", "tanh")}, gelu_tanh, gelu_tanh_d},
        {"Silu",
         {},
         [](double x) { return x * sigmoid(x); },
         [](double x) { return sigmoid(x) * (1 + x * (1 - sigmoid(x))); }},
        {"HardSwish",
         {},
         [](double x) { return x * std::clamp(x / 6 + 0.5, 0.0, 1.0); },
         [](double x) { return x < -3   ? 0.0
                               : x <= 3 ? x / 3 + 0.5
                                        : 1.0; }},
        {"HardSigmoid",
         {Attr("alpha", 0.3), Attr("beta", 0.4)},
         [](double x) { return std::clamp(0.3 * x + 0.4, 0.0, 1.0); },
         [](double x) { return 0.3 * x + 0.4 > 0 && 0.3 * x + 0.4 < 1 ? 0.3 : 0.0; }},
        {"HardSigmoid",
         {},
         [](double x) { return std::clamp(0.2 * x + 0.5, 0.0, 1.0); },
         [](double x) { return 0.2 * x + 0.5 > 0 && 0.2 * x + 0.5 < 1 ? 0.2 : 0.0; }},
        {"Neg", {}, [](double x) { return -x; }, nullptr},
    };
}

}  // namespace

TEST_CASE("activations and ActivationGrad match the formulas of docs/ops.md") {
    // Values across the interesting ranges, the tails, and a long array for the threaded split.
    std::vector<float> values;
    for (int i = -4000; i <= 4000; ++i) values.push_back(static_cast<float>(i) * 0.005f);
    for (float v :
         {-100.0f, -90.0f, -30.0f, -9.5f, 9.5f, 30.0f, 90.0f, 100.0f, 0.0f, -0.0f, 1e-6f, -1e-6f})
        values.push_back(v);
    const Shape shape{static_cast<int64_t>(values.size())};
    Threads scope(3);
    for (const ActivationCase& a : activation_cases()) {
        const std::string name = a.op + (a.attrs.empty() ? std::string() : " with attributes");
        CAPTURE(name);
        Tensor x = f32(shape, values), y = f32(shape);
        run(a.op, a.attrs, {&x}, {&y});
        std::vector<double> want(values.size());
        for (size_t i = 0; i < values.size(); ++i) want[i] = a.f(values[i]);
        check_close(y.f, want, 2e-6, 1e-7);
        if (!a.df) continue;

        Tensor dy = random(shape, 31, -2, 2), dx = f32(shape);
        std::vector<Attr> attrs = a.attrs;
        attrs.emplace_back("activation", a.op);
        run("ActivationGrad", attrs, {&dy, &x}, {&dx});
        std::vector<double> want_dx(values.size());
        for (size_t i = 0; i < values.size(); ++i) want_dx[i] = dy.f[i] * a.df(values[i]);
        check_close(dx.f, want_dx, 2e-5, 1e-6);
    }
    Tensor x = f32({2}, {1, 2}), dy = f32({2}, {1, 1}), dx = f32({2});
    const fake_host::Outcome o =
        call("ActivationGrad", {Attr("activation", "Softplus")}, {&dy, &x}, {&dx});
    CHECK(o.code == DSK_INVALID_ARGUMENT);
    CHECK(o.message.find("Softplus") != std::string::npos);
}

TEST_CASE("Relu is exact for every length, in place or not: NaN stays NaN, -0 stays -0") {
    // Relu runs in vectors of 8 with an overlapping last vector: every length up to 41 crosses
    // each way a row can end, and an in-place call reads back what it has written.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float pattern[] = {-1.5f, 2.0f, nan, -0.0f, 0.0f, 3e-39f, -3e-39f, -7.0f, 0.25f, -1e30f, 1e30f};
    for (int64_t n = 1; n <= 41; ++n) {
        CAPTURE(n);
        std::vector<float> values(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) values[i] = pattern[(i * 7 + n) % std::size(pattern)];
        std::vector<float> want(values.size());
        for (size_t i = 0; i < values.size(); ++i) want[i] = values[i] < 0.0f ? 0.0f : values[i];
        Tensor x = f32({n}, values), y = random({n}, 5);
        run("Relu", {}, {&x}, {&y});
        CHECK(same_bits(y.f, want));
        Call in_place("Relu", {}, {&x}, {&x});
        REQUIRE(fake_host::take(dsk::cpu::compute(*dsk::cpu::find_kernel(&in_place.node, in_place.tensors.data()),
                                                  nullptr, &in_place.node, in_place.tensors.data()))
                    .code == DSK_OK);
        CHECK(same_bits(x.f, want));
    }
}

//----------------------------------------------------------------------------------------------
// Elementwise with broadcasting
//----------------------------------------------------------------------------------------------

TEST_CASE("Add, Sub, Mul, Div broadcast like numpy") {
    const std::pair<Shape, Shape> cases[] = {
        {{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {4}},   {{2, 3, 4}, {3, 1}},
        {{1, 3, 1}, {2, 1, 4}}, {{}, {2, 3}},       {{5}, {}},
        {{2, 1, 4}, {1, 3, 1}}, {{3, 1}, {1, 5}},   {{64, 1000}, {1000}},
        {{64, 1000}, {64, 1}},  {{70000}, {70000}}, {{1}, {1}},
    };
    const char* ops[] = {"Add", "Sub", "Mul", "Div"};
    Threads scope(3);
    uint32_t seed = 40;
    for (const auto& [as, bs] : cases) {
        Tensor a = random(as, seed++, 0.5f, 2.0f), b = random(bs, seed++, 0.5f, 2.0f);
        // The broadcast shape and each operand's index for each output element.
        const size_t rank = std::max(as.size(), bs.size());
        Shape os(rank);
        for (size_t k = 0; k < rank; ++k) {
            const int64_t da = k + as.size() >= rank ? as[k + as.size() - rank] : 1;
            const int64_t db = k + bs.size() >= rank ? bs[k + bs.size() - rank] : 1;
            os[k] = std::max(da, db);
        }
        Tensor out = f32(os);
        for (int op = 0; op < 4; ++op) {
            CAPTURE(ops[op]);
            CAPTURE(out.size());
            run(ops[op], {}, {&a, &b}, {&out});
            std::vector<double> want(out.f.size());
            for (int64_t o = 0; o < out.size(); ++o) {
                int64_t ia = 0, ib = 0, sa = 1, sb = 1, rest = o;
                for (size_t k = rank; k-- > 0;) {
                    const int64_t index = rest % os[k];
                    rest /= os[k];
                    if (k + as.size() >= rank) {
                        const int64_t d = as[k + as.size() - rank];
                        ia += (d == 1 ? 0 : index) * sa;
                        sa *= d;
                    }
                    if (k + bs.size() >= rank) {
                        const int64_t d = bs[k + bs.size() - rank];
                        ib += (d == 1 ? 0 : index) * sb;
                        sb *= d;
                    }
                }
                const double x = a.f[ia], y = b.f[ib];
                want[o] = op == 0 ? x + y : op == 1 ? x - y : op == 2 ? x * y : x / y;
            }
            check_close(out.f, want, 1e-6, 0);
        }
    }
    // In place: the output may be an input.
    Tensor a = random({100}, 1), b = random({100}, 2);
    const Tensor a0 = a;
    Call c("Add", {}, {&a, &b}, {&a});
    REQUIRE(fake_host::take(dsk::cpu::compute(*dsk::cpu::find_kernel(&c.node, c.tensors.data()),
                                              nullptr, &c.node, c.tensors.data()))
                .code == DSK_OK);
    for (int i = 0; i < 100; ++i) CHECK(a.f[i] == a0.f[i] + b.f[i]);

    Tensor bad = f32({3}), out = f32({2, 3});
    Tensor two = f32({2, 2});
    const fake_host::Outcome o = call("Add", {}, {&two, &bad}, {&out});
    CHECK(o.message.find("cannot broadcast") != std::string::npos);
}

//----------------------------------------------------------------------------------------------
// Softmax family
//----------------------------------------------------------------------------------------------

TEST_CASE("Softmax, LogSoftmax and their gradients along any axis") {
    const Shape xs{3, 5, 4};
    Tensor x = random(xs, 50, -5, 5);
    for (int64_t axis : {int64_t{-1}, int64_t{1}, int64_t{0}}) {
        const int64_t a = axis < 0 ? axis + 3 : axis;
        int64_t inner = 1;
        for (int64_t k = a + 1; k < 3; ++k) inner *= xs[k];
        const int64_t len = xs[a];
        for (bool log : {false, true}) {
            CAPTURE(axis);
            CAPTURE(log);
            Tensor y = f32(xs);
            run(log ? "LogSoftmax" : "Softmax", {Attr("axis", axis)}, {&x}, {&y});
            std::vector<double> want(y.f.size());
            for (int64_t base = 0; base < x.size(); ++base) {
                if ((base / inner) % len != 0) continue;  // the first element of each line
                double m = -INFINITY, s = 0;
                for (int64_t j = 0; j < len; ++j) m = std::max(m, double(x.f[base + j * inner]));
                for (int64_t j = 0; j < len; ++j) s += std::exp(x.f[base + j * inner] - m);
                for (int64_t j = 0; j < len; ++j) {
                    const double v = x.f[base + j * inner] - m;
                    want[base + j * inner] = log ? v - std::log(s) : std::exp(v) / s;
                }
            }
            check_close(y.f, want, 1e-5, 1e-6);

            Tensor dy = random(xs, 51), dx = f32(xs);
            run(log ? "LogSoftmaxGrad" : "SoftmaxGrad", {Attr("axis", axis)}, {&dy, &y}, {&dx});
            auto forward = [&](const Tensor& in) {
                Tensor xi = in, yi = f32(xs);
                run(log ? "LogSoftmax" : "Softmax", {Attr("axis", axis)}, {&xi}, {&yi});
                return yi.f;
            };
            check_close(dx.f, numeric_gradient(forward, x, dy.f, 1e-2f), 1e-2, 1e-3);
        }
    }
    // Long rows, threaded, and extreme values.
    Threads scope(3);
    Tensor big = random({7, 3000}, 52, -80, 80), out = f32({7, 3000});
    big.f[5] = 1e30f;
    run("Softmax", {}, {&big}, {&out});
    for (int r = 0; r < 7; ++r) {
        double s = 0;
        for (int j = 0; j < 3000; ++j) s += out.f[r * 3000 + j];
        CHECK(s == doctest::Approx(1.0).epsilon(1e-5));
    }
    CHECK(out.f[5] == 1.0f);
}

TEST_CASE("SoftmaxCrossEntropyLoss (mean and sum) and its gradient") {
    const int64_t n = 6, c = 4;
    Tensor scores = random({n, c}, 60, -3, 3), labels = i64({n}, {0, 3, 1, 1, 2, 0});
    for (const char* reduction : {"mean", "sum"}) {
        CAPTURE(reduction);
        const bool mean = std::string(reduction) == "mean";
        Tensor loss = f32({}), log_prob = f32({n, c});
        run("SoftmaxCrossEntropyLoss", {Attr("reduction", reduction)}, {&scores, &labels},
            {&loss, &log_prob});
        double want = 0;
        std::vector<double> want_lp(n * c);
        for (int64_t r = 0; r < n; ++r) {
            double m = -INFINITY, s = 0;
            for (int64_t j = 0; j < c; ++j) m = std::max(m, double(scores.f[r * c + j]));
            for (int64_t j = 0; j < c; ++j) s += std::exp(scores.f[r * c + j] - m);
            for (int64_t j = 0; j < c; ++j)
                want_lp[r * c + j] = scores.f[r * c + j] - m - std::log(s);
            want -= want_lp[r * c + labels.i[r]];
        }
        if (mean) want /= n;
        CHECK(loss.f[0] == doctest::Approx(want).epsilon(1e-5));
        check_close(log_prob.f, want_lp, 1e-5, 1e-6);

        Tensor loss_only = f32({});
        run("SoftmaxCrossEntropyLoss", {Attr("reduction", reduction)}, {&scores, &labels},
            {&loss_only});
        CHECK(loss_only.f[0] == loss.f[0]);

        Tensor dloss = f32({}, {0.7f}), dscores = f32({n, c});
        run("SoftmaxCrossEntropyLossGrad", {Attr("reduction", reduction)},
            {&dloss, &log_prob, &labels}, {&dscores});
        auto forward = [&](const Tensor& in) {
            Tensor si = in, l = f32({});
            run("SoftmaxCrossEntropyLoss", {Attr("reduction", reduction)}, {&si, &labels}, {&l});
            return l.f;
        };
        check_close(dscores.f, numeric_gradient(forward, scores, {0.7f}), 1e-2, 1e-4);
    }
}

//----------------------------------------------------------------------------------------------
// Shape ops
//----------------------------------------------------------------------------------------------

TEST_CASE("Reshape, Flatten, Transpose, Concat, Slice and SliceGrad move the right elements") {
    Tensor x = random({2, 3, 4, 5}, 70);
    Tensor r = f32({6, 20}), fl = f32({2, 60});
    run("Reshape", {Attr("shape", Shape{6, 20})}, {&x}, {&r});
    run("Flatten", {Attr("axis", 1)}, {&x}, {&fl});
    CHECK(r.f == x.f);
    CHECK(fl.f == x.f);

    const Shape xs{2, 3, 4, 5};
    for (const Shape& perm :
         {Shape{3, 2, 1, 0}, Shape{0, 2, 1, 3}, Shape{1, 0, 3, 2}, Shape{0, 1, 3, 2}, Shape{}}) {
        const Shape p = perm.empty() ? Shape{3, 2, 1, 0} : perm;
        const Shape ys{xs[p[0]], xs[p[1]], xs[p[2]], xs[p[3]]};
        Tensor y = f32(ys);
        run("Transpose", perm.empty() ? std::vector<Attr>{} : std::vector<Attr>{Attr("perm", perm)},
            {&x}, {&y});
        std::vector<double> want(y.f.size());
        for (int64_t a = 0; a < 2; ++a)
            for (int64_t b = 0; b < 3; ++b)
                for (int64_t c = 0; c < 4; ++c)
                    for (int64_t d = 0; d < 5; ++d) {
                        const int64_t idx[4] = {a, b, c, d};
                        want[offset4(ys, idx[p[0]], idx[p[1]], idx[p[2]], idx[p[3]])] =
                            x.f[offset4(xs, a, b, c, d)];
                    }
        check_close(y.f, want, 0, 0);
    }

    // Concat of i64 tensors along each axis.
    Tensor a = i64({2, 2}, {1, 2, 3, 4}), b = i64({2, 1}, {5, 6}),
           c = i64({2, 3}, {7, 8, 9, 10, 11, 12});
    Tensor out = i64({2, 6}, std::vector<int64_t>(12, 0));
    run("Concat", {Attr("axis", -1)}, {&a, &b, &c}, {&out});
    CHECK(out.i == std::vector<int64_t>{1, 2, 5, 7, 8, 9, 3, 4, 6, 10, 11, 12});
    Tensor d = i64({1, 2}, {13, 14}), rows = i64({3, 2}, std::vector<int64_t>(6, 0));
    run("Concat", {Attr("axis", 0)}, {&a, &d}, {&rows});
    CHECK(rows.i == std::vector<int64_t>{1, 2, 3, 4, 13, 14});

    // Slice: negative starts, ends past the end, steps, a subset of axes; SliceGrad scatters back.
    const std::vector<Attr> slice_attrs{Attr("starts", Shape{-3, 1}), Attr("ends", Shape{100, 5}),
                                        Attr("axes", Shape{2, 3}), Attr("steps", Shape{2, 3})};
    Tensor s = f32({2, 3, 2, 2});
    run("Slice", slice_attrs, {&x}, {&s});
    std::vector<double> want(s.f.size());
    for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 3; ++j)
            for (int64_t k = 0; k < 2; ++k)
                for (int64_t l = 0; l < 2; ++l)
                    want[offset4({2, 3, 2, 2}, i, j, k, l)] =
                        x.f[offset4(xs, i, j, 1 + 2 * k, 1 + 3 * l)];
    check_close(s.f, want, 0, 0);

    std::vector<Attr> grad_attrs = slice_attrs;
    grad_attrs.emplace_back("input_shape", xs);
    Tensor dx = random(xs, 71);  // garbage that must be overwritten
    run("SliceGrad", grad_attrs, {&s}, {&dx});
    for (int64_t i = 0; i < x.size(); ++i) {
        const int64_t k = (i / 5) % 4, l = i % 5;
        const bool inside = k >= 1 && (k - 1) % 2 == 0 && l >= 1 && (l - 1) % 3 == 0;
        CHECK(dx.f[i] == (inside ? x.f[i] : 0.0f));
    }
    Tensor empty = f32({2, 0, 4, 5});
    run("Slice", {Attr("starts", Shape{2}), Attr("ends", Shape{1}), Attr("axes", Shape{1})}, {&x},
        {&empty});
}

//----------------------------------------------------------------------------------------------
// Reductions
//----------------------------------------------------------------------------------------------

TEST_CASE("ReduceSum, ReduceMean, ReduceMax, ReduceGrad and SumToShape") {
    const Shape xs{3, 4, 5, 2};
    Tensor x = random(xs, 80, -4, 4);
    x.f[offset4(xs, 1, 2, 0, 1)] = x.f[offset4(xs, 1, 2, 3, 1)] = 9.0f;  // a tied maximum
    const Shape axes_cases[] = {{}, {0}, {1}, {3}, {0, 2}, {1, 3}, {-1, 0}, {1, 2, 3}};
    Threads scope(3);
    for (const Shape& axes : axes_cases) {
        std::vector<bool> reduce(4, axes.empty());
        for (int64_t a : axes) reduce[a < 0 ? a + 4 : a] = true;
        for (int keepdims = 0; keepdims < 2; ++keepdims) {
            Shape ys;
            for (int k = 0; k < 4; ++k)
                if (!reduce[k])
                    ys.push_back(xs[k]);
                else if (keepdims)
                    ys.push_back(1);
            // Output index of each input element (row-major over the kept dims).
            std::vector<int64_t> out_of(x.f.size());
            int64_t count = 1;
            for (int k = 0; k < 4; ++k) count *= reduce[k] ? xs[k] : 1;
            for (int64_t i = 0; i < x.size(); ++i) {
                int64_t rest = i, o = 0, stride = 1;
                for (int k = 3; k >= 0; --k) {
                    const int64_t index = rest % xs[k];
                    rest /= xs[k];
                    if (!reduce[k]) {
                        o += index * stride;
                        stride *= xs[k];
                    }
                }
                out_of[i] = o;
            }
            const int64_t outputs = x.size() / count;
            std::vector<Attr> attrs{Attr("keepdims", keepdims)};
            if (!axes.empty()) attrs.emplace_back("axes", axes);
            for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax"}) {
                CAPTURE(op);
                CAPTURE(axes.size());
                CAPTURE(keepdims);
                const std::string name = op;
                Tensor y = f32(ys);
                run(op, attrs, {&x}, {&y});
                std::vector<double> want(outputs, name == "ReduceMax" ? -INFINITY : 0.0);
                for (int64_t i = 0; i < x.size(); ++i) {
                    double& w = want[out_of[i]];
                    w = name == "ReduceMax" ? std::max(w, double(x.f[i])) : w + x.f[i];
                }
                if (name == "ReduceMean")
                    for (double& w : want) w /= count;
                check_close(y.f, want, 1e-5, 1e-5);

                const std::string mode = name == "ReduceSum"    ? "sum"
                                         : name == "ReduceMean" ? "mean"
                                                                : "max";
                std::vector<Attr> grad_attrs = attrs;
                grad_attrs.emplace_back("mode", mode);
                Tensor dy = random(ys, 81), dx = random(xs, 82);
                run("ReduceGrad", grad_attrs, {&dy, &x, &y}, {&dx});
                std::vector<double> want_dx(x.f.size(), 0.0);
                std::vector<bool> taken(outputs, false);
                for (int64_t i = 0; i < x.size(); ++i) {
                    const int64_t o = out_of[i];
                    if (mode == "max") {
                        if (!taken[o] && x.f[i] == y.f[o]) want_dx[i] = dy.f[o], taken[o] = true;
                    } else {
                        want_dx[i] = dy.f[o] / (mode == "mean" ? count : 1);
                    }
                }
                check_close(dx.f, want_dx, 1e-6, 1e-7);
            }
        }
    }
    // SumToShape: the gradient of broadcasting to xs.
    for (const Shape& target :
         {Shape{4, 1, 2}, Shape{2}, Shape{1, 1, 5, 1}, Shape{3, 4, 5, 2}, Shape{}, Shape{5, 2}}) {
        CAPTURE(target.size());
        Tensor y = f32(target);
        run("SumToShape", {Attr("shape", target)}, {&x}, {&y});
        std::vector<double> want(y.f.size(), 0.0);
        for (int64_t i = 0; i < x.size(); ++i) {
            int64_t rest = i, o = 0, stride = 1;
            for (int k = 3; k >= 0; --k) {
                const int64_t index = rest % xs[k];
                rest /= xs[k];
                const int64_t t = k - (4 - static_cast<int>(target.size()));
                if (t >= 0 && target[t] != 1) {
                    o += index * stride;
                    stride *= target[t];
                }
            }
            want[o] += x.f[i];
        }
        check_close(y.f, want, 1e-5, 1e-5);
    }
}

//----------------------------------------------------------------------------------------------
// Dropout
//----------------------------------------------------------------------------------------------

TEST_CASE(
    "Dropout draws a reproducible Bernoulli mask from the exec seed, independent of threads") {
    const Shape shape{200, 500};
    Tensor x = random(shape, 90);
    const std::vector<Attr> attrs{Attr("ratio", 0.3), Attr("training_mode", 1)};
    Tensor y1 = f32(shape), m1 = u8(shape);
    threaded_host::install(1);
    run("Dropout", attrs, {&x}, {&y1, &m1});
    const double kept = std::count(m1.u.begin(), m1.u.end(), uint8_t{1}) / double(m1.u.size());
    CHECK(kept == doctest::Approx(0.7).epsilon(0.01));
    for (size_t i = 0; i < x.f.size(); ++i) {
        REQUIRE(m1.u[i] <= 1);
        CHECK(y1.f[i] == (m1.u[i] ? x.f[i] * (1.0f / 0.7f) : 0.0f));
    }
    {
        Threads scope(3);
        Tensor y3 = f32(shape), m3 = u8(shape), y_only = f32(shape);
        run("Dropout", attrs, {&x}, {&y3, &m3});
        run("Dropout", attrs, {&x}, {&y_only});
        CHECK(m3.u == m1.u);
        CHECK(y3.f == y1.f);
        CHECK(y_only.f == y1.f);
    }
    threaded_host::seed() = 1234;
    Tensor y2 = f32(shape), m2 = u8(shape);
    run("Dropout", attrs, {&x}, {&y2, &m2});
    CHECK(m2.u != m1.u);
    threaded_host::seed() = 0x5eed;

    Tensor ye = f32(shape), me = u8(shape);
    run("Dropout", {Attr("ratio", 0.3)}, {&x}, {&ye, &me});  // training_mode 0
    CHECK(ye.f == x.f);
    CHECK(std::all_of(me.u.begin(), me.u.end(), [](uint8_t v) { return v == 1; }));

    Tensor dy = random(shape, 91), dx = f32(shape);
    run("DropoutGrad", {Attr("ratio", 0.3)}, {&dy, &m1}, {&dx});
    for (size_t i = 0; i < dx.f.size(); ++i)
        CHECK(dx.f[i] == (m1.u[i] ? dy.f[i] * (1.0f / 0.7f) : 0.0f));
}

//----------------------------------------------------------------------------------------------
// Gather
//----------------------------------------------------------------------------------------------

TEST_CASE("Gather picks rows (negative indices from the end); GatherGrad adds rows back") {
    Tensor data = random({5, 2, 3}, 100), idx = i64({2, 2}, {4, 0, -1, 4}), y = f32({2, 2, 2, 3});
    run("Gather", {}, {&data, &idx}, {&y});
    const int64_t rows[] = {4, 0, 4, 4};
    for (int r = 0; r < 4; ++r)
        for (int j = 0; j < 6; ++j) CHECK(y.f[r * 6 + j] == data.f[rows[r] * 6 + j]);

    Tensor dy = random({2, 2, 2, 3}, 101), dd = random({5, 2, 3}, 102);
    Threads scope(3);
    run("GatherGrad", {Attr("input_shape", Shape{5, 2, 3})}, {&dy, &idx}, {&dd});
    std::vector<double> want(30, 0.0);
    for (int r = 0; r < 4; ++r)
        for (int j = 0; j < 6; ++j) want[rows[r] * 6 + j] += dy.f[r * 6 + j];
    check_close(dd.f, want, 1e-6, 0);

    Tensor ints = i64({3, 2}, {1, 2, 3, 4, 5, 6}), which = i64({2}, {2, 0}),
           picked = i64({2, 2}, {0, 0, 0, 0});
    run("Gather", {Attr("axis", 0)}, {&ints, &which}, {&picked});
    CHECK(picked.i == std::vector<int64_t>{5, 6, 1, 2});
}

//----------------------------------------------------------------------------------------------
// Reproducibility across thread counts
//----------------------------------------------------------------------------------------------

TEST_CASE("results are bitwise identical for 1, 2 and 5 threads and any chunk order") {
    // Every kernel whose work is split or that reduces; each runs at each thread count.
    const Shape xs{13, 6, 9, 9};
    Tensor x = random(xs, 110), w = random({8, 6, 3, 3}, 111), b = random({8}, 112);
    Tensor dyc = random({13, 8, 9, 9}, 113);
    const std::vector<Attr> conv{Attr("pads", Shape{1, 1, 1, 1})};
    std::vector<Attr> conv_gw = conv, conv_gi = conv;
    conv_gw.emplace_back("weight_shape", Shape{8, 6, 3, 3});
    conv_gi.emplace_back("input_shape", xs);
    Tensor wd = random({6, 1, 3, 3}, 114), dyd = random({13, 6, 9, 9}, 115);
    // 16 channels each way: Winograd (an image per thread; the weight gradient in batch blocks)
    const Shape wxs{13, 16, 5, 6};
    Tensor wx = random(wxs, 123), ww = random({16, 16, 3, 3}, 124), wdy = random({13, 16, 5, 6}, 125);
    std::vector<Attr> wconv_gw = conv, wconv_gi = conv;
    wconv_gw.emplace_back("weight_shape", Shape{16, 16, 3, 3});
    wconv_gi.emplace_back("input_shape", wxs);
    std::vector<Attr> dw_attrs{Attr("pads", Shape{1, 1, 1, 1}), Attr("group", 6),
                               Attr("weight_shape", Shape{6, 1, 3, 3})};
    Tensor scale = random({6}, 116), bias = random({6}, 117), mean = f32({6}),
           var = f32({6}, std::vector<float>(6, 1));
    Tensor ln_scale = random({9}, 118), labels = i64({13}, {0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0});
    Tensor scores = random({13, 6}, 119), big = random({3000, 70}, 120),
           idx = i64({6}, {1, 1, 0, 2, 1, 0});

    auto everything = [&]() {
        std::vector<std::vector<float>> results;
        auto keep = [&](const Tensor& t) { results.push_back(t.f); };
        Tensor y = f32({13, 8, 9, 9}), dx = f32(xs), dw = f32({8, 6, 3, 3}),
               ddw = f32({6, 1, 3, 3});
        run("Conv", conv, {&x, &w, &b}, {&y});
        run("ConvGradInput", conv_gi, {&dyc, &w}, {&dx});
        run("ConvGradWeight", conv_gw, {&dyc, &x}, {&dw});
        run("ConvGradWeight", dw_attrs, {&dyd, &x}, {&ddw});
        keep(y), keep(dx), keep(dw), keep(ddw);
        Tensor wy = f32({13, 16, 5, 6}), wdx = f32(wxs), wdw = f32({16, 16, 3, 3});
        run("Conv", conv, {&wx, &ww}, {&wy});
        run("ConvGradInput", wconv_gi, {&wdy, &ww}, {&wdx});
        run("ConvGradWeight", wconv_gw, {&wdy, &wx}, {&wdw});
        keep(wy), keep(wdx), keep(wdw);
        Tensor m = mean, v = var, bn = f32(xs), sm = f32({6}), si = f32({6});
        run("BatchNormalization", {Attr("training_mode", 1)}, {&x, &scale, &bias, &m, &v},
            {&bn, &sm, &si});
        Tensor bdx = f32(xs), bds = f32({6}), bdb = f32({6});
        run("BatchNormalizationGrad", {Attr("training_mode", 1)}, {&dyd, &x, &scale, &sm, &si},
            {&bdx, &bds, &bdb});
        keep(bn), keep(m), keep(v), keep(bdx), keep(bds), keep(bdb);
        Tensor ln = f32(xs), lm = f32({13, 6, 9, 1}), li = f32({13, 6, 9, 1});
        run("LayerNormalization", {}, {&x, &ln_scale}, {&ln, &lm, &li});
        Tensor ldx = f32(xs), lds = f32({9}), ldb = f32({9});
        run("LayerNormalizationGrad", {}, {&dyd, &x, &ln_scale, &lm, &li}, {&ldx, &lds, &ldb});
        keep(ln), keep(ldx), keep(lds), keep(ldb);
        Tensor rs = f32({70}), rm = f32({3000}), st = f32({6, 1, 1});
        run("ReduceSum", {Attr("axes", Shape{0}), Attr("keepdims", 0)}, {&big}, {&rs});
        run("ReduceMean", {Attr("axes", Shape{1}), Attr("keepdims", 0)}, {&big}, {&rm});
        run("SumToShape", {Attr("shape", Shape{6, 1, 1})}, {&x}, {&st});
        keep(rs), keep(rm), keep(st);
        Tensor loss = f32({}), lp = f32({13, 6}), ds = f32({13, 6}), one = f32({}, {1.0f});
        run("SoftmaxCrossEntropyLoss", {}, {&scores, &labels}, {&loss, &lp});
        run("SoftmaxCrossEntropyLossGrad", {}, {&one, &lp, &labels}, {&ds});
        keep(loss), keep(ds);
        Tensor gd = f32({3, 70}), rows = random({6, 70}, 121);
        run("GatherGrad", {Attr("input_shape", Shape{3, 70})}, {&rows, &idx}, {&gd});
        keep(gd);
        Tensor gemm = f32({3000, 6}), wt = random({6, 70}, 122);
        run("Gemm", {Attr("transB", 1)}, {&big, &wt}, {&gemm});
        keep(gemm);
        return results;
    };
    threaded_host::install(1);
    const auto one = everything();
    {
        // fake_host's parallel_for runs the chunks last to first: no result may depend on order.
        fake_host::install();
        const auto reversed = everything();
        threaded_host::install(1);
        REQUIRE(reversed.size() == one.size());
        for (size_t k = 0; k < one.size(); ++k) CHECK(reversed[k] == one[k]);
    }
    for (uint32_t threads : {2u, 5u}) {
        Threads scope(threads);
        const auto many = everything();
        REQUIRE(many.size() == one.size());
        for (size_t k = 0; k < one.size(); ++k) {
            CAPTURE(k);
            CHECK(many[k] == one[k]);
        }
    }
}

//----------------------------------------------------------------------------------------------
// FusedGemm, FusedConv
//----------------------------------------------------------------------------------------------

namespace {

// The activations a fused node takes ("" is none), as the op and attributes of the standalone
// node and the attributes of the fused one.
struct FusedActivation {
    const char* op;  // "" for none
    std::vector<Attr> standalone, fused;
};

std::vector<FusedActivation> fused_activations() {
    std::vector<FusedActivation> all;
    for (const char* op :
         {"", "Relu", "Sigmoid", "Tanh", "Gelu", "Silu", "HardSwish", "HardSigmoid"})
        all.push_back({op, {}, {Attr("activation", op)}});
    all.push_back({"HardSigmoid",
                   {Attr("alpha", 0.4), Attr("beta", 0.3)},
                   {Attr("activation", "HardSigmoid"), Attr("activation_alpha", 0.4),
                    Attr("activation_beta", 0.3)}});
    return all;
}

// Runs `op` (Gemm or Conv) then the activation as separate kernels, and the fused op, with and
// without Z, and requires the same bits: Y equal to the activation's output, Z to op's.
void check_fused_equals_unfused(const char* op, const char* fused_op,
                                const std::vector<Attr>& attrs, const std::vector<Tensor*>& inputs,
                                const Shape& y_shape) {
    for (const FusedActivation& a : fused_activations()) {
        CAPTURE(a.op);
        CAPTURE(a.standalone.size());
        Tensor z = f32(y_shape), y = f32(y_shape);
        run(op, attrs, inputs, {&z});
        if (a.op[0] != '\0')
            run(a.op, a.standalone, {&z}, {&y});
        else
            y = z;
        std::vector<Attr> fused_attrs = attrs;
        fused_attrs.insert(fused_attrs.end(), a.fused.begin(), a.fused.end());
        // Poisoned outputs: every element must be written.
        Tensor fy = f32(y_shape, std::vector<float>(y.f.size(), std::nanf(""))), fz = fy,
               fy_only = fy;
        run(fused_op, fused_attrs, inputs, {&fy, &fz});
        run(fused_op, fused_attrs, inputs, {&fy_only});
        CHECK(same_bits(fy.f, y.f));
        CHECK(same_bits(fz.f, z.f));
        CHECK(same_bits(fy_only.f, y.f));
    }
}

}  // namespace

TEST_CASE("FusedGemm gives bitwise Gemm then the activation for every activation and C") {
    Tensor a = random({37, 300}, 201, -2.0f, 2.0f), a1 = random({1, 300}, 202, -2.0f, 2.0f);
    Tensor b = random({300, 70}, 203), bt = random({70, 300}, 204);
    Tensor c_row = random({70}, 205), c_col = random({37, 1}, 206), c_full = random({37, 70}, 207),
           c_scalar = random({}, 208);
    // Zero times alpha -1 plus a C of -0: every Z is -0, which Relu keeps (x < 0 is false); a
    // fused Relu that tested x <= 0 would write +0.
    Tensor zeros = f32({37, 300}, std::vector<float>(37 * 300, 0.0f)), minus_zero = f32({70}, std::vector<float>(70, -0.0f));
    struct GemmCase {
        const char* what;
        std::vector<Attr> attrs;
        std::vector<Tensor*> inputs;
        Shape y;
    };
    const GemmCase cases[] = {
        {"C [N]", {}, {&a, &b, &c_row}, {37, 70}},
        {"no C", {}, {&a, &b}, {37, 70}},
        {"transB alpha beta C [M 1]",
         {Attr("transB", 1), Attr("alpha", 0.5), Attr("beta", -2.0)},
         {&a, &bt, &c_col},
         {37, 70}},
        {"C [M N] beta 0.5", {Attr("beta", 0.5)}, {&a, &b, &c_full}, {37, 70}},
        {"C scalar", {}, {&a, &b, &c_scalar}, {37, 70}},
        {"batch 1 C [N] transB", {Attr("transB", 1)}, {&a1, &bt, &c_row}, {1, 70}},
        {"beta 0 ignores C", {Attr("beta", 0.0)}, {&a, &b, &c_row}, {37, 70}},
        {"signed zeros", {Attr("alpha", -1.0)}, {&zeros, &b, &minus_zero}, {37, 70}},
    };
    for (uint32_t threads : {1u, 2u, 5u}) {
        Threads scope(threads);
        CAPTURE(threads);
        for (const GemmCase& c : cases) {
            CAPTURE(c.what);
            check_fused_equals_unfused("Gemm", "FusedGemm", c.attrs, c.inputs, c.y);
        }
    }
}

TEST_CASE("FusedGemmChain: the same bits on any thread count, close to the unfused layers, at 1 to 4 rows") {
    // 300 -> 260 (three groups of columns, the last 4 wide) -> 70 -> 9 -> 5: a pair, then a pair
    // (the four layers) or a pair and one layer (the first three); both layouts of B.
    Tensor b0 = random({260, 300}, 271), c0 = random({260}, 272), b1 = random({260, 70}, 273),
           c1 = random({1, 70}, 274), b2 = random({9, 70}, 275), c2 = random({9}, 276), b3 = random({9, 5}, 277),
           c3 = random({5}, 278);
    struct Layer {
        Tensor *b, *c;
        int64_t trans_b;
        const char* activation;
    };
    const Layer all[] = {{&b0, &c0, 1, "Relu"}, {&b1, &c1, 0, "Tanh"}, {&b2, &c2, 1, ""}, {&b3, &c3, 0, "Sigmoid"}};
    for (const int64_t rows : {1, 4}) {
        for (const size_t count : {3u, 4u}) {
            CAPTURE(rows);
            CAPTURE(count);
            Tensor a = random({rows, 300}, 279, -2.0f, 2.0f);
            std::vector<Tensor*> inputs = {&a};
            std::vector<int64_t> trans_b;
            std::string activations;
            Tensor h = a;
            for (size_t l = 0; l < count; ++l) {  // the unfused layers, one kernel each
                const Layer& layer = all[l];
                inputs.insert(inputs.end(), {layer.b, layer.c});
                trans_b.push_back(layer.trans_b);
                activations += (l ? "," : "") + std::string(layer.activation);
                const int64_t n = layer.trans_b ? layer.b->shape[0] : layer.b->shape[1];
                Tensor z = f32({rows, n});
                run("Gemm", {Attr("transB", layer.trans_b)}, {&h, layer.b, layer.c}, {&z});
                h = z;
                if (layer.activation[0]) run(layer.activation, {}, {&z}, {&h});
            }
            const std::vector<double> unfused(h.f.begin(), h.f.end());
            const std::vector<Attr> attrs = {Attr("transB", trans_b), Attr("activations", activations)};
            Call probe("FusedGemmChain", attrs, inputs, {&h});
            if (!dsk::cpu::find_kernel(&probe.node, probe.tensors.data())) {
                // Declined only without the SGEMM's few-rows path (AVX-512 or AVX2).
                CHECK_FALSE((dsk::cpu::cpu_has_avx512f() || __builtin_cpu_supports("avx2")));
                continue;
            }
            std::vector<float> one_thread;
            for (uint32_t threads : {1u, 2u, 3u}) {
                Threads scope(threads);
                CAPTURE(threads);
                Tensor y = f32(h.shape, std::vector<float>(h.f.size(), std::nanf("")));
                run("FusedGemmChain", attrs, inputs, {&y});
                check_close(y.f, unfused, 1e-4, 1e-4);  // the second layers' sums in another order
                if (threads == 1) one_thread = y.f;
                CHECK(same_bits(y.f, one_thread));
            }
        }
    }
    // Five rows: the layers run as well unfused on the packed SGEMM, and the kernel declines.
    Tensor a5 = random({5, 300}, 280), y5 = f32({5, 70});
    Call five("FusedGemmChain", {Attr("transB", std::vector<int64_t>{1, 0}), Attr("activations", "Relu,")},
              {&a5, &b0, &c0, &b1, &c1}, {&y5});
    CHECK(dsk::cpu::find_kernel(&five.node, five.tensors.data()) == nullptr);
}

TEST_CASE("FusedGemmChain names a layer that does not chain") {
    Tensor a = random({1, 8}, 281), b0 = random({8, 6}, 282), c0 = random({6}, 283), b1 = random({5, 4}, 284),
           c1 = random({4}, 285), y = f32({1, 4});
    const fake_host::Outcome o = call("FusedGemmChain", {Attr("transB", std::vector<int64_t>{0, 0}), Attr("activations", ",")},
                                      {&a, &b0, &c0, &b1, &c1}, {&y});
    CHECK(o.code == DSK_INVALID_ARGUMENT);
    CHECK_MESSAGE(o.message.find("layer 1 does not chain") != std::string::npos, o.message);
}

TEST_CASE("FusedConv gives bitwise Conv then the activation for every activation and bias") {
    Tensor x = random({3, 6, 9, 9}, 211, -2.0f, 2.0f), w = random({8, 6, 3, 3}, 212),
           bias = random({8}, 213);
    Tensor x1 = random({1, 32, 14, 14}, 214, -2.0f, 2.0f), w1 = random({64, 32, 3, 3}, 215),
           bias1 = random({64}, 216);
    Tensor wg = random({8, 3, 3, 3}, 217), wd = random({6, 1, 3, 3}, 218), bd = random({6}, 219),
           w11 = random({4, 6, 1, 1}, 220), b4 = random({4}, 221);
    const Attr pads("pads", Shape{1, 1, 1, 1});
    struct ConvCase {
        const char* what;
        std::vector<Attr> attrs;
        std::vector<Tensor*> inputs;
        Shape y;
    };
    const ConvCase cases[] = {
        {"3x3 pads 1 with bias", {pads}, {&x, &w, &bias}, {3, 8, 9, 9}},
        {"3x3 without bias", {}, {&x, &w}, {3, 8, 7, 7}},
        {"batch 1 K 288 parallel SGEMM", {pads}, {&x1, &w1, &bias1}, {1, 64, 14, 14}},
        {"group 2 strides 2",
         {Attr("group", 2), Attr("strides", Shape{2, 2})},
         {&x, &wg, &bias},
         {3, 8, 4, 4}},
        {"depthwise", {Attr("group", 6), pads}, {&x, &wd, &bd}, {3, 6, 9, 9}},
        {"depthwise without bias", {Attr("group", 6)}, {&x, &wd}, {3, 6, 7, 7}},
        {"1x1", {}, {&x, &w11, &b4}, {3, 4, 9, 9}},
    };
    for (uint32_t threads : {1u, 2u, 5u}) {
        Threads scope(threads);
        CAPTURE(threads);
        for (const ConvCase& c : cases) {
            CAPTURE(c.what);
            check_fused_equals_unfused("Conv", "FusedConv", c.attrs, c.inputs, c.y);
        }
    }
}

TEST_CASE("FusedConvMaxPool gives bitwise Conv, the Relu and the 2x2 MaxPool, for what the direct and Winograd paths take") {
    Tensor x1 = random({3, 1, 28, 28}, 241, -2.0f, 2.0f), w1 = random({32, 1, 3, 3}, 242), b1 = random({32}, 243);
    Tensor x2 = random({2, 32, 14, 14}, 244, -2.0f, 2.0f), w2 = random({64, 32, 3, 3}, 245), b2 = random({64}, 246);
    Tensor x3 = random({2, 5, 7, 9}, 247, -2.0f, 2.0f), w3 = random({12, 5, 3, 3}, 248);
    Tensor x4 = random({2, 16, 6, 6}, 249, -2.0f, 2.0f), w4 = random({16, 8, 3, 3}, 250), b4 = random({16}, 251);
    Tensor x5 = random({3, 16, 7, 9}, 253, -2.0f, 2.0f), w5 = random({32, 16, 3, 3}, 254);
    // A NaN input makes NaN outputs around it, which win their pool windows as in MaxPool.
    Tensor x6 = x1;
    x6.f[1 * 784 + 10 * 28 + 13] = std::nanf("");
    const Attr pads("pads", Shape{1, 1, 1, 1});
    struct PoolCase {
        const char* what;
        std::vector<Attr> attrs;
        std::vector<Tensor*> inputs;
        Shape conv;
    };
    const PoolCase cases[] = {
        {"the CNN's first layer", {pads}, {&x1, &w1, &b1}, {3, 32, 28, 28}},
        {"the CNN's second layer", {pads}, {&x2, &w2, &b2}, {2, 64, 14, 14}},
        {"odd plane, 8 + 4 channels, no bias", {pads}, {&x3, &w3}, {2, 12, 7, 9}},
        {"group 2", {pads, Attr("group", 2)}, {&x4, &w4, &b4}, {2, 16, 6, 6}},
        {"Winograd (as the second layer), odd plane, no bias", {pads}, {&x5, &w5}, {3, 32, 7, 9}},
        {"the first layer, a NaN in the input", {pads}, {&x6, &w1, &b1}, {3, 32, 28, 28}},
    };
    const std::vector<Attr> pool = {Attr("kernel_shape", Shape{2, 2}), Attr("strides", Shape{2, 2})};
    auto supported = [](const std::vector<Attr>& attrs, const std::vector<Tensor*>& in, Tensor* out) {
        Call call("FusedConvMaxPool", attrs, in, {out});
        return dsk::cpu::has_kernel(&call.node, call.tensors.data());
    };
    Tensor y2 = f32({2, 64, 7, 7}), w_few = random({4, 32, 3, 3}, 252), y_few = f32({2, 4, 7, 7});
    for (uint32_t threads : {1u, 2u, 5u}) {
        Threads scope(threads);
        CAPTURE(threads);
        for (const PoolCase& c : cases) {
            CAPTURE(c.what);
            const Shape pooled = {c.conv[0], c.conv[1], c.conv[2] / 2, c.conv[3] / 2};
            // Every case is the direct path's or Winograd's, which AVX-512 and AVX2 both have.
            Tensor probe = f32(pooled);
            const bool taken = supported(c.attrs, c.inputs, &probe);
            CHECK(taken == dsk::cpu::direct_conv_available());
            if (!taken) continue;
            for (const char* activation : {"", "Relu"}) {
                CAPTURE(activation);
                Tensor z = f32(c.conv), y = f32(pooled);
                run("Conv", c.attrs, c.inputs, {&z});
                if (activation[0] != '\0') run(activation, {}, {&z}, {&z});
                run("MaxPool", pool, {&z}, {&y});
                std::vector<Attr> fused_attrs = c.attrs;
                fused_attrs.push_back(Attr("activation", activation));
                Tensor fy = f32(pooled, std::vector<float>(y.f.size(), std::nanf("")));  // every element written
                run("FusedConvMaxPool", fused_attrs, c.inputs, {&fy});
                CHECK(same_bits(fy.f, y.f));
            }
        }
    }
    // Only the direct path's and Winograd's convolutions, with no activation or Relu.
    if (!dsk::cpu::winograd_available()) return;
    CHECK(supported({pads, Attr("activation", "Relu")}, {&x2, &w2, &b2}, &y2));
    CHECK_FALSE(supported({pads, Attr("activation", "Sigmoid")}, {&x2, &w2, &b2}, &y2));
    CHECK_FALSE(supported({pads, Attr("strides", Shape{2, 2})}, {&x2, &w2, &b2}, &y2));
    CHECK_FALSE(supported({}, {&x2, &w2, &b2}, &y2));  // 12 x 12: not the input's size
    CHECK_FALSE(supported({pads}, {&x2, &w_few}, &y_few));
}

TEST_CASE("FusedGemm and FusedConv refuse an activation they do not fuse") {
    Tensor a = random({2, 3}, 231), b = random({3, 4}, 232), y = f32({2, 4});
    for (const char* activation : {"Neg", "Softplus"}) {
        const fake_host::Outcome o =
            call("FusedGemm", {Attr("activation", activation)}, {&a, &b}, {&y});
        CHECK(o.code == DSK_INVALID_ARGUMENT);
        CHECK_MESSAGE(o.message.find(activation) != std::string::npos, o.message);
    }
    Tensor x = random({1, 1, 3, 3}, 233), w = random({1, 1, 3, 3}, 234), yc = f32({1, 1, 1, 1});
    const fake_host::Outcome o = call("FusedConv", {Attr("activation", "Elu")}, {&x, &w}, {&yc});
    CHECK(o.code == DSK_INVALID_ARGUMENT);
    CHECK_MESSAGE(o.message.find("Elu") != std::string::npos, o.message);
}

//----------------------------------------------------------------------------------------------
// FusedElementwise
//----------------------------------------------------------------------------------------------

namespace {

// One instruction of a test program, run unfused: op, attributes, operands ("x0", "t1").
struct Unfused {
    const char* op;
    std::vector<Attr> attrs;
    std::vector<const char*> operands;
    Shape shape;  // the result's shape (the output's, or an input's for a unary op on it)
};

// Runs `steps` one kernel at a time and `program` as one FusedElementwise node over `inputs`:
// the results must be bitwise equal (the fused kernel runs the unfused kernels' loops).
void check_program(const std::string& program, const std::vector<Unfused>& steps,
                   const std::vector<Tensor*>& inputs) {
    CAPTURE(program);
    std::vector<Tensor> temps;
    temps.reserve(steps.size());
    for (const Unfused& step : steps) {
        std::vector<Tensor*> operands;
        for (const char* o : step.operands) {
            const size_t k = static_cast<size_t>(std::stoul(o + 1));
            operands.push_back(o[0] == 'x' ? inputs[k] : &temps[k]);
        }
        temps.push_back(f32(step.shape));
        run(step.op, step.attrs, operands, {&temps.back()});
    }
    Tensor fused = f32(temps.back().shape);
    run("FusedElementwise", {Attr("program", program.c_str())}, inputs, {&fused});
    REQUIRE(fused.f.size() == temps.back().f.size());
    size_t differ = 0;
    for (size_t k = 0; k < fused.f.size(); ++k) differ += std::memcmp(&fused.f[k], &temps.back().f[k], sizeof(float)) != 0;
    CHECK_MESSAGE(differ == 0, differ << " of " << fused.f.size() << " elements differ");
}

}  // namespace

TEST_CASE("FusedElementwise gives bitwise the unfused ops, with every broadcast it maps") {
    // 3001 x 7 elements: several blocks, a partial last one, chunks over the threads.
    Tensor x = random({3001, 7}, 301, -4.0f, 4.0f), z = random({3001, 7}, 302, -4.0f, 4.0f);
    Tensor row = random({7}, 303), col = random({3001, 1}, 304, 0.5f, 2.0f), scalar = random({}, 305);
    Tensor img = random({3, 5, 37, 41}, 306, -4.0f, 4.0f), channel = random({5, 1, 1}, 307, 0.5f, 2.0f);
    Tensor channel4 = random({1, 5, 1, 1}, 308), bias = random({41}, 309);
    const Shape y = {3001, 7}, yi = {3, 5, 37, 41};
    for (uint32_t threads : {1u, 2u, 5u}) {
        Threads scope(threads);
        CAPTURE(threads);
        check_program("Add(x0,x1);Relu(t0);Mul(t1,x2);Sigmoid(t2);Sub(t3,x3);Div(t4,x4)",
                      {{"Add", {}, {"x0", "x1"}, y},
                       {"Relu", {}, {"t0"}, y},
                       {"Mul", {}, {"t1", "x2"}, y},
                       {"Sigmoid", {}, {"t2"}, y},
                       {"Sub", {}, {"t3", "x3"}, y},
                       {"Div", {}, {"t4", "x4"}, y}},
                      {&x, &row, &scalar, &z, &col});
        check_program("Tanh(x0);Gelu(x0);Mul(t0,t1);Silu(t2);HardSwish(t3);Neg(t4);Add(t5,x1)",
                      {{"Tanh", {}, {"x0"}, y},
                       {"Gelu", {}, {"x0"}, y},
                       {"Mul", {}, {"t0", "t1"}, y},
                       {"Silu", {}, {"t2"}, y},
                       {"HardSwish", {}, {"t3"}, y},
                       {"Neg", {}, {"t4"}, y},
                       {"Add", {}, {"t5", "x1"}, y}},
                      {&x, &z});
        check_program("Gelu[approximate=tanh](x0);HardSigmoid[alpha=0.3,beta=0.4](t0);ActivationGrad[activation=Sigmoid](t1,x1);"
                      "ActivationGrad[activation=HardSigmoid,alpha=0.25](t2,x0)",
                      {{"Gelu", {Attr("approximate", "tanh")}, {"x0"}, y},
                       {"HardSigmoid", {Attr("alpha", 0.3), Attr("beta", 0.4)}, {"t0"}, y},
                       {"ActivationGrad", {Attr("activation", "Sigmoid")}, {"t1", "x1"}, y},
                       {"ActivationGrad", {Attr("activation", "HardSigmoid"), Attr("alpha", 0.25)}, {"t2", "x0"}, y}},
                      {&x, &z});
        check_program("Mul(x0,x1);Add(t0,x2);Relu(t1);Sub(x3,t2)",  // batch-norm-like channel affine
                      {{"Mul", {}, {"x0", "x1"}, yi},
                       {"Add", {}, {"t0", "x2"}, yi},
                       {"Relu", {}, {"t1"}, yi},
                       {"Sub", {}, {"x3", "t2"}, yi}},
                      {&img, &channel, &channel4, &bias});
        check_program("Neg(x0);Mul(t0,t0)", {{"Neg", {}, {"x0"}, y}, {"Mul", {}, {"t0", "t0"}, y}}, {&x});
    }
}

TEST_CASE("FusedElementwise refuses programs and broadcasts it cannot run, naming the problem") {
    Tensor x = random({4, 3, 5}, 311), mid = random({4, 1, 5}, 312), y = f32({4, 3, 5}), w = random({3, 5}, 313);
    Call ok("FusedElementwise", {Attr("program", "Add(x0,x1)")}, {&x, &w}, {&y});
    CHECK(dsk::cpu::find_kernel(&ok.node, ok.tensors.data()) != nullptr);
    // [4, 1, 5] stretches along the middle dimension only: two runs of dimensions.
    Call split("FusedElementwise", {Attr("program", "Add(x0,x1)")}, {&x, &mid}, {&y});
    CHECK(dsk::cpu::find_kernel(&split.node, split.tensors.data()) == nullptr);
    const fake_host::Outcome o = call("FusedElementwise", {Attr("program", "Add(x0,x1)")}, {&x, &mid}, {&y});
    CHECK(o.code == DSK_INVALID_ARGUMENT);
    CHECK_MESSAGE(o.message.find("x1 [4, 1, 5]") != std::string::npos, o.message);
    const struct {
        const char* program;
        const char* says;
    } bad[] = {
        {"Exp(x0)", "not an op of programs"},
        {"Relu(x0,x0)", "takes 1 operands"},
        {"Relu(t0)", "t0 does not exist"},
        {"Relu(x1)", "x1 does not exist"},
        {"Relu(x0", "expected ')'"},
        {"ActivationGrad[activation=Neg](x0,x0)", "Neg has no ActivationGrad"},
        {"Gelu[approximate=erf](x0)", "approximate"},
        {"HardSigmoid[alpha=big](x0)", "is not a number"},
        {"Relu[alpha=1](x0)", "Relu has no attribute"},
    };
    for (const auto& b : bad) {
        CAPTURE(b.program);
        const fake_host::Outcome r = call("FusedElementwise", {Attr("program", b.program)}, {&x}, {&y});
        CHECK(r.code == DSK_INVALID_ARGUMENT);
        CHECK_MESSAGE(r.message.find(b.says) != std::string::npos, r.message);
    }
}

//----------------------------------------------------------------------------------------------
// Threads per op (sdk/include/dsk/dsk_work.hpp): which loops reach the pool
//----------------------------------------------------------------------------------------------

namespace {


// The CNN of configs/cnn.toml forward at `batch` (conv 3x3 32, maxpool, conv 3x3 64, maxpool,
// fc 128, fc 10): the parallel_for calls that reached the pool.
size_t cnn_forward_pool_calls(int64_t batch) {
    threaded_host::CountedPool pool;
    const std::vector<Attr> conv{Attr("pads", Shape{1, 1, 1, 1})};
    const std::vector<Attr> pool2{Attr("kernel_shape", Shape{2, 2}), Attr("strides", Shape{2, 2})};
    Tensor x = random({batch, 1, 28, 28}, 401), w1 = random({32, 1, 3, 3}, 402),
           b1 = random({32}, 403), w2 = random({64, 32, 3, 3}, 404), b2 = random({64}, 405),
           f1 = random({128, 3136}, 406), c1 = random({128}, 407), f2 = random({10, 128}, 408),
           c2 = random({10}, 409);
    Tensor y1 = f32({batch, 32, 28, 28}), p1 = f32({batch, 32, 14, 14}),
           y2 = f32({batch, 64, 14, 14}), p2 = f32({batch, 64, 7, 7}), h = f32({batch, 128}),
           r = f32({batch, 128}), logits = f32({batch, 10});
    run("Conv", conv, {&x, &w1, &b1}, {&y1});
    run("Relu", {}, {&y1}, {&y1});
    run("MaxPool", pool2, {&y1}, {&p1});
    run("Conv", conv, {&p1, &w2, &b2}, {&y2});
    run("Relu", {}, {&y2}, {&y2});
    run("MaxPool", pool2, {&y2}, {&p2});
    Tensor flat = p2;
    flat.shape = {batch, 3136};
    run("Gemm", {Attr("transB", 1)}, {&flat, &f1, &c1}, {&h});
    run("Relu", {}, {&h}, {&r});
    run("Gemm", {Attr("transB", 1)}, {&r, &f2, &c2}, {&logits});
    return threaded_host::pool_calls();
}

}  // namespace

TEST_CASE("integer MatMul and Conv of a few rows run on the calling thread; large ones split") {
    // Before the work rule both split one row or plane per chunk over the pool, whatever its size.
    auto pool_calls_of = [](const char* op, const Shape& a_shape, const Shape& b_shape, const Shape& y_shape) {
        threaded_host::CountedPool pool;
        Tensor a = u8(a_shape), b = u8(b_shape), y = f32(y_shape);
        y.dtype = DSK_DTYPE_I32;  // four bytes a sum, in the float storage
        for (size_t k = 0; k < a.u.size(); ++k) a.u[k] = static_cast<uint8_t>(k % 7);
        for (size_t k = 0; k < b.u.size(); ++k) b.u[k] = static_cast<uint8_t>(k % 5);
        run(op, {}, {&a, &b}, {&y});
        int32_t first = 0;
        std::memcpy(&first, y.f.data(), sizeof first);
        return std::make_pair(threaded_host::pool_calls(), first);
    };
    // 8 x 16 x 32: 4K multiply-adds. The first sum: row 0 of A (k % 7) times column 0 of B.
    int32_t expected = 0;
    for (int k = 0; k < 16; ++k) expected += (k % 7) * ((k * 32) % 5);
    CHECK(pool_calls_of("MatMulInteger", {8, 16}, {16, 32}, {8, 32}) == std::make_pair(size_t{0}, expected));
    CHECK(pool_calls_of("MatMulInteger", {512, 512}, {512, 512}, {512, 512}).first == 1);  // 134M
    CHECK(pool_calls_of("ConvInteger", {1, 2, 6, 6}, {4, 2, 3, 3}, {1, 4, 4, 4}).first == 0);
    CHECK(pool_calls_of("ConvInteger", {16, 32, 14, 14}, {64, 32, 3, 3}, {16, 64, 12, 12}).first == 1);
}

TEST_CASE("the CNN's batch-1 forward ops run on the calling thread; at batch 64 they split") {
    // Before the work rule, batch 1 reached the pool 4 times: the first Relu and MaxPool (more
    // than 16384 elements), conv2's SGEMM (more than 64^3 multiply-adds) and fc1 (more than 64K).
    CHECK(cnn_forward_pool_calls(1) == 0);
    CHECK(cnn_forward_pool_calls(64) >= 5);  // the convolutions, pools, activations and fc1
}


TEST_CASE("Gemm, MatMul and the direct and Winograd convolutions keep what they derive from B or W while its version stays") {
    cached_host::Scope scope;
    const Attr pads("pads", Shape{1, 1, 1, 1});
    const std::vector<Attr> pool_relu = {pads, Attr("activation", "Relu")};
    struct Case {
        const char* op;
        std::vector<Attr> attrs;
        Shape a, b, y;
        bool keeps;  // this CPU takes the path that keeps something (AVX-512 or AVX2)
    };
    const bool direct = dsk::cpu::direct_conv_available(), winograd = dsk::cpu::winograd_available();
    const Case cases[] = {
        {"Gemm", {Attr("transB", 1)}, {8, 20}, {12, 20}, {8, 12}, true},
        {"MatMul", {}, {9, 20}, {20, 40}, {9, 40}, true},
        {"Gemm", {Attr("transB", 1)}, {2, 20}, {12, 20}, {2, 12}, false},  // few rows: B read in place
        {"Conv", {pads}, {2, 8, 10, 10}, {16, 8, 3, 3}, {2, 16, 10, 10}, direct},
        {"FusedConvMaxPool", pool_relu, {2, 8, 10, 10}, {16, 8, 3, 3}, {2, 16, 5, 5}, direct},
        {"ConvGradInput", {pads, Attr("input_shape", Shape{2, 8, 10, 10})}, {2, 16, 10, 10}, {16, 8, 3, 3},
         {2, 8, 10, 10}, direct},
        // 16 channels each way: Winograd's transformed weights (conv_winograd.h)
        {"Conv", {pads}, {2, 16, 6, 6}, {32, 16, 3, 3}, {2, 32, 6, 6}, winograd},
        {"FusedConvMaxPool", pool_relu, {2, 16, 6, 6}, {32, 16, 3, 3}, {2, 32, 3, 3}, winograd},
        {"ConvGradInput", {pads, Attr("input_shape", Shape{2, 16, 6, 6})}, {2, 32, 6, 6}, {32, 16, 3, 3},
         {2, 16, 6, 6}, winograd},
    };
    uint32_t seed = 900;
    for (const Case& c : cases) {
        const std::string what = std::string(c.op) + " with " + std::to_string(c.a[0]) + " rows/images";
        CAPTURE(what);
        if (std::string(c.op) == "FusedConvMaxPool" && !c.keeps) continue;  // no kernel for it on this CPU
        Tensor a = random(c.a, seed++), b = random(c.b, seed++);
        Tensor uncached = f32(c.y), first = f32(c.y), again = f32(c.y), renewed = f32(c.y);
        cached_host::version() = 0;  // no version: nothing kept
        run(c.op, c.attrs, {&a, &b}, {&uncached});
        CHECK(cached_host::slot().data == nullptr);
        cached_host::version() = 5;
        run(c.op, c.attrs, {&a, &b}, {&first});
        CHECK(first.f == uncached.f);
        CHECK((cached_host::slot().data != nullptr) == c.keeps);
        // B changed in place behind a version that did not: a kernel that keeps what it derived
        // from B still uses that (which is what shows it keeps it; a session would give a new
        // version, as below).
        for (float& v : b.f) v = -v;
        Tensor& changed = b;
        run(c.op, c.attrs, {&a, &changed}, {&again});
        if (c.keeps)
            CHECK(again.f == first.f);
        else
            CHECK(again.f != first.f);
        cached_host::version() = 6;
        run(c.op, c.attrs, {&a, &changed}, {&renewed});
        cached_host::version() = 0;
        Tensor fresh = f32(c.y);
        run(c.op, c.attrs, {&a, &changed}, {&fresh});
        CHECK(renewed.f == fresh.f);
        cached_host::slot().reset(nullptr, nullptr);
    }
}

TEST_CASE("3x3 pad-1 convolutions with channels in 16s take Winograd's F(2x2, 3x3), bitwise") {
    // The kernels' results are bitwise those of conv_winograd.h's functions called directly: the
    // CNN's second layer (and its gradients) runs there.
    if (!dsk::cpu::winograd_available()) return;  // no Winograd path here
    const Attr pads("pads", Shape{1, 1, 1, 1});
    const int64_t n = 2, c = 32, m = 64, h = 14, w = 14, plane = h * w;
    Tensor x = random({n, c, h, w}, 950), wt = random({m, c, 3, 3}, 951), b = random({m}, 952),
           dy = random({n, m, h, w}, 953);
    Tensor y = f32({n, m, h, w}), dx = f32({n, c, h, w}), dw = f32({m, c, 3, 3});
    run("FusedConv", {pads, Attr("activation", "Relu")}, {&x, &wt, &b}, {&y});
    run("ConvGradInput", {pads, Attr("input_shape", Shape{n, c, h, w})}, {&dy, &wt}, {&dx});
    run("ConvGradWeight", {pads, Attr("weight_shape", Shape{m, c, 3, 3})}, {&dy, &x}, {&dw});

    using dsk::cpu::WinogradConv;
    using dsk::cpu::WinogradWeights;
    const WinogradConv forward{c, m, h, w}, backward{m, c, h, w};
    const WinogradWeights u(forward, [&](int64_t o, int64_t i, int64_t tap) { return wt.f[(o * c + i) * 9 + tap]; });
    const WinogradWeights ut(backward, [&](int64_t o, int64_t i, int64_t tap) { return wt.f[(i * c + o) * 9 + 8 - tap]; });
    const int64_t tile_rows = forward.tiles_h();  // each image as one block, as the kernels take 14x14
    REQUIRE(dsk::cpu::winograd_block_rows(forward) == tile_rows);
    std::vector<float> scratch(static_cast<size_t>(dsk::cpu::winograd_scratch_floats(forward, tile_rows) +
                                                   dsk::cpu::winograd_scratch_floats(backward, tile_rows)));
    std::vector<float> want_y(y.f.size()), want_dx(dx.f.size()), want_dw(dw.f.size());
    std::vector<float> du(static_cast<size_t>(n * 16 * c * m));
    // Each image in blocks of `rows` tile rows.
    auto images = [&](int64_t rows, std::vector<float>& out_y, std::vector<float>& out_dx, std::vector<float>& out_dw) {
        for (int64_t i = 0; i < n; ++i)
            for (int64_t first = 0; first < tile_rows; first += rows) {
                const int64_t count = std::min(rows, tile_rows - first);
                dsk::cpu::winograd_conv_rows(u, x.f.data() + i * c * plane, out_y.data() + i * m * plane,
                                             {.bias = b.f.data(), .relu = true}, first, count, scratch.data());
                dsk::cpu::winograd_conv_rows(ut, dy.f.data() + i * m * plane, out_dx.data() + i * c * plane, {}, first,
                                             count, scratch.data());
                dsk::cpu::winograd_weight_grad_rows(forward, x.f.data() + i * c * plane, dy.f.data() + i * m * plane,
                                                    du.data() + i * 16 * c * m, first == 0, first, count, scratch.data());
            }
        for (int64_t k = 0; k < 16 * c * m; ++k) du[static_cast<size_t>(k)] += du[static_cast<size_t>(16 * c * m + k)];
        dsk::cpu::winograd_weight_grad_filters(forward, du.data(), out_dw.data());
    };
    images(tile_rows, want_y, want_dx, want_dw);
    CHECK(y.f == want_y);
    CHECK(dx.f == want_dx);
    CHECK(dw.f == want_dw);
    // Blocks of one tile row and of three give the same bits: each tile's sums are the same.
    for (int64_t rows : {1, 3}) {
        std::vector<float> block_y(y.f.size()), block_dx(dx.f.size()), block_dw(dw.f.size());
        images(rows, block_y, block_dx, block_dw);
        CHECK(block_y == want_y);
        CHECK(block_dx == want_dx);
        CHECK(block_dw == want_dw);
    }

    // Larger planes go in blocks of tile rows that fit one core's L2: 56x56 with 64 channels in 3s.
    CHECK(dsk::cpu::winograd_block_rows({64, 64, 56, 56}) == 3);

    // One image: the same sums, its tile rows split over the threads when there are several
    // (FusedConvMaxPool pools each thread's rows), bitwise the first image's above.
    Tensor x1 = f32({1, c, h, w}, std::vector<float>(x.f.begin(), x.f.begin() + c * plane));
    Tensor dy1 = f32({1, m, h, w}, std::vector<float>(dy.f.begin(), dy.f.begin() + m * plane));
    for (uint32_t threads : {1u, 2u, 3u}) {
        Threads scope(threads);
        CAPTURE(threads);
        Tensor y1 = f32({1, m, h, w}), dx1 = f32({1, c, h, w}), p1 = f32({1, m, h / 2, w / 2}), z1 = f32({1, m, h / 2, w / 2});
        run("FusedConv", {pads, Attr("activation", "Relu")}, {&x1, &wt, &b}, {&y1});
        run("ConvGradInput", {pads, Attr("input_shape", Shape{1, c, h, w})}, {&dy1, &wt}, {&dx1});
        CHECK(y1.f == std::vector<float>(want_y.begin(), want_y.begin() + m * plane));
        CHECK(dx1.f == std::vector<float>(want_dx.begin(), want_dx.begin() + c * plane));
        run("FusedConvMaxPool", {pads, Attr("activation", "Relu")}, {&x1, &wt, &b}, {&p1});
        run("MaxPool", {Attr("kernel_shape", Shape{2, 2}), Attr("strides", Shape{2, 2})}, {&y1}, {&z1});
        CHECK(p1.f == z1.f);
    }
}
