// An execution plan: what a session runs for one set of targets, compiled once and replayed on
// every run with those targets (a static graph in the sense of jit compilers). Built from the
// session's graph by these passes, in order:
//   1. dead-code elimination: only the nodes the targets need;
//   2. placement of each node on a device (placement.h);
//   3. fusion of Gemm/Conv + activation, then of chains of elementwise ops (fusion_pass.h);
//   4. constant folding: a node that reads only constants runs on the plan's first run, and its
//      result is kept; one that reads only variables the plan does not write (and constants, and
//      such results) runs again only when one of them changed (their versions);
//   5. transfers: replicas of values read on a device that cannot read their memory;
//   6. memory planning by liveness (memory_planner.h): one arena per device for the transient
//      values, reused across steps and in place where an elementwise op may overwrite its input.
// Only the targets of a run can be read afterwards: other transient values share memory.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "graph.h"
#include "placement.h"

namespace dsk::kernel {

// Memory a session uses: a buffer of one of its devices, or a slice of one (an arena).
struct Storage {
    dsk_buffer* buffer = nullptr;
    uint64_t offset = 0;
    void* data = nullptr;  // host address of offset 0 of this storage; null where not host-visible
    uint64_t bytes = 0;
    uint32_t device = 0;
    bool owned = false;    // this storage allocated `buffer` (an arena slice does not)
};

// A copy of a value on a device that cannot read the value's home memory, refreshed once per run.
struct Replica {
    dsk_value_id value = 0;
    uint32_t device = 0;
    Storage storage;
    uint64_t fresh_in_run = UINT64_MAX;
};

// What a step's kernel keeps across the runs of its plan (dsk_host_api.exec_cache): released
// with the plan, by the function the kernel gave.
struct NodeCache {
    void* data = nullptr;
    void (*release)(void*) = nullptr;

    NodeCache() = default;
    NodeCache(NodeCache&& other) noexcept : data(other.data), release(other.release) { other.data = nullptr; }
    NodeCache& operator=(NodeCache&& other) noexcept {
        std::swap(data, other.data);
        std::swap(release, other.release);
        return *this;
    }
    ~NodeCache() { reset(nullptr, nullptr); }
    void reset(void* new_data, void (*new_release)(void*)) {
        if (data && release) release(data);
        data = new_data;
        release = new_release;
    }
};

struct PlanStep {
    Node node;                          // the graph's node, or a fused one
    uint32_t origin = 0;                // the graph node it came from (exec_seed, messages)
    std::vector<uint32_t> fused_from;   // graph nodes a fused node replaces
    const dsk_op_kernel* kernel = nullptr;
    uint32_t device = 0;
    std::vector<int32_t> input_replica;  // per input: index in `replicas`, or -1
    bool once = false;                   // reads only constants: runs on the plan's first run
    // Reads only variables no step of the plan writes, constants and other such results (a
    // weight folded with its batch norm, transposed, quantized): runs when one of them changed.
    bool derived = false;
    uint64_t derived_from = 0;           // the newest version among its inputs when it last ran
    // The step's tensors (inputs, then outputs) as its kernel gets them, filled by the session
    // on the plan's first run where every input is in memory the step's device reads directly
    // (no replica): storage does not move while the plan lives. Empty: built on every run.
    std::vector<dsk_tensor_desc> bound;
    NodeCache cache;
};

struct PassReport {
    size_t graph_nodes = 0, needed_nodes = 0, steps = 0, folded = 0, derived = 0;
    std::vector<std::string> fusions;
    uint64_t unplanned_bytes = 0, planned_bytes = 0;  // transient values: one buffer each / arenas
    uint32_t in_place = 0;
    bool eager = false;  // [pipeline] execution = "eager": no fusion, folding or shared memory
    std::string text() const;
    toml::table table() const;
};

struct ExecutionPlan {
    std::vector<dsk_value_id> targets;  // sorted: the plan's key
    std::vector<PlanStep> steps;
    std::vector<Storage> transient;     // per value id: where a step writes it (bytes 0: not in this plan)
    std::vector<Storage> buffers;       // what this plan allocated (arenas, folded constants, replicas)
    std::vector<Replica> replicas;
    // Variables and constants a step may write in place (an optimizer update, running statistics;
    // dsk_op_schema.written_inputs): their versions change on every run of this plan.
    std::vector<dsk_value_id> written;
    std::vector<bool> writes;  // per value id: in `written`
    std::vector<bool> derived;  // per value id: an output of a derived step (it has a version)
    PlacementReport placement;
    PassReport passes;
    uint64_t runs = 0;
    bool rebind = false;  // storage moved (a run with bound memory): steps' tensors described again
};

// Ops whose output may take over the memory of input 0 when that input dies at the node and has
// the output's size: elementwise ops, whose kernels on host memory read each element before they
// write it, and Reshape and Flatten, whose output is then input 0's bytes as they are (no copy).
// (docs/abi.md states this contract for CPU-type backends.)
bool may_overwrite_input0(const Node& node);

// `random` asked for a seed (dsk_host_api.exec_seed): it and the folded or derived steps that
// read what it computes, directly or not, run on every run from now on.
void unfold_from(ExecutionPlan& plan, const PlanStep& random);

struct Registry;
// The inputs `node` may write in place, as a bit mask (dsk_op_schema.written_inputs; every input
// when its schema does not say).
uint64_t written_inputs(const Registry& registry, const Node& node);

}  // namespace dsk::kernel
