// struct dsk_session: a graph placed on one device. It owns a copy of the graph, one buffer per
// value (allocated through the backend; variables and constants for the session's life, the rest
// reallocated only when shapes change), and the kernel chosen for each node. Runs execute the
// nodes that the targets need, in creation (topological) order.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dynamic_library.h"

#include "dsk/dsk_plugin.h"
#include "graph.h"

struct dsk_kernel;
namespace dsk::kernel {
struct Plugin;
}

struct dsk_exec_context {
    const dsk_session* session;
    uint32_t node;
};

struct dsk_session {
    dsk_kernel* kernel = nullptr;
    const dsk_backend_iface* backend = nullptr;
    std::string backend_name;
    dsk_device* device = nullptr;
    dsk_queue* queue = nullptr;
    uint64_t seed = 0;
    uint64_t runs = 0;
    dsk_graph graph{};

    struct Storage {
        dsk_buffer* buffer = nullptr;
        void* data = nullptr;
        uint64_t bytes = 0;
    };
    std::vector<Storage> storage;                 // per value
    // The libraries whose code this session calls (backend, kernels, schemas), kept loaded.
    std::vector<std::shared_ptr<dsk::kernel::DynamicLibrary>> libraries;
    std::vector<const dsk_op_kernel*> kernels;    // per node
    bool shapes_dirty = false;                    // an input changed shape since the last run

    dsk_session(dsk_kernel* kernel, const dsk_graph& graph, const std::string& device, uint64_t seed);
    ~dsk_session();
    dsk_session(const dsk_session&) = delete;
    dsk_session& operator=(const dsk_session&) = delete;

    void write(dsk_value_id value, const dsk_tensor_desc& host);
    void read(dsk_value_id value, const dsk_tensor_desc& host);
    void run(const std::vector<dsk_value_id>& targets);
    dsk_tensor_desc tensor(dsk_value_id value) const;

private:
    void release();
    void keep_loaded(const dsk::kernel::Plugin* plugin);
    void ensure_storage(dsk_value_id value);
    void initialise_variable(dsk_value_id value);
    void reinfer_shapes();
    const dsk_op_kernel* choose_kernel(const dsk::kernel::Node& node);
};

namespace dsk::kernel {
// The host table's session_* members and exec_seed.
void fill_session_api(dsk_host_api& api);
}  // namespace dsk::kernel
