// struct dsk_session: a graph placed on one or more devices. It owns a copy of the graph, the
// opened devices (one queue each), one buffer per value on the value's home device (variables
// and constants for the session's life, the rest reallocated only when shapes change), the
// kernel and device chosen for each node (placement.h), and replicas of the values that a node
// reads on a device whose memory they are not in. Runs execute the nodes that the targets need,
// in creation (topological) order; the replicas are refreshed once per run, and every device
// with work in flight is flushed and waited for before the run returns.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dynamic_library.h"

#include "dsk/dsk_plugin.h"
#include "graph.h"
#include "placement.h"

struct dsk_kernel;
namespace dsk::kernel {
struct Plugin;
}

struct dsk_exec_context {
    const dsk_session* session;
    uint32_t node;
};

struct dsk_session {
    struct Device {
        std::string name;
        const dsk_backend_iface* backend = nullptr;
        dsk_device* device = nullptr;
        dsk_queue* queue = nullptr;
        bool host_memory = false;  // DSK_DEVICE_CPU: kernels use `data`, memory is shared
        bool pending = false;      // work enqueued since the last flush
    };
    struct Storage {
        dsk_buffer* buffer = nullptr;
        void* data = nullptr;  // null where the memory is not host-visible
        uint64_t bytes = 0;
        uint32_t device = 0;
    };
    struct Replica {
        dsk_value_id value = 0;
        uint32_t device = 0;
        Storage storage;
        uint64_t fresh_in_run = UINT64_MAX;
    };

    dsk_kernel* kernel = nullptr;
    uint64_t seed = 0;
    uint64_t runs = 0;
    dsk_graph graph{};
    std::vector<Device> devices;                  // in preference order
    std::vector<Storage> storage;                 // per value, on its home device
    std::vector<Replica> replicas;
    std::vector<const dsk_op_kernel*> kernels;    // per node
    std::vector<uint32_t> node_device;            // per node
    std::vector<std::vector<int32_t>> input_replica;  // per node and input: index in replicas, or -1
    dsk::kernel::PlacementReport placement;
    std::string placement_json;                   // dsk_session_placement_json's storage
    uint64_t transfers = 0, transfer_bytes = 0;   // totals over the session's life
    // The libraries whose code this session calls (backends, kernels, schemas), kept loaded.
    std::vector<std::shared_ptr<dsk::kernel::DynamicLibrary>> libraries;
    bool shapes_dirty = false;                    // an input changed shape since the last run

    // Places `graph` on the backends of `preference` (the first that can run each node).
    dsk_session(dsk_kernel* kernel, const dsk_graph& graph, const dsk::kernel::DevicePreference& preference,
                uint64_t seed);
    ~dsk_session();
    dsk_session(const dsk_session&) = delete;
    dsk_session& operator=(const dsk_session&) = delete;

    void write(dsk_value_id value, const dsk_tensor_desc& host);
    void read(dsk_value_id value, const dsk_tensor_desc& host);
    void run(const std::vector<dsk_value_id>& targets);
    dsk_tensor_desc tensor(dsk_value_id value) const;
    const std::string& node_backend(uint32_t node) const;

private:
    dsk::kernel::DevicePreference preference_;
    std::vector<uint32_t> home_;  // per value: the device its storage is on
    void release();
    void open_devices(const dsk::kernel::DevicePreference& preference);
    void keep_loaded(const dsk::kernel::Plugin* plugin);
    void place(const dsk::kernel::DevicePreference& preference);
    void allocate(Storage& s, const dsk_tensor_desc& desc, uint32_t device);
    void ensure_storage(dsk_value_id value);
    void initialise_variable(dsk_value_id value);
    void reinfer_shapes();
    void refresh_replica(Replica& r);
    void finish(uint32_t device);  // flushes the device's queue and waits, if work is pending
    void copy_in(const Storage& s, const void* host);
    void copy_out(const Storage& s, void* host);
    dsk_tensor_desc view(dsk_value_id value, const Storage& s) const;
};

namespace dsk::kernel {
// The host table's session_* members, exec_seed and exec_queue.
void fill_session_api(dsk_host_api& api);
}  // namespace dsk::kernel
