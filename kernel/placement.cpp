#include "placement.h"

#include <algorithm>
#include <map>

#include "kernel.h"
#include "pipeline.h"
#include "semver.h"
#include "spelling.h"
#include "stage_context.h"
#include "status.h"
#include "dsk/dsk_tensor.hpp"

namespace dsk::kernel {
namespace {

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        std::string item = text.substr(start, end - start);
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (!item.empty() && std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
        start = end + 1;
    }
    return out;
}

// The best probe score among the backend's devices (0 when it has none usable), and why not.
int32_t best_score(const dsk_kernel& kernel, const std::string& backend, std::string* why) {
    int32_t best = 0;
    *why = "no device";
    for (const auto& d : kernel.devices)
        if (d.backend == backend) {
            if (d.info.score > best) best = d.info.score;
            else if (d.info.score <= 0) *why = d.info.unusable_reason ? d.info.unusable_reason : "unusable";
        }
    return best;
}

// Loads the plugin behind a backend name when it is not loaded yet. Throws NOT_FOUND naming the
// search path when no plugin provides it.
void load_backend(dsk_kernel& kernel, const std::string& backend) {
    if (kernel.registry.backends.count(backend)) return;
    Plugin* provider = kernel.find_provider("device", backend);
    if (!provider) {
        throw Error(DSK_NOT_FOUND, "no device backend named '" + backend + "'" +
                                       did_you_mean(backend, kernel.registry.names("device")) +
                                       " (searched: " + kernel.search_path_text() + ")");
    }
    kernel.load(provider->manifest.name, *VersionRange::parse("*"));
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : "; ") + item;
    return out;
}

}  // namespace

DevicePreference resolve_preference(dsk_kernel& kernel, dsk_stage_context* ctx, const std::string& device) {
    DevicePreference p;
    const Pipeline* pipeline = ctx ? ctx->pipeline : nullptr;
    std::vector<std::string> wanted = split_list(device);
    if (pipeline) {
        p.eager = pipeline->execution == "eager";
        p.policy = pipeline->fallback;
        if (wanted.empty()) wanted = pipeline->device_preference;
    } else if (!wanted.empty()) {
        // An app's explicit list: one name means that backend only; listing several is consent
        // to place each node on the first that can run it.
        p.policy = wanted.size() > 1 ? "allow" : "error";
    }

    if (wanted.empty()) {
        // Nobody asked: every installed backend, best probe score first (ggml's best backend),
        // with `cpu` always there to take what the others cannot. The report says where ops ran.
        p.automatic = true;
        p.policy = "allow";
        for (const auto& plugin : kernel.plugins)
            for (const auto& provided : plugin->manifest.provides)
                if (provided.rfind("device:", 0) == 0 && plugin->state != PluginState::Failed) {
                    try {
                        load_backend(kernel, provided.substr(7));
                    } catch (const Error&) {
                        // A broken plugin stays out of automatic placement; `dsk doctor` says why.
                    }
                }
        std::vector<std::pair<int32_t, std::string>> scored;
        for (const auto& [name, entry] : kernel.registry.backends) {
            std::string why;
            int32_t score = best_score(kernel, name, &why);
            if (score > 0) scored.push_back({score, name});
        }
        std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
        // cpu runs every core op, so a backend that scores below it would get nothing: it is
        // left out rather than opened (a CPU-emulated Vulkan device, say, starts threads).
        load_backend(kernel, "cpu");
        std::string why;
        const int32_t cpu_score = best_score(kernel, "cpu", &why);
        for (const auto& [score, name] : scored)
            if (score >= cpu_score && name != "cpu") p.backends.push_back(name);
        p.backends.push_back("cpu");
        return p;
    }

    // Explicit: the listed backends that have a usable device; in a pipeline, `cpu` last as the
    // place a fallback goes to, so that "warn" and "allow" have somewhere to put an op.
    if (pipeline && std::find(wanted.begin(), wanted.end(), "cpu") == wanted.end()) wanted.push_back("cpu");
    for (const auto& name : wanted) {
        load_backend(kernel, name);
        std::string why;
        if (best_score(kernel, name, &why) > 0) p.backends.push_back(name);
        else p.passed_over.push_back(name + ": " + why);
    }
    if (p.backends.empty())
        throw Error(DSK_UNAVAILABLE, "no usable device among the requested backends (" + joined(p.passed_over) + ")");
    if (!p.passed_over.empty()) {
        const std::string message = "no usable device for the preferred backend(s) (" +
                                    joined(p.passed_over) + "); running on '" +
                                    p.backends.front() + "'";
        if (p.policy == "error")
            throw Error(DSK_UNAVAILABLE, message + " is not allowed by [devices] fallback = \"error\"; "
                                                   "set fallback = \"warn\" or \"allow\", or fix the device");
        if (p.policy == "warn" && ctx && ctx->stage && ctx->log) ctx->log(DSK_LOG_WARNING, ctx->stage->name, message);
    }
    return p;
}

const Provided<dsk_op_kernel>* find_kernel(const Registry& registry, const std::string& op, const std::string& domain,
                                           const std::vector<uint32_t>& input_dtypes, const std::string& backend) {
    for (const auto& entry : registry.op_kernels) {
        const dsk_op_kernel* k = entry.iface;
        if (backend != k->backend || op != k->op || domain != (k->domain ? k->domain : "")) continue;
        bool match = true;
        for (size_t i = 0; i < input_dtypes.size() && i < k->input_dtype_count; ++i)
            match &= k->input_dtypes[i] == 0 || k->input_dtypes[i] == input_dtypes[i];
        if (match) return &entry;
    }
    return nullptr;
}

const Provided<dsk_op_kernel>* find_kernel(const Registry& registry, const Node& node, const std::vector<Value>& values,
                                           const std::string& backend) {
    std::vector<uint32_t> dtypes;
    for (dsk_value_id in : node.inputs) dtypes.push_back(values[in].desc.dtype);
    return find_kernel(registry, node.op, node.domain, dtypes, backend);
}

const Provided<dsk_op_kernel>* kernel_on(const Registry& registry, const OpenDevice& device, const Node& node,
                                         const std::vector<Value>& values, std::string* why) {
    const Provided<dsk_op_kernel>* k = find_kernel(registry, node, values, device.name);
    if (!k) {
        if (why) *why = "no " + device.name + " kernel for these input types";
        return nullptr;
    }
    if (device.backend->supports_op) {
        std::vector<dsk_tensor_desc> tensors;
        for (dsk_value_id in : node.inputs) tensors.push_back(values[in].desc);
        for (dsk_value_id out : node.outputs) tensors.push_back(values[out].desc);
        if (!device.backend->supports_op(device.device, &node.view, tensors.data())) {
            if (why) *why = device.name + " declines it (supports_op)";
            return nullptr;
        }
    }
    return k;
}

NodePlacement place_nodes(const Registry& registry, const std::vector<OpenDevice>& devices,
                          const std::vector<const Node*>& nodes, const std::vector<Value>& values,
                          const std::string& policy) {
    NodePlacement out;
    for (const auto& d : devices) out.report.backends.push_back(d.name);
    out.report.nodes_per_backend.assign(devices.size(), 0);
    std::map<std::string, PlacementReport::Fallback> fallbacks;
    for (const Node* node : nodes) {
        std::string why_not_first;
        const Provided<dsk_op_kernel>* chosen = nullptr;
        uint32_t d = 0;
        for (; d < devices.size() && !chosen; ++d) chosen = kernel_on(registry, devices[d], *node, values, d == 0 ? &why_not_first : nullptr);
        if (!chosen) {
            std::string types, tried, elsewhere;
            for (dsk_value_id in : node->inputs) types += (types.empty() ? "" : ", ") + std::string(dsk::dtype_name(values[in].desc.dtype));
            for (const auto& dev : devices) tried += (tried.empty() ? "" : " or ") + dev.name;
            for (const auto& entry : registry.op_kernels)
                if (node->op == entry.iface->op && elsewhere.find(entry.iface->backend) == std::string::npos)
                    elsewhere += (elsewhere.empty() ? "" : ", ") + std::string(entry.iface->backend);
            throw Error(DSK_UNIMPLEMENTED, "no " + tried + " kernel for op " + node->op + " with inputs (" + types + "); " +
                                               (elsewhere.empty() ? "no backend has one" : "backends with one: " + elsewhere) +
                                               " (kernels come from plugins providing kernel:<op>@<backend> or kernel:*)");
        }
        --d;  // the loop stepped past the device that took it
        out.kernels.push_back(chosen);
        out.devices.push_back(d);
        ++out.report.nodes_per_backend[d];
        if (d > 0) {
            auto& f = fallbacks[node->op];
            f.op = node->op;
            f.why = why_not_first;
            ++f.nodes;
        }
    }
    for (auto& [op, f] : fallbacks) out.report.fallbacks.push_back(f);
    if (!out.report.fallbacks.empty() && policy == "error") {
        std::string ops;
        uint32_t count = 0;
        for (const auto& f : out.report.fallbacks) {
            ops += (ops.empty() ? "" : ", ") + f.op + " x" + std::to_string(f.nodes) + " (" + f.why + ")";
            count += f.nodes;
        }
        throw Error(DSK_UNAVAILABLE, devices[0].name + " cannot run " + std::to_string(count) + " node(s) of this graph: " +
                                         ops + "; [devices] fallback = \"error\" forbids placing them on another device; "
                                         "set fallback = \"warn\" or \"allow\", or choose another device");
    }
    return out;
}

uint64_t PlacementReport::transfer_bytes() const {
    uint64_t total = 0;
    for (const auto& t : transfers) total += t.bytes;
    return total;
}

std::string PlacementReport::text() const {
    std::string out = "placement:";
    for (size_t i = 0; i < backends.size(); ++i)
        if (nodes_per_backend[i] || i == 0)
            out += (i ? ", " : " ") + backends[i] + " " + std::to_string(nodes_per_backend[i]) + " node(s)";
    for (const auto& f : fallbacks) out += "\n  fallback: " + f.op + " x" + std::to_string(f.nodes) + " (" + f.why + ")";
    if (transfers.empty()) return out + "\n  transfers per run: none";
    out += "\n  transfers per run: " + std::to_string(transfers.size()) + " value(s), " + std::to_string(transfer_bytes()) + " bytes";
    for (size_t i = 0; i < transfers.size() && i < 8; ++i)
        out += "\n    " + transfers[i].value + " " + transfers[i].from + " -> " + transfers[i].to + " (" +
               std::to_string(transfers[i].bytes) + " bytes)";
    if (transfers.size() > 8) out += "\n    ... " + std::to_string(transfers.size() - 8) + " more";
    return out;
}

toml::table PlacementReport::table() const {
    toml::table nodes;
    for (size_t i = 0; i < backends.size(); ++i) nodes.insert(backends[i], static_cast<int64_t>(nodes_per_backend[i]));
    toml::array fallback_list;
    for (const auto& f : fallbacks)
        fallback_list.push_back(toml::table{{"op", f.op}, {"nodes", static_cast<int64_t>(f.nodes)}, {"why", f.why}});
    toml::array transfer_list;
    for (const auto& t : transfers)
        transfer_list.push_back(
            toml::table{{"value", t.value}, {"from", t.from}, {"to", t.to}, {"bytes", static_cast<int64_t>(t.bytes)}});
    toml::array order;
    for (const auto& b : backends) order.push_back(b);
    return toml::table{{"backends", std::move(order)},
                       {"nodes", std::move(nodes)},
                       {"fallbacks", std::move(fallback_list)},
                       {"transfers_per_run", std::move(transfer_list)},
                       {"transfer_bytes_per_run", static_cast<int64_t>(transfer_bytes())}};
}

}  // namespace dsk::kernel
