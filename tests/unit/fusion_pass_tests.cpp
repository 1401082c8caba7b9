// The fusion pass (kernel/fusion_pass.h) on hand-built steps: Gemm/Conv + activation become one
// fused node, the pre-activation is kept only when something else reads it, MaxPoolGrad + the
// ActivationGrad of a Relu become MaxPoolReluGrad, a conv and the 2x2 MaxPool that alone reads it
// become FusedConvMaxPool, and nothing is fused across devices, without the fused schema, or where the device refuses the fused node.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "fusion_pass.h"
#include "plan_steps.h"

using namespace dsk::kernel;

namespace {

using test::kFakeSchema;
using test::node;

// x(0) w(1) b(2) -> Gemm -> z(3) -> Relu -> y(4) [-> ActivationGrad reads z: 5, 6]
struct Fixture {
    std::vector<Value> values = std::vector<Value>(7);
    std::vector<bool> observable = std::vector<bool>(7, false);
    std::vector<FusableStep> steps;
    bool accept = true;
    Fixture(bool with_grad) {
        steps.push_back({node("Gemm", {0, 1, 2}, {3}), 0, {}, 0});
        steps.push_back({node("Relu", {3}, {4}), 1, {}, 0});
        if (with_grad) steps.push_back({node("ActivationGrad", {5, 3}, {6}), 2, {}, 0});
    }
    std::vector<std::string> fuse(bool have_schema = true) {
        return fuse_activations(
            steps, values, observable, [&](const std::string&) { return have_schema ? &kFakeSchema : nullptr; },
            [&](const Node&, uint32_t device) { return accept ? static_cast<int32_t>(device) : -1; });
    }
};

std::string attr_string(const Node& n, const std::string& name) {
    for (const auto& a : n.attrs)
        if (a.name == name) return a.s;
    return "(none)";
}

}  // namespace

TEST_CASE("Gemm then Relu becomes one FusedGemm with the activation attribute") {
    Fixture f(false);
    auto report = f.fuse();
    REQUIRE(f.steps.size() == 1);
    CHECK(f.steps[0].node.op == "FusedGemm");
    CHECK(attr_string(f.steps[0].node, "activation") == "Relu");
    CHECK(f.steps[0].node.inputs == std::vector<dsk_value_id>{0, 1, 2});
    CHECK(f.steps[0].node.outputs == std::vector<dsk_value_id>{4});
    CHECK(f.steps[0].fused_from == std::vector<uint32_t>{0, 1});
    CHECK(report.size() == 1);
}

TEST_CASE("the pre-activation stays an output when a gradient or a target reads it") {
    Fixture f(true);
    f.fuse();
    REQUIRE(f.steps.size() == 2);
    CHECK(f.steps[0].node.outputs == std::vector<dsk_value_id>{4, 3});
    CHECK(f.steps[1].node.op == "ActivationGrad");
    Fixture g(false);
    g.observable[3] = true;
    g.fuse();
    CHECK(g.steps[0].node.outputs == std::vector<dsk_value_id>{4, 3});
}

TEST_CASE("nothing is fused across devices - without the schema - or when the device refuses") {
    Fixture across(false);
    across.steps[1].device = 1;
    CHECK(across.fuse().empty());
    CHECK(across.steps.size() == 2);
    Fixture no_schema(false);
    CHECK(no_schema.fuse(false).empty());
    Fixture refused(false);
    refused.accept = false;
    CHECK(refused.fuse().empty());
    CHECK(refused.steps[0].node.op == "Gemm");
}

namespace {

// dy(0) x(1) -> MaxPoolGrad -> g(2) -> ActivationGrad[activation](g, x or other(3)) -> dz(4)
struct PoolGradFixture {
    std::vector<Value> values = std::vector<Value>(5);
    std::vector<bool> observable = std::vector<bool>(5, false);
    std::vector<FusableStep> steps;
    PoolGradFixture(const std::string& activation = "Relu", dsk_value_id relu_x = 1) {
        Node pool = node("MaxPoolGrad", {0, 1}, {2});
        OwnedAttr kernel;
        kernel.name = "kernel_shape";
        kernel.type = DSK_ATTR_INTS;
        kernel.ints = {2, 2};
        pool.attrs = {kernel};
        Node grad = node("ActivationGrad", {2, relu_x}, {4});
        OwnedAttr a;
        a.name = "activation";
        a.type = DSK_ATTR_STRING;
        a.s = activation;
        grad.attrs = {a};
        steps.push_back({pool, 0, {}, 0});
        steps.push_back({grad, 1, {}, 0});
    }
    std::vector<std::string> fuse() {
        return fuse_pool_relu_grads(
            steps, values, observable, [&](const std::string&) { return &kFakeSchema; },
            [&](const Node&, uint32_t device) { return static_cast<int32_t>(device); });
    }
};

}  // namespace

TEST_CASE("MaxPoolGrad then the ActivationGrad of a Relu on the same X becomes MaxPoolReluGrad") {
    PoolGradFixture f;
    CHECK(f.fuse().size() == 1);
    REQUIRE(f.steps.size() == 1);
    CHECK(f.steps[0].node.op == "MaxPoolReluGrad");
    CHECK(f.steps[0].node.inputs == std::vector<dsk_value_id>{0, 1});
    CHECK(f.steps[0].node.outputs == std::vector<dsk_value_id>{4});
    CHECK(f.steps[0].fused_from == std::vector<uint32_t>{0, 1});
    REQUIRE(f.steps[0].node.attrs.size() == 1);
    CHECK(f.steps[0].node.attrs[0].name == "kernel_shape");
}

TEST_CASE("MaxPoolGrad stays apart from another activation, another X, or a gradient read elsewhere") {
    PoolGradFixture sigmoid("Sigmoid");
    CHECK(sigmoid.fuse().empty());
    PoolGradFixture other_x("Relu", 3);
    CHECK(other_x.fuse().empty());
    PoolGradFixture observed;
    observed.observable[2] = true;
    CHECK(observed.fuse().empty());
    PoolGradFixture read_twice;
    read_twice.steps.push_back({node("Add", {2, 2}, {3}), 2, {}, 0});
    CHECK(read_twice.fuse().empty());
    PoolGradFixture across;
    across.steps[1].device = 1;
    CHECK(across.fuse().empty());
    CHECK(across.steps.size() == 2);
}

namespace {

// dy(0) x(1) -> ConvGradWeight -> dw(2); dy -> ReduceSum[axes 0 2 3, keepdims 0] -> db(3);
// db -> Adam-like reader -> (4)
std::vector<FusableStep> bias_grad_steps(bool sum_first, std::vector<int64_t> axes = {0, 2, 3}) {
    Node grad = node("ConvGradWeight", {0, 1}, {2});
    Node sum = node("ReduceSum", {0}, {3});
    OwnedAttr a, k;
    a.name = "axes";
    a.type = DSK_ATTR_INTS;
    a.ints = std::move(axes);
    k.name = "keepdims";
    k.type = DSK_ATTR_INT;
    k.i = 0;
    sum.attrs = {a, k};
    std::vector<FusableStep> steps;
    if (sum_first) steps.push_back({sum, 1, {}, 0});
    steps.push_back({grad, 0, {}, 0});
    if (!sum_first) steps.push_back({sum, 1, {}, 0});
    steps.push_back({node("Update", {3}, {4}), 2, {}, 0});
    return steps;
}

std::vector<std::string> fuse_bias(std::vector<FusableStep>& steps, bool accept = true) {
    return fuse_conv_bias_grads(steps, [&](const Node&, uint32_t device) { return accept ? static_cast<int32_t>(device) : -1; });
}

}  // namespace

TEST_CASE("a conv's bias gradient (ReduceSum over N, H, W of dY) joins the ConvGradWeight of that dY") {
    for (bool sum_first : {false, true}) {
        std::vector<FusableStep> steps = bias_grad_steps(sum_first);
        CHECK(fuse_bias(steps).size() == 1);
        REQUIRE(steps.size() == 2);
        CHECK(steps[0].node.op == "ConvGradWeight");
        CHECK(steps[0].node.outputs == std::vector<dsk_value_id>{2, 3});
        CHECK(steps[1].node.op == "Update");
    }
}

TEST_CASE("other reductions, a reader of dB before the ConvGradWeight, or a refusing device keep the ReduceSum") {
    std::vector<FusableStep> other_axes = bias_grad_steps(false, {0});
    CHECK(fuse_bias(other_axes).empty());
    std::vector<FusableStep> read_early = bias_grad_steps(true);
    read_early.insert(read_early.begin() + 1, {node("Update", {3}, {5}), 3, {}, 0});
    CHECK(fuse_bias(read_early).empty());
    std::vector<FusableStep> refused = bias_grad_steps(false);
    CHECK(fuse_bias(refused, false).empty());
    CHECK(refused.size() == 3);
}

namespace {

OwnedAttr ints_attr(const std::string& name, std::vector<int64_t> ints) {
    OwnedAttr a;
    a.name = name;
    a.type = DSK_ATTR_INTS;
    a.ints = std::move(ints);
    return a;
}

// x(0) w(1) b(2) -> FusedConv[Relu] -> y(3) -> MaxPool 2x2 stride 2 -> p(4) [-> MaxPoolGrad reads y: 5, 6]
struct ConvPoolFixture {
    std::vector<Value> values = std::vector<Value>(7);
    std::vector<bool> observable = std::vector<bool>(7, false);
    std::vector<FusableStep> steps;
    bool accept = true;
    explicit ConvPoolFixture(std::vector<OwnedAttr> pool_attrs = {ints_attr("kernel_shape", {2, 2}),
                                                                  ints_attr("strides", {2, 2})},
                             bool with_grad = false) {
        Node conv = node("FusedConv", {0, 1, 2}, {3});
        OwnedAttr relu;
        relu.name = "activation";
        relu.type = DSK_ATTR_STRING;
        relu.s = "Relu";
        conv.attrs = {ints_attr("pads", {1, 1, 1, 1}), relu};
        Node pool = node("MaxPool", {3}, {4});
        pool.attrs = std::move(pool_attrs);
        steps.push_back({conv, 0, {}, 0});
        steps.push_back({pool, 1, {}, 0});
        if (with_grad) steps.push_back({node("MaxPoolGrad", {5, 3}, {6}), 2, {}, 0});
    }
    std::vector<std::string> fuse() {
        return fuse_conv_max_pools(
            steps, values, observable, [&](const std::string&) { return &kFakeSchema; },
            [&](const Node&, uint32_t device) { return accept ? static_cast<int32_t>(device) : -1; });
    }
};

}  // namespace

TEST_CASE("a conv (with its Relu) then a 2x2 stride-2 MaxPool becomes FusedConvMaxPool") {
    ConvPoolFixture f;
    CHECK(f.fuse() == std::vector<std::string>{"FusedConv + MaxPool -> FusedConvMaxPool"});
    REQUIRE(f.steps.size() == 1);
    CHECK(f.steps[0].node.op == "FusedConvMaxPool");
    CHECK(f.steps[0].node.inputs == std::vector<dsk_value_id>{0, 1, 2});
    CHECK(f.steps[0].node.outputs == std::vector<dsk_value_id>{4});
    CHECK(f.steps[0].fused_from == std::vector<uint32_t>{0, 1});
    CHECK(attr_string(f.steps[0].node, "activation") == "Relu");
    ConvPoolFixture explicit_defaults({ints_attr("kernel_shape", {2, 2}), ints_attr("strides", {2, 2}),
                                       ints_attr("pads", {0, 0, 0, 0}), ints_attr("dilations", {1, 1})});
    CHECK(explicit_defaults.fuse().size() == 1);
}

TEST_CASE("the conv and its pool stay apart in training, for another window, or when the device refuses") {
    ConvPoolFixture training({ints_attr("kernel_shape", {2, 2}), ints_attr("strides", {2, 2})}, true);
    CHECK(training.fuse().empty());  // MaxPoolGrad reads the conv's output too
    ConvPoolFixture target;
    target.observable[3] = true;
    CHECK(target.fuse().empty());
    ConvPoolFixture stride_1({ints_attr("kernel_shape", {2, 2})});
    CHECK(stride_1.fuse().empty());
    ConvPoolFixture three({ints_attr("kernel_shape", {3, 3}), ints_attr("strides", {2, 2})});
    CHECK(three.fuse().empty());
    ConvPoolFixture padded({ints_attr("kernel_shape", {2, 2}), ints_attr("strides", {2, 2}),
                            ints_attr("pads", {0, 0, 1, 1})});
    CHECK(padded.fuse().empty());
    ConvPoolFixture refused;
    refused.accept = false;
    CHECK(refused.fuse().empty());
    CHECK(refused.steps.size() == 2);
    ConvPoolFixture across;
    across.steps[1].device = 1;
    CHECK(across.fuse().empty());
}

namespace {

// x(0) -> FusedGemm[Relu](x, w1(1), b1(2)) -> h1(3) -> FusedGemm[Relu](h1, w2(4), b2(5)) -> h2(6)
//      -> Gemm(h2, w3(7), b3(8)) -> y(9); values 10 and 11 spare.
struct ChainFixture {
    std::vector<Value> values = std::vector<Value>(12);
    std::vector<bool> observable = std::vector<bool>(12, false);
    std::vector<FusableStep> steps;
    bool accept = true;
    ChainFixture() {
        for (auto& v : values) v.desc.ndim = 2;
        for (dsk_value_id bias : {2, 5, 8}) {
            values[bias].desc.ndim = 1;
        }
        steps.push_back({layer("FusedGemm", {0, 1, 2}, 3, "Relu"), 0, {0, 1}, 0});
        steps.push_back({layer("FusedGemm", {3, 4, 5}, 6, "Relu"), 2, {2, 3}, 0});
        steps.push_back({layer("Gemm", {6, 7, 8}, 9, ""), 4, {}, 0});
    }
    static Node layer(const std::string& op, std::vector<dsk_value_id> inputs, dsk_value_id out,
                      const std::string& activation) {
        Node n = node(op, std::move(inputs), {out});
        OwnedAttr trans_b;
        trans_b.name = "transB";
        trans_b.type = DSK_ATTR_INT;
        trans_b.i = 1;
        n.attrs = {trans_b};
        if (!activation.empty()) {
            OwnedAttr a;
            a.name = "activation";
            a.type = DSK_ATTR_STRING;
            a.s = activation;
            n.attrs.push_back(a);
        }
        return n;
    }
    std::vector<std::string> fuse() {
        return fuse_gemm_chains(
            steps, values, observable, [&](const std::string&) { return &kFakeSchema; },
            [&](const Node&, uint32_t device) { return accept ? static_cast<int32_t>(device) : -1; });
    }
};

std::vector<int64_t> attr_ints(const Node& n, const std::string& name) {
    for (const auto& a : n.attrs)
        if (a.name == name) return a.ints;
    return {};
}

}  // namespace

TEST_CASE("Gemm layers each read only by the next become one FusedGemmChain in the last one's place") {
    ChainFixture f;
    const auto report = f.fuse();
    REQUIRE(report.size() == 1);
    CHECK(report[0] == "FusedGemm + FusedGemm + Gemm -> FusedGemmChain (3 layers)");
    REQUIRE(f.steps.size() == 1);
    const Node& chain = f.steps[0].node;
    CHECK(chain.op == "FusedGemmChain");
    CHECK(chain.inputs == std::vector<dsk_value_id>{0, 1, 2, 4, 5, 7, 8});
    CHECK(chain.outputs == std::vector<dsk_value_id>{9});
    CHECK(attr_ints(chain, "transB") == std::vector<int64_t>{1, 1, 1});
    CHECK(attr_string(chain, "activations") == "Relu,Relu,");
    CHECK(f.steps[0].fused_from == std::vector<uint32_t>{0, 1, 2, 3, 4});
}

TEST_CASE("a chain stops at a result read twice or kept, and needs two layers") {
    ChainFixture read_twice;  // h2 also read by another step: only the first two layers chain
    read_twice.steps.push_back({node("Relu", {6}, {10}), 5, {}, 0});
    read_twice.fuse();
    REQUIRE(read_twice.steps.size() == 3);
    CHECK(read_twice.steps[0].node.op == "FusedGemmChain");
    CHECK(read_twice.steps[0].node.outputs == std::vector<dsk_value_id>{6});
    CHECK(read_twice.steps[1].node.op == "Gemm");
    ChainFixture kept;  // h1 a run target: layers 2 and 3 chain
    kept.observable[3] = true;
    kept.fuse();
    REQUIRE(kept.steps.size() == 2);
    CHECK(kept.steps[0].node.op == "FusedGemm");
    CHECK(kept.steps[1].node.inputs == std::vector<dsk_value_id>{3, 4, 5, 7, 8});
    ChainFixture lonely;  // both results kept: no chain of one
    lonely.observable[3] = lonely.observable[6] = true;
    CHECK(lonely.fuse().empty());
    CHECK(lonely.steps.size() == 3);
}

TEST_CASE("no chain through transA, a full C, HardSigmoid, another device, a reader in between or a refusal") {
    ChainFixture trans_a;
    OwnedAttr t;
    t.name = "transA";
    t.type = DSK_ATTR_INT;
    t.i = 1;
    trans_a.steps[1].node.attrs.push_back(t);
    trans_a.fuse();
    CHECK(trans_a.steps.size() == 3);  // layer 2 cannot join: neither pair chains
    ChainFixture full_c;
    full_c.values[5].desc.ndim = 2;
    full_c.values[5].desc.shape[0] = 4;
    full_c.fuse();
    CHECK(full_c.steps.size() == 3);
    ChainFixture hard_sigmoid;
    hard_sigmoid.steps[2].node.attrs.push_back(hard_sigmoid.steps[0].node.attrs[1]);
    hard_sigmoid.steps[2].node.attrs.back().s = "HardSigmoid";
    hard_sigmoid.fuse();
    REQUIRE(hard_sigmoid.steps.size() == 2);
    CHECK(hard_sigmoid.steps[0].node.outputs == std::vector<dsk_value_id>{6});
    ChainFixture across;
    across.steps[1].device = 1;
    across.fuse();
    CHECK(across.steps.size() == 3);
    // A step between layers 1 and 2 reads x, which the chain would read later (after an in-place
    // write, perhaps): layers 2 and 3 still chain after it.
    ChainFixture in_between;
    in_between.steps.insert(in_between.steps.begin() + 1, {node("Neg", {0}, {10}), 6, {}, 0});
    in_between.fuse();
    REQUIRE(in_between.steps.size() == 3);
    CHECK(in_between.steps[0].node.op == "FusedGemm");
    CHECK(in_between.steps[2].node.inputs == std::vector<dsk_value_id>{3, 4, 5, 7, 8});
    ChainFixture refused;
    refused.accept = false;
    CHECK(refused.fuse().empty());
    CHECK(refused.steps.size() == 3);
}
