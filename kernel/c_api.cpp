// dsk.h: the host C API. Every entry point catches everything: failures become a status code and
// the kernel's last error; no exception leaves libdsk.
#include "dsk/dsk.h"

#include <sstream>

#include <toml++/toml.h>

#include "graph.h"
#include "kernel.h"
#include "session.h"
#include "pipeline_runner.h"
#include "status.h"

using namespace dsk::kernel;

namespace {

template <class F>
dsk_status_code guarded(dsk_kernel* kernel, F&& body) {
    if (!kernel) return DSK_INVALID_ARGUMENT;
    kernel->last_error.clear();
    try {
        body();
        return DSK_OK;
    } catch (const Error& e) {
        kernel->last_error = e.what();
        return e.code();
    } catch (const std::bad_alloc&) {
        kernel->last_error = "out of memory";
        return DSK_RESOURCE_EXHAUSTED;
    } catch (const std::exception& e) {
        kernel->last_error = std::string("internal error: ") + e.what();
        return DSK_INTERNAL;
    } catch (...) {
        kernel->last_error = "internal error: unknown exception";
        return DSK_INTERNAL;
    }
}

void discover_once(dsk_kernel* kernel) {
    if (kernel->search_path.empty() && kernel->plugins.empty()) kernel->discover();
}

}  // namespace

extern "C" {

const char* dsk_version(void) { return DSK_VERSION_STRING; }
uint32_t dsk_abi_version(void) { return DSK_ABI_VERSION; }

dsk_status_code dsk_kernel_create(dsk_kernel** out_kernel) {
    if (!out_kernel) return DSK_INVALID_ARGUMENT;
    *out_kernel = new (std::nothrow) dsk_kernel();
    return *out_kernel ? DSK_OK : DSK_RESOURCE_EXHAUSTED;
}

void dsk_kernel_destroy(dsk_kernel* kernel) { delete kernel; }

const char* dsk_kernel_last_error(const dsk_kernel* kernel) {
    return kernel ? kernel->last_error.c_str() : "null kernel";
}

dsk_status_code dsk_kernel_add_plugin_path(dsk_kernel* kernel, const char* directory) {
    return guarded(kernel, [&] {
        if (!directory || !*directory) throw Error(DSK_INVALID_ARGUMENT, "empty plugin directory");
        kernel->user_paths.emplace_back(directory);
        kernel->discover();
    });
}

dsk_status_code dsk_kernel_discover(dsk_kernel* kernel) {
    return guarded(kernel, [&] { kernel->discover(); });
}

dsk_status_code dsk_kernel_load_all(dsk_kernel* kernel) {
    return guarded(kernel, [&] {
        discover_once(kernel);
        kernel->load_all();
    });
}

dsk_status_code dsk_kernel_load_plugin(dsk_kernel* kernel, const char* name, const char* version_range) {
    return guarded(kernel, [&] {
        if (!name) throw Error(DSK_INVALID_ARGUMENT, "null plugin name");
        discover_once(kernel);
        auto range = VersionRange::parse(version_range ? version_range : "*");
        if (!range) throw Error(DSK_INVALID_ARGUMENT, std::string("'") + version_range + "' is not a version range");
        kernel->load(name, *range);
    });
}

size_t dsk_kernel_plugin_count(const dsk_kernel* kernel) { return kernel ? kernel->plugins.size() : 0; }

dsk_status_code dsk_kernel_plugin_info(const dsk_kernel* kernel, size_t index, dsk_plugin_info* out_info) {
    if (!kernel || !out_info || index >= kernel->plugins.size()) return DSK_INVALID_ARGUMENT;
    copy_out(kernel->plugin_info(index), out_info);
    return DSK_OK;
}

size_t dsk_kernel_diagnostic_count(const dsk_kernel* kernel) { return kernel ? kernel->diagnostics.size() : 0; }

const char* dsk_kernel_diagnostic(const dsk_kernel* kernel, size_t index) {
    return kernel && index < kernel->diagnostics.size() ? kernel->diagnostics[index].c_str() : "";
}

size_t dsk_kernel_search_path_count(dsk_kernel* kernel) {
    if (!kernel) return 0;
    discover_once(kernel);
    return kernel->search_path.size();
}

const char* dsk_kernel_search_path(dsk_kernel* kernel, size_t index) {
    return kernel && index < kernel->search_path.size() ? kernel->search_path[index].c_str() : "";
}

size_t dsk_kernel_device_count(const dsk_kernel* kernel) { return kernel ? kernel->devices.size() : 0; }

dsk_status_code dsk_kernel_device_entry(const dsk_kernel* kernel, size_t index, dsk_device_entry* out_entry) {
    if (!kernel || !out_entry || index >= kernel->devices.size()) return DSK_INVALID_ARGUMENT;
    copy_out(kernel->device_entry(index), out_entry);
    return DSK_OK;
}

dsk_status_code dsk_kernel_validate_pipeline(dsk_kernel* kernel, const dsk_run_options* options) {
    return guarded(kernel, [&] {
        if (!options) throw Error(DSK_INVALID_ARGUMENT, "null run options");
        validate_pipeline(*kernel, *options);
    });
}

dsk_status_code dsk_kernel_run_pipeline(dsk_kernel* kernel, const dsk_run_options* options) {
    return guarded(kernel, [&] {
        if (!options) throw Error(DSK_INVALID_ARGUMENT, "null run options");
        kernel->last_run_dir.clear();
        // A stop requested before the first stage (Ctrl-C during validation) still counts; the
        // request is spent when the run ends.
        struct ResetStop {
            dsk_kernel* k;
            ~ResetStop() { k->stop_requested = false; }
        } reset{kernel};
        run_pipeline(*kernel, *options);
    });
}

const char* dsk_kernel_last_run_dir(const dsk_kernel* kernel) { return kernel ? kernel->last_run_dir.c_str() : ""; }

const char* dsk_kernel_last_resolved_pipeline(const dsk_kernel* kernel) {
    return kernel ? kernel->last_resolved_pipeline.c_str() : "";
}

void dsk_kernel_request_stop(dsk_kernel* kernel) {
    if (kernel) kernel->stop_requested = true;
}

const dsk_host_api* dsk_host(void) { return &host_api(); }

dsk_status_code dsk_kernel_graph_create(dsk_kernel* kernel, dsk_graph** out_graph) {
    return guarded(kernel, [&] {
        if (!out_graph) throw Error(DSK_INVALID_ARGUMENT, "null out_graph");
        discover_once(kernel);
        *out_graph = new dsk_graph{kernel, {}, {}};
    });
}

dsk_status_code dsk_kernel_session_create(dsk_kernel* kernel, dsk_graph* graph, const char* device, uint64_t seed,
                                          dsk_session** out_session) {
    return guarded(kernel, [&] {
        if (!graph || !out_session) throw Error(DSK_INVALID_ARGUMENT, "null graph or out_session");
        *out_session = new dsk_session(kernel, *graph, resolve_preference(*kernel, nullptr, device && *device ? device : "cpu"), seed);
    });
}

const char* dsk_session_node_backend(const dsk_session* session, uint32_t node) {
    if (!session || node >= session->node_device.size()) return nullptr;
    return session->node_backend(node).c_str();
}

const char* dsk_session_placement_json(dsk_session* session) {
    if (!session) return nullptr;
    try {
        // Transfers depend on the targets: those of the default plan (every result computed).
        session->placement.transfers = session->plan_for(session->sinks()).placement.transfers;
        std::ostringstream out;
        out << toml::json_formatter{session->placement.table()};
        session->placement_json = out.str();
        return session->placement_json.c_str();
    } catch (...) {
        return nullptr;
    }
}

}  // extern "C"
