// Placement: which device backend runs each node of a session's graph.
//
// A session has an ordered list of backends (the pipeline's [devices] prefer, the stage's
// `device` key, or the app's list). Each node goes to the first backend in that order that has
// a kernel for it (op, dtypes) and whose device says yes through supports_op; the kernel reads
// nothing else, so a vendor's plugin is placed by the same rule as ours. A node that does not
// land on the first backend is a fallback, and the policy decides: "error" refuses the graph
// and names every op, "warn" logs them, "allow" goes on quietly. The report says where every op
// ran and what crosses between devices on each run; it goes to the log, to `dsk run --explain`
// and to summary.json.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "graph.h"
#include "registry.h"

struct dsk_kernel;
struct dsk_stage_context;

namespace dsk::kernel {

struct DevicePreference {
    std::vector<std::string> backends;  // in order; each has a usable device
    std::string policy = "error";       // for nodes not on backends[0]: "error" | "warn" | "allow"
    bool automatic = false;             // nobody asked: every installed backend, by probe score
    bool eager = false;                 // [pipeline] execution = "eager": plans without passes
    std::vector<std::string> passed_over;  // preferred backends without a usable device, and why
};

// The preference for a session. `device` is the caller's argument: a backend name or a
// comma-separated list ("vulkan,cpu"); empty means the pipeline's [devices] prefer, or, without
// one, every installed backend that scores at least as high as cpu, best first, then cpu. Loads
// the backends' plugins. Throws Error (UNAVAILABLE) when the policy forbids passing over an unusable backend.
DevicePreference resolve_preference(dsk_kernel& kernel, dsk_stage_context* ctx, const std::string& device);

struct PlacementReport {
    struct Fallback {
        std::string op, why;  // why the first backend did not take it
        uint32_t nodes = 0;
    };
    struct Transfer {
        std::string value, from, to;
        uint64_t bytes = 0;
    };
    std::vector<std::string> backends;        // the session's devices, in preference order
    std::vector<uint32_t> nodes_per_backend;  // parallel to backends
    std::vector<Fallback> fallbacks;          // ops placed past backends[0], grouped by op
    std::vector<Transfer> transfers;          // values copied between devices on every run
    uint64_t transfer_bytes() const;
    std::string text() const;    // a few lines for logs and --explain
    toml::table table() const;   // for summary.json
};

// An opened device of a session, as placement sees it.
struct OpenDevice {
    std::string name;
    const dsk_backend_iface* backend = nullptr;
    dsk_device* device = nullptr;
};

// The first kernel for the op on `backend` whose input dtypes match (dtype 0 = any), or null.
const Provided<dsk_op_kernel>* find_kernel(const Registry& registry, const std::string& op, const std::string& domain,
                                           const std::vector<uint32_t>& input_dtypes, const std::string& backend);
// The same for a graph node.
const Provided<dsk_op_kernel>* find_kernel(const Registry& registry, const Node& node, const std::vector<Value>& values,
                                           const std::string& backend);

// A kernel for `node` on `device` that the device accepts (supports_op), or null; `why` (if
// given) says which of the two was missing.
const Provided<dsk_op_kernel>* kernel_on(const Registry& registry, const OpenDevice& device, const Node& node,
                                         const std::vector<Value>& values, std::string* why = nullptr);

struct NodePlacement {
    std::vector<const Provided<dsk_op_kernel>*> kernels;  // per node
    std::vector<uint32_t> devices;                        // per node: index in the device list
    PlacementReport report;                               // without transfers
};

// Places each node on the first device that can run it. Throws UNIMPLEMENTED naming the op when
// none can, and UNAVAILABLE naming every op that left devices[0] when `policy` is "error".
NodePlacement place_nodes(const Registry& registry, const std::vector<OpenDevice>& devices,
                          const std::vector<const Node*>& nodes, const std::vector<Value>& values,
                          const std::string& policy);

}  // namespace dsk::kernel
