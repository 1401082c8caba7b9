// Support for the vulkan plugin's unit tests: a host table (tests/support/fake_host.h) whose
// exec_queue hands kernels the test's queue, a device opened for the test case (or a doctest
// MESSAGE and a skip where no usable Vulkan device exists), tensors in device memory, and a
// node/tensor layout as the dsk executor hands it to a kernel.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "fake_host.h"
#include "kernels/kernel_table.h"
#include "vulkan_backend.h"

namespace vulkan_test {

using Shape = std::vector<int64_t>;

// exec_queue of the test host: the tests pass their dsk_queue* as the exec context.
inline dsk_queue* exec_queue(dsk_exec_context* ctx) { return reinterpret_cast<dsk_queue*>(ctx); }

// exec_seed of the test host: what the cpu kernels would get for the same node and run.
inline uint64_t& test_seed() {
    static uint64_t seed = 0x1234;
    return seed;
}
inline uint64_t exec_seed(dsk_exec_context*) { return test_seed(); }

inline void install_host() {
    static const dsk_host_api table = [] {
        dsk_host_api t = fake_host::api();
        t.exec_queue = exec_queue;
        t.exec_seed = exec_seed;
        return t;
    }();
    dsk::detail::host_slot().store(&table, std::memory_order_release);
}

inline const dsk_backend_iface& backend() { return dsk::vulkan::backend_iface(); }

// Index of the first usable device, or -1 (with the reasons in `why`).
inline int usable_device(std::string* why) {
    install_host();
    uint32_t count = 0;
    REQUIRE(fake_host::take(backend().device_count(nullptr, &count)).code == DSK_OK);
    for (uint32_t i = 0; i < count; ++i) {
        dsk_device_info info{};
        info.struct_size = sizeof info;
        REQUIRE(fake_host::take(backend().device_info(nullptr, i, &info)).code == DSK_OK);
        if (info.score > 0) return static_cast<int>(i);
        *why += std::string(info.name) + ": " + info.unusable_reason + "; ";
    }
    return -1;
}

// A device and a queue for one test case. `ok` is false (and a message logged) where there is
// no usable Vulkan device: the test then returns without failing.
struct Device {
    dsk_device* device = nullptr;
    dsk_queue* queue = nullptr;
    bool ok = false;

    Device() {
        std::string why;
        const int index = usable_device(&why);
        if (index < 0) {
            MESSAGE("skipped: no usable Vulkan device (" << why << ")");
            return;
        }
        REQUIRE(fake_host::take(backend().device_open(nullptr, static_cast<uint32_t>(index), &device)).code == DSK_OK);
        REQUIRE(fake_host::take(backend().queue_create(device, &queue)).code == DSK_OK);
        ok = true;
    }
    ~Device() {
        if (queue) backend().queue_destroy(queue);
        if (device) backend().device_close(device);
    }
    Device(const Device&) = delete;
    Device& operator=(const Device&) = delete;

    dsk::vulkan::VulkanDevice& object() const { return *dsk::vulkan::from_handle(device); }

    // Submits what the queue recorded and waits for it.
    void finish() const {
        dsk_fence* fence = nullptr;
        REQUIRE(fake_host::take(backend().queue_flush(queue, &fence)).code == DSK_OK);
        const fake_host::Outcome waited = fake_host::take(backend().fence_wait(fence, DSK_WAIT_INFINITE));
        backend().fence_destroy(fence);
        REQUIRE_MESSAGE(waited.code == DSK_OK, waited.message);
    }
};

// A tensor in device-local memory of `dev`, with its host copy.
struct Tensor {
    const Device* dev = nullptr;
    uint32_t dtype = DSK_DTYPE_F32;
    Shape shape;
    std::vector<float> f;
    std::vector<int64_t> i;
    std::vector<uint8_t> u;
    dsk_buffer* buffer = nullptr;

    Tensor(const Device& d, uint32_t type, Shape s) : dev(&d), dtype(type), shape(std::move(s)) {
        const size_t n = static_cast<size_t>(size());
        if (dtype == DSK_DTYPE_F32) f.assign(n, 0.0f);
        if (dtype == DSK_DTYPE_I64) i.assign(n, 0);
        if (dtype == DSK_DTYPE_U8) u.assign(n, 0);
        REQUIRE(fake_host::take(backend().buffer_alloc(d.device, bytes(), 64, 0, &buffer)).code == DSK_OK);
    }
    ~Tensor() { backend().buffer_free(buffer); }
    Tensor(const Tensor&) = delete;
    Tensor& operator=(const Tensor&) = delete;

    int64_t size() const { return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>()); }
    uint64_t bytes() const { return static_cast<uint64_t>(size()) * dsk::dtype_size(dtype); }
    void* host() {
        return dtype == DSK_DTYPE_F32 ? static_cast<void*>(f.data())
               : dtype == DSK_DTYPE_I64 ? static_cast<void*>(i.data())
                                        : static_cast<void*>(u.data());
    }
    // Host -> device (recorded on the queue; runs with the next finish()).
    void upload() { REQUIRE(fake_host::take(backend().copy_to_device(dev->queue, host(), buffer, 0, bytes())).code == DSK_OK); }
    // Device -> host: records the copy and finishes the queue.
    void download() {
        REQUIRE(fake_host::take(backend().copy_to_host(dev->queue, buffer, 0, host(), bytes())).code == DSK_OK);
        dev->finish();
    }
    dsk_tensor_desc desc() const {
        dsk_tensor_desc t{};
        dsk::set_contiguous(t, dtype, shape);
        t.device = dev->device;
        t.buffer = buffer;
        return t;
    }
};

inline void fill_random(Tensor& t, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(lo, hi);
    for (float& v : t.f) v = dist(rng);
}

// A node and its tensors, laid out as the executor hands them to a kernel.
struct Call {
    std::string op;
    std::vector<dsk::Attr> attrs;
    std::vector<dsk_attr> attr_views;
    std::vector<uint32_t> ins, outs;
    std::vector<dsk_tensor_desc> tensors;
    dsk_node_view node{};

    Call(const char* name, const std::vector<dsk::Attr>& attributes, const std::vector<Tensor*>& inputs,
         const std::vector<Tensor*>& outputs)
        : op(name), attrs(attributes) {
        for (const dsk::Attr& a : attrs) attr_views.push_back(a.view());
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

// Records one node on the device's queue through its kernel's compute thunk (as the executor
// does); the work runs with the next finish().
inline fake_host::Outcome record(const Device& dev, const char* op, const std::vector<dsk::Attr>& attrs,
                                 const std::vector<Tensor*>& inputs, const std::vector<Tensor*>& outputs) {
    Call c(op, attrs, inputs, outputs);
    const dsk::vulkan::KernelDef* def = dsk::vulkan::find_kernel(&c.node, c.tensors.data());
    if (def == nullptr) return {DSK_UNIMPLEMENTED, std::string("no vulkan kernel takes this ") + op + " node"};
    return fake_host::take(dsk::vulkan::compute(*def, reinterpret_cast<dsk_exec_context*>(dev.queue), &c.node,
                                                c.tensors.data()));
}

// Uploads the inputs, runs one node, downloads the outputs; CHECKs the status.
inline void run(const Device& dev, const char* op, const std::vector<dsk::Attr>& attrs,
                const std::vector<Tensor*>& inputs, const std::vector<Tensor*>& outputs) {
    for (Tensor* t : inputs) t->upload();
    const fake_host::Outcome outcome = record(dev, op, attrs, inputs, outputs);
    REQUIRE_MESSAGE(outcome.code == DSK_OK, outcome.message);
    for (Tensor* t : outputs) t->download();
}

// |a - b| <= tol * max(1, |b|) elementwise, with the first mismatch in the message.
inline void check_close(const std::vector<float>& actual, const std::vector<double>& expected, double tol = 1e-4) {
    REQUIRE(actual.size() == expected.size());
    for (size_t k = 0; k < actual.size(); ++k) {
        const double scale = std::max(1.0, std::abs(expected[k]));
        if (std::abs(actual[k] - expected[k]) > tol * scale) {
            FAIL("element " << k << ": got " << actual[k] << ", expected " << expected[k]);
        }
    }
}

}  // namespace vulkan_test
