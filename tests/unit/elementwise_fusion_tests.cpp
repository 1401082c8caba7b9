// The elementwise fusion pass (kernel/elementwise_fusion.cpp) on hand-built steps: chains and
// trees become one FusedElementwise node with the program of docs/ops.md; observable values,
// values with several readers, values of another shape, steps on a device without shared
// memory, reads of a variable moved past its updater, and groups the device refuses stay apart.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "fusion_pass.h"
#include "plan_steps.h"

using namespace dsk::kernel;

namespace {

using test::kFakeSchema;
using test::node;

Value value(std::vector<int64_t> shape, ValueKind kind = ValueKind::NodeOutput) {
    Value v;
    v.kind = kind;
    v.desc.dtype = DSK_DTYPE_F32;
    v.desc.ndim = static_cast<uint32_t>(shape.size());
    for (size_t k = 0; k < shape.size(); ++k) v.desc.shape[k] = shape[k];
    return v;
}

struct Graph {
    std::vector<Value> values;
    std::vector<bool> observable;
    std::vector<FusableStep> steps;
    bool accept = true;
    bool host_memory = true;  // devices 0 and 1 share memory

    dsk_value_id add(std::vector<int64_t> shape, ValueKind kind = ValueKind::Input) {
        values.push_back(value(std::move(shape), kind));
        observable.push_back(false);
        return static_cast<dsk_value_id>(values.size() - 1);
    }
    // A step writing a new value of `shape`.
    dsk_value_id step(const std::string& op, std::vector<dsk_value_id> inputs, std::vector<int64_t> shape = {3, 4},
                      uint32_t device = 0) {
        const dsk_value_id out = add(std::move(shape), ValueKind::NodeOutput);
        steps.push_back({node(op, std::move(inputs), {out}), static_cast<uint32_t>(steps.size()), {}, device});
        return out;
    }
    std::vector<std::string> fuse(bool have_schema = true) {
        return fuse_elementwise(
            steps, values, observable, [&](const std::string&) { return have_schema ? &kFakeSchema : nullptr; },
            [&](const Node&, uint32_t device) { return accept ? static_cast<int32_t>(device) : -1; },
            [&](uint32_t a, uint32_t b) { return a == b || host_memory; });
    }
};

std::string program(const FusableStep& s) {
    for (const auto& a : s.node.attrs)
        if (a.name == "program") return a.s;
    return "(none)";
}

}  // namespace

TEST_CASE("a chain with broadcast inputs becomes one FusedElementwise with its program") {
    Graph g;
    const dsk_value_id x = g.add({3, 4}), b = g.add({4}), s = g.add({});
    const dsk_value_id a = g.step("Add", {x, b});
    const dsk_value_id r = g.step("Relu", {a});
    const dsk_value_id y = g.step("Mul", {r, s});
    g.observable[y] = true;
    const auto report = g.fuse();
    REQUIRE(g.steps.size() == 1);
    CHECK(g.steps[0].node.op == "FusedElementwise");
    CHECK(program(g.steps[0]) == "Add(x0,x1);Relu(t0);Mul(t1,x2)");
    CHECK(g.steps[0].node.inputs == std::vector<dsk_value_id>{x, b, s});
    CHECK(g.steps[0].node.outputs == std::vector<dsk_value_id>{y});
    CHECK(g.steps[0].fused_from == std::vector<uint32_t>{0, 1, 2});
    REQUIRE(report.size() == 1);
    CHECK(report[0] == "Add + Relu + Mul -> FusedElementwise: Add(x0,x1);Relu(t0);Mul(t1,x2)");
}

TEST_CASE("a tree of elementwise ops with attributes, and an ActivationGrad, fuse in step order") {
    Graph g;
    const dsk_value_id x = g.add({3, 4}), dy = g.add({3, 4});
    const dsk_value_id h = g.step("HardSigmoid", {x});
    g.steps.back().node.attrs.push_back([] {
        OwnedAttr a;
        a.name = "alpha";
        a.type = DSK_ATTR_FLOAT;
        a.f = 0.25;
        return a;
    }());
    const dsk_value_id n = g.step("Neg", {x});
    const dsk_value_id sum = g.step("Add", {h, n});
    const dsk_value_id grad = g.step("ActivationGrad", {dy, sum});
    g.steps.back().node.attrs.push_back([] {
        OwnedAttr a;
        a.name = "activation";
        a.type = DSK_ATTR_STRING;
        a.s = "Tanh";
        return a;
    }());
    g.observable[grad] = true;
    g.fuse();
    REQUIRE(g.steps.size() == 1);
    CHECK(program(g.steps[0]) == "HardSigmoid[alpha=0.25](x0);Neg(x0);Add(t0,t1);ActivationGrad[activation=Tanh](x1,t2)");
    CHECK(g.steps[0].node.inputs == std::vector<dsk_value_id>{x, dy});
}

TEST_CASE("an observable intermediate value splits the chain there") {
    Graph g;
    const dsk_value_id x = g.add({3, 4}), b = g.add({3, 4});
    const dsk_value_id a = g.step("Add", {x, b});
    const dsk_value_id r = g.step("Relu", {a});
    const dsk_value_id y = g.step("Sigmoid", {r});
    g.observable[r] = true;
    g.observable[y] = true;
    g.fuse();
    REQUIRE(g.steps.size() == 2);
    CHECK(program(g.steps[0]) == "Add(x0,x1);Relu(t0)");
    CHECK(g.steps[0].node.outputs == std::vector<dsk_value_id>{r});
    CHECK(g.steps[1].node.op == "Sigmoid");
}

TEST_CASE("a value with two reading steps stays computed; one step reading it twice is one input") {
    Graph g;
    const dsk_value_id x = g.add({3, 4}), b = g.add({3, 4});
    const dsk_value_id a = g.step("Add", {x, b});
    const dsk_value_id r = g.step("Relu", {a});
    const dsk_value_id y = g.step("Mul", {r, a});  // a: read by Relu and Mul
    g.observable[y] = true;
    g.fuse();
    REQUIRE(g.steps.size() == 2);
    CHECK(g.steps[0].node.op == "Add");
    CHECK(program(g.steps[1]) == "Relu(x0);Mul(t0,x0)");
    CHECK(g.steps[1].node.inputs == std::vector<dsk_value_id>{a});

    Graph square;
    const dsk_value_id u = square.add({3, 4});
    const dsk_value_id t = square.step("Tanh", {u});
    square.step("Mul", {t, t});
    square.fuse();
    REQUIRE(square.steps.size() == 1);
    CHECK(program(square.steps[0]) == "Tanh(x0);Mul(t0,t0)");
}

TEST_CASE("values of another shape, devices without shared memory and refused groups stay apart") {
    Graph shape;  // Relu of a row, then broadcast into [3, 4]: the row is not the output's shape
    const dsk_value_id x = shape.add({3, 4}), row = shape.add({4});
    const dsk_value_id r = shape.step("Relu", {row}, {4});
    shape.step("Add", {x, r});
    CHECK(shape.fuse().empty());
    CHECK(shape.steps.size() == 2);

    Graph devices;
    const dsk_value_id u = devices.add({3, 4});
    const dsk_value_id t = devices.step("Tanh", {u}, {3, 4}, 0);
    devices.step("Neg", {t}, {3, 4}, 1);
    devices.host_memory = false;
    CHECK(devices.fuse().empty());
    devices.host_memory = true;
    CHECK(devices.fuse().size() == 1);
    CHECK(devices.steps.size() == 1);

    Graph refused;
    const dsk_value_id v = refused.add({3, 4});
    refused.step("Neg", {refused.step("Sigmoid", {v})});
    refused.accept = false;
    CHECK(refused.fuse().empty());
    CHECK(refused.steps.size() == 2);

    Graph no_schema;
    const dsk_value_id w = no_schema.add({3, 4});
    no_schema.step("Neg", {no_schema.step("Sigmoid", {w})});
    CHECK(no_schema.fuse(false).empty());
    CHECK(no_schema.steps.size() == 2);
}

TEST_CASE("a read of a variable is not moved past another step that reads (and may update) it") {
    Graph g;
    const dsk_value_id w = g.add({3, 4}, ValueKind::Variable), grad = g.add({3, 4});
    const dsk_value_id decay = g.step("Neg", {w});
    g.step("AdamUpdate", {grad, w}, {});  // updates w in place
    const dsk_value_id y = g.step("Add", {decay, grad});
    g.observable[y] = true;
    CHECK(g.fuse().empty());
    CHECK(g.steps.size() == 3);
}

TEST_CASE("ops outside programs and unknown attributes are not fused") {
    Graph g;
    const dsk_value_id x = g.add({3, 4});
    const dsk_value_id s = g.step("Softmax", {x});
    g.step("Relu", {s});
    CHECK(g.fuse().empty());
    Graph attrs;
    const dsk_value_id u = attrs.add({3, 4});
    const dsk_value_id r = attrs.step("Relu", {u});
    attrs.steps.back().node.attrs.push_back([] {
        OwnedAttr a;
        a.name = "mystery";
        a.type = DSK_ATTR_INT;
        return a;
    }());
    attrs.step("Neg", {r});
    CHECK(attrs.fuse().empty());
}
