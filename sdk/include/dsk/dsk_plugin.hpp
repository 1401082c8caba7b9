// dsk_plugin.hpp - write dsk plugins in C++17 over the C ABI of dsk_plugin.h.
//
// The ABI forbids exceptions and STL types at the boundary; this header keeps them on the plugin
// side of it. Plugin code throws dsk::Error (or anything else) and uses std::string and
// std::function; the thunks here catch everything and hand the kernel a dsk_status instead.
//
//   dsk::host()          the kernel's function table, stored when the plugin is initialized
//   dsk::guard(f)        runs f and turns any exception into a status (for hand-written thunks)
//   dsk::check(status)   turns a failed status into a dsk::Error
//   dsk::Config/Table    read (and fill) TOML tables through the host table
//   dsk::StageContext    a running pipeline stage: config, log, metrics, results, stop requests
//   dsk::Registrar       what init() uses to register stages, backends, optimizers, ...
//   DSK_PLUGIN_DEFINE    the descriptor and the exported dsk_plugin_query, from the manifest
//
// A whole stage plugin (the manifest hello.plugin.toml provides "stage:hello"; dsk_add_plugin()
// passes its name and version in as DSK_PLUGIN_NAME and DSK_PLUGIN_VERSION):
//
//     #include <dsk/dsk_plugin.hpp>
//
//     static void run_hello(dsk::StageContext& ctx) {
//         const std::string who = ctx.config().get_or("who", "world");
//         ctx.info("hello, " + who);
//         ctx.results().set("greeted", who);
//     }
//
//     static void register_hello(dsk::Registrar& reg) {
//         reg.stage({"hello", "Says hello",
//                    {dsk::param_string("who", "whom to greet", "\"world\"")},
//                    run_hello});
//     }
//
//     static const char* const provides[] = {"stage:hello", nullptr};
//     DSK_PLUGIN_DEFINE("Says hello", provides, register_hello);
//
// Threads: dsk::host() may be read from any thread once init has run. Config, Table and
// StageContext are thin handles: copy them freely, but use them only while the C object they
// wrap is alive (a stage's context and config for the duration of its run).
#ifndef DSK_PLUGIN_HPP_
#define DSK_PLUGIN_HPP_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "dsk/dsk_error.hpp"
#include "dsk/dsk_plugin.h"
#include "dsk/dsk_work.hpp"

// Keeps a symbol inside the one shared object that defines it, whatever the build flags, so that
// two plugins in one process never share the state below.
#if defined(_WIN32)
#define DSK_PLUGIN_LOCAL
#else
#define DSK_PLUGIN_LOCAL __attribute__((visibility("hidden")))
#endif

namespace dsk {

//==============================================================================================
// The host table
//==============================================================================================

namespace detail {

// One slot per plugin library. Written by the init thunk of DSK_PLUGIN_DEFINE before the
// plugin's own init runs. If two kernels in one process load the same plugin, the later init
// wins; the ABI gives stages no other way to reach the table.
DSK_PLUGIN_LOCAL inline std::atomic<const dsk_host_api*>& host_slot() noexcept {
    static std::atomic<const dsk_host_api*> host{nullptr};
    return host;
}

}  // namespace detail

// The kernel's function table. Valid from the start of init until the plugin's shutdown returns;
// calling it before init (e.g. from a static constructor) dereferences null.
inline const dsk_host_api& host() noexcept {
    return *detail::host_slot().load(std::memory_order_acquire);
}

//==============================================================================================
// Statuses and exceptions
//==============================================================================================

// A new status owned by the caller: return it across the boundary, or free it with
// host().status_free. `message` is copied.
inline dsk_status make_status(dsk_status_code code, const char* message) noexcept {
    return host().status_create(code, message);
}

namespace detail {

inline std::string status_text(dsk_status status) {
    const char* text = host().status_message(status);
    return text != nullptr ? std::string(text) : std::string();
}

// Frees a status when it goes out of scope, also while an exception unwinds.
struct OwnedStatus {
    dsk_status status;
    explicit OwnedStatus(dsk_status owned) noexcept : status(owned) {}
    OwnedStatus(const OwnedStatus&) = delete;
    OwnedStatus& operator=(const OwnedStatus&) = delete;
    ~OwnedStatus() { host().status_free(status); }
};

}  // namespace detail

// Runs `body` and returns its outcome as a status, so that no exception crosses the C boundary.
// `body` returns void (success) or a dsk_status (passed through). dsk::Error keeps its code,
// std::bad_alloc becomes RESOURCE_EXHAUSTED, anything else INTERNAL with what() as message.
template <class F>
dsk_status guard(F&& body) noexcept {
    try {
        if constexpr (std::is_same_v<std::invoke_result_t<F&>, dsk_status>) {
            return body();
        } else {
            body();
            return DSK_STATUS_OK;
        }
    } catch (const Error& error) {
        return make_status(error.code(), error.what());
    } catch (const std::bad_alloc&) {
        return make_status(DSK_RESOURCE_EXHAUSTED, "out of memory (std::bad_alloc)");
    } catch (const std::exception& error) {
        return make_status(DSK_INTERNAL, error.what());
    } catch (...) {
        return make_status(DSK_INTERNAL, "unknown C++ exception");
    }
}

// The same as guard(); reads better as `return dsk::to_status([&] { ... });`.
template <class F>
dsk_status to_status(F&& body) noexcept {
    return guard(std::forward<F>(body));
}

// Throws dsk::Error with the status's code and message when `status` failed, and frees the
// status either way (this call takes ownership of it). With `context`, the message reads
// "<context>: <message>".
inline void check(dsk_status status, const char* context = nullptr) {
    if (status == DSK_STATUS_OK) {
        return;
    }
    // Freed during unwinding, after the Error below has copied the message.
    const detail::OwnedStatus owned{status};
    std::string message = detail::status_text(status);
    if (context != nullptr && *context != '\0') {
        message = std::string(context) + ": " + message;
    }
    throw Error(host().status_code(status), message);
}

//==============================================================================================
// Config tables
//==============================================================================================

// A read-only view of a host-owned TOML table, addressed by dotted keys ("optimizer.lr",
// "layers.2.width"). section("optimizer") gives a view whose keys are relative to that table.
// Borrowed: valid as long as the dsk_config it wraps (a stage's config: for its run).
class Config {
public:
    explicit Config(const dsk_config* config, std::string prefix = {})
        : config_(config), prefix_(std::move(prefix)) {}

    const dsk_config* raw() const noexcept { return config_; }
    const std::string& prefix() const noexcept { return prefix_; }

    // The full dotted key this view uses for `key` ("" is the view's own table).
    std::string path(const std::string& key) const {
        if (prefix_.empty()) return key;
        if (key.empty()) return prefix_;
        return prefix_ + "." + key;
    }

    dsk_value_type type(const std::string& key) const {
        return host().config_type(config_, path(key).c_str());
    }
    bool has(const std::string& key) const { return type(key) != DSK_VALUE_MISSING; }

    // T is bool, an integer type (range-checked), float/double or std::string. Throws
    // dsk::Error naming the key when it is missing or has another type.
    template <class T>
    T get(const std::string& key) const;

    // The value at `key`, or `fallback` when the key is absent (a wrong type still throws).
    template <class T>
    T get_or(const std::string& key, T fallback) const {
        return has(key) ? get<T>(key) : fallback;
    }
    std::string get_or(const std::string& key, const char* fallback) const {
        return has(key) ? get<std::string>(key) : std::string(fallback);
    }

    // Elements of the array, or keys of the table, at `key` ("" = this view's table).
    size_t size(const std::string& key = {}) const {
        const std::string full = path(key);
        size_t count = 0;
        check_key(host().config_size(config_, full.c_str(), &count), full);
        return count;
    }
    // The index-th key of the table at `key`, in sorted key order.
    std::string key_at(const std::string& key, size_t index) const {
        const std::string full = path(key);
        const char* name = nullptr;
        check_key(host().config_key_at(config_, full.c_str(), index, &name), full);
        return name != nullptr ? std::string(name) : std::string();
    }
    std::vector<std::string> keys(const std::string& key = {}) const {
        std::vector<std::string> names;
        const size_t count = size(key);
        names.reserve(count);
        for (size_t i = 0; i < count; ++i) names.push_back(key_at(key, i));
        return names;
    }

    Config section(const std::string& key) const { return Config(config_, path(key)); }
    // The table at `key` as a dsk_config of its own, to hand to a provider (a dataset reader's
    // open, a model's build); nullptr when `key` is not a table.
    const dsk_config* table(const std::string& key) const {
        return host().config_table(config_, path(key).c_str());
    }

protected:
    // Throws for a failed status, making sure the message names the key (the kernel's usually
    // does, with file and line; then it is kept as is).
    static void check_key(dsk_status status, const std::string& key) {
        if (status == DSK_STATUS_OK) return;
        const detail::OwnedStatus owned{status};
        const std::string message = detail::status_text(status);
        const dsk_status_code code = host().status_code(status);
        if (message.find(key) != std::string::npos) throw Error(code, message);
        if (message.empty() && code == DSK_NOT_FOUND)
            throw Error(code, "config key '" + key + "' is missing");
        throw Error(code, "config key '" + key + "': " + message);
    }

    const dsk_config* config_;
    std::string prefix_;
};

template <class T>
T Config::get(const std::string& key) const {
    const std::string full = path(key);
    if constexpr (std::is_same_v<T, bool>) {
        int32_t value = 0;
        check_key(host().config_get_bool(config_, full.c_str(), &value), full);
        return value != 0;
    } else if constexpr (std::is_integral_v<T>) {
        int64_t value = 0;
        check_key(host().config_get_int(config_, full.c_str(), &value), full);
        const T narrowed = static_cast<T>(value);
        if (static_cast<int64_t>(narrowed) != value || (std::is_unsigned_v<T> && value < 0)) {
            throw Error(DSK_INVALID_ARGUMENT, "config key '" + full + "' = " +
                                                  std::to_string(value) +
                                                  " is out of range for this setting");
        }
        return narrowed;
    } else if constexpr (std::is_floating_point_v<T>) {
        double value = 0;
        check_key(host().config_get_float(config_, full.c_str(), &value), full);
        return static_cast<T>(value);
    } else if constexpr (std::is_same_v<T, std::string>) {
        const char* value = nullptr;
        check_key(host().config_get_string(config_, full.c_str(), &value), full);
        return value != nullptr ? std::string(value) : std::string();
    } else {
        static_assert(std::is_same_v<T, bool>,
                      "dsk::Config::get<T>: T must be bool, an integer, a float or std::string");
    }
}

// A host-owned table this plugin may fill (a stage's results, a search's assignment). Setting a
// dotted key creates the tables on its path. Borrowed, like Config.
class Table : public Config {
public:
    explicit Table(dsk_config* table, std::string prefix = {})
        : Config(table, std::move(prefix)), table_(table) {}

    dsk_config* raw() const noexcept { return table_; }
    Table section(const std::string& key) const { return Table(table_, path(key)); }

    void set(const std::string& key, bool value) {
        const std::string full = path(key);
        check_key(host().config_set_bool(table_, full.c_str(), value ? 1 : 0), full);
    }
    template <class I,
              std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
    void set(const std::string& key, I value) {
        const std::string full = path(key);
        if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(int64_t)) {
            if (value > static_cast<I>(INT64_MAX)) {
                throw Error(DSK_INVALID_ARGUMENT, "config key '" + full + "': " +
                                                      std::to_string(value) +
                                                      " does not fit in a TOML integer");
            }
        }
        check_key(host().config_set_int(table_, full.c_str(), static_cast<int64_t>(value)), full);
    }
    void set(const std::string& key, double value) {
        const std::string full = path(key);
        check_key(host().config_set_float(table_, full.c_str(), value), full);
    }
    void set(const std::string& key, const char* value) {
        const std::string full = path(key);
        check_key(host().config_set_string(table_, full.c_str(), value), full);
    }
    void set(const std::string& key, const std::string& value) { set(key, value.c_str()); }
    void set(const std::string& key, const std::vector<double>& values) {
        const std::string full = path(key);
        check_key(host().config_set_floats(table_, full.c_str(), values.data(), values.size()), full);
    }
    void set(const std::string& key, const std::vector<int64_t>& values) {
        const std::string full = path(key);
        check_key(host().config_set_ints(table_, full.c_str(), values.data(), values.size()), full);
    }

private:
    dsk_config* table_;
};

//==============================================================================================
// Parameter specs (what the kernel validates a pipeline section against)
//==============================================================================================

// `default_value` is a TOML literal, exactly as it would appear in a pipeline: "10", "0.1",
// "true", "\"sgd\"" (quotes included), "[1, 2]"; nullptr when there is none. Bounds are
// inclusive. Strings and `choices` are kept by pointer: give literals or static arrays.

constexpr dsk_param_spec param(dsk_param_type type, const char* name, const char* description,
                               const char* default_value = nullptr, double min_value = 1,
                               double max_value = 0, const char* const* choices = nullptr) {
    // min_value > max_value: no bounds; otherwise DSK_PARAM_BOUNDED.
    return dsk_param_spec{sizeof(dsk_param_spec), static_cast<uint32_t>(type),
                          min_value <= max_value ? DSK_PARAM_BOUNDED : 0u, name, description,
                          default_value, min_value, max_value, choices};
}

constexpr dsk_param_spec param_bool(const char* name, const char* description,
                                    const char* default_value = nullptr) {
    return param(DSK_PARAM_BOOL, name, description, default_value);
}
constexpr dsk_param_spec param_int(const char* name, const char* description,
                                   const char* default_value = nullptr) {
    return param(DSK_PARAM_INT, name, description, default_value);
}
constexpr dsk_param_spec param_int(const char* name, const char* description,
                                   const char* default_value, double min_value,
                                   double max_value) {
    return param(DSK_PARAM_INT, name, description, default_value, min_value, max_value);
}
constexpr dsk_param_spec param_float(const char* name, const char* description,
                                     const char* default_value = nullptr) {
    return param(DSK_PARAM_FLOAT, name, description, default_value);
}
constexpr dsk_param_spec param_float(const char* name, const char* description,
                                     const char* default_value, double min_value,
                                     double max_value) {
    return param(DSK_PARAM_FLOAT, name, description, default_value, min_value, max_value);
}
// `choices`: a NULL-terminated static array of allowed values, or nullptr for any string.
constexpr dsk_param_spec param_string(const char* name, const char* description,
                                      const char* default_value = nullptr,
                                      const char* const* choices = nullptr) {
    return param(DSK_PARAM_STRING, name, description, default_value, 1, 0, choices);
}
constexpr dsk_param_spec param_array(const char* name, const char* description,
                                     const char* default_value = nullptr) {
    return param(DSK_PARAM_ARRAY, name, description, default_value);
}
// A table whose keys the provider checks itself.
constexpr dsk_param_spec param_table(const char* name, const char* description) {
    return param(DSK_PARAM_TABLE, name, description);
}

// The same spec, which the pipeline must now set: required(param_int("epochs", "...")).
constexpr dsk_param_spec required(dsk_param_spec spec) {
    spec.flags |= DSK_PARAM_REQUIRED;
    return spec;
}

//==============================================================================================
// Running stages
//==============================================================================================

// One running pipeline stage. Borrowed: valid for the duration of the stage's run.
class StageContext {
public:
    explicit StageContext(dsk_stage_context* context) noexcept : context_(context) {}

    dsk_stage_context* raw() const noexcept { return context_; }

    // This stage's table of the pipeline, already validated against the stage's params.
    Config config() const { return Config(host().stage_config(context_)); }
    // Absolute path of the run directory (artifacts go there).
    std::string run_dir() const { return host().stage_run_dir(context_); }

    void log(dsk_log_level level, const std::string& message) const {
        host().stage_log(context_, level, message.c_str());
    }
    void debug(const std::string& message) const { log(DSK_LOG_DEBUG, message); }
    void info(const std::string& message) const { log(DSK_LOG_INFO, message); }
    void warn(const std::string& message) const { log(DSK_LOG_WARNING, message); }
    void error(const std::string& message) const { log(DSK_LOG_ERROR, message); }

    // One line of metrics.jsonl.
    void metric(const std::string& name, double value, int64_t step) const {
        check(host().stage_metric(context_, name.c_str(), value, step), "recording a metric");
    }
    // This stage's entry in summary.json.
    Table results() const { return Table(host().stage_results(context_)); }

    // True once the user asked to stop (Ctrl-C): save what is worth saving, then return.
    bool should_stop() const { return host().stage_should_stop(context_) != 0; }
    // Throws dsk::Error(DSK_CANCELLED) once the user asked to stop; the stage then ends
    // CANCELLED, as the ABI asks.
    void throw_if_stopped() const {
        if (should_stop()) throw Error(DSK_CANCELLED, "stopped on request");
    }

    // Every plugin and device the kernel knows, as the C structs (struct_size set to this
    // header's sizes). What they point to stays owned by the kernel, valid until the next plugin
    // discovery or load (copy what you keep).
    std::vector<dsk_plugin_info> plugins() const {
        std::vector<dsk_plugin_info> infos(host().plugin_count(context_));
        for (size_t i = 0; i < infos.size(); ++i) {
            infos[i] = dsk_plugin_info{};
            infos[i].struct_size = sizeof(dsk_plugin_info);
            check(host().plugin_info(context_, i, &infos[i]), "listing plugins");
        }
        return infos;
    }
    // One updating progress line (fraction in [0, 1]); not written to log.txt.
    void progress(double fraction, const std::string& text) const {
        host().stage_progress(context_, fraction, text.c_str());
    }
    // The registered provider "kind:name" as its C interface (loading its plugin if needed),
    // e.g. provider<dsk_optimizer_iface>("optimizer", "adam"). Throws NOT_FOUND with the names
    // known.
    template <class Iface>
    const Iface& provider(const char* kind, const std::string& name) const {
        const void* iface = nullptr;
        check(host().provider_find(context_, kind, name.c_str(), &iface));
        return *static_cast<const Iface*>(iface);
    }
    // Checks the table at `key` of this stage's config against a provider's params (and fills
    // in its defaults); `reserved` keys (NULL-terminated) are the stage's own.
    void check_config(const std::string& key, const dsk_param_spec* params, size_t count,
                      const char* const* reserved = nullptr) const {
        check(host().config_check(context_, key.c_str(), params, count, reserved));
    }

    std::vector<dsk_device_entry> devices() const {
        std::vector<dsk_device_entry> entries(host().device_count(context_));
        for (size_t i = 0; i < entries.size(); ++i) {
            entries[i] = dsk_device_entry{};
            entries[i].struct_size = sizeof(dsk_device_entry);
            check(host().device_entry(context_, i, &entries[i]), "listing devices");
        }
        return entries;
    }

private:
    dsk_stage_context* context_;
};

// The kernel's one thread pool (use it instead of starting threads).
inline uint32_t thread_count() { return host().thread_count(); }

// Runs body(begin, end) over [0, n) in chunks of at least `grain` on the kernel's pool. The
// first exception any chunk throws is rethrown here once all chunks have returned; chunks that
// start after it do nothing.
template <class F>
void parallel_for(size_t n, size_t grain, F&& body) {
    // One chunk: the pool would run it on this thread anyway; skip the trip through the host.
    if (n <= grain || n <= 1) {
        if (n) body(size_t{0}, n);
        return;
    }
    using Body = std::remove_reference_t<F>;
    struct Job {
        explicit Job(Body& chunk_body) : body(chunk_body) {}
        Body& body;
        std::atomic<bool> failed{false};
        std::exception_ptr error;
    } job(body);
    host().parallel_for(
        n, grain,
        [](void* user, size_t begin, size_t end) {
            auto& shared = *static_cast<Job*>(user);
            if (shared.failed.load(std::memory_order_relaxed)) return;
            try {
                shared.body(begin, end);
            } catch (...) {
                if (!shared.failed.exchange(true)) shared.error = std::current_exception();
            }
        },
        &job);
    if (job.error) std::rethrow_exception(job.error);
}

// The same on as many threads as the work pays for (dsk_work.hpp): `per_item` is the work of one
// index. When one thread's share would be too small, body(0, n) runs on the calling thread and
// the pool is not woken at all; otherwise every thread gets about n / threads indices, in chunks
// that are multiples of `grain`. Prefer this to the overload above: a fixed grain forks for any
// loop longer than it, however cheap its indices are.
template <class F>
void parallel_for(size_t n, size_t grain, const Work& per_item, F&& body) {
    const Work total = per_item * static_cast<double>(n);
    const uint32_t threads = n > 1 && worth_threads(total) ? threads_for(total, thread_count()) : 1;
    if (threads <= 1) {
        if (n) body(size_t{0}, n);
        return;
    }
    grain = grain ? grain : 1;
    const size_t chunks = (n + grain - 1) / grain;
    const size_t per_thread = (chunks + threads - 1) / threads;
    parallel_for(n, per_thread * grain, std::forward<F>(body));
}

template <class F>
void parallel_for(size_t n, const Work& per_item, F&& body) {
    parallel_for(n, 1, per_item, std::forward<F>(body));
}

// How many threads a loop of `total` work should use out of the pool's (for kernels that size
// their own split, like the SGEMM's rectangles).
inline uint32_t threads_for(const Work& total) { return threads_for(total, thread_count()); }

//==============================================================================================
// Registration
//==============================================================================================

// A pipeline stage kind written in C++. Registrar::stage() copies it into storage that lives
// until the plugin's shutdown; the strings inside `params` are kept by pointer (literals).
struct Stage {
    std::string kind;
    std::string description;
    std::vector<dsk_param_spec> params;
    std::function<void(StageContext&)> run;  // throw dsk::Error to fail the stage
    // Optional checks at validation time, before any stage runs (see dsk_stage_iface::validate).
    std::function<void(StageContext&)> validate;
};

// A model architecture written in C++ (see dsk_model_iface). build() adds the model to `graph`
// from `input` and returns the logits; throw dsk::Error to refuse a configuration.
struct Model {
    std::string name;
    std::string description;
    std::vector<dsk_param_spec> params;
    std::function<dsk_value_id(dsk_graph* graph, const Config& config, dsk_value_id input, int64_t classes,
                               bool training)>
        build;
};

namespace detail {

struct ModelEntry {
    Model model;
    dsk_model_iface iface;
};

inline dsk_status build_model(void* self, dsk_graph* graph, const dsk_config* config, dsk_value_id input,
                              int64_t classes, int32_t training, dsk_value_id* out_logits) {
    return guard([&] {
        *out_logits = static_cast<ModelEntry*>(self)->model.build(graph, Config(config), input, classes, training != 0);
    });
}

struct StageEntry {
    Stage stage;
    dsk_stage_iface iface;
};

inline dsk_status run_stage(void* self, dsk_stage_context* context) {
    return guard([&] {
        StageContext stage_context(context);
        static_cast<StageEntry*>(self)->stage.run(stage_context);
    });
}

inline dsk_status validate_stage(void* self, dsk_stage_context* context) {
    return guard([&] {
        StageContext stage_context(context);
        static_cast<StageEntry*>(self)->stage.validate(stage_context);
    });
}

// What one load of the plugin owns; created by the init thunk, deleted at shutdown (or when
// init fails). Shutdown hooks run in reverse order of registration.
struct LoadState {
    std::vector<std::unique_ptr<StageEntry>> stages;
    std::vector<std::unique_ptr<ModelEntry>> models;
    std::vector<std::function<void()>> shutdown_hooks;

    LoadState() = default;
    LoadState(const LoadState&) = delete;
    LoadState& operator=(const LoadState&) = delete;
    ~LoadState() {
        for (auto hook = shutdown_hooks.rbegin(); hook != shutdown_hooks.rend(); ++hook) {
            try {
                (*hook)();
            } catch (...) {
                // Nobody is left to report to: shutdown has no status.
            }
        }
    }
};

}  // namespace detail

// What a plugin's init receives. Every method registers through the host table and throws
// dsk::Error when the kernel refuses (a name missing from the manifest's `provides`, a name
// another plugin already has); the error then fails the load with that message.
class Registrar {
public:
    Registrar(dsk_registrar* registrar, detail::LoadState& state) noexcept
        : registrar_(registrar), state_(state) {}

    dsk_registrar* raw() const noexcept { return registrar_; }

    // A C++ stage: copied, and kept until shutdown.
    void stage(Stage stage) {
        if (!stage.run) {
            throw Error(DSK_INVALID_ARGUMENT, "stage '" + stage.kind + "' has no run function");
        }
        auto entry = std::make_unique<detail::StageEntry>();
        entry->stage = std::move(stage);
        const Stage& kept = entry->stage;
        entry->iface = dsk_stage_iface{sizeof(dsk_stage_iface),
                                       kept.kind.c_str(),
                                       kept.description.c_str(),
                                       entry.get(),
                                       kept.params.empty() ? nullptr : kept.params.data(),
                                       kept.params.size(),
                                       &detail::run_stage,
                                       kept.validate ? &detail::validate_stage : nullptr};
        // Kept before registering: the kernel may hold the iface even if a later step fails.
        state_.stages.push_back(std::move(entry));
        const dsk_stage_iface& iface = state_.stages.back()->iface;
        check(host().register_stage(registrar_, &iface),
              context("stage", kept.kind.c_str()).c_str());
    }

    // The C interfaces below are borrowed until shutdown: pass `static const` instances (or
    // storage the plugin keeps that long).
    void stage(const dsk_stage_iface& iface) {
        check(host().register_stage(registrar_, &iface), context("stage", iface.kind).c_str());
    }
    void backend(const dsk_backend_iface& iface) {
        check(host().register_backend(registrar_, &iface), context("backend", iface.name).c_str());
    }
    void optimizer(const dsk_optimizer_iface& iface) {
        check(host().register_optimizer(registrar_, &iface),
              context("optimizer", iface.name).c_str());
    }
    void search(const dsk_search_iface& iface) {
        check(host().register_search(registrar_, &iface), context("search", iface.name).c_str());
    }
    void dataset(const dsk_dataset_iface& iface) {
        check(host().register_dataset(registrar_, &iface), context("dataset", iface.name).c_str());
    }
    void op_schema(const dsk_op_schema& schema) {
        check(host().register_op_schema(registrar_, &schema),
              context("op schema", schema.name).c_str());
    }
    // A C++ model: copied, and kept until shutdown.
    void model(Model model) {
        if (!model.build) throw Error(DSK_INVALID_ARGUMENT, "model '" + model.name + "' has no build function");
        auto entry = std::make_unique<detail::ModelEntry>();
        entry->model = std::move(model);
        const Model& kept = entry->model;
        entry->iface = dsk_model_iface{sizeof(dsk_model_iface),
                                       kept.name.c_str(),
                                       kept.description.c_str(),
                                       entry.get(),
                                       kept.params.empty() ? nullptr : kept.params.data(),
                                       kept.params.size(),
                                       &detail::build_model};
        state_.models.push_back(std::move(entry));
        const dsk_model_iface& iface = state_.models.back()->iface;
        check(host().register_model(registrar_, &iface), context("model", kept.name.c_str()).c_str());
    }
    void model(const dsk_model_iface& iface) {
        check(host().register_model(registrar_, &iface), context("model", iface.name).c_str());
    }
    void op_kernel(const dsk_op_kernel& kernel) {
        check(host().register_op_kernel(registrar_, &kernel),
              context("op kernel", kernel.op).c_str());
    }

    // Runs `hook` at the plugin's shutdown (or right away if init fails after this call), after
    // the kernel released every object the plugin made.
    void on_shutdown(std::function<void()> hook) {
        state_.shutdown_hooks.push_back(std::move(hook));
    }

private:
    static std::string context(const char* what, const char* name) {
        return std::string("registering ") + what + " '" + (name != nullptr ? name : "") + "'";
    }

    dsk_registrar* registrar_;
    detail::LoadState& state_;
};

//==============================================================================================
// The descriptor and entry point
//==============================================================================================

namespace detail {

// The init of DSK_PLUGIN_DEFINE: checks the host table, stores it for dsk::host(), then runs
// the plugin's init under guard() so that what it throws becomes the load's error message.
inline dsk_status init_plugin(const dsk_host_api* host_api, dsk_registrar* registrar,
                              void** out_state, void (*init)(Registrar&)) noexcept {
    if (out_state != nullptr) *out_state = nullptr;
    // status_create is in every 1.x table, so it is safe to use before the size check.
    if (DSK_ABI_MAJOR(host_api->abi_version) != DSK_ABI_VERSION_MAJOR ||
        host_api->struct_size < sizeof(dsk_host_api)) {
        try {
            const std::string message =
                "this plugin needs dsk ABI " + std::to_string(DSK_ABI_VERSION_MAJOR) + "." +
                std::to_string(DSK_ABI_VERSION_MINOR) + " (a host table of " +
                std::to_string(sizeof(dsk_host_api)) + " bytes) but the kernel offers ABI " +
                std::to_string(DSK_ABI_MAJOR(host_api->abi_version)) + "." +
                std::to_string(DSK_ABI_MINOR(host_api->abi_version)) + " (" +
                std::to_string(host_api->struct_size) + " bytes): install a matching dsk";
            return host_api->status_create(DSK_INCOMPATIBLE, message.c_str());
        } catch (...) {
            return host_api->status_create(DSK_INCOMPATIBLE, "incompatible dsk host table");
        }
    }
    host_slot().store(host_api, std::memory_order_release);

    std::unique_ptr<LoadState> state;
    dsk_status status = guard([&] {
        state = std::make_unique<LoadState>();
        Registrar wrapped(registrar, *state);
        init(wrapped);
    });
    if (status != DSK_STATUS_OK) return status;  // `state` (and its hooks) released here
    if (out_state != nullptr) {
        *out_state = state.release();
    }
    return DSK_STATUS_OK;
}

inline void shutdown_plugin(void* state) noexcept { delete static_cast<LoadState*>(state); }

}  // namespace detail

}  // namespace dsk

// Defines the plugin's descriptor (name and version from the manifest, through the
// DSK_PLUGIN_NAME / DSK_PLUGIN_VERSION definitions that dsk_add_plugin() adds) and the exported
// dsk_plugin_query. Use it once per plugin, at namespace scope, followed by a semicolon:
//   description    a string literal (the manifest's description)
//   provides       a NULL-terminated `static const char* const[]` of "kind:name"
//   init_function  `void init(dsk::Registrar&)`; what it throws fails the load with what()
// The query always returns the descriptor, so that the kernel can report an ABI mismatch with
// both version numbers.
#define DSK_PLUGIN_DEFINE(description, provides, init_function)                                 \
    static dsk_status dsk_plugin_init_(const dsk_host_api* host_api, dsk_registrar* registrar, \
                                       void** out_state) {                                     \
        return ::dsk::detail::init_plugin(host_api, registrar, out_state, (init_function));   \
    }                                                                                          \
    static const dsk_plugin_descriptor dsk_plugin_descriptor_ = {                              \
        sizeof(dsk_plugin_descriptor),                                                         \
        DSK_ABI_VERSION,                                                                       \
        DSK_PLUGIN_NAME,                                                                       \
        DSK_PLUGIN_VERSION,                                                                    \
        (description),                                                                         \
        (provides),                                                                            \
        &dsk_plugin_init_,                                                                     \
        &::dsk::detail::shutdown_plugin};                                                      \
    extern "C" DSK_PLUGIN_EXPORT const dsk_plugin_descriptor* dsk_plugin_query(                \
        uint32_t host_abi_version) {                                                           \
        (void)host_abi_version;                                                                \
        return &dsk_plugin_descriptor_;                                                        \
    }                                                                                          \
    static_assert(std::is_same_v<decltype(&dsk_plugin_query), dsk_plugin_query_fn>,           \
                  "dsk_plugin_query must match dsk_plugin_query_fn")

#endif  // DSK_PLUGIN_HPP_
