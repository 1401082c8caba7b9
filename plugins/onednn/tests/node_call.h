// node_call.h - one node and its tensors, laid out as the executor hands them to a kernel, run
// on the cpu backend's kernel table or the onednn one (with the fake host table).
#pragma once

#include <doctest/doctest.h>
#include <fake_host.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernel_table.h"

namespace onednn_tests {

using dsk::Attr;
using Shape = std::vector<int64_t>;

// A host tensor with its own storage (float, or bytes for u8/i8, or int32).
struct Tensor {
    uint32_t dtype = DSK_DTYPE_F32;
    Shape shape;
    std::vector<float> f;
    std::vector<int8_t> b;
    std::vector<int32_t> i;

    int64_t size() const {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return n;
    }
    dsk_tensor_desc desc() {
        void* data = dtype == DSK_DTYPE_F32 ? static_cast<void*>(f.data())
                     : dtype == DSK_DTYPE_I32 ? static_cast<void*>(i.data())
                                              : static_cast<void*>(b.data());
        return dsk::host_tensor(dtype, shape, data);
    }
};

inline Tensor f32(const Shape& shape, uint32_t seed = 0, float low = -1.0f, float high = 1.0f) {
    Tensor t;
    t.shape = shape;
    t.f.resize(static_cast<size_t>(t.size()));
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(low, high);
    for (float& v : t.f) v = seed == 0 ? 0.0f : u(rng);
    return t;
}

// Whole numbers in [low, high] as u8 or i8 bytes.
inline Tensor bytes(uint32_t dtype, const Shape& shape, uint32_t seed, int low, int high) {
    Tensor t;
    t.dtype = dtype;
    t.shape = shape;
    t.b.resize(static_cast<size_t>(t.size()));
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> u(low, high);
    for (int8_t& v : t.b) v = static_cast<int8_t>(static_cast<uint8_t>(u(rng)));
    return t;
}

inline Tensor i32(const Shape& shape) {
    Tensor t;
    t.dtype = DSK_DTYPE_I32;
    t.shape = shape;
    t.i.assign(static_cast<size_t>(t.size()), 0);
    return t;
}

struct Call {
    std::string op;
    std::vector<Attr> attrs;
    std::vector<dsk_attr> attr_views;
    std::vector<uint32_t> ins, outs;
    std::vector<dsk_tensor_desc> tensors;
    dsk_node_view node{};

    Call(const char* name, const std::vector<Attr>& attributes, std::vector<Tensor>& inputs,
         std::vector<Tensor>& outputs)
        : op(name), attrs(attributes) {
        for (const Attr& a : attrs) attr_views.push_back(a.view());
        for (Tensor& t : inputs) {
            ins.push_back(static_cast<uint32_t>(tensors.size()));
            tensors.push_back(t.desc());
        }
        for (Tensor& t : outputs) {
            outs.push_back(static_cast<uint32_t>(tensors.size()));
            tensors.push_back(t.desc());
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

// Runs the node on `table`; fails the test when the table has no kernel for it or it fails.
inline void run_on(const dsk::cpu::KernelTable& table, const char* op, const std::vector<Attr>& attrs,
                   std::vector<Tensor>& inputs, std::vector<Tensor>& outputs) {
    Call c(op, attrs, inputs, outputs);
    const dsk::cpu::KernelDef* def = table.find(&c.node, c.tensors.data());
    REQUIRE_MESSAGE(def != nullptr, "no " << table.backend() << " kernel takes this " << op << " node");
    const fake_host::Outcome o = fake_host::take(table.compute(*def, nullptr, &c.node, c.tensors.data()));
    REQUIRE_MESSAGE(o.code == DSK_OK, table.backend() << " " << op << ": " << o.message);
}

}  // namespace onednn_tests
