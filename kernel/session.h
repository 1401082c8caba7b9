// struct dsk_session: a graph placed on one or more devices. It owns a copy of the graph, the
// opened devices (one queue each), a buffer for each input, variable and constant on the
// value's home device (for the session's life), and one execution plan per set of targets it
// was run with (execution_plan.h: dead code removed, fused, folded, memory planned). A run
// replays the plan of its targets; devices with work in flight are flushed and waited for
// before it returns.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dynamic_library.h"

#include "dsk/dsk_plugin.h"
#include "execution_plan.h"
#include "graph.h"
#include "placement.h"

struct dsk_kernel;
namespace dsk::kernel {
struct Plugin;
}

// What a kernel's compute call may ask the kernel about (exec_seed, exec_queue,
// exec_input_version, exec_cache): filled by a session run or by an eager op.
struct dsk_exec_context {
    uint64_t seed;     // the session's (or eager context's) seed
    uint64_t runs;     // runs (or ops) so far
    uint32_t node;     // the graph node (or the op's number)
    dsk_queue* queue;  // of the node's device
    const dsk_session* session = nullptr;                 // null: an eager op
    dsk::kernel::ExecutionPlan* plan = nullptr;
    dsk::kernel::PlanStep* step = nullptr;
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
    using Storage = dsk::kernel::Storage;

    dsk_kernel* kernel = nullptr;
    uint64_t seed = 0;
    uint64_t runs = 0;
    dsk_graph graph{};
    std::vector<Device> devices;                  // in preference order
    std::vector<Storage> storage;                 // per value: inputs, variables, constants
    std::vector<const dsk_op_kernel*> kernels;    // per graph node
    std::vector<uint32_t> node_device;            // per graph node
    dsk::kernel::PlacementReport placement;       // of the whole graph, with the default plan's transfers
    std::string placement_json;                   // dsk_session_placement_json's storage
    std::vector<std::unique_ptr<dsk::kernel::ExecutionPlan>> plans;
    const dsk::kernel::ExecutionPlan* last_plan = nullptr;
    uint64_t transfers = 0, transfer_bytes = 0;   // totals over the session's life
    // Receives a plan's report when it is built (dsk run --explain); may be empty.
    std::function<void(const std::string&)> explain;
    // The libraries whose code this session calls (backends, kernels, schemas), kept loaded.
    std::vector<std::shared_ptr<dsk::kernel::DynamicLibrary>> libraries;
    bool shapes_dirty = false;                    // an input changed shape since the last run
    // Per value: a number that changes whenever a variable or constant may have changed (0 for
    // other values); from one clock, so that a number never comes back (exec_input_version).
    std::vector<uint64_t> versions;
    uint64_t version_clock = 0;
    std::vector<dsk_value_id> exposed;            // handed out by session_tensor: may change any time

    // Places `graph` on the backends of `preference` (the first that can run each node).
    dsk_session(dsk_kernel* kernel, const dsk_graph& graph, const dsk::kernel::DevicePreference& preference,
                uint64_t seed);
    ~dsk_session();
    dsk_session(const dsk_session&) = delete;
    dsk_session& operator=(const dsk_session&) = delete;

    void write(dsk_value_id value, const dsk_tensor_desc& host);
    void read(dsk_value_id value, const dsk_tensor_desc& host);
    void run(std::span<const dsk_value_id> targets);
    // Memory of the caller's that a run reads an input from, or writes a target to.
    struct Binding {
        dsk_value_id value = DSK_VALUE_NONE;
        dsk_buffer* buffer = nullptr;
        void* data = nullptr;  // host address
        uint64_t bytes = 0;
    };
    // Whether every device of the session computes in host memory (run_bound's condition).
    bool host_memory_only() const;
    // run(targets), with the inputs of `inputs` read from, and the targets of `outputs` written
    // to, the caller's host memory for this run only (no copy in or out; dsk_eager_function_run).
    // A target the plan computes once (folded) or that is bound twice is left in the session:
    // the result says, per output, whether it was written to the caller's memory.
    std::vector<bool> run_bound(std::span<const dsk_value_id> targets, std::span<const Binding> inputs,
                                std::span<const Binding> outputs);
    dsk_tensor_desc tensor(dsk_value_id value) const;
    // session_tensor: the value's memory, which its holder may write from now on.
    dsk_tensor_desc expose(dsk_value_id value);
    // A new version for a variable or constant that may have changed.
    void changed(dsk_value_id value);
    // A derived step (execution_plan.h): 0 when its results are those of its inputs now (the
    // run skips it), else the newest version among its inputs, which derived_ran notes once the
    // step has run (with new versions for its outputs).
    uint64_t derived_inputs_version(dsk::kernel::PlanStep& step) const;
    void derived_ran(dsk::kernel::PlanStep& step, uint64_t inputs_version);
    // exec_input_version of input `input` of `step` in `plan`.
    uint64_t input_version(const dsk::kernel::ExecutionPlan& plan, const dsk::kernel::PlanStep& step, uint32_t input) const;
    const std::string& node_backend(uint32_t node) const;
    // The plan for these targets (built on first use). Sinks: the first outputs that nothing reads.
    dsk::kernel::ExecutionPlan& plan_for(std::vector<dsk_value_id> targets);
    std::vector<dsk_value_id> sinks() const;
    // Frees every plan and its memory (the next run builds its own again).
    void release_plans();

private:
    dsk::kernel::DevicePreference preference_;
    std::vector<uint32_t> home_;  // per value: the device its storage is on
    std::vector<dsk_value_id> last_targets_;       // as the last run gave them
    dsk::kernel::ExecutionPlan* plans_by_last_ = nullptr;
    void release();
    void open_devices(const dsk::kernel::DevicePreference& preference);
    void keep_loaded(const dsk::kernel::Plugin* plugin);
    void place(const dsk::kernel::DevicePreference& preference);
    std::unique_ptr<dsk::kernel::ExecutionPlan> build_plan(const std::vector<dsk_value_id>& targets);
    void allocate(Storage& s, uint64_t bytes, uint32_t device);
    void free_storage(Storage& s);
    void ensure_storage(dsk_value_id value);
    bool persistent(dsk_value_id value) const;
    const Storage& storage_of(dsk_value_id value) const;
    void initialise_variable(dsk_value_id value);
    void reinfer_shapes();
    void refresh_replica(dsk::kernel::Replica& r);
    void finish(uint32_t device);  // flushes the device's queue and waits, if work is pending
    void copy_in(const Storage& s, const void* host);
    void copy_out(const Storage& s, void* host);
    dsk_tensor_desc view(dsk_value_id value, const Storage& s) const;
    void bind_steps(dsk::kernel::ExecutionPlan& plan);
    const dsk_tensor_desc* gather_tensors(dsk::kernel::ExecutionPlan& plan, const dsk::kernel::PlanStep& step,
                                          std::vector<dsk_tensor_desc>& tensors);
};

namespace dsk::kernel {
// The host table's session_* members, exec_seed and exec_queue.
void fill_session_api(dsk_host_api& api);
}  // namespace dsk::kernel
