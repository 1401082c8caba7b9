// The op conformance suite: every forward op of docs/ops.md, run through the host API on every
// backend, against the float64 reference of reference_ops.cpp.
//
// Written once against the host API (dsk.h: dsk_host(), dsk_kernel_graph_create,
// dsk_kernel_session_create), so that a new backend is tested by adding its name to backends().
// For each case of the table below and each backend:
//
//   forward    a graph of the case's inputs (f32, or i64 for labels and indices) and one node of
//              the op, run in a session; every output the node has is compared with the
//              reference computed in f64 from the same f32 values:
//                  |got - expected| <= tolerance * max(1, |expected|)   (tolerance 1e-4)
//              BatchNormalization in training mode also updates its running mean/var (graph
//              variables here, as in models) in place: those are compared too. Cases with
//              `rebatch` run the same session again with a new batch size.
//   gradients  loss = ReduceSum(Mul(Y, W)) with W a fixed random constant of Y's shape
//              (SoftmaxCrossEntropyLoss: its loss output); graph_gradients(loss, every float
//              input) is compared with central differences of the f64 reference,
//                  fd = (L(x + eps) - L(x - eps)) / (2 eps),  eps = 1e-3,
//                  |grad - fd| <= 2e-3 * max(1, |fd|).
//              This checks the schemas' gradient rules (plugins/ops) and the backend's backward
//              kernels together. Inputs are drawn away from kinks (Relu at 0, HardSwish at +-3,
//              ...) and with distinct values where a max picks one element (MaxPool, ReduceMax),
//              so that x +- eps never crosses a kink or changes the winner. Large cases
//              (sized to reach a backend's blocked and threaded paths) check a random sample of
//              each gradient's elements (fd_samples).
//
// Dropout in training mode is random: it has its own test (Y is 0 or X / (1 - ratio) where the
// mask says so, the seed and the run count decide the mask, DropoutGrad follows the mask).
//
// A backend other than cpu whose session cannot be created because it is absent or unusable
// here (NOT_FOUND, UNAVAILABLE) is skipped with a message, and one that has no kernel for an op
// (UNIMPLEMENTED) is skipped for that op with a warning, as ggml's test-backend-ops does. cpu is
// the reference backend: it is always available and must run every op, so any failure there
// fails the test.
#include <doctest/doctest.h>

#include <dsk/dsk.h>
#include <dsk/dsk.hpp>
#include <dsk/dsk_random.hpp>
#include <dsk/dsk_tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "reference_ops.h"

namespace {

using dsk::conformance::ref::Attr;
using dsk::conformance::ref::Attrs;
using dsk::conformance::ref::Shape;
using dsk::conformance::ref::Tensor;
using dsk::conformance::ref::element_count;
using dsk::conformance::ref::shape_text;
using dsk::conformance::ref::unravel;

constexpr double kForwardTolerance = 1e-4;
constexpr double kGradientTolerance = 2e-3;
constexpr double kFiniteDifferenceEps = 1e-3;
// Values within this distance of a kink, or closer than this to each other where a max picks
// one, would let x +- eps change the branch: 4 eps leaves room for f32 rounding too.
constexpr double kKinkMargin = 4 * kFiniteDifferenceEps;

// The backends under test: cpu, which must always load (it is the reference), then every other
// device backend found on the plugin search path (a vendor's plugin is tested by putting it on
// DSK_PLUGIN_PATH). Backends that cannot run here are skipped with their reason.
const std::vector<std::string>& backends() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> out = {"cpu"};
        dsk::Kernel kernel;
        kernel.load_all();
        for (const auto& d : kernel.devices())
            if (std::find(out.begin(), out.end(), d.backend) == out.end()) out.push_back(d.backend);
        return out;
    }();
    return names;
}

//==============================================================================================
// The case table
//==============================================================================================

// How an input's values are drawn (from a generator seeded by the case's name).
struct Values {
    enum Kind { Uniform, Distinct, Integers, Fixed } kind = Uniform;
    double low = -1, high = 1;
    std::vector<double> avoid;  // Uniform: kinks to stay kKinkMargin away from
    std::vector<double> fixed;  // Fixed: the values themselves
};

Values uniform(double low, double high, std::vector<double> avoid = {}) {
    return {Values::Uniform, low, high, std::move(avoid), {}};
}
// Evenly spaced over [low, high], shuffled: no two equal, none closer than the spacing.
Values distinct(double low, double high) { return {Values::Distinct, low, high, {}, {}}; }
// Whole numbers in [low, high].
Values integers(int64_t low, int64_t high) {
    return {Values::Integers, static_cast<double>(low), static_cast<double>(high), {}, {}};
}
Values fixed(std::vector<double> values) { return {Values::Fixed, 0, 0, {}, std::move(values)}; }

struct InputSpec {
    std::string name;
    Shape shape;
    Values values;
    uint32_t dtype = DSK_DTYPE_F32;
    // Gradients are checked for f32 inputs unless they are running statistics, which get none.
    bool running_statistic = false;  // a graph variable the op updates in place (BN mean/var)
};

InputSpec f32(const char* name, Shape shape, Values values = uniform(-1, 1)) {
    return {name, std::move(shape), std::move(values), DSK_DTYPE_F32, false};
}
InputSpec i64(const char* name, Shape shape, Values values) {
    return {name, std::move(shape), std::move(values), DSK_DTYPE_I64, false};
}
// Quantized inputs: whole numbers drawn by `values`, written as u8 or i8.
InputSpec u8(const char* name, Shape shape, Values values) {
    return {name, std::move(shape), std::move(values), DSK_DTYPE_U8, false};
}
InputSpec i8(const char* name, Shape shape, Values values) {
    return {name, std::move(shape), std::move(values), DSK_DTYPE_I8, false};
}
InputSpec running(const char* name, Shape shape, Values values) {
    return {name, std::move(shape), std::move(values), DSK_DTYPE_F32, true};
}

struct OpCase {
    std::string op{};
    std::string name{};  // what the case varies, shown in every message
    std::vector<InputSpec> inputs{};
    Attrs attrs{};
    size_t outputs = 1;  // outputs the node is added with (all of them are compared)
    double tolerance = kForwardTolerance;
    bool gradients = true;
    // Finite differences cost two reference runs per input element: large cases (sized to reach
    // the backend's blocked and threaded paths) check this many elements of each gradient,
    // drawn at random (the first and last always among them). 0: every element.
    size_t fd_samples = 0;
    // When > 0: after the first run, the inputs listed in batch_inputs get this first dimension
    // and the same session runs again (a forward-only graph takes a new batch size).
    int64_t rebatch = 0;
    std::vector<size_t> batch_inputs{};
    // The cpu backend takes the case only on CPUs with this feature ("avx512f", "avx2"; null:
    // every CPU). Elsewhere the case is skipped, with a message.
    const char* cpu_feature = nullptr;
};

bool cpu_supports(const char* feature) {
    const std::string f = feature;
    if (f == "avx512f") return __builtin_cpu_supports("avx512f");
    if (f == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    throw std::logic_error("cpu_supports: unknown feature " + f);
}

bool is_differentiable(const InputSpec& in) {
    return in.dtype == DSK_DTYPE_F32 && !in.running_statistic;
}

std::string case_title(const OpCase& c) {
    std::string attrs;
    for (const Attr& a : c.attrs) attrs += (attrs.empty() ? "" : " ") + a.to_string();
    return c.op + " '" + c.name + "'" + (attrs.empty() ? "" : " (" + attrs + ")");
}

std::vector<OpCase> build_cases() {
    std::vector<OpCase> cases;
    auto add = [&](OpCase c) { cases.push_back(std::move(c)); };

    //--- Gemm, MatMul ---------------------------------------------------------------------------
    add({.op = "Gemm", .name = "A B", .inputs = {f32("A", {3, 4}), f32("B", {4, 5})},
         .rebatch = 6, .batch_inputs = {0}});
    add({.op = "Gemm", .name = "transA transB alpha beta C [N]",
         .inputs = {f32("A", {4, 3}), f32("B", {5, 4}), f32("C", {5})},
         .attrs = {Attr::integer("transA", 1), Attr::integer("transB", 1), Attr::real("alpha", 0.5),
                   Attr::real("beta", 2.0)}});
    add({.op = "Gemm", .name = "C [M 1]", .inputs = {f32("A", {3, 6}), f32("B", {6, 2}), f32("C", {3, 1})}});
    add({.op = "Gemm", .name = "transA C [1 N] beta 0.5",
         .inputs = {f32("A", {6, 3}), f32("B", {6, 2}), f32("C", {1, 2})},
         .attrs = {Attr::integer("transA", 1), Attr::real("beta", 0.5)}});
    add({.op = "Gemm", .name = "transB C [M N]", .inputs = {f32("A", {2, 5}), f32("B", {3, 5}), f32("C", {2, 3})},
         .attrs = {Attr::integer("transB", 1)}});
    add({.op = "Gemm", .name = "C scalar alpha -1.5",
         .inputs = {f32("A", {3, 2}), f32("B", {2, 4}), f32("C", {})}, .attrs = {Attr::real("alpha", -1.5)}});
    // K = 256: the f32 sum of 256 products of magnitude <= 1 may differ from the exact one by up
    // to K * 2^-24 * sum|a*b| (~1e-3 in the worst case), more than 1e-4 relative of a result of
    // magnitude ~5, so this case allows 1e-3.
    add({.op = "Gemm", .name = "large K", .inputs = {f32("A", {4, 256}), f32("B", {256, 3}), f32("C", {3})},
         .tolerance = 1e-3});
    add({.op = "MatMul", .name = "A B", .inputs = {f32("A", {3, 4}), f32("B", {4, 5})}, .rebatch = 2, .batch_inputs = {0}});
    // Batch-1 shapes (M <= 4) take the cpu's small-M path: dot products over 64-, 16- and 1-wide
    // steps of K (150 = 2*64 + 16 + 6) and column blocks of 256 (N = 300).
    add({.op = "Gemm", .name = "batch 1 transB K 150", .inputs = {f32("A", {2, 150}), f32("B", {70, 150}), f32("C", {70})},
         .attrs = {Attr::integer("transB", 1)}, .tolerance = 1e-3});
    add({.op = "MatMul", .name = "batch 1 N 300", .inputs = {f32("A", {1, 20}), f32("B", {20, 300})}});
    add({.op = "MatMul", .name = "row times column", .inputs = {f32("A", {1, 7}), f32("B", {7, 1})}});
    add({.op = "MatMul", .name = "odd sizes", .inputs = {f32("A", {17, 9}), f32("B", {9, 13})}});
    // K = 300: see Gemm "large K".
    add({.op = "MatMul", .name = "large K", .inputs = {f32("A", {2, 300}), f32("B", {300, 4})}, .tolerance = 1e-3});

    //--- Conv -----------------------------------------------------------------------------------
    add({.op = "Conv", .name = "3x3 with bias", .inputs = {f32("X", {2, 3, 5, 5}), f32("W", {4, 3, 3, 3}), f32("B", {4})},
         .rebatch = 3, .batch_inputs = {0}});
    add({.op = "Conv", .name = "strides 2 pads 1", .inputs = {f32("X", {1, 2, 7, 6}), f32("W", {3, 2, 3, 3})},
         .attrs = {Attr::ints("strides", {2, 2}), Attr::ints("pads", {1, 1, 1, 1})}});
    add({.op = "Conv", .name = "asymmetric pads and strides",
         .inputs = {f32("X", {1, 2, 6, 5}), f32("W", {2, 2, 3, 2}), f32("B", {2})},
         .attrs = {Attr::ints("strides", {2, 1}), Attr::ints("pads", {1, 0, 2, 1})}});
    add({.op = "Conv", .name = "dilations 2 pads 2", .inputs = {f32("X", {1, 2, 7, 7}), f32("W", {2, 2, 3, 3})},
         .attrs = {Attr::ints("dilations", {2, 2}), Attr::ints("pads", {2, 2, 2, 2})}});
    add({.op = "Conv", .name = "dilations 2x1 strides 2", .inputs = {f32("X", {2, 1, 8, 6}), f32("W", {3, 1, 2, 3})},
         .attrs = {Attr::ints("dilations", {2, 1}), Attr::ints("strides", {2, 2})}});
    add({.op = "Conv", .name = "group 2", .inputs = {f32("X", {2, 4, 5, 5}), f32("W", {6, 2, 3, 3}), f32("B", {6})},
         .attrs = {Attr::integer("group", 2)}});
    add({.op = "Conv", .name = "depthwise pads 1", .inputs = {f32("X", {1, 4, 6, 6}), f32("W", {4, 1, 3, 3}), f32("B", {4})},
         .attrs = {Attr::integer("group", 4), Attr::ints("pads", {1, 1, 1, 1})}});
    add({.op = "Conv", .name = "depthwise multiplier 2 strides 2",
         .inputs = {f32("X", {2, 3, 5, 5}), f32("W", {6, 1, 3, 3})},
         .attrs = {Attr::integer("group", 3), Attr::ints("strides", {2, 2}), Attr::ints("pads", {1, 1, 1, 1})}});
    add({.op = "Conv", .name = "1x1 without bias", .inputs = {f32("X", {2, 5, 3, 4}), f32("W", {3, 5, 1, 1})}});
    // K = 16 * 3 * 3 = 144 products per output: see Gemm "large K".
    add({.op = "Conv", .name = "large K", .inputs = {f32("X", {1, 16, 5, 5}), f32("W", {4, 16, 3, 3}), f32("B", {4})},
         .attrs = {Attr::ints("pads", {1, 1, 1, 1})}, .tolerance = 1e-3});

    //--- Pools ----------------------------------------------------------------------------------
    add({.op = "MaxPool", .name = "2x2 strides 2", .inputs = {f32("X", {2, 3, 6, 6}, distinct(-3, 3))},
         .attrs = {Attr::ints("kernel_shape", {2, 2}), Attr::ints("strides", {2, 2})}, .rebatch = 1, .batch_inputs = {0}});
    // All values negative: a padded position (0 if it took part) must never win.
    add({.op = "MaxPool", .name = "3x3 pads 1 negative values", .inputs = {f32("X", {1, 2, 5, 5}, distinct(-3, -0.1))},
         .attrs = {Attr::ints("kernel_shape", {3, 3}), Attr::ints("pads", {1, 1, 1, 1})}});
    add({.op = "MaxPool", .name = "3x3 strides 2 asymmetric pads", .inputs = {f32("X", {1, 2, 7, 6}, distinct(-3, 3))},
         .attrs = {Attr::ints("kernel_shape", {3, 3}), Attr::ints("strides", {2, 2}), Attr::ints("pads", {0, 1, 1, 0})}});
    add({.op = "MaxPool", .name = "2x3 kernel strides 1x2", .inputs = {f32("X", {2, 2, 5, 7}, distinct(-3, 3))},
         .attrs = {Attr::ints("kernel_shape", {2, 3}), Attr::ints("strides", {1, 2})}});
    add({.op = "AveragePool", .name = "2x2 strides 2", .inputs = {f32("X", {2, 2, 4, 6})},
         .attrs = {Attr::ints("kernel_shape", {2, 2}), Attr::ints("strides", {2, 2})}});
    add({.op = "AveragePool", .name = "3x3 pads 1 count_include_pad 0", .inputs = {f32("X", {1, 2, 5, 5})},
         .attrs = {Attr::ints("kernel_shape", {3, 3}), Attr::ints("pads", {1, 1, 1, 1})}});
    add({.op = "AveragePool", .name = "3x3 pads 1 count_include_pad 1", .inputs = {f32("X", {1, 2, 5, 5})},
         .attrs = {Attr::ints("kernel_shape", {3, 3}), Attr::ints("pads", {1, 1, 1, 1}),
                   Attr::integer("count_include_pad", 1)}});
    add({.op = "AveragePool", .name = "3x2 strides 2 asymmetric pads count_include_pad 0",
         .inputs = {f32("X", {1, 3, 6, 5})},
         .attrs = {Attr::ints("kernel_shape", {3, 2}), Attr::ints("strides", {2, 2}), Attr::ints("pads", {1, 0, 0, 1}),
                   Attr::integer("count_include_pad", 0)}});
    add({.op = "AveragePool", .name = "3x2 strides 2 asymmetric pads count_include_pad 1",
         .inputs = {f32("X", {1, 3, 6, 5})},
         .attrs = {Attr::ints("kernel_shape", {3, 2}), Attr::ints("strides", {2, 2}), Attr::ints("pads", {1, 0, 0, 1}),
                   Attr::integer("count_include_pad", 1)}});
    add({.op = "GlobalAveragePool", .name = "4x5", .inputs = {f32("X", {2, 3, 4, 5})}, .rebatch = 4, .batch_inputs = {0}});
    add({.op = "GlobalAveragePool", .name = "7x3", .inputs = {f32("X", {3, 2, 7, 3})}});
    add({.op = "GlobalAveragePool", .name = "1x1", .inputs = {f32("X", {2, 4, 1, 1})}});

    //--- Normalization --------------------------------------------------------------------------
    auto bn_inputs = [](Shape x) {
        const int64_t c = x[1];
        return std::vector<InputSpec>{f32("X", x, uniform(-2, 2)), f32("scale", {c}, uniform(0.5, 1.5)),
                                      f32("B", {c}), running("mean", {c}, uniform(-0.5, 0.5)),
                                      running("var", {c}, uniform(0.5, 2))};
    };
    add({.op = "BatchNormalization", .name = "eval 4-D", .inputs = bn_inputs({2, 3, 4, 4}), .outputs = 3,
         .rebatch = 3, .batch_inputs = {0}});
    add({.op = "BatchNormalization", .name = "eval 2-D epsilon 1e-3", .inputs = bn_inputs({5, 4}),
         .attrs = {Attr::real("epsilon", 1e-3)}, .outputs = 3});
    add({.op = "BatchNormalization", .name = "training 4-D", .inputs = bn_inputs({2, 3, 4, 4}),
         .attrs = {Attr::integer("training_mode", 1)}, .outputs = 3});
    add({.op = "BatchNormalization", .name = "training 2-D momentum 0.8 epsilon 1e-3", .inputs = bn_inputs({6, 3}),
         .attrs = {Attr::integer("training_mode", 1), Attr::real("momentum", 0.8), Attr::real("epsilon", 1e-3)},
         .outputs = 3});
    add({.op = "BatchNormalization", .name = "training 3-D", .inputs = bn_inputs({3, 2, 5}),
         .attrs = {Attr::integer("training_mode", 1)}, .outputs = 3});
    // Without the saved statistics outputs the node cannot be differentiated: forward only.
    add({.op = "BatchNormalization", .name = "eval Y only", .inputs = bn_inputs({2, 3, 2, 2}), .gradients = false});
    add({.op = "BatchNormalization", .name = "training Y only", .inputs = bn_inputs({4, 2, 3}),
         .attrs = {Attr::integer("training_mode", 1)}, .gradients = false});
    add({.op = "LayerNormalization", .name = "last axis",
         .inputs = {f32("X", {4, 6}, uniform(-2, 2)), f32("scale", {6}, uniform(0.5, 1.5)), f32("B", {6})},
         .outputs = 3, .rebatch = 2, .batch_inputs = {0}});
    add({.op = "LayerNormalization", .name = "axis 1 of 3-D",
         .inputs = {f32("X", {2, 3, 4}, uniform(-2, 2)), f32("scale", {3, 4}, uniform(0.5, 1.5)), f32("B", {3, 4})},
         .attrs = {Attr::integer("axis", 1)}, .outputs = 3});
    add({.op = "LayerNormalization", .name = "axis -2 without B epsilon 1e-3",
         .inputs = {f32("X", {2, 3, 5}, uniform(-2, 2)), f32("scale", {3, 5}, uniform(0.5, 1.5))},
         .attrs = {Attr::integer("axis", -2), Attr::real("epsilon", 1e-3)}, .outputs = 3});
    add({.op = "LayerNormalization", .name = "axis 0",
         .inputs = {f32("X", {3, 4}, uniform(-2, 2)), f32("scale", {3, 4}, uniform(0.5, 1.5)), f32("B", {3, 4})},
         .attrs = {Attr::integer("axis", 0)}, .outputs = 3});
    add({.op = "LayerNormalization", .name = "long rows",
         .inputs = {f32("X", {3, 67}, uniform(-2, 2)), f32("scale", {67}, uniform(0.5, 1.5)), f32("B", {67})},
         .outputs = 3});
    // Without the saved statistics outputs the node cannot be differentiated (plugins/ops
    // README): forward only.
    add({.op = "LayerNormalization", .name = "Y only",
         .inputs = {f32("X", {2, 5}, uniform(-2, 2)), f32("scale", {5}, uniform(0.5, 1.5)), f32("B", {5})},
         .gradients = false});

    //--- Activations ----------------------------------------------------------------------------
    // [3, 37]: 111 elements, not a multiple of any SIMD width, so vector loops meet a tail.
    const Shape act = {3, 37};
    add({.op = "Relu", .name = "[-4 4]", .inputs = {f32("X", act, uniform(-4, 4, {0}))}, .rebatch = 5, .batch_inputs = {0}});
    add({.op = "Relu", .name = "4-D", .inputs = {f32("X", {2, 3, 4, 5}, uniform(-1, 1, {0}))}});
    add({.op = "Sigmoid", .name = "[-6 6]", .inputs = {f32("X", act, uniform(-6, 6))}});
    add({.op = "Sigmoid", .name = "[-30 30]", .inputs = {f32("X", act, uniform(-30, 30))}});
    add({.op = "Tanh", .name = "[-4 4]", .inputs = {f32("X", act, uniform(-4, 4))}});
    add({.op = "Tanh", .name = "[-30 30]", .inputs = {f32("X", act, uniform(-30, 30))}});
    add({.op = "Gelu", .name = "exact", .inputs = {f32("X", act, uniform(-5, 5))}});
    add({.op = "Gelu", .name = "exact approximate none", .inputs = {f32("X", act, uniform(-5, 5))},
         .attrs = {Attr::text("approximate", "none")}});
    add({.op = "Gelu", .name = "tanh", .inputs = {f32("X", act, uniform(-5, 5))}, .attrs = {Attr::text("approximate", "tanh")}});
    add({.op = "Silu", .name = "[-6 6]", .inputs = {f32("X", act, uniform(-6, 6))}});
    add({.op = "Silu", .name = "[-30 30]", .inputs = {f32("X", act, uniform(-30, 30))}});
    add({.op = "HardSwish", .name = "[-5 5]", .inputs = {f32("X", act, uniform(-5, 5, {-3, 3}))}});
    add({.op = "HardSigmoid", .name = "default alpha beta", .inputs = {f32("X", act, uniform(-4, 4, {-2.5, 2.5}))}});
    add({.op = "HardSigmoid", .name = "alpha 0.5 beta 0.3", .inputs = {f32("X", act, uniform(-3, 3, {-0.6, 1.4}))},
         .attrs = {Attr::real("alpha", 0.5), Attr::real("beta", 0.3)}});
    add({.op = "Neg", .name = "[-4 4]", .inputs = {f32("X", act, uniform(-4, 4))}});

    //--- Add, Sub, Mul, Div ---------------------------------------------------------------------
    struct Broadcast {
        const char* name;
        Shape a, b;
    };
    const Broadcast broadcasts[] = {
        {"same shape", {3, 4}, {3, 4}},
        {"B row [N]", {3, 4}, {4}},
        {"column by row", {3, 1}, {1, 4}},
        {"B scalar", {2, 3, 4}, {}},
        {"channel bias [C 1 1]", {2, 3, 4, 5}, {3, 1, 1}},
        {"A broadcast to B", {4}, {2, 3, 4}},
        {"long rows", {5, 67}, {67}},
    };
    for (const char* op : {"Add", "Sub", "Mul", "Div"})
        for (const Broadcast& b : broadcasts) {
            // Div's divisor stays away from 0, where 1/x would amplify any rounding.
            const Values divisor = std::string(op) == "Div" ? uniform(0.5, 2) : uniform(-1, 1);
            add({.op = op, .name = b.name, .inputs = {f32("A", b.a), f32("B", b.b, divisor)}});
        }

    //--- Softmax family -------------------------------------------------------------------------
    for (const char* op : {"Softmax", "LogSoftmax"}) {
        add({.op = op, .name = "last axis", .inputs = {f32("X", {4, 7}, uniform(-3, 3))}, .rebatch = 2, .batch_inputs = {0}});
        add({.op = op, .name = "axis 1 of 3-D", .inputs = {f32("X", {2, 5, 3}, uniform(-3, 3))},
             .attrs = {Attr::integer("axis", 1)}});
        add({.op = op, .name = "axis 0", .inputs = {f32("X", {6, 4}, uniform(-3, 3))}, .attrs = {Attr::integer("axis", 0)}});
        add({.op = op, .name = "axis -2 of 4-D", .inputs = {f32("X", {2, 3, 4, 2}, uniform(-3, 3))},
             .attrs = {Attr::integer("axis", -2)}});
        // exp(100) overflows f32: only a max-subtracted softmax gets these right.
        add({.op = op, .name = "scores in [-100 100]", .inputs = {f32("X", {3, 10}, uniform(-100, 100))}});
        add({.op = op, .name = "long rows", .inputs = {f32("X", {3, 130}, uniform(-3, 3))}});
    }
    add({.op = "SoftmaxCrossEntropyLoss", .name = "mean",
         .inputs = {f32("scores", {5, 7}, uniform(-3, 3)), i64("labels", {5}, integers(0, 6))}, .outputs = 2,
         .rebatch = 3, .batch_inputs = {0, 1}});
    add({.op = "SoftmaxCrossEntropyLoss", .name = "sum",
         .inputs = {f32("scores", {5, 7}, uniform(-3, 3)), i64("labels", {5}, integers(0, 6))},
         .attrs = {Attr::text("reduction", "sum")}, .outputs = 2});
    add({.op = "SoftmaxCrossEntropyLoss", .name = "mean without log_prob",
         .inputs = {f32("scores", {6, 4}, uniform(-3, 3)), i64("labels", {6}, integers(0, 3))},
         .attrs = {Attr::text("reduction", "mean")}});
    add({.op = "SoftmaxCrossEntropyLoss", .name = "sum without log_prob",
         .inputs = {f32("scores", {3, 9}, uniform(-3, 3)), i64("labels", {3}, integers(0, 8))},
         .attrs = {Attr::text("reduction", "sum")}});
    add({.op = "SoftmaxCrossEntropyLoss", .name = "scores in [-60 60]",
         .inputs = {f32("scores", {4, 10}, uniform(-60, 60)), i64("labels", {4}, integers(0, 9))}, .outputs = 2});

    //--- Shape ops ------------------------------------------------------------------------------
    add({.op = "Reshape", .name = "[2 3 4] to [4 6]", .inputs = {f32("X", {2, 3, 4})}, .attrs = {Attr::ints("shape", {4, 6})}});
    add({.op = "Reshape", .name = "0 and -1", .inputs = {f32("X", {2, 3, 4})}, .attrs = {Attr::ints("shape", {0, -1})},
         .rebatch = 5, .batch_inputs = {0}});
    add({.op = "Reshape", .name = "to 1-D", .inputs = {f32("X", {2, 3, 4})}, .attrs = {Attr::ints("shape", {-1})}});
    add({.op = "Reshape", .name = "0 in the middle", .inputs = {f32("X", {2, 3, 4})},
         .attrs = {Attr::ints("shape", {2, 0, 2, 2})}});
    add({.op = "Flatten", .name = "axis 1", .inputs = {f32("X", {2, 3, 4, 5})}, .rebatch = 3, .batch_inputs = {0}});
    add({.op = "Flatten", .name = "axis 0", .inputs = {f32("X", {2, 3, 4})}, .attrs = {Attr::integer("axis", 0)}});
    add({.op = "Flatten", .name = "axis 2", .inputs = {f32("X", {2, 3, 4, 5})}, .attrs = {Attr::integer("axis", 2)}});
    add({.op = "Flatten", .name = "axis -1", .inputs = {f32("X", {2, 3, 4, 5})}, .attrs = {Attr::integer("axis", -1)}});
    add({.op = "Flatten", .name = "axis = rank", .inputs = {f32("X", {2, 3, 4})}, .attrs = {Attr::integer("axis", 3)}});
    add({.op = "Transpose", .name = "2-D default perm", .inputs = {f32("X", {3, 5})}});
    add({.op = "Transpose", .name = "3-D default perm", .inputs = {f32("X", {2, 3, 4})}});
    add({.op = "Transpose", .name = "perm 1 0 2", .inputs = {f32("X", {2, 3, 4})}, .attrs = {Attr::ints("perm", {1, 0, 2})}});
    add({.op = "Transpose", .name = "NCHW to NHWC", .inputs = {f32("X", {2, 3, 4, 5})},
         .attrs = {Attr::ints("perm", {0, 2, 3, 1})}});
    add({.op = "Transpose", .name = "perm 3 1 0 2", .inputs = {f32("X", {2, 3, 4, 5})},
         .attrs = {Attr::ints("perm", {3, 1, 0, 2})}});
    add({.op = "Transpose", .name = "identity perm", .inputs = {f32("X", {3, 4})}, .attrs = {Attr::ints("perm", {0, 1})}});
    add({.op = "Concat", .name = "axis 0", .inputs = {f32("X0", {2, 3}), f32("X1", {4, 3})}, .attrs = {Attr::integer("axis", 0)}});
    add({.op = "Concat", .name = "axis 1 of three", .inputs = {f32("X0", {2, 1, 4}), f32("X1", {2, 3, 4}), f32("X2", {2, 2, 4})},
         .attrs = {Attr::integer("axis", 1)}});
    add({.op = "Concat", .name = "axis -1", .inputs = {f32("X0", {3, 2}), f32("X1", {3, 5})}, .attrs = {Attr::integer("axis", -1)}});
    add({.op = "Concat", .name = "one input", .inputs = {f32("X0", {2, 3})}, .attrs = {Attr::integer("axis", 0)}});
    const int64_t big = std::numeric_limits<int64_t>::max();
    add({.op = "Slice", .name = "rows 1 to 4", .inputs = {f32("X", {6, 5})},
         .attrs = {Attr::ints("starts", {1, 0}), Attr::ints("ends", {4, 5})}});
    add({.op = "Slice", .name = "axes 1 steps 2", .inputs = {f32("X", {6, 5})},
         .attrs = {Attr::ints("starts", {0}), Attr::ints("ends", {5}), Attr::ints("axes", {1}), Attr::ints("steps", {2})}});
    add({.op = "Slice", .name = "negative starts and ends", .inputs = {f32("X", {6, 5})},
         .attrs = {Attr::ints("starts", {-4, -3}), Attr::ints("ends", {-1, 5})}});
    add({.op = "Slice", .name = "ends clamp", .inputs = {f32("X", {6, 5})},
         .attrs = {Attr::ints("starts", {2}), Attr::ints("ends", {100}), Attr::ints("axes", {0})}});
    add({.op = "Slice", .name = "ends INT64_MAX", .inputs = {f32("X", {4, 5})},
         .attrs = {Attr::ints("starts", {1}), Attr::ints("ends", {big}), Attr::ints("axes", {-1})}});
    add({.op = "Slice", .name = "3-D axes 0 and 2 steps 2 and 3", .inputs = {f32("X", {5, 3, 7})},
         .attrs = {Attr::ints("starts", {1, 0}), Attr::ints("ends", {5, 7}), Attr::ints("axes", {2, 0}),
                   Attr::ints("steps", {3, 2})}});

    //--- Conv + BatchNormalization folding (the plan's inference pass) ------------------------
    auto fold_inputs = [](int64_t m, bool conv_bias) {
        std::vector<InputSpec> in = {f32("W", {m, 3, 3, 3}), f32("scale", {m}, uniform(0.5, 1.5)), f32("B", {m}),
                                     f32("mean", {m}, uniform(-0.5, 0.5)), f32("var", {m}, uniform(0.5, 2))};
        if (conv_bias) in.push_back(f32("conv_B", {m}));
        return in;
    };
    add({.op = "FoldConvBatchNorm", .name = "with the conv's bias", .inputs = fold_inputs(4, true), .outputs = 2,
         .gradients = false});
    add({.op = "FoldConvBatchNorm", .name = "without a bias epsilon 1e-3", .inputs = fold_inputs(6, false),
         .attrs = {Attr::real("epsilon", 1e-3)}, .outputs = 2, .gradients = false});

    //--- Optimizer updates (in place on the parameter and the state: graph variables) ----------
    const double bc2 = std::sqrt(1 - 0.999 * 0.999);  // step 2
    auto adam = [&](const char* name, double l2, double decay) {
        add({.op = "AdamUpdate", .name = name,
             .inputs = {f32("constants", {9}, fixed({0.9, 0.1, 0.999, 0.001, 1e-8, l2, decay, 0.01 / (1 - 0.81), bc2})),
                        running("X", {3, 70}, uniform(-1, 1)), f32("G", {3, 70}), running("M", {3, 70}, uniform(-0.1, 0.1)),
                        running("V", {3, 70}, uniform(0, 0.05))},
             .gradients = false});
    };
    adam("Adam", 0, 1);
    adam("Adam with L2 weight decay", 0.01, 1);
    adam("AdamW", 0, 0.999);
    auto sgd = [&](const char* name, std::vector<double> constants, bool momentum) {
        std::vector<InputSpec> inputs = {f32("constants", {6}, fixed(std::move(constants))), running("X", {5, 9}, uniform(-1, 1)),
                                         f32("G", {5, 9})};
        if (momentum) inputs.push_back(running("B", {5, 9}, uniform(-0.1, 0.1)));
        add({.op = "SGDUpdate", .name = name, .inputs = inputs, .gradients = false});
    };
    sgd("plain with weight decay", {0.1, 0, 1, 0.01, 0, 0}, false);
    sgd("momentum first step", {0.1, 0.9, 1, 0, 1, 0}, true);
    sgd("momentum dampening", {0.05, 0.9, 0.5, 0, 0, 0}, true);
    sgd("nesterov", {0.1, 0.9, 1, 0.001, 0, 1}, true);

    //--- Dropout (eval), Gather, reductions -----------------------------------------------------
    add({.op = "Dropout", .name = "eval with mask", .inputs = {f32("X", {4, 5})}, .outputs = 2});
    add({.op = "Dropout", .name = "eval ratio 0.3 training_mode 0", .inputs = {f32("X", {3, 37})},
         .attrs = {Attr::real("ratio", 0.3), Attr::integer("training_mode", 0)}});
    add({.op = "Gather", .name = "repeated rows", .inputs = {f32("data", {5, 3}), i64("indices", {4}, fixed({0, 2, 2, 4}))},
         .rebatch = 6, .batch_inputs = {1}});
    add({.op = "Gather", .name = "2-D indices", .inputs = {f32("data", {5, 4}), i64("indices", {2, 3}, integers(0, 4))}});
    add({.op = "Gather", .name = "1-D data", .inputs = {f32("data", {7}), i64("indices", {3}, fixed({6, 0, 3}))}});
    add({.op = "Gather", .name = "scalar index 3-D data", .inputs = {f32("data", {4, 2, 3}), i64("indices", {}, fixed({2}))}});
    add({.op = "Gather", .name = "axis 0 given", .inputs = {f32("data", {4, 3}), i64("indices", {5}, integers(0, 3))},
         .attrs = {Attr::integer("axis", 0)}});
    for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax"}) {
        // ReduceMax: distinct values, so the maximum is unique and x +- eps keeps it.
        const bool is_max = std::string(op) == "ReduceMax";
        auto x = [&](Shape shape) { return f32("X", std::move(shape), is_max ? distinct(-3, 3) : uniform(-1, 1)); };
        add({.op = op, .name = "all axes", .inputs = {x({3, 4, 5})}});
        add({.op = op, .name = "all axes keepdims 0", .inputs = {x({3, 4, 5})}, .attrs = {Attr::integer("keepdims", 0)}});
        add({.op = op, .name = "axes 1 keepdims 0", .inputs = {x({3, 4, 5})},
             .attrs = {Attr::ints("axes", {1}), Attr::integer("keepdims", 0)}, .rebatch = 2, .batch_inputs = {0}});
        add({.op = op, .name = "axes 0 2", .inputs = {x({3, 4, 5})}, .attrs = {Attr::ints("axes", {0, 2})}});
        add({.op = op, .name = "axes -1 keepdims 0", .inputs = {x({3, 4, 5})},
             .attrs = {Attr::ints("axes", {-1}), Attr::integer("keepdims", 0)}});
        add({.op = op, .name = "spatial axes of 4-D", .inputs = {x({2, 3, 4, 5})}, .attrs = {Attr::ints("axes", {2, 3})}});
        add({.op = op, .name = "long rows", .inputs = {x({3, 131})}, .attrs = {Attr::ints("axes", {1})}});
    }
    //--- Quantized: MatMulInteger, ConvInteger (exact i32 results) ------------------------------
    // u8 activations over their whole range, i8 weights; zero points as ONNX allows them.
    const Values act8 = integers(0, 255), wei8 = integers(-128, 127);
    add({.op = "MatMulInteger", .name = "u8 i8 no zero points", .inputs = {u8("A", {5, 37}, act8), i8("B", {37, 11}, wei8)},
         .tolerance = 0, .gradients = false, .rebatch = 3, .batch_inputs = {0}});
    add({.op = "MatMulInteger", .name = "u8 i8 scalar zero points",
         .inputs = {u8("A", {4, 9}, act8), i8("B", {9, 6}, wei8), u8("a_zero_point", {}, fixed({128})),
                    i8("b_zero_point", {}, fixed({-3}))},
         .tolerance = 0, .gradients = false});
    add({.op = "MatMulInteger", .name = "per-row and per-column zero points",
         .inputs = {u8("A", {3, 8}, act8), i8("B", {8, 4}, wei8), u8("a_zero_point", {3}, fixed({0, 7, 200})),
                    i8("b_zero_point", {4}, fixed({1, -1, 0, 5}))},
         .tolerance = 0, .gradients = false});
    add({.op = "MatMulInteger", .name = "i8 i8 a_zero_point [1]",
         .inputs = {i8("A", {6, 10}, wei8), i8("B", {10, 3}, wei8), i8("a_zero_point", {1}, fixed({-5}))},
         .tolerance = 0, .gradients = false});
    add({.op = "MatMulInteger", .name = "u8 u8", .inputs = {u8("A", {2, 7}, act8), u8("B", {7, 5}, act8)},
         .tolerance = 0, .gradients = false});
    add({.op = "MatMulInteger", .name = "blocked 64x300x96", .inputs = {u8("A", {64, 300}, act8), i8("B", {300, 96}, wei8)},
         .tolerance = 0, .gradients = false});
    add({.op = "ConvInteger", .name = "3x3 pads 1 x_zero_point",
         .inputs = {u8("X", {2, 3, 6, 6}, act8), i8("W", {4, 3, 3, 3}, wei8), u8("x_zero_point", {}, fixed({100}))},
         .attrs = {Attr::ints("pads", {1, 1, 1, 1})}, .tolerance = 0, .gradients = false, .rebatch = 1, .batch_inputs = {0}});
    add({.op = "ConvInteger", .name = "no zero points strides 2", .inputs = {u8("X", {1, 4, 7, 7}, act8), i8("W", {8, 4, 3, 3}, wei8)},
         .attrs = {Attr::ints("strides", {2, 2})}, .tolerance = 0, .gradients = false});
    add({.op = "ConvInteger", .name = "per-channel w_zero_point group 2 asymmetric pads",
         .inputs = {u8("X", {2, 4, 5, 5}, act8), i8("W", {6, 2, 3, 3}, wei8), u8("x_zero_point", {1}, fixed({17})),
                    i8("w_zero_point", {6}, fixed({0, 1, -2, 3, 0, -1}))},
         .attrs = {Attr::integer("group", 2), Attr::ints("pads", {1, 0, 2, 1})}, .tolerance = 0, .gradients = false});
    add({.op = "ConvInteger", .name = "dilations 2 scalar zero points",
         .inputs = {u8("X", {1, 2, 8, 8}, act8), i8("W", {3, 2, 3, 3}, wei8), u8("x_zero_point", {}, fixed({3})),
                    i8("w_zero_point", {}, fixed({2}))},
         .attrs = {Attr::ints("dilations", {2, 2}), Attr::ints("pads", {2, 2, 2, 2})}, .tolerance = 0, .gradients = false});
    add({.op = "ConvInteger", .name = "i8 X", .inputs = {i8("X", {1, 3, 5, 5}, wei8), i8("W", {2, 3, 1, 1}, wei8)},
         .tolerance = 0, .gradients = false});
    //--- FusedGemm, FusedConv --------------------------------------------------------------------
    // Made by the fusion pass after autodiff: no gradient rule, so forward only. Every activation
    // (and "", none), with and without the bias input, with and without the pre-activation Z.
    for (const char* activation : {"", "Relu", "Sigmoid", "Tanh", "Gelu", "Silu", "HardSwish", "HardSigmoid"}) {
        for (const bool bias : {true, false}) {
            for (const bool with_z : {true, false}) {
                const std::string name = std::string(activation[0] ? activation : "no activation") +
                                         (bias ? " with bias" : " without bias") + (with_z ? " with Z" : " Y only");
                const Attrs attrs = {Attr::text("activation", activation)};
                const size_t outputs = with_z ? 2 : 1;
                std::vector<InputSpec> gemm_inputs = {f32("A", {5, 7}, uniform(-2, 2)), f32("B", {7, 9})};
                if (bias) gemm_inputs.push_back(f32("C", {9}));
                add({.op = "FusedGemm", .name = name, .inputs = gemm_inputs, .attrs = attrs, .outputs = outputs,
                     .gradients = false});
                std::vector<InputSpec> conv_inputs = {f32("X", {2, 3, 6, 5}, uniform(-2, 2)), f32("W", {4, 3, 3, 3})};
                if (bias) conv_inputs.push_back(f32("B", {4}));
                add({.op = "FusedConv", .name = name, .inputs = conv_inputs,
                     .attrs = {Attr::text("activation", activation), Attr::ints("pads", {1, 1, 1, 1})},
                     .outputs = outputs, .gradients = false});
            }
        }
    }
    add({.op = "FusedGemm", .name = "HardSigmoid activation_alpha 0.5 activation_beta 0.3",
         .inputs = {f32("A", {4, 6}, uniform(-2, 2)), f32("B", {6, 3}), f32("C", {3})},
         .attrs = {Attr::text("activation", "HardSigmoid"), Attr::real("activation_alpha", 0.5),
                   Attr::real("activation_beta", 0.3)},
         .outputs = 2, .gradients = false});
    add({.op = "FusedGemm", .name = "no activation attribute", .inputs = {f32("A", {3, 4}), f32("B", {4, 5}), f32("C", {5})},
         .gradients = false, .rebatch = 6, .batch_inputs = {0}});
    add({.op = "FusedGemm", .name = "Relu transA transB alpha beta C [M 1]",
         .inputs = {f32("A", {6, 4}), f32("B", {5, 6}), f32("C", {4, 1})},
         .attrs = {Attr::text("activation", "Relu"), Attr::integer("transA", 1), Attr::integer("transB", 1),
                   Attr::real("alpha", 0.5), Attr::real("beta", 2.0)},
         .outputs = 2, .gradients = false});
    add({.op = "FusedGemm", .name = "Tanh C [M N] beta 0.5", .inputs = {f32("A", {3, 5}), f32("B", {5, 4}), f32("C", {3, 4})},
         .attrs = {Attr::text("activation", "Tanh"), Attr::real("beta", 0.5)}, .outputs = 2, .gradients = false});
    add({.op = "FusedGemm", .name = "Silu C scalar row vector A", .inputs = {f32("A", {1, 8}), f32("B", {8, 6}), f32("C", {})},
         .attrs = {Attr::text("activation", "Silu")}, .outputs = 2, .gradients = false});
    add({.op = "FusedConv", .name = "Relu strides 2 group 2",
         .inputs = {f32("X", {2, 4, 7, 7}, uniform(-2, 2)), f32("W", {6, 2, 3, 3}), f32("B", {6})},
         .attrs = {Attr::text("activation", "Relu"), Attr::integer("group", 2), Attr::ints("strides", {2, 2})},
         .outputs = 2, .gradients = false, .rebatch = 3, .batch_inputs = {0}});
    add({.op = "FusedConv", .name = "HardSwish depthwise pads 1",
         .inputs = {f32("X", {2, 4, 6, 6}, uniform(-3, 3)), f32("W", {4, 1, 3, 3}), f32("B", {4})},
         .attrs = {Attr::text("activation", "HardSwish"), Attr::integer("group", 4), Attr::ints("pads", {1, 1, 1, 1})},
         .outputs = 2, .gradients = false});
    add({.op = "FusedConv", .name = "Sigmoid 1x1", .inputs = {f32("X", {2, 5, 3, 4}), f32("W", {3, 5, 1, 1}), f32("B", {3})},
         .attrs = {Attr::text("activation", "Sigmoid")}, .gradients = false});
    add({.op = "FusedConv", .name = "HardSigmoid activation_alpha 0.4 activation_beta 0.6",
         .inputs = {f32("X", {1, 2, 5, 5}, uniform(-2, 2)), f32("W", {3, 2, 3, 3})},
         .attrs = {Attr::text("activation", "HardSigmoid"), Attr::real("activation_alpha", 0.4),
                   Attr::real("activation_beta", 0.6)},
         .outputs = 2, .gradients = false});
    //--- FusedConvMaxPool --------------------------------------------------------------------------
    // Made by the fusion pass in inference: forward only; the cpu backend takes the convolutions
    // of its direct path (stride 1, same size, 8+ output channels per group) and of Winograd's
    // (3x3 pad 1, channels in 16s: the first case), both AVX-512 or AVX2, with no activation or
    // Relu.
    add({.op = "FusedConvMaxPool", .name = "Relu 3x3 pads 1 16 -> 16 channels",
         .inputs = {f32("X", {2, 16, 8, 8}, uniform(-2, 2)), f32("W", {16, 16, 3, 3}), f32("B", {16})},
         .attrs = {Attr::text("activation", "Relu"), Attr::ints("pads", {1, 1, 1, 1})}, .gradients = false,
         .cpu_feature = "avx2"});
    add({.op = "FusedConvMaxPool", .name = "no activation, odd plane 7 x 9, 10 channels, no bias",
         .inputs = {f32("X", {2, 3, 7, 9}, uniform(-2, 2)), f32("W", {10, 3, 3, 3})},
         .attrs = {Attr::text("activation", ""), Attr::ints("pads", {1, 1, 1, 1})}, .gradients = false,
         .cpu_feature = "avx2"});
    add({.op = "FusedConvMaxPool", .name = "Relu group 2",
         .inputs = {f32("X", {1, 4, 6, 6}, uniform(-2, 2)), f32("W", {16, 2, 3, 3}), f32("B", {16})},
         .attrs = {Attr::text("activation", "Relu"), Attr::integer("group", 2), Attr::ints("pads", {1, 1, 1, 1})},
         .gradients = false, .cpu_feature = "avx2"});

    //--- FusedElementwise -------------------------------------------------------------------------
    // Made by the fusion pass after autodiff: forward only. Every op of programs, attributes,
    // each broadcast the cpu kernel maps (row, column, scalar, channel), several blocks.
    const std::vector<double> act_kinks = {-3, 0, 3};  // Relu, HardSwish; HardSigmoid's below
    add({.op = "FusedElementwise", .name = "Add Relu Mul Sigmoid Sub Div: row, scalar, same, column",
         .inputs = {f32("x0", {37, 29}, uniform(-3, 3, act_kinks)), f32("x1", {29}), f32("x2", {}),
                    f32("x3", {37, 29}), f32("x4", {37, 1}, uniform(0.5, 2))},
         .attrs = {Attr::text("program", "Add(x0,x1);Relu(t0);Mul(t1,x2);Sigmoid(t2);Sub(t3,x3);Div(t4,x4)")},
         .gradients = false});
    add({.op = "FusedElementwise", .name = "Tanh Gelu Silu HardSwish Neg: a tree",
         .inputs = {f32("x0", {2, 3, 5, 7}, uniform(-4, 4, act_kinks)), f32("x1", {3, 1, 1})},
         .attrs = {Attr::text("program", "Tanh(x0);Gelu(x0);Mul(t0,t1);Silu(t2);HardSwish(x0);Neg(t4);Add(t3,t5);Mul(t6,x1)")},
         .gradients = false});
    add({.op = "FusedElementwise", .name = "Gelu tanh, HardSigmoid alpha beta, ActivationGrad",
         .inputs = {f32("x0", {4, 1000}, uniform(-2, 2, {-1.6, 0, 1.6})), f32("x1", {4, 1000})},
         .attrs = {Attr::text("program", "Gelu[approximate=tanh](x0);HardSigmoid[alpha=0.3,beta=0.5](t0);"
                                         "ActivationGrad[activation=Tanh](x1,t1);ActivationGrad[activation=Relu](t2,x0);"
                                         "ActivationGrad[activation=HardSigmoid,alpha=0.25](t3,x0)")},
         .gradients = false});

    //--- Large cases ----------------------------------------------------------------------------
    // Sized past the cpu backend's thresholds, so that its blocked and threaded paths run: SGEMM
    // cache blocks (mc 126 rows, kc 256, nc 384 columns with AVX-512) and threads from 64^3
    // multiply-adds; Conv's batch split of ConvGradWeight (up to 8 blocks) and its parallel
    // SGEMM; elementwise, reduction and normalization loops split in chunks of 16384 elements.
    // Gradients are checked on fd_samples elements per input. Sums over K > 256 allow 1e-3 (see
    // Gemm "large K").
    add({.op = "Gemm", .name = "blocked threaded 130x260x20",
         .inputs = {f32("A", {130, 260}), f32("B", {260, 20}), f32("C", {20})}, .tolerance = 1e-3, .fd_samples = 24});
    add({.op = "Gemm", .name = "blocked threaded transA transB",
         .inputs = {f32("A", {260, 130}), f32("B", {20, 260}), f32("C", {130, 1})},
         .attrs = {Attr::integer("transA", 1), Attr::integer("transB", 1), Attr::real("alpha", 0.75)},
         .tolerance = 1e-3, .fd_samples = 24});
    add({.op = "Gemm", .name = "N past one column block transB",
         .inputs = {f32("A", {3, 20}), f32("B", {400, 20}), f32("C", {400})}, .attrs = {Attr::integer("transB", 1)},
         .fd_samples = 24});
    add({.op = "MatMul", .name = "blocked threaded 70x300x50", .inputs = {f32("A", {70, 300}), f32("B", {300, 50})},
         .tolerance = 1e-3, .fd_samples = 24});
    add({.op = "Conv", .name = "batch 10 split over weight blocks",
         .inputs = {f32("X", {10, 2, 4, 4}), f32("W", {3, 2, 3, 3}), f32("B", {3})},
         .attrs = {Attr::ints("pads", {1, 1, 1, 1})}});
    add({.op = "Conv", .name = "parallel SGEMM 8x16x16 to 16 channels",
         .inputs = {f32("X", {1, 8, 16, 16}), f32("W", {16, 8, 3, 3}), f32("B", {16})},
         .attrs = {Attr::ints("pads", {1, 1, 1, 1})}, .fd_samples = 24});
    add({.op = "Conv", .name = "1x1 strides 2 group 2",
         .inputs = {f32("X", {3, 4, 5, 5}), f32("W", {4, 2, 1, 1})},
         .attrs = {Attr::integer("group", 2), Attr::ints("strides", {2, 2})}});
    add({.op = "Conv", .name = "1x1 pads 1", .inputs = {f32("X", {2, 3, 3, 3}), f32("W", {2, 3, 1, 1}), f32("B", {2})},
         .attrs = {Attr::ints("pads", {1, 1, 1, 1})}});
    add({.op = "Conv", .name = "depthwise dilations 2x1 asymmetric pads",
         .inputs = {f32("X", {2, 3, 6, 6}), f32("W", {3, 1, 3, 3}), f32("B", {3})},
         .attrs = {Attr::integer("group", 3), Attr::ints("dilations", {2, 1}), Attr::ints("pads", {1, 2, 0, 1})}});
    add({.op = "Conv", .name = "depthwise 16 channels 32x32",
         .inputs = {f32("X", {2, 16, 32, 32}), f32("W", {16, 1, 3, 3}), f32("B", {16})},
         .attrs = {Attr::integer("group", 16), Attr::ints("pads", {1, 1, 1, 1})}, .fd_samples = 24});
    // The epilogue on every tile of the blocked and threaded SGEMM, partial tiles included; K > 256
    // sums over more than one K slice.
    add({.op = "FusedGemm", .name = "Gelu blocked threaded 130x300x400",
         .inputs = {f32("A", {130, 300}), f32("B", {400, 300}), f32("C", {400})},
         .attrs = {Attr::text("activation", "Gelu"), Attr::integer("transB", 1)}, .outputs = 2, .tolerance = 1e-3,
         .gradients = false});
    // FusedGemmChain at the few rows it is made for: layers in pairs split by groups of columns
    // (a last narrower group, [1, N] biases, both layouts of B, odd and even layer counts).
    add({.op = "FusedGemmChain", .name = "the MLP 784-256-128-10 at batch 1 Relu Relu none transB",
         .inputs = {f32("A", {1, 784}), f32("B0", {256, 784}), f32("C0", {256}), f32("B1", {128, 256}),
                    f32("C1", {128}), f32("B2", {10, 128}), f32("C2", {10})},
         .attrs = {Attr::ints("transB", {1, 1, 1}), Attr::text("activations", "Relu,Relu,")}, .tolerance = 1e-3,
         .gradients = false, .cpu_feature = "avx2"});
    add({.op = "FusedGemmChain", .name = "4 layers batch 3 widths 300 64 20 5 mixed transB Tanh Sigmoid none Silu",
         .inputs = {f32("A", {3, 40}), f32("B0", {40, 300}), f32("C0", {1, 300}), f32("B1", {64, 300}),
                    f32("C1", {64}), f32("B2", {64, 20}), f32("C2", {20}), f32("B3", {5, 20}), f32("C3", {1, 5})},
         .attrs = {Attr::ints("transB", {0, 1, 0, 1}), Attr::text("activations", "Tanh,Sigmoid,,Silu")},
         .tolerance = 1e-3, .gradients = false, .cpu_feature = "avx2"});
    add({.op = "FusedGemmChain", .name = "2 layers batch 2 width 130 HardSwish Gelu",
         .inputs = {f32("A", {2, 16}), f32("B0", {16, 130}), f32("C0", {130}), f32("B1", {130, 7}), f32("C1", {7})},
         .attrs = {Attr::ints("transB", {0, 0}), Attr::text("activations", "HardSwish,Gelu")}, .tolerance = 1e-3,
         .gradients = false, .cpu_feature = "avx2"});
    add({.op = "FusedConv", .name = "Relu parallel SGEMM 40x14x14 to 64 channels",
         .inputs = {f32("X", {1, 40, 14, 14}), f32("W", {64, 40, 3, 3}), f32("B", {64})},
         .attrs = {Attr::text("activation", "Relu"), Attr::ints("pads", {1, 1, 1, 1})}, .outputs = 2,
         .tolerance = 1e-3, .gradients = false});
    add({.op = "FusedConv", .name = "Silu batch 6 split over threads",
         .inputs = {f32("X", {6, 3, 12, 12}), f32("W", {16, 3, 3, 3}), f32("B", {16})},
         .attrs = {Attr::text("activation", "Silu"), Attr::ints("pads", {1, 1, 1, 1})}, .gradients = false});
    add({.op = "MaxPool", .name = "3x3 strides 2 on 2x8x40x40", .inputs = {f32("X", {2, 8, 40, 40}, distinct(-200, 200))},
         .attrs = {Attr::ints("kernel_shape", {3, 3}), Attr::ints("strides", {2, 2}), Attr::ints("pads", {1, 1, 1, 1})},
         .fd_samples = 24});
    add({.op = "AveragePool", .name = "3x3 pads 1 on 2x8x40x40", .inputs = {f32("X", {2, 8, 40, 40})},
         .attrs = {Attr::ints("kernel_shape", {3, 3}), Attr::ints("pads", {1, 1, 1, 1})}, .fd_samples = 24});
    add({.op = "GlobalAveragePool", .name = "2x8x48x48", .inputs = {f32("X", {2, 8, 48, 48})}, .fd_samples = 24});
    add({.op = "BatchNormalization", .name = "training 4x3x40x40",
         .inputs = bn_inputs({4, 3, 40, 40}), .attrs = {Attr::integer("training_mode", 1)}, .outputs = 3,
         .fd_samples = 24});
    add({.op = "LayerNormalization", .name = "100x300",
         .inputs = {f32("X", {100, 300}, uniform(-2, 2)), f32("scale", {300}, uniform(0.5, 1.5)), f32("B", {300})},
         .outputs = 3, .fd_samples = 24});
    add({.op = "Gelu", .name = "exact 50x700", .inputs = {f32("X", {50, 700}, uniform(-5, 5))}, .fd_samples = 24});
    add({.op = "Gelu", .name = "tanh 50x700", .inputs = {f32("X", {50, 700}, uniform(-5, 5))},
         .attrs = {Attr::text("approximate", "tanh")}, .fd_samples = 24});
    add({.op = "Sigmoid", .name = "50x700", .inputs = {f32("X", {50, 700}, uniform(-8, 8))}, .fd_samples = 24});
    add({.op = "HardSwish", .name = "50x700", .inputs = {f32("X", {50, 700}, uniform(-5, 5, {-3, 3}))}, .fd_samples = 24});
    add({.op = "Add", .name = "40x1000 plus row", .inputs = {f32("A", {40, 1000}), f32("B", {1000})}, .fd_samples = 24});
    add({.op = "Mul", .name = "3x40x350 by column", .inputs = {f32("A", {3, 40, 350}), f32("B", {40, 1})}, .fd_samples = 24});
    add({.op = "Div", .name = "200x100 by scalar", .inputs = {f32("A", {200, 100}), f32("B", {}, uniform(0.5, 2))},
         .fd_samples = 24});
    add({.op = "Sub", .name = "column minus 300x130", .inputs = {f32("A", {300, 1}), f32("B", {300, 130})}, .fd_samples = 24});
    add({.op = "Softmax", .name = "300x130", .inputs = {f32("X", {300, 130}, uniform(-3, 3))}, .fd_samples = 24});
    add({.op = "LogSoftmax", .name = "axis 0 of 130x300", .inputs = {f32("X", {130, 300}, uniform(-3, 3))},
         .attrs = {Attr::integer("axis", 0)}, .fd_samples = 24});
    add({.op = "SoftmaxCrossEntropyLoss", .name = "mean 512x100",
         .inputs = {f32("scores", {512, 100}, uniform(-3, 3)), i64("labels", {512}, integers(0, 99))}, .outputs = 2,
         .fd_samples = 24});
    add({.op = "Transpose", .name = "40x30x20 perm 2 0 1", .inputs = {f32("X", {40, 30, 20})},
         .attrs = {Attr::ints("perm", {2, 0, 1})}, .fd_samples = 24});
    add({.op = "Concat", .name = "axis 1 of 2 large", .inputs = {f32("X0", {30, 400, 2}), f32("X1", {30, 300, 2})},
         .attrs = {Attr::integer("axis", 1)}, .fd_samples = 24});
    add({.op = "Slice", .name = "steps 3 of 200x150", .inputs = {f32("X", {200, 150})},
         .attrs = {Attr::ints("starts", {5, 1}), Attr::ints("ends", {190, 150}), Attr::ints("steps", {3, 2})},
         .fd_samples = 24});
    add({.op = "Gather", .name = "300 rows of 1000x64",
         .inputs = {f32("data", {1000, 64}), i64("indices", {300}, integers(0, 999))}, .fd_samples = 24});
    for (const char* op : {"ReduceSum", "ReduceMean", "ReduceMax"}) {
        const bool is_max = std::string(op) == "ReduceMax";
        const Values v = is_max ? distinct(-2000, 2000) : uniform(-1, 1);
        add({.op = op, .name = "axis 0 of 200x300", .inputs = {f32("X", {200, 300}, v)},
             .attrs = {Attr::ints("axes", {0})}, .fd_samples = 24});
        add({.op = op, .name = "axis 1 of 200x300", .inputs = {f32("X", {200, 300}, v)},
             .attrs = {Attr::ints("axes", {1}), Attr::integer("keepdims", 0)}, .fd_samples = 24});
        add({.op = op, .name = "all of 200x300", .inputs = {f32("X", {200, 300}, v)}, .fd_samples = 24});
    }
    return cases;
}

const std::vector<OpCase>& op_cases() {
    static const std::vector<OpCase> cases = build_cases();
    return cases;
}

//==============================================================================================
// Inputs
//==============================================================================================

// SplitMix64 (dsk_random.hpp): a fixed generator, so every platform draws the same inputs.
struct Random {
    uint64_t state;
    explicit Random(const std::string& seed_text) : state(0xcbf29ce484222325ull) {
        for (unsigned char ch : seed_text) state = (state ^ ch) * 0x100000001b3ull;  // FNV-1a
    }
    uint64_t next() { return dsk::splitmix64(state); }
    double uniform(double low, double high) {
        return low + (high - low) * static_cast<double>(next() >> 11) * 0x1.0p-53;
    }
};

// The f32 value a double becomes when written to an f32 tensor, back as a double: the
// reference sees exactly what the backend sees.
double as_f32(double v) { return static_cast<double>(static_cast<float>(v)); }

Tensor draw(const InputSpec& in, Random& random) {
    Tensor t(in.shape);
    const size_t n = t.data.size();
    const Values& v = in.values;
    switch (v.kind) {
        case Values::Uniform:
            for (double& x : t.data) {
                bool near_kink = true;
                while (near_kink) {
                    x = as_f32(random.uniform(v.low, v.high));
                    near_kink = false;
                    for (double kink : v.avoid) near_kink = near_kink || std::abs(x - kink) < kKinkMargin;
                }
            }
            break;
        case Values::Distinct: {
            const double spacing = n > 1 ? (v.high - v.low) / static_cast<double>(n - 1) : 0;
            if (n > 1 && spacing < 2 * kKinkMargin)
                throw std::logic_error("input " + in.name + ": " + std::to_string(n) + " distinct values in [" +
                                       std::to_string(v.low) + ", " + std::to_string(v.high) +
                                       "] are too close for finite differences; widen the range");
            for (size_t i = 0; i < n; ++i) t.data[i] = as_f32(v.low + spacing * static_cast<double>(i));
            for (size_t i = n; i > 1; --i) std::swap(t.data[i - 1], t.data[random.next() % i]);  // Fisher-Yates
            break;
        }
        case Values::Integers:
            for (double& x : t.data)
                x = v.low + static_cast<double>(random.next() % static_cast<uint64_t>(v.high - v.low + 1));
            break;
        case Values::Fixed:
            if (v.fixed.size() != n)
                throw std::logic_error("input " + in.name + ": " + std::to_string(v.fixed.size()) + " fixed values for " +
                                       shape_text(in.shape));
            for (size_t i = 0; i < n; ++i) t.data[i] = in.dtype == DSK_DTYPE_F32 ? as_f32(v.fixed[i]) : v.fixed[i];
            break;
    }
    return t;
}

std::vector<Tensor> draw_inputs(const OpCase& c, const std::string& salt = "") {
    Random random(c.op + "/" + c.name + salt);
    std::vector<Tensor> inputs;
    for (const InputSpec& in : c.inputs) inputs.push_back(draw(in, random));
    return inputs;
}

// A copy of `c` whose batch_inputs have first dimension `batch` (fixed values repeated to fill
// them), for the rebatch run.
OpCase with_batch(const OpCase& c, int64_t batch) {
    OpCase changed = c;
    for (size_t i : c.batch_inputs) {
        changed.inputs[i].shape[0] = batch;
        if (changed.inputs[i].values.kind == Values::Fixed) {  // repeat the fixed values to the new size
            std::vector<double>& values = changed.inputs[i].values.fixed;
            const std::vector<double> original = values;
            values.resize(static_cast<size_t>(element_count(changed.inputs[i].shape)));
            for (size_t k = 0; k < values.size(); ++k) values[k] = original[k % original.size()];
        }
    }
    return changed;
}

//==============================================================================================
// The host API, with RAII and exceptions for the test's own plumbing
//==============================================================================================

const dsk_host_api& host() { return *dsk_host(); }

// Throws with the status's code and message (and frees it).
void check(dsk_status status, const std::string& what) {
    if (status == DSK_STATUS_OK) return;
    const std::string message = std::string(dsk::status_code_name(host().status_code(status))) + ": " +
                                host().status_message(status);
    host().status_free(status);
    throw std::runtime_error(what + " failed: " + message);
}

// The kernel every test shares: plugins are loaded once per process.
dsk::Kernel& kernel() {
    static dsk::Kernel k = [] {
        dsk::Kernel created;
        created.add_plugin_path(DSK_PLUGIN_DIR);
        return created;
    }();
    return k;
}

class Graph {
public:
    Graph() {
        if (dsk_kernel_graph_create(kernel().raw(), &graph_) != DSK_OK)
            throw std::runtime_error(std::string("dsk_kernel_graph_create: ") + dsk_kernel_last_error(kernel().raw()));
    }
    ~Graph() { host().graph_destroy(graph_); }
    Graph(const Graph&) = delete;
    Graph& operator=(const Graph&) = delete;
    dsk_graph* raw() const { return graph_; }

    dsk_value_id input(const InputSpec& in) {
        dsk_tensor_desc d = dsk::host_tensor(in.dtype, in.shape, nullptr);
        dsk_value_id v = DSK_VALUE_NONE;
        if (in.running_statistic)
            check(host().graph_variable(graph_, in.name.c_str(), &d, 0, "zeros", 0.0, &v), "graph_variable " + in.name);
        else
            check(host().graph_input(graph_, in.name.c_str(), &d, &v), "graph_input " + in.name);
        return v;
    }
    dsk_value_id constant(const Tensor& t) {
        std::vector<float> data(t.data.begin(), t.data.end());
        dsk_tensor_desc d = dsk::host_tensor(DSK_DTYPE_F32, t.shape, data.data());
        dsk_value_id v = DSK_VALUE_NONE;
        check(host().graph_constant(graph_, &d, &v), "graph_constant");
        return v;
    }
    std::vector<dsk_value_id> node(const std::string& op, const std::vector<dsk_value_id>& inputs, const Attrs& attrs,
                                   size_t output_count) {
        std::vector<dsk_attr> views;
        for (const Attr& a : attrs) views.push_back(a.view());
        std::vector<dsk_value_id> outputs(output_count, DSK_VALUE_NONE);
        check(host().graph_add_node(graph_, op.c_str(), views.data(), views.size(), inputs.data(), inputs.size(),
                                    outputs.data(), outputs.size()),
              "graph_add_node " + op);
        return outputs;
    }
    std::vector<dsk_value_id> gradients(dsk_value_id loss, const std::vector<dsk_value_id>& wrt) {
        std::vector<dsk_value_id> grads(wrt.size(), DSK_VALUE_NONE);
        check(host().graph_gradients(graph_, loss, wrt.data(), wrt.size(), grads.data()), "graph_gradients");
        return grads;
    }

private:
    dsk_graph* graph_ = nullptr;
};

class Session {
public:
    explicit Session(dsk_session* s) : session_(s) {}
    ~Session() { host().session_destroy(session_); }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    void write(dsk_value_id v, const InputSpec& spec, const Tensor& t) {
        if (spec.dtype == DSK_DTYPE_U8 || spec.dtype == DSK_DTYPE_I8) {
            std::vector<int8_t> data(t.data.size());
            for (size_t i = 0; i < data.size(); ++i)
                data[i] = spec.dtype == DSK_DTYPE_U8 ? static_cast<int8_t>(static_cast<uint8_t>(t.data[i]))
                                                     : static_cast<int8_t>(t.data[i]);
            dsk_tensor_desc d = dsk::host_tensor(spec.dtype, t.shape, data.data());
            check(host().session_write(session_, v, &d), "session_write " + spec.name);
        } else if (spec.dtype == DSK_DTYPE_I64) {
            std::vector<int64_t> data(t.data.begin(), t.data.end());
            dsk_tensor_desc d = dsk::host_tensor(DSK_DTYPE_I64, t.shape, data.data());
            check(host().session_write(session_, v, &d), "session_write " + spec.name);
        } else {
            std::vector<float> data(t.data.begin(), t.data.end());
            dsk_tensor_desc d = dsk::host_tensor(DSK_DTYPE_F32, t.shape, data.data());
            check(host().session_write(session_, v, &d), "session_write " + spec.name);
        }
    }
    void run(const std::vector<dsk_value_id>& targets) {
        check(host().session_run(session_, targets.data(), targets.size()), "session_run");
    }
    // A value of dtype f32, u8, i32 or i64, with the shape the session has for it, as doubles.
    Tensor read(dsk_value_id v) {
        dsk_tensor_desc desc{};
        desc.struct_size = sizeof desc;
        check(host().session_tensor(session_, v, &desc), "session_tensor");
        const Shape shape = dsk::shape_of(desc);
        const size_t n = static_cast<size_t>(element_count(shape));
        Tensor t(shape);
        auto fetch = [&](auto* data) {
            dsk_tensor_desc d = dsk::host_tensor(desc.dtype, shape, data);
            check(host().session_read(session_, v, &d), "session_read");
            for (size_t i = 0; i < n; ++i) t.data[i] = static_cast<double>(data[i]);
        };
        if (desc.dtype == DSK_DTYPE_F32) {
            std::vector<float> data(n);
            fetch(data.data());
        } else if (desc.dtype == DSK_DTYPE_U8) {
            std::vector<uint8_t> data(n);
            fetch(data.data());
        } else if (desc.dtype == DSK_DTYPE_I64) {
            std::vector<int64_t> data(n);
            fetch(data.data());
        } else if (desc.dtype == DSK_DTYPE_I32) {
            std::vector<int32_t> data(n);
            fetch(data.data());
        } else {
            throw std::runtime_error(std::string("reading a ") + dsk::dtype_name(desc.dtype) + " value is not supported here");
        }
        return t;
    }
    uint64_t run_count() const { return host().session_run_count(session_); }
    void set_run_count(uint64_t runs) { check(host().session_set_run_count(session_, runs), "session_set_run_count"); }

private:
    dsk_session* session_;
};

// A session of `graph` on `backend`, or null (after a message) when a backend other than cpu
// is absent or unusable here, or cannot run the op under test (the graph's first node). cpu is
// the reference backend, always available: any failure to place a graph on it fails the test, so
// that a cpu plugin that does not load can never turn the suite into a silent pass. Another
// backend is opened as "<backend>,cpu": the op under test must land on it, and the nodes around
// it (the loss of the gradient check, other gradient nodes) may run on the cpu, which also
// exercises the transfers between the two.
std::unique_ptr<Session> open_session(Graph& graph, const std::string& backend, uint64_t seed = 1) {
    dsk_session* s = nullptr;
    const std::string devices = backend == "cpu" ? backend : backend + ",cpu";
    const dsk_status_code code = dsk_kernel_session_create(kernel().raw(), graph.raw(), devices.c_str(), seed, &s);
    if (code == DSK_OK) {
        auto session = std::make_unique<Session>(s);
        const char* placed = dsk_session_node_backend(s, 0);
        if (backend != "cpu" && (!placed || placed != backend)) {
            WARN_MESSAGE(false, "skipped on backend " << backend << " (it does not take the op): " << std::string(dsk_session_placement_json(s)));
            return nullptr;
        }
        return session;
    }
    const std::string message = dsk_kernel_last_error(kernel().raw());
    if (backend != "cpu" && (code == DSK_NOT_FOUND || code == DSK_UNAVAILABLE)) {
        MESSAGE("skipped on backend " << backend << ": " << message);
        return nullptr;
    }
    throw std::runtime_error("no session on backend " + backend + " (" + dsk::status_code_name(code) + "): " + message);
}

//==============================================================================================
// Comparison
//==============================================================================================

std::string number(double v) {
    std::ostringstream s;
    s.precision(9);
    s << v;
    return s.str();
}

// Checks `got` against `expected` element by element (|got - expected| <= tolerance *
// max(1, |expected|)), at the flat positions `only` (every element when it is empty); one
// failure lists the first few differing elements and the worst one.
void compare(const Tensor& got, const Tensor& expected, double tolerance, const std::string& what,
             const std::vector<size_t>& only = {}) {
    if (got.shape != expected.shape) {
        FAIL_CHECK(what << ": shape " << shape_text(got.shape) << ", expected " << shape_text(expected.shape));
        return;
    }
    std::vector<size_t> positions = only;
    if (positions.empty())
        for (size_t i = 0; i < got.data.size(); ++i) positions.push_back(i);
    std::ostringstream details;
    size_t bad = 0;
    double worst = 0;
    std::string worst_text;
    for (size_t i : positions) {
        const double g = got.data[i], e = expected.data[i];
        const double allowed = tolerance * std::max(1.0, std::abs(e));
        const double error = std::abs(g - e);
        if (error <= allowed) continue;  // false for NaN too
        const std::string text = "index " + shape_text(unravel(static_cast<int64_t>(i), got.shape)) + " (flat " +
                                 std::to_string(i) + "): got " + number(g) + ", expected " + number(e) +
                                 ", |diff| " + number(error) + " > " + number(allowed);
        if (bad < 5) details << "\n    " << text;
        if (!(error <= worst)) {
            worst = error;
            worst_text = text;
        }
        ++bad;
    }
    if (bad == 0) return;
    FAIL_CHECK(what << ": " << bad << " of " << positions.size() << " elements"
                    << (only.empty() ? "" : " checked") << " differ (tolerance " << tolerance
                    << " * max(1, |expected|))" << details.str() << (bad > 5 ? "\n    ..." : "")
                    << "\n    worst: " << worst_text);
}

//==============================================================================================
// The checks
//==============================================================================================

// The node with its inputs: ids of the inputs (in case order) and of the outputs.
struct OpGraph {
    std::vector<dsk_value_id> inputs, outputs;
};

OpGraph add_op(Graph& graph, const OpCase& c) {
    OpGraph g;
    for (const InputSpec& in : c.inputs) g.inputs.push_back(graph.input(in));
    g.outputs = graph.node(c.op, g.inputs, c.attrs, c.outputs);
    return g;
}

void write_inputs(Session& session, const OpCase& c, const OpGraph& g, const std::vector<Tensor>& values) {
    for (size_t i = 0; i < c.inputs.size(); ++i) session.write(g.inputs[i], c.inputs[i], values[i]);
}

// Draws the inputs of `drawn` (the case, or the case with a new batch size), runs the session
// on them and compares every output of the node, and the running statistics it updates in
// place, with the reference. `run_name` tells the runs apart in the messages (and the draws).
void run_and_compare(Session& session, const OpCase& c, const OpGraph& g, const OpCase& drawn,
                     const std::string& run_name) {
    const std::vector<Tensor> values = draw_inputs(drawn, run_name);
    std::vector<Tensor> reference_inputs = values;  // the reference updates running statistics in place
    const std::vector<Tensor> expected = dsk::conformance::ref::run(c.op, reference_inputs, c.attrs);
    write_inputs(session, drawn, g, values);
    session.run(g.outputs);
    const std::string title = case_title(c) + run_name;
    for (size_t i = 0; i < g.outputs.size(); ++i)
        compare(session.read(g.outputs[i]), expected[i], c.tolerance, title + " output " + std::to_string(i));
    for (size_t i = 0; i < c.inputs.size(); ++i)
        if (c.inputs[i].running_statistic)
            compare(session.read(g.inputs[i]), reference_inputs[i], c.tolerance,
                    title + " running statistic '" + c.inputs[i].name + "' after the run");
}

void check_forward(const OpCase& c, const std::string& backend) {
    if (c.cpu_feature && !cpu_supports(c.cpu_feature)) {
        MESSAGE("skipped: the cpu backend takes this case on CPUs with " << c.cpu_feature << " only");
        return;
    }
    Graph graph;
    const OpGraph g = add_op(graph, c);
    std::unique_ptr<Session> session = open_session(graph, backend);
    if (!session) return;
    run_and_compare(*session, c, g, c, "");
    if (c.rebatch > 0)
        run_and_compare(*session, c, g, with_batch(c, c.rebatch),
                        " with batch " + std::to_string(c.rebatch) + " in the same session");
}

// The flat positions whose finite differences are checked: all of [0, n) when `samples` is 0
// or at least n, else `samples` distinct ones, the first and the last among them.
std::vector<size_t> sample_positions(size_t n, size_t samples, const std::string& seed) {
    std::vector<size_t> all(n);
    for (size_t i = 0; i < n; ++i) all[i] = i;
    if (samples == 0 || samples >= n) return all;
    Random random(seed);
    for (size_t i = n - 2; i > 1; --i) std::swap(all[i], all[1 + random.next() % i]);  // shuffle the middle
    std::vector<size_t> chosen = {0, n - 1};
    for (size_t i = 1; chosen.size() < samples; ++i) chosen.push_back(all[i]);
    std::sort(chosen.begin(), chosen.end());
    return chosen;
}

// L = sum(Y * W) (or the loss output of SoftmaxCrossEntropyLoss) by the f64 reference.
double reference_loss(const OpCase& c, const std::vector<Tensor>& inputs, const Tensor& weights) {
    std::vector<Tensor> copy = inputs;  // BatchNormalization (training) writes its running statistics
    const std::vector<Tensor> out = dsk::conformance::ref::run(c.op, copy, c.attrs);
    if (c.op == "SoftmaxCrossEntropyLoss") return out[0].data[0];
    double loss = 0;
    for (size_t i = 0; i < weights.data.size(); ++i) loss += out[0].data[i] * weights.data[i];
    return loss;
}

void check_gradients(const OpCase& c, const std::string& backend) {
    const std::vector<Tensor> values = draw_inputs(c);
    const bool own_loss = c.op == "SoftmaxCrossEntropyLoss";
    std::vector<Tensor> copy = values;
    const Shape y_shape = dsk::conformance::ref::run(c.op, copy, c.attrs)[0].shape;
    Tensor weights(y_shape);
    Random random(c.op + "/" + c.name + " weights");
    for (double& w : weights.data) w = as_f32(random.uniform(-1, 1));

    Graph graph;
    const OpGraph g = add_op(graph, c);
    dsk_value_id loss = g.outputs[0];
    if (!own_loss) {
        const dsk_value_id product = graph.node("Mul", {g.outputs[0], graph.constant(weights)}, {}, 1)[0];
        loss = graph.node("ReduceSum", {product}, {Attr::integer("keepdims", 0)}, 1)[0];
    }
    std::vector<size_t> wrt_inputs;  // f32 inputs: the differentiable ones and the running statistics
    std::vector<dsk_value_id> wrt;
    for (size_t i = 0; i < c.inputs.size(); ++i)
        if (c.inputs[i].dtype == DSK_DTYPE_F32) {
            wrt_inputs.push_back(i);
            wrt.push_back(g.inputs[i]);
        }
    const std::vector<dsk_value_id> grads = graph.gradients(loss, wrt);

    std::vector<dsk_value_id> targets;
    for (size_t k = 0; k < wrt.size(); ++k) {
        const InputSpec& in = c.inputs[wrt_inputs[k]];
        if (in.running_statistic) {
            CHECK_MESSAGE(grads[k] == DSK_VALUE_NONE, case_title(c) << ": running statistic '" << in.name
                                                                    << "' got a gradient; docs/ops.md says it gets none");
        } else if (grads[k] == DSK_VALUE_NONE) {
            FAIL_CHECK(case_title(c) << ": graph_gradients gave no gradient for input '" << in.name << "'");
        } else {
            targets.push_back(grads[k]);
        }
    }
    if (targets.empty()) return;

    std::unique_ptr<Session> session = open_session(graph, backend);
    if (!session) return;
    write_inputs(*session, c, g, values);
    session->run(targets);

    for (size_t k = 0; k < wrt.size(); ++k) {
        const size_t i = wrt_inputs[k];
        if (!is_differentiable(c.inputs[i]) || grads[k] == DSK_VALUE_NONE) continue;
        const Tensor got = session->read(grads[k]);
        Tensor expected(values[i].shape);
        const std::vector<size_t> positions = sample_positions(expected.data.size(), c.fd_samples,
                                                               c.op + "/" + c.name + "/" + c.inputs[i].name);
        std::vector<Tensor> moved = values;
        for (size_t e : positions) {
            const double x = values[i].data[e];
            moved[i].data[e] = x + kFiniteDifferenceEps;
            const double plus = reference_loss(c, moved, weights);
            moved[i].data[e] = x - kFiniteDifferenceEps;
            const double minus = reference_loss(c, moved, weights);
            moved[i].data[e] = x;
            expected.data[e] = (plus - minus) / (2 * kFiniteDifferenceEps);
        }
        compare(got, expected, kGradientTolerance,
                case_title(c) + " d" + (own_loss ? "loss" : "(sum(Y*W))") + "/d" + c.inputs[i].name +
                    " vs central differences of the reference",
                positions);
    }
}

// Runs `check`, turning an exception (a failed host call, a session that cannot be created)
// into a failed check, so that the other subcases of the test case still run.
template <class Check>
void run_check(const std::string& what, Check&& check) {
    try {
        check();
    } catch (const std::exception& e) {
        FAIL_CHECK(what << ": " << std::string(e.what()));
    }
}

// Every case of `op`, forward and gradients, on every backend: one subcase each.
void check_op(const std::string& op) {
    bool any = false;
    for (const OpCase& c : op_cases()) {
        if (c.op != op) continue;
        any = true;
        for (const std::string& backend : backends()) {
            const std::string where = c.name + " on " + backend;
            SUBCASE((where + " forward").c_str()) {
                run_check(case_title(c) + " on " + backend, [&] { check_forward(c, backend); });
            }
            if (c.gradients) {
                SUBCASE((where + " gradients").c_str()) {
                    run_check(case_title(c) + " gradients on " + backend, [&] { check_gradients(c, backend); });
                }
            }
        }
    }
    REQUIRE_MESSAGE(any, "no conformance case for op " << op);
}

}  // namespace

// The forward ops docs/ops.md lists: the backticked names in the first column of its table,
// above the "backward ops" row.
std::vector<std::string> documented_forward_ops() {
    std::ifstream doc(DSK_OPS_DOC);
    std::vector<std::string> ops;
    std::string line;
    bool forward = true;  // the backward ops' section is skipped; the optimizer updates count
    while (std::getline(doc, line)) {
        if (line.find("backward ops") != std::string::npos) forward = false;
        if (line.rfind("## Optimizer updates", 0) == 0) forward = true;
        if (!forward || line.rfind("| `", 0) != 0) continue;
        const std::string first = line.substr(0, line.find('|', 1));
        for (size_t open = first.find('`'); open != std::string::npos; open = first.find('`', open + 1)) {
            const size_t close = first.find('`', open + 1);
            if (close == std::string::npos) break;
            ops.push_back(first.substr(open + 1, close - open - 1));
            open = close;
        }
    }
    return ops;
}

TEST_CASE("every forward op of docs/ops.md has a reference and conformance cases") {
    const std::vector<std::string> documented = documented_forward_ops();
    REQUIRE_MESSAGE(documented.size() > 30, "read only " << documented.size() << " ops from " << DSK_OPS_DOC);
    const std::vector<std::string>& referenced = dsk::conformance::ref::forward_ops();
    std::set<std::string> covered;
    for (const OpCase& c : op_cases()) covered.insert(c.op);
    for (const std::string& op : documented) {
        CHECK_MESSAGE(std::find(referenced.begin(), referenced.end(), op) != referenced.end(),
                      "docs/ops.md lists " << op << " but reference_ops.cpp has no reference for it");
        CHECK_MESSAGE(covered.count(op) == 1, "docs/ops.md lists " << op << " but the table has no case for it");
    }
    for (const std::string& op : referenced)
        CHECK_MESSAGE(std::find(documented.begin(), documented.end(), op) != documented.end(),
                      "reference_ops.cpp has " << op << ", which docs/ops.md does not list as a forward op");
    for (const std::string& op : covered)
        CHECK_MESSAGE(std::find(referenced.begin(), referenced.end(), op) != referenced.end(),
                      "the table has cases for " << op << ", which has no reference");
}

TEST_CASE("Gemm matches the reference") { check_op("Gemm"); }
TEST_CASE("MatMul matches the reference") { check_op("MatMul"); }
TEST_CASE("Conv matches the reference") { check_op("Conv"); }
TEST_CASE("FusedGemm matches the reference") { check_op("FusedGemm"); }
TEST_CASE("FusedGemmChain matches the reference") { check_op("FusedGemmChain"); }
TEST_CASE("FusedConv matches the reference") { check_op("FusedConv"); }
TEST_CASE("FusedConvMaxPool matches the reference") { check_op("FusedConvMaxPool"); }
namespace {
// The message of what `add` throws, or "(no error)": for the schemas' own checks below.
template <class F>
std::string message_of(F&& add) {
    try {
        add();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "(no error)";
}
}  // namespace

// The schemas' own checks, which the cases above (all valid nodes) do not reach: the activation
// is one of the fusable ones, and there is no gradient (the fusion pass runs after autodiff).
TEST_CASE("FusedGemm and FusedConv refuse other activations and have no gradient") {
    Graph graph;
    const dsk_value_id a = graph.input(f32("A", {2, 3})), b = graph.input(f32("B", {3, 4}));
    const dsk_value_id x = graph.input(f32("X", {1, 2, 5, 5})), w = graph.input(f32("W", {3, 2, 3, 3}));
    for (const char* activation : {"Neg", "Softplus"}) {
        const std::string gemm = message_of([&] { graph.node("FusedGemm", {a, b}, {Attr::text("activation", activation)}, 1); });
        CHECK_MESSAGE(gemm.find(std::string("activation = \"") + activation + "\" is not one of") != std::string::npos, gemm);
        const std::string conv = message_of([&] { graph.node("FusedConv", {x, w}, {Attr::text("activation", activation)}, 2); });
        CHECK_MESSAGE(conv.find(std::string("activation = \"") + activation + "\" is not one of") != std::string::npos, conv);
    }
    const std::vector<dsk_value_id> yz = graph.node("FusedGemm", {a, b}, {Attr::text("activation", "Tanh")}, 2);
    const dsk_value_id loss = graph.node("ReduceSum", {yz[0]}, {Attr::integer("keepdims", 0)}, 1)[0];
    const std::string no_gradient = message_of([&] { graph.gradients(loss, {a}); });
    CHECK_MESSAGE(no_gradient.find("FusedGemm") != std::string::npos, no_gradient);
    CHECK_MESSAGE(no_gradient.find("no gradient rule") != std::string::npos, no_gradient);
}
TEST_CASE("FusedElementwise matches the reference") { check_op("FusedElementwise"); }
// The schema's checks: the program is parsed and its shapes inferred at graph_add_node, and the
// op has no gradient (the fusion pass runs after autodiff).
TEST_CASE("FusedElementwise checks its program and has no gradient") {
    Graph graph;
    const dsk_value_id x = graph.input(f32("X", {2, 3})), row = graph.input(f32("R", {4}));
    const struct {
        const char* program;
        const char* says;
    } bad[] = {
        {"Exp(x0)", "not an op of programs"},
        {"Relu(x0);Add(t0,x2)", "x2 does not exist"},
        {"Relu(x0)", "input x1 is never read"},
        {"Add(x0,x1)", "cannot broadcast A [2, 3] with B [4]"},
        {"ActivationGrad[activation=Neg](x0,x0);Add(t0,x1)", "activation = \"Neg\" is not one of"},
    };
    for (const auto& b : bad) {
        const std::string m = message_of([&] { graph.node("FusedElementwise", {x, row}, {Attr::text("program", b.program)}, 1); });
        CHECK_MESSAGE(m.find(b.says) != std::string::npos, b.program << ": " << m);
    }
    const dsk_value_id y = graph.node("FusedElementwise", {x}, {Attr::text("program", "Tanh(x0);Mul(t0,x0)")}, 1)[0];
    const dsk_value_id loss = graph.node("ReduceSum", {y}, {Attr::integer("keepdims", 0)}, 1)[0];
    const std::string no_gradient = message_of([&] { graph.gradients(loss, {x}); });
    CHECK_MESSAGE(no_gradient.find("FusedElementwise") != std::string::npos, no_gradient);
    CHECK_MESSAGE(no_gradient.find("no gradient rule") != std::string::npos, no_gradient);
}
TEST_CASE("MaxPool matches the reference") { check_op("MaxPool"); }
TEST_CASE("AveragePool matches the reference") { check_op("AveragePool"); }
TEST_CASE("GlobalAveragePool matches the reference") { check_op("GlobalAveragePool"); }
TEST_CASE("BatchNormalization matches the reference") { check_op("BatchNormalization"); }
TEST_CASE("LayerNormalization matches the reference") { check_op("LayerNormalization"); }
TEST_CASE("Relu matches the reference") { check_op("Relu"); }
TEST_CASE("Sigmoid matches the reference") { check_op("Sigmoid"); }
TEST_CASE("Tanh matches the reference") { check_op("Tanh"); }
TEST_CASE("Gelu matches the reference") { check_op("Gelu"); }
TEST_CASE("Silu matches the reference") { check_op("Silu"); }
TEST_CASE("HardSwish matches the reference") { check_op("HardSwish"); }
TEST_CASE("HardSigmoid matches the reference") { check_op("HardSigmoid"); }
TEST_CASE("Neg matches the reference") { check_op("Neg"); }
TEST_CASE("Add matches the reference") { check_op("Add"); }
TEST_CASE("Sub matches the reference") { check_op("Sub"); }
TEST_CASE("Mul matches the reference") { check_op("Mul"); }
TEST_CASE("Div matches the reference") { check_op("Div"); }
TEST_CASE("Softmax matches the reference") { check_op("Softmax"); }
TEST_CASE("LogSoftmax matches the reference") { check_op("LogSoftmax"); }
TEST_CASE("SoftmaxCrossEntropyLoss matches the reference") { check_op("SoftmaxCrossEntropyLoss"); }
TEST_CASE("Reshape matches the reference") { check_op("Reshape"); }
TEST_CASE("Flatten matches the reference") { check_op("Flatten"); }
TEST_CASE("Transpose matches the reference") { check_op("Transpose"); }
TEST_CASE("Concat matches the reference") { check_op("Concat"); }
TEST_CASE("Slice matches the reference") { check_op("Slice"); }
TEST_CASE("Dropout in eval mode matches the reference") { check_op("Dropout"); }
TEST_CASE("AdamUpdate matches the reference") { check_op("AdamUpdate"); }
TEST_CASE("FoldConvBatchNorm matches the reference") { check_op("FoldConvBatchNorm"); }
TEST_CASE("SGDUpdate matches the reference") { check_op("SGDUpdate"); }
// Training mode draws the mask from host->exec_seed (session seed, run count, node): check the
// relation between X, Y and the mask, the keep rate, DropoutGrad, and that the mask is a
// function of the seed and the run count only.
TEST_CASE("Dropout in training mode follows its mask and its seed") {
    const double ratio = 0.3;
    const OpCase c{.op = "Dropout", .name = "training ratio 0.3",
                   // 20480 elements: more than one chunk of 16384 for the cpu backend's threads.
                   .inputs = {f32("X", {128, 160}, uniform(-2, 2, {0}))},  // no zeros: Y == 0 means dropped
                   .attrs = {Attr::real("ratio", ratio), Attr::integer("training_mode", 1)},
                   .outputs = 2};
    const Tensor x = draw_inputs(c)[0];
    Tensor weights(x.shape);
    Random random("dropout weights");
    for (double& w : weights.data) w = as_f32(random.uniform(-1, 1));

    for (const std::string& backend : backends()) run_check("Dropout ratio 0.3 training_mode 1 on " + backend, [&] {
        Graph graph;
        const OpGraph g = add_op(graph, c);
        const dsk_value_id product = graph.node("Mul", {g.outputs[0], graph.constant(weights)}, {}, 1)[0];
        const dsk_value_id loss = graph.node("ReduceSum", {product}, {Attr::integer("keepdims", 0)}, 1)[0];
        const dsk_value_id dx = graph.gradients(loss, {g.inputs[0]})[0];
        REQUIRE_MESSAGE(dx != DSK_VALUE_NONE, "graph_gradients gave no gradient for X");
        std::unique_ptr<Session> session = open_session(graph, backend, 7);
        if (!session) return;

        // Writes X, runs once (forward and DropoutGrad) and returns the mask.
        auto run_mask = [&](Session& s) {
            s.write(g.inputs[0], c.inputs[0], x);
            s.run({g.outputs[0], g.outputs[1], dx});
            return s.read(g.outputs[1]);
        };
        const Tensor mask = run_mask(*session);
        const Tensor y = session->read(g.outputs[0]);
        const Tensor grad = session->read(dx);

        size_t kept = 0, not_binary = 0;
        Tensor expected_y(x.shape), expected_grad(x.shape);
        for (size_t i = 0; i < mask.data.size(); ++i) {
            const double m = mask.data[i];
            not_binary += m != 0 && m != 1;
            kept += m == 1;
            expected_y.data[i] = x.data[i] * m / (1 - ratio);
            expected_grad.data[i] = weights.data[i] * m / (1 - ratio);
        }
        CHECK_MESSAGE(not_binary == 0, not_binary << " mask elements are neither 0 nor 1");
        compare(y, expected_y, kForwardTolerance, "Dropout training: Y vs X * mask / (1 - ratio)");
        compare(grad, expected_grad, kForwardTolerance, "Dropout training: dX vs W * mask / (1 - ratio) (DropoutGrad)");
        // 20480 draws with p = 0.7: the standard deviation of the keep rate is 0.0032.
        const double keep_rate = static_cast<double>(kept) / static_cast<double>(mask.data.size());
        CHECK_MESSAGE(std::abs(keep_rate - (1 - ratio)) < 0.02,
                      "kept " << keep_rate << " of the elements, expected about " << 1 - ratio);

        CHECK(session->run_count() == 1);
        const Tensor second = run_mask(*session);
        CHECK_MESSAGE(second.data != mask.data, "the second run drew the same mask as the first");
        session->set_run_count(0);
        CHECK_MESSAGE(run_mask(*session).data == mask.data, "run count 0 again did not give the first mask");

        std::unique_ptr<Session> same_seed = open_session(graph, backend, 7);
        REQUIRE(same_seed);
        CHECK_MESSAGE(run_mask(*same_seed).data == mask.data, "a second session with seed 7 drew another mask");
        std::unique_ptr<Session> other_seed = open_session(graph, backend, 8);
        REQUIRE(other_seed);
        CHECK_MESSAGE(run_mask(*other_seed).data != mask.data, "seed 8 drew the same mask as seed 7");
    });
}

TEST_CASE("Gather matches the reference") { check_op("Gather"); }
TEST_CASE("MatMulInteger matches the reference") { check_op("MatMulInteger"); }
TEST_CASE("ConvInteger matches the reference") { check_op("ConvInteger"); }
TEST_CASE("ReduceSum matches the reference") { check_op("ReduceSum"); }
TEST_CASE("ReduceMean matches the reference") { check_op("ReduceMean"); }
TEST_CASE("ReduceMax matches the reference") { check_op("ReduceMax"); }
