// "fake-accel": an accelerator backend that runs part of a graph, for the placement tests.
//
// It behaves like a device with memory of its own, as a vendor's NPU plugin would:
//   - buffers are not host-visible (buffer_map is UNIMPLEMENTED): data moves only by copies;
//   - the queue is asynchronous: copies and kernels are recorded and run only at queue_flush,
//     so a kernel that read a result before flushing would read stale data and the tests fail;
//   - it has kernels for Relu, Mul and Add (f32), takes Relu and Mul, and declines Add in
//     supports_op; MatMul and everything else it has no kernel for.
// Its Relu and Mul keep a node cache while their input 0 keeps its version (ABI 1.3's
// exec_input_version and exec_cache), and log what they saw in `fake_accel_cache_log`
// (exported) for the tests.
#include <dsk/dsk_plugin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

struct dsk_device {
    int unused = 0;
};
struct dsk_buffer {
    std::vector<uint8_t> bytes;
};
struct dsk_queue {
    std::vector<std::function<void()>> work;
};
struct dsk_fence {
    int unused = 0;
};

namespace {

const dsk_host_api* host = nullptr;

dsk_status device_count(void*, uint32_t* n) {
    *n = 1;
    return nullptr;
}

dsk_status device_info(void*, uint32_t, dsk_device_info* info) {
    info->type = DSK_DEVICE_ACCELERATOR;
    info->name = "Fake accelerator";
    info->description = "a test backend with device memory that runs Relu only";
    info->memory_bytes = 1u << 30;
    info->score = 50;
    return nullptr;
}

dsk_status device_open(void*, uint32_t, dsk_device** out) {
    *out = new dsk_device;
    return nullptr;
}

dsk_status buffer_alloc(dsk_device*, uint64_t size, uint64_t, uint32_t flags, dsk_buffer** out) {
    if (flags & DSK_BUFFER_HOST_VISIBLE) return host->status_create(DSK_UNIMPLEMENTED, "fake-accel has no host-visible memory");
    *out = new dsk_buffer{std::vector<uint8_t>(size)};
    return nullptr;
}

dsk_status buffer_map(dsk_buffer*, void**) {
    return host->status_create(DSK_UNIMPLEMENTED, "fake-accel memory is not host-visible");
}

dsk_status queue_create(dsk_device*, dsk_queue** out) {
    *out = new dsk_queue;
    return nullptr;
}

dsk_status copy_to_device(dsk_queue* q, const void* src, dsk_buffer* dst, uint64_t offset, uint64_t size) {
    q->work.push_back([=] { std::memcpy(dst->bytes.data() + offset, src, size); });
    return nullptr;
}

dsk_status copy_to_host(dsk_queue* q, dsk_buffer* src, uint64_t offset, void* dst, uint64_t size) {
    q->work.push_back([=] { std::memcpy(dst, src->bytes.data() + offset, size); });
    return nullptr;
}

dsk_status queue_flush(dsk_queue* q, dsk_fence** out) {
    for (auto& w : q->work) w();
    q->work.clear();
    *out = new dsk_fence;
    return nullptr;
}

int32_t supports_op(dsk_device*, const dsk_node_view* node, const dsk_tensor_desc*) {
    return std::string(node->op) == "Relu" || std::string(node->op) == "Mul";
}

const dsk_backend_iface backend = {
    sizeof(dsk_backend_iface), "fake-accel", nullptr, device_count, device_info, device_open,
    [](dsk_device* d) { delete d; }, buffer_alloc, [](dsk_buffer* b) { delete b; }, buffer_map, queue_create,
    [](dsk_queue* q) { delete q; }, copy_to_device, copy_to_host, nullptr, queue_flush,
    [](dsk_fence*, uint64_t) -> dsk_status { return nullptr; }, [](dsk_fence* f) { delete f; }, supports_op, nullptr,
    nullptr, nullptr, nullptr};

float* floats(const dsk_tensor_desc& t) {
    return reinterpret_cast<float*>(static_cast<dsk_buffer*>(t.buffer)->bytes.data() + t.offset);
}

int64_t count(const dsk_tensor_desc& t) {
    int64_t n = 1;
    for (uint32_t i = 0; i < t.ndim; ++i) n *= t.shape[i];
    return n;
}

}  // namespace

extern "C" DSK_PLUGIN_EXPORT struct FakeAccelCacheLog {
    uint64_t calls;     // of Relu and Mul
    uint64_t version;   // of input 0, in the last call
    uint64_t made;      // caches set
    uint64_t hits;      // runs that found a cache made for the version they saw
    uint64_t released;  // caches the kernel was told to release
} fake_accel_cache_log = {};

namespace {

struct ReluCache {
    uint64_t version = 0;
};

void log_cache(dsk_exec_context* ctx) {
    FakeAccelCacheLog& log = fake_accel_cache_log;
    ++log.calls;
    log.version = host->exec_input_version(ctx, 0);
    if (!log.version) return;
    auto* cache = static_cast<ReluCache*>(host->exec_cache(ctx));
    if (cache && cache->version == log.version) {
        ++log.hits;
        return;
    }
    if (!cache) {
        cache = new ReluCache;
        host->exec_set_cache(ctx, cache, [](void* c) {
            ++fake_accel_cache_log.released;
            delete static_cast<ReluCache*>(c);
        });
        ++log.made;
    }
    cache->version = log.version;
}

// Kernels record their work on the session's queue; it runs at the next flush.
dsk_status relu(void*, dsk_exec_context* ctx, const dsk_node_view*, const dsk_tensor_desc* t) {
    log_cache(ctx);
    dsk_queue* q = host->exec_queue(ctx);
    if (!q) return host->status_create(DSK_INTERNAL, "fake-accel: no queue");
    const dsk_tensor_desc x = t[0], y = t[1];
    q->work.push_back([=] {
        const float* in = floats(x);
        float* out = floats(y);
        for (int64_t i = 0; i < count(y); ++i) out[i] = std::max(in[i], 0.0f);
    });
    return nullptr;
}

dsk_status mul(void*, dsk_exec_context* ctx, const dsk_node_view*, const dsk_tensor_desc* t) {
    log_cache(ctx);
    dsk_queue* q = host->exec_queue(ctx);
    if (!q) return host->status_create(DSK_INTERNAL, "fake-accel: no queue");
    if (count(t[0]) != count(t[2]) || count(t[1]) != count(t[2]))
        return host->status_create(DSK_UNIMPLEMENTED, "fake-accel: Mul without broadcasting only");
    const dsk_tensor_desc a = t[0], b = t[1], y = t[2];
    q->work.push_back([=] {
        const float* x0 = floats(a);
        const float* x1 = floats(b);
        float* out = floats(y);
        for (int64_t i = 0; i < count(y); ++i) out[i] = x0[i] * x1[i];
    });
    return nullptr;
}

dsk_status add(void*, dsk_exec_context*, const dsk_node_view*, const dsk_tensor_desc*) {
    return host->status_create(DSK_INTERNAL, "fake-accel: Add was declined in supports_op and must never run");
}

const uint32_t f32[] = {DSK_DTYPE_F32, DSK_DTYPE_F32};
const dsk_op_kernel relu_kernel = {sizeof(dsk_op_kernel), 1, "Relu", "", "fake-accel", f32, nullptr, relu};
const dsk_op_kernel add_kernel = {sizeof(dsk_op_kernel), 2, "Add", "", "fake-accel", f32, nullptr, add};
const dsk_op_kernel mul_kernel = {sizeof(dsk_op_kernel), 2, "Mul", "", "fake-accel", f32, nullptr, mul};

dsk_status init(const dsk_host_api* h, dsk_registrar* reg, void** out_state) {
    host = h;
    *out_state = nullptr;
    if (dsk_status s = h->register_backend(reg, &backend)) return s;
    if (dsk_status s = h->register_op_kernel(reg, &relu_kernel)) return s;
    if (dsk_status s = h->register_op_kernel(reg, &mul_kernel)) return s;
    return h->register_op_kernel(reg, &add_kernel);
}

const char* const provides[] = {"device:fake-accel", "kernel:Relu@fake-accel", "kernel:Mul@fake-accel",
                                 "kernel:Add@fake-accel", nullptr};

const dsk_plugin_descriptor descriptor = {sizeof(dsk_plugin_descriptor), DSK_ABI_VERSION, DSK_PLUGIN_NAME,
                                          DSK_PLUGIN_VERSION, "a partial accelerator for placement tests", provides,
                                          init, nullptr};

}  // namespace

extern "C" DSK_PLUGIN_EXPORT const dsk_plugin_descriptor* dsk_plugin_query(uint32_t) { return &descriptor; }
