// dsk.hpp - embed the dsk kernel from C++17: a thin, header-only layer over dsk.h.
//
// Every failing call throws dsk::Error carrying the dsk_status_code and the kernel's
// dsk_kernel_last_error() text; results come back as std::string and std::vector copies, so
// nothing returned depends on the kernel's next call.
//
//     #include <dsk/dsk.hpp>
//
//     int main() try {
//         dsk::Kernel kernel;
//         kernel.add_plugin_path("/opt/vendor/dsk-plugins");
//         dsk::RunOptions options;
//         options.pipeline_path = "configs/env.toml";
//         options.overrides = {"stages.0.verbose=true"};
//         kernel.run(options);
//         std::printf("run directory: %s\n", kernel.last_run_dir().c_str());
//     } catch (const dsk::Error& e) {
//         std::fprintf(stderr, "%s\n", e.what());
//         return 1;
//     }
//
// A Kernel is used from one thread at a time (as a dsk_kernel is); two Kernels never share state.
#ifndef DSK_HPP_
#define DSK_HPP_

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "dsk/dsk.h"
#include "dsk/dsk_error.hpp"

namespace dsk {

// A plugin candidate as the kernel found it (copied from dsk_plugin_info).
struct PluginInfo {
    uint32_t abi_version = 0;  // what the plugin was built against; 0 if never loaded
    std::string name;
    std::string version;
    std::string kinds;     // comma-separated: "device,stage"
    std::string provides;  // comma-separated: "device:cpu,stage:env"
    std::string library_path;
    std::string manifest_path;
    std::string state;  // "loaded", "available", "failed", "shadowed"
    std::string error;  // why it failed, or ""
};

// A device of a loaded backend, usable or not (copied from dsk_device_entry).
struct DeviceInfo {
    uint32_t index = 0;  // within its backend
    std::string backend;
    std::string plugin;
    dsk_device_type type = DSK_DEVICE_CPU;
    std::string name;
    std::string description;
    uint64_t memory_bytes = 0;  // 0 = unknown
    int32_t score = 0;          // higher is preferred
    std::string unusable_reason;
    uint32_t subgroup_size = 0;

    bool usable() const noexcept { return score > 0; }
};

struct RunOptions {
    std::string pipeline_path;
    std::vector<std::string> overrides;  // "key.path=value", as `dsk run --set`
    std::string run_dir;                 // empty: runs/<pipeline>-<timestamp>/
    std::string resume_dir;              // continue the run in this directory (dsk run --resume)
    bool dry_run = false;                // validate, resolve, load and print the plan only
    bool explain = false;                // log each session's plan as it is made (--explain)
    // Receives every log line (they also go to the run's log.txt). If it throws, the run goes
    // on without it, and its first exception is rethrown once the run returns (a failed run
    // throws its own Error instead).
    std::function<void(dsk_log_level, const std::string&)> on_log;
};

namespace detail {

inline std::string copy_string(const char* text) { return text != nullptr ? text : ""; }

// Copies the members the backend filled: those its struct_size covers.
inline void copy_device_info(const dsk_device_info& info, DeviceInfo& device) {
    const dsk_device_info* from = &info;
    if (DSK_HAS_MEMBER(from, dsk_device_info, type))
        device.type = static_cast<dsk_device_type>(from->type);
    if (DSK_HAS_MEMBER(from, dsk_device_info, name)) device.name = copy_string(from->name);
    if (DSK_HAS_MEMBER(from, dsk_device_info, description))
        device.description = copy_string(from->description);
    if (DSK_HAS_MEMBER(from, dsk_device_info, memory_bytes))
        device.memory_bytes = from->memory_bytes;
    if (DSK_HAS_MEMBER(from, dsk_device_info, score)) device.score = from->score;
    if (DSK_HAS_MEMBER(from, dsk_device_info, unusable_reason))
        device.unusable_reason = copy_string(from->unusable_reason);
    if (DSK_HAS_MEMBER(from, dsk_device_info, subgroup_size))
        device.subgroup_size = from->subgroup_size;
}

}  // namespace detail

// Owns one dsk_kernel. Movable, not copyable.
class Kernel {
public:
    Kernel() {
        const dsk_status_code code = dsk_kernel_create(&kernel_);
        if (code != DSK_OK) {
            throw Error(code, std::string("dsk_kernel_create failed: ") + status_code_name(code));
        }
    }
    ~Kernel() { dsk_kernel_destroy(kernel_); }

    Kernel(const Kernel&) = delete;
    Kernel& operator=(const Kernel&) = delete;
    Kernel(Kernel&& other) noexcept : kernel_(std::exchange(other.kernel_, nullptr)) {}
    Kernel& operator=(Kernel&& other) noexcept {
        if (this != &other) {
            dsk_kernel_destroy(kernel_);
            kernel_ = std::exchange(other.kernel_, nullptr);
        }
        return *this;
    }

    // The wrapped kernel (still owned by this object); null after a move.
    dsk_kernel* raw() const noexcept { return kernel_; }

    static std::string version() { return dsk_version(); }
    static uint32_t abi_version() noexcept { return dsk_abi_version(); }

    // Searched before DSK_PLUGIN_PATH and the install directory.
    void add_plugin_path(const std::string& directory) {
        check(dsk_kernel_add_plugin_path(kernel_, directory.c_str()), "add_plugin_path");
    }
    // Reads every manifest on the search path; loads nothing.
    void discover() { check(dsk_kernel_discover(kernel_), "discover"); }
    // Loads every plugin found; one that fails is listed by plugins() with its reason.
    void load_all() { check(dsk_kernel_load_all(kernel_), "load_all"); }
    // Loads one plugin and what it requires. `version_range` like ">=1.0, <2"; "" means any.
    void load_plugin(const std::string& name, const std::string& version_range = {}) {
        check(dsk_kernel_load_plugin(kernel_, name.c_str(),
                                     version_range.empty() ? nullptr : version_range.c_str()),
              "load_plugin");
    }

    // Every candidate found, in search order.
    std::vector<PluginInfo> plugins() const {
        std::vector<PluginInfo> plugins;
        const size_t count = dsk_kernel_plugin_count(kernel_);
        plugins.reserve(count);
        for (size_t i = 0; i < count; ++i) {
            dsk_plugin_info info{};
            info.struct_size = sizeof(info);
            check(dsk_kernel_plugin_info(kernel_, i, &info), "plugin_info");
            PluginInfo& plugin = plugins.emplace_back();
            plugin.abi_version = info.abi_version;
            plugin.name = detail::copy_string(info.name);
            plugin.version = detail::copy_string(info.version);
            plugin.kinds = detail::copy_string(info.kinds);
            plugin.provides = detail::copy_string(info.provides);
            plugin.library_path = detail::copy_string(info.library_path);
            plugin.manifest_path = detail::copy_string(info.manifest_path);
            plugin.state = detail::copy_string(info.state);
            plugin.error = detail::copy_string(info.error);
        }
        return plugins;
    }

    // Every device of every loaded backend.
    std::vector<DeviceInfo> devices() const {
        std::vector<DeviceInfo> devices;
        const size_t count = dsk_kernel_device_count(kernel_);
        devices.reserve(count);
        for (size_t i = 0; i < count; ++i) {
            dsk_device_entry entry{};
            entry.struct_size = sizeof(entry);
            check(dsk_kernel_device_entry(kernel_, i, &entry), "device_entry");
            DeviceInfo& device = devices.emplace_back();
            device.index = entry.index;
            device.backend = detail::copy_string(entry.backend);
            device.plugin = detail::copy_string(entry.plugin);
            if (entry.info != nullptr) detail::copy_device_info(*entry.info, device);
        }
        return devices;
    }

    // Extra lines for `dsk doctor`: libraries without a manifest, unreadable directories.
    std::vector<std::string> diagnostics() const {
        std::vector<std::string> lines;
        const size_t count = dsk_kernel_diagnostic_count(kernel_);
        lines.reserve(count);
        for (size_t i = 0; i < count; ++i) {
            lines.push_back(detail::copy_string(dsk_kernel_diagnostic(kernel_, i)));
        }
        return lines;
    }

    // The directories searched, in order. (Not const: the C API may compute it on demand.)
    std::vector<std::string> search_path() {
        std::vector<std::string> directories;
        const size_t count = dsk_kernel_search_path_count(kernel_);
        directories.reserve(count);
        for (size_t i = 0; i < count; ++i) {
            directories.push_back(detail::copy_string(dsk_kernel_search_path(kernel_, i)));
        }
        return directories;
    }

    // Parses the pipeline, applies overrides, loads what it needs and checks every key. The
    // Error's message lists every problem, one per line, with file:line:column.
    void validate(const RunOptions& options) {
        call_with(options, &dsk_kernel_validate_pipeline, "validate_pipeline");
    }
    // Validates, then runs every stage, writing the run directory.
    void run(const RunOptions& options) {
        call_with(options, &dsk_kernel_run_pipeline, "run_pipeline");
    }
    // The run directory of the last run ("" before one).
    std::string last_run_dir() const {
        return detail::copy_string(dsk_kernel_last_run_dir(kernel_));
    }
    // The pipeline the last validate or run resolved, as TOML ("" before one): overrides
    // applied, defaults filled in, as a run's config.toml has it.
    std::string last_resolved_pipeline() const {
        return detail::copy_string(dsk_kernel_last_resolved_pipeline(kernel_));
    }
    // Asks a running pipeline to stop; async-signal-safe like the C call.
    void request_stop() noexcept { dsk_kernel_request_stop(kernel_); }

private:
    void check(dsk_status_code code, const char* what) const {
        if (code == DSK_OK) return;
        std::string message = detail::copy_string(dsk_kernel_last_error(kernel_));
        if (message.empty()) {
            message = std::string("dsk_kernel_") + what + " failed: " + status_code_name(code);
        }
        throw Error(code, message);
    }

    // Builds the C options (pointing into `options`, which outlives the call) and forwards log
    // lines to the std::function without letting an exception into the kernel.
    void call_with(const RunOptions& options,
                   dsk_status_code (*function)(dsk_kernel*, const dsk_run_options*),
                   const char* what) {
        struct LogForward {
            const std::function<void(dsk_log_level, const std::string&)>* on_log;
            std::exception_ptr error;
        } forward{&options.on_log, nullptr};

        std::vector<const char*> overrides;
        overrides.reserve(options.overrides.size());
        for (const std::string& entry : options.overrides) overrides.push_back(entry.c_str());

        dsk_run_options c_options{};
        c_options.struct_size = sizeof(c_options);
        c_options.dry_run = options.dry_run ? 1u : 0u;
        c_options.pipeline_path = options.pipeline_path.c_str();
        c_options.overrides = overrides.empty() ? nullptr : overrides.data();
        c_options.override_count = overrides.size();
        c_options.run_dir = options.run_dir.empty() ? nullptr : options.run_dir.c_str();
        c_options.resume_dir = options.resume_dir.empty() ? nullptr : options.resume_dir.c_str();
        c_options.explain = options.explain ? 1u : 0u;
        if (options.on_log) {
            c_options.on_log = [](void* user, dsk_log_level level, const char* message) {
                auto& target = *static_cast<LogForward*>(user);
                if (target.error) return;
                try {
                    (*target.on_log)(level, detail::copy_string(message));
                } catch (...) {
                    target.error = std::current_exception();
                }
            };
            c_options.on_log_user = &forward;
        }

        const dsk_status_code code = function(kernel_, &c_options);
        check(code, what);
        if (forward.error) std::rethrow_exception(forward.error);
    }

    dsk_kernel* kernel_ = nullptr;
};

}  // namespace dsk

#endif  // DSK_HPP_
