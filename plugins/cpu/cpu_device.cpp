// cpu_device.cpp - dsk_backend_iface for the host CPU, for any backend whose kernels run on it.
//
// Buffers are aligned host allocations and every queue runs its work at once, on the calling
// thread: a copy has finished when the call returns, so every fence is born signalled. The cpu
// backend and plugins/onednn both use it (host_backend_iface), each with its own name, probe
// score and supports_op: their tensors are the same host memory, so the kernel can hand one
// backend's tensors to the other's kernels without copies (docs/abi.md, ABI 1.1).
#include "cpu_device.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <dsk/dsk_plugin.hpp>

#include "kernels/kernel_table.h"

namespace dsk::cpu {
namespace {

// A cache line, and the widest vector load (AVX-512) wants no more.
constexpr uint64_t kMinAlignment = 64;

// The objects behind the opaque handles. They get names of their own (rather than defining
// `struct dsk_device` here) so that two backends in one process never define one type twice.
// Each keeps the spec of the backend that made it (static storage), for its name in messages.
struct CpuDevice {
    const HostBackendSpec* spec;
    uint32_t index;
};
struct CpuBuffer {
    const HostBackendSpec* spec;
    void* data;     // aligned_alloc'ed, owned
    uint64_t size;  // as requested (the allocation may be larger)
};
struct CpuQueue {
    CpuDevice* device;
};
struct CpuFence {
    const HostBackendSpec* spec;
};

CpuDevice* from_handle(dsk_device* device) { return reinterpret_cast<CpuDevice*>(device); }
CpuBuffer* from_handle(dsk_buffer* buffer) { return reinterpret_cast<CpuBuffer*>(buffer); }
CpuQueue* from_handle(dsk_queue* queue) { return reinterpret_cast<CpuQueue*>(queue); }
CpuFence* from_handle(dsk_fence* fence) { return reinterpret_cast<CpuFence*>(fence); }
dsk_device* to_handle(CpuDevice* device) { return reinterpret_cast<dsk_device*>(device); }
dsk_buffer* to_handle(CpuBuffer* buffer) { return reinterpret_cast<dsk_buffer*>(buffer); }
dsk_queue* to_handle(CpuQueue* queue) { return reinterpret_cast<dsk_queue*>(queue); }
dsk_fence* to_handle(CpuFence* fence) { return reinterpret_cast<dsk_fence*>(fence); }

//----------------------------------------------------------------------------------------------
// What the host machine is (probed once; the strings live as long as the library)
//----------------------------------------------------------------------------------------------

struct HostMachine {
    std::string name;
    std::string description;
    uint64_t memory_bytes;
    uint32_t float_lanes;
};

std::string trim(const std::string& text) {
    const auto first = text.find_first_not_of(" \t");
    if (first == std::string::npos) return {};
    const auto last = text.find_last_not_of(" \t\r\n");
    return text.substr(first, last - first + 1);
}

// "model name : Intel(R) Xeon(R) ..." from /proc/cpuinfo; "cpu" where there is none (most ARM
// kernels, non-Linux systems).
std::string cpu_model_name() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos || trim(line.substr(0, colon)) != "model name") continue;
        const std::string model = trim(line.substr(colon + 1));
        if (!model.empty()) return model;
    }
    return "cpu";
}

// 32-bit float lanes of the widest SIMD unit this CPU has (what an op kernel would vectorize
// over): 16 for AVX-512, 8 for AVX2, else 4 (SSE, NEON).
uint32_t simd_float_lanes(const char** out_isa) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        *out_isa = "AVX-512";
        return 16;
    }
    if (__builtin_cpu_supports("avx2")) {
        *out_isa = "AVX2";
        return 8;
    }
    *out_isa = "SSE";
#elif defined(__aarch64__) || defined(__ARM_NEON)
    *out_isa = "NEON";
#else
    *out_isa = "scalar";
#endif
    return 4;
}

uint32_t logical_cores() {
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online > 0) return static_cast<uint32_t>(online);
    return std::max(1u, std::thread::hardware_concurrency());
}

uint64_t physical_memory_bytes() {
    const long pages = sysconf(_SC_PHYS_PAGES);
    const long page_size = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page_size <= 0) return 0;  // unknown
    return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
}

HostMachine probe_host_machine() {
    HostMachine machine;
    const char* isa = "";
    machine.float_lanes = simd_float_lanes(&isa);
    machine.name = cpu_model_name();
    const uint32_t cores = logical_cores();
    machine.description = "host CPU, " + std::to_string(cores) +
                          (cores == 1 ? " logical core, " : " logical cores, ") + isa + " (" +
                          std::to_string(machine.float_lanes) + " float lanes)";
    machine.memory_bytes = physical_memory_bytes();
    return machine;
}

const HostMachine& host_machine() {
    static const HostMachine machine = probe_host_machine();
    return machine;
}

//----------------------------------------------------------------------------------------------
// Argument checks (each failure names the call and what was wrong)
//----------------------------------------------------------------------------------------------

// `backend` is the backend's name; "host backend" where the call gave no handle to find it by.
void require(const void* pointer, const char* backend, const char* function,
             const char* parameter) {
    if (pointer == nullptr) {
        throw Error(DSK_INVALID_ARGUMENT,
                    std::string(backend) + ": " + function + ": `" + parameter + "` is null");
    }
}

void require_device_index(uint32_t index, const char* backend, const char* function) {
    if (index != 0) {
        throw Error(DSK_NOT_FOUND, std::string(backend) + ": " + function + ": device index " +
                                       std::to_string(index) + " does not exist (the " +
                                       backend + " backend has 1 device, index 0)");
    }
}

// [offset, offset + size) must lie inside the buffer; written so that it cannot overflow.
void require_in_bounds(const CpuBuffer& buffer, uint64_t offset, uint64_t size,
                       const char* function, const char* role) {
    if (offset > buffer.size || size > buffer.size - offset) {
        throw Error(DSK_INVALID_ARGUMENT,
                    std::string(buffer.spec->name) + ": " + function + ": " +
                        std::to_string(size) + " bytes at offset " + std::to_string(offset) +
                        " do not fit the " + std::to_string(buffer.size) + "-byte " + role +
                        " buffer");
    }
}

const HostBackendSpec& spec_of(void* self) { return *static_cast<const HostBackendSpec*>(self); }
const char* name_of(const CpuDevice* device) {
    return device != nullptr ? device->spec->name : "host backend";
}
const char* name_of(const CpuBuffer* buffer) {
    return buffer != nullptr ? buffer->spec->name : "host backend";
}
const char* name_of(const CpuQueue* queue) {
    return queue != nullptr ? queue->device->spec->name : "host backend";
}

//----------------------------------------------------------------------------------------------
// Devices
//----------------------------------------------------------------------------------------------

dsk_status device_count(void* self, uint32_t* out_count) {
    return guard([&] {
        require(out_count, spec_of(self).name, "device_count", "out_count");
        *out_count = 1;
    });
}

dsk_status device_info(void* self, uint32_t index, dsk_device_info* out_info) {
    return guard([&] {
        const HostBackendSpec& spec = spec_of(self);
        require(out_info, spec.name, "device_info", "out_info");
        require_device_index(index, spec.name, "device_info");
        const HostMachine& machine = host_machine();
        // Only what the caller's struct_size covers (a caller built against an older ABI).
        if (DSK_HAS_MEMBER(out_info, dsk_device_info, type)) out_info->type = DSK_DEVICE_CPU;
        if (DSK_HAS_MEMBER(out_info, dsk_device_info, name)) out_info->name = machine.name.c_str();
        if (DSK_HAS_MEMBER(out_info, dsk_device_info, description))
            out_info->description = machine.description.c_str();
        if (DSK_HAS_MEMBER(out_info, dsk_device_info, memory_bytes))
            out_info->memory_bytes = machine.memory_bytes;
        if (DSK_HAS_MEMBER(out_info, dsk_device_info, score)) out_info->score = spec.score;
        if (DSK_HAS_MEMBER(out_info, dsk_device_info, unusable_reason))
            out_info->unusable_reason = "";
        if (DSK_HAS_MEMBER(out_info, dsk_device_info, subgroup_size))
            out_info->subgroup_size = machine.float_lanes;
    });
}

dsk_status device_open(void* self, uint32_t index, dsk_device** out_device) {
    return guard([&] {
        const HostBackendSpec& spec = spec_of(self);
        require(out_device, spec.name, "device_open", "out_device");
        *out_device = nullptr;
        require_device_index(index, spec.name, "device_open");
        *out_device = to_handle(new CpuDevice{&spec, index});
    });
}

void device_close(dsk_device* device) { delete from_handle(device); }

//----------------------------------------------------------------------------------------------
// Memory
//----------------------------------------------------------------------------------------------

struct FreeDeleter {
    void operator()(void* data) const { std::free(data); }
};

dsk_status buffer_alloc(dsk_device* device, uint64_t size, uint64_t alignment,
                        uint32_t /*flags: every cpu buffer is host-visible*/,
                        dsk_buffer** out_buffer) {
    return guard([&] {
        const std::string name = name_of(from_handle(device));
        require(out_buffer, name.c_str(), "buffer_alloc", "out_buffer");
        *out_buffer = nullptr;
        require(device, name.c_str(), "buffer_alloc", "device");
        if ((alignment & (alignment - 1)) != 0) {
            throw Error(DSK_INVALID_ARGUMENT, name + ": buffer_alloc: alignment " +
                                                  std::to_string(alignment) +
                                                  " is not a power of two");
        }
        const uint64_t align = std::max(alignment, kMinAlignment);
        // aligned_alloc wants a non-zero multiple of the alignment; a zero-size buffer still
        // gets a real (unique) address.
        if (size > SIZE_MAX - align) {
            throw Error(DSK_RESOURCE_EXHAUSTED, name + ": buffer_alloc: " + std::to_string(size) +
                                                    " bytes exceed the host address space");
        }
        const size_t rounded = std::max<size_t>((size + align - 1) / align * align, align);
        std::unique_ptr<void, FreeDeleter> data(std::aligned_alloc(align, rounded));
        if (!data) {
            throw Error(DSK_RESOURCE_EXHAUSTED,
                        name + ": buffer_alloc: out of host memory allocating " +
                            std::to_string(size) + " bytes (aligned to " + std::to_string(align) +
                            ")");
        }
        *out_buffer = to_handle(new CpuBuffer{from_handle(device)->spec, data.get(), size});
        data.release();
    });
}

void buffer_free(dsk_buffer* buffer) {
    CpuBuffer* owned = from_handle(buffer);
    if (owned == nullptr) return;
    std::free(owned->data);
    delete owned;
}

dsk_status buffer_map(dsk_buffer* buffer, void** out_host_ptr) {
    return guard([&] {
        const char* name = name_of(from_handle(buffer));
        require(out_host_ptr, name, "buffer_map", "out_host_ptr");
        require(buffer, name, "buffer_map", "buffer");
        *out_host_ptr = from_handle(buffer)->data;
    });
}

//----------------------------------------------------------------------------------------------
// Queues, copies and fences
//----------------------------------------------------------------------------------------------

dsk_status queue_create(dsk_device* device, dsk_queue** out_queue) {
    return guard([&] {
        const char* name = name_of(from_handle(device));
        require(out_queue, name, "queue_create", "out_queue");
        *out_queue = nullptr;
        require(device, name, "queue_create", "device");
        *out_queue = to_handle(new CpuQueue{from_handle(device)});
    });
}

void queue_destroy(dsk_queue* queue) { delete from_handle(queue); }

dsk_status copy_to_device(dsk_queue* queue, const void* src, dsk_buffer* dst,
                          uint64_t dst_offset, uint64_t size) {
    return guard([&] {
        const char* name = name_of(from_handle(queue));
        require(queue, name, "copy_to_device", "queue");
        require(dst, name, "copy_to_device", "dst");
        const CpuBuffer& target = *from_handle(dst);
        require_in_bounds(target, dst_offset, size, "copy_to_device", "destination");
        if (size == 0) return;
        require(src, name, "copy_to_device", "src");
        std::memcpy(static_cast<char*>(target.data) + dst_offset, src, size);
    });
}

dsk_status copy_to_host(dsk_queue* queue, dsk_buffer* src, uint64_t src_offset, void* dst,
                        uint64_t size) {
    return guard([&] {
        const char* name = name_of(from_handle(queue));
        require(queue, name, "copy_to_host", "queue");
        require(src, name, "copy_to_host", "src");
        const CpuBuffer& source = *from_handle(src);
        require_in_bounds(source, src_offset, size, "copy_to_host", "source");
        if (size == 0) return;
        require(dst, name, "copy_to_host", "dst");
        std::memcpy(dst, static_cast<const char*>(source.data) + src_offset, size);
    });
}

dsk_status copy_on_device(dsk_queue* queue, dsk_buffer* src, uint64_t src_offset,
                          dsk_buffer* dst, uint64_t dst_offset, uint64_t size) {
    return guard([&] {
        const char* name = name_of(from_handle(queue));
        require(queue, name, "copy_on_device", "queue");
        require(src, name, "copy_on_device", "src");
        require(dst, name, "copy_on_device", "dst");
        const CpuBuffer& source = *from_handle(src);
        const CpuBuffer& target = *from_handle(dst);
        require_in_bounds(source, src_offset, size, "copy_on_device", "source");
        require_in_bounds(target, dst_offset, size, "copy_on_device", "destination");
        if (size == 0) return;
        // memmove: source and destination may be overlapping ranges of one buffer.
        std::memmove(static_cast<char*>(target.data) + dst_offset,
                     static_cast<const char*>(source.data) + src_offset, size);
    });
}

dsk_status queue_flush(dsk_queue* queue, dsk_fence** out_fence) {
    return guard([&] {
        const char* name = name_of(from_handle(queue));
        require(out_fence, name, "queue_flush", "out_fence");
        *out_fence = nullptr;
        require(queue, name, "queue_flush", "queue");
        // Already signalled: the work is done.
        *out_fence = to_handle(new CpuFence{from_handle(queue)->device->spec});
    });
}

dsk_status fence_wait(dsk_fence* fence, uint64_t /*timeout_ns*/) {
    return guard([&] {
        require(fence, "host backend", "fence_wait", "fence");  // done: nothing to wait for
    });
}

void fence_destroy(dsk_fence* fence) { delete from_handle(fence); }

//----------------------------------------------------------------------------------------------
// Operators
//----------------------------------------------------------------------------------------------

// A node runs here when the backend's kernel table takes it: its op, its input/output counts
// and dtypes (and its attributes, for kernels with limits). For the cpu backend that is the same
// table register_kernels() registers, so placement and execution cannot disagree.
int32_t supports_op(dsk_device* device, const dsk_node_view* node,
                    const dsk_tensor_desc* tensors) {
    if (device == nullptr) return 0;
    return from_handle(device)->spec->supports(node, tensors) ? 1 : 0;
}

bool cpu_supports(const dsk_node_view* node, const dsk_tensor_desc* tensors) noexcept {
    // Ops of this plugin's table: what its kernels accept. Any other op has its kernel in
    // another plugin (an optimizer's update, say): host code, which this device runs.
    if (!has_op(node)) return true;
    return has_kernel(node, tensors);
}

}  // namespace

dsk_backend_iface host_backend_iface(const HostBackendSpec& spec) {
    dsk_backend_iface iface{};
    iface.struct_size = sizeof(dsk_backend_iface);
    iface.name = spec.name;
    iface.self = const_cast<HostBackendSpec*>(&spec);
    iface.device_count = &device_count;
    iface.device_info = &device_info;
    iface.device_open = &device_open;
    iface.device_close = &device_close;
    iface.buffer_alloc = &buffer_alloc;
    iface.buffer_free = &buffer_free;
    iface.buffer_map = &buffer_map;
    iface.queue_create = &queue_create;
    iface.queue_destroy = &queue_destroy;
    iface.copy_to_device = &copy_to_device;
    iface.copy_to_host = &copy_to_host;
    iface.copy_on_device = &copy_on_device;
    iface.queue_flush = &queue_flush;
    iface.fence_wait = &fence_wait;
    iface.fence_destroy = &fence_destroy;
    iface.supports_op = &supports_op;
    // Whole-subgraph compilation is for accelerators; host backends run op by op.
    iface.get_capability = nullptr;
    iface.compile = nullptr;
    iface.execute = nullptr;
    iface.executable_release = nullptr;
    return iface;
}

const dsk_backend_iface& backend_iface() {
    // Always usable, but any accelerator that works should be preferred (they score > 10).
    static const HostBackendSpec spec{"cpu", 10, &cpu_supports};
    static const dsk_backend_iface iface = host_backend_iface(spec);
    return iface;
}

}  // namespace dsk::cpu
