// The fusion pass (kernel/fusion_pass.h) on hand-built steps: Gemm/Conv + activation become one
// fused node, the pre-activation is kept only when something else reads it, and nothing is
// fused across devices, without the fused schema, or where the device refuses the fused node.
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
