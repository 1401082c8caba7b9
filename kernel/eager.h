// Eager execution and tracing (dsk.h: dsk_eager_*). An eager context runs each op as it is
// called, on one device, through the same schemas and kernels as sessions: shape inference,
// a buffer for each output, the kernel's compute. Tensors are immutable once made, and
// reference counted.
//
// Tracing (what dsk::jit builds on): between trace_begin and trace_end the ops still run, and
// are also recorded into a graph. Tensors marked as inputs become graph inputs; any other
// tensor an op reads that the trace did not produce (a weight made before) is captured as a
// graph constant, which is right because tensors never change. trace_end compiles the graph
// into a session whose plan (fusion, folding, memory planning) then replays the function.
//
// Autograd (eager_autograd.h): ops that read a tensor requiring a gradient are also recorded on
// a tape, which backward differentiates with the graph's reverse mode and runs eagerly.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dsk/dsk.h"
#include "dynamic_library.h"
#include "graph.h"
#include "placement.h"

struct dsk_session;

namespace dsk::kernel {
struct EagerTape;
}

struct dsk_eager {
    dsk_kernel* kernel = nullptr;
    dsk::kernel::OpenDevice device;
    dsk_queue* queue = nullptr;
    bool host_memory = false;
    dsk::kernel::DevicePreference preference;
    uint64_t seed = 0;
    uint64_t ops = 0;
    std::vector<std::shared_ptr<dsk::kernel::DynamicLibrary>> libraries;

    // Buffers of released tensors, by size, for the next tensors of that size (a loop makes the
    // same sizes every iteration): allocating, and first touching, fresh memory costs more than
    // many small ops. At most kCachedBytes are kept; the rest is freed.
    static constexpr uint64_t kCachedBytes = uint64_t{256} << 20;
    struct CachedBuffer {
        dsk_buffer* buffer;
        void* data;
    };
    // By size: a list per size, so that taking and giving back a buffer allocates nothing once
    // the list exists (a multimap's node per buffer cost two allocations per op).
    std::unordered_map<uint64_t, std::vector<CachedBuffer>> cached;
    uint64_t cached_bytes = 0;

    // Released tensor objects, for the next ones (a malloc and a free per op otherwise).
    static constexpr size_t kSpareTensors = 64;
    std::vector<dsk_eager_tensor*> spare_tensors;

    // Schema and kernel per op and input dtypes, looked up once.
    struct Dispatch {
        std::string op;
        std::string domain;  // op's prefix before its last '.', "" for none
        size_t name = 0;     // where op's name starts past the domain and its '.'
        std::vector<uint32_t> dtypes;
        const dsk_op_schema* schema = nullptr;
        const dsk_op_kernel* kernel = nullptr;
    };
    std::vector<Dispatch> dispatch;

    struct Trace {
        dsk_graph graph{};
        std::unordered_map<const dsk_eager_tensor*, dsk_value_id> values;
        std::vector<dsk_value_id> inputs;  // of the tensors marked as inputs, in order
    };
    std::unique_ptr<Trace> trace;

    // The autograd tape: null until a tensor is marked as requiring a gradient, consumed by
    // backward. Each tape has a new epoch, so a tensor knows whether it is on the current one.
    std::unique_ptr<dsk::kernel::EagerTape> tape;
    uint64_t tape_epochs = 0;

    dsk_eager(dsk_kernel* kernel, const std::string& device, uint64_t seed);
    ~dsk_eager();
    dsk_eager(const dsk_eager&) = delete;
    dsk_eager& operator=(const dsk_eager&) = delete;

    dsk_eager_tensor* make(const dsk_tensor_desc& shape);  // an uninitialised tensor, 1 reference
    void recycle(dsk_eager_tensor* t);  // a tensor whose last reference went (its buffer already freed)
    void free_buffer(dsk_buffer* buffer, void* data, uint64_t bytes);  // into the cache, or freed
    void run(const char* op, const dsk_attr* attrs, size_t attr_count, dsk_eager_tensor* const* inputs,
             size_t input_count, dsk_eager_tensor** outputs, size_t output_count);
    void write(dsk_eager_tensor& t, const void* host);
    void read(const dsk_eager_tensor& t, void* host);
    // A tensor holding a copy of host bytes of `desc`'s dtype and shape.
    dsk_eager_tensor* make_from_host(const dsk_tensor_desc& desc, const void* host);

private:
    const Dispatch& find_dispatch(const char* op, dsk_eager_tensor* const* inputs, size_t input_count);
    dsk_value_id traced_value(dsk_eager_tensor* t);
};

struct dsk_eager_tensor {
    dsk_eager* eager = nullptr;
    std::atomic<int> references{1};
    dsk_tensor_desc desc{};  // dtype, shape, contiguous strides; device, buffer and data set
    uint64_t bytes = 0;
    // Its value on the tape of epoch `tape_epoch` (see dsk_eager::tape).
    uint64_t tape_epoch = 0;
    dsk_value_id tape_value = DSK_VALUE_NONE;
};

// A traced function compiled into a session.
struct dsk_eager_function {
    dsk_eager* eager = nullptr;
    std::unique_ptr<dsk_session> session;
    std::vector<dsk_value_id> inputs, outputs;
    std::vector<dsk_tensor_desc> input_descs;  // the signature it was traced for
};
