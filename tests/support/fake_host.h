// A stand-in for the kernel's host table, for tests that call the plugin's internals directly:
// statuses are a small struct, config tables a flat map of keys (no dotted paths), and
// parallel_for runs the chunks serially (last chunk first, so that code which depends on chunk
// order shows it). install() stores the table where DSK_PLUGIN_DEFINE's init thunk would, so
// dsk::host() works as in a loaded plugin.
// Shared by the plugins' unit tests (plugins/*/tests).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <dsk/dsk_plugin.hpp>
#include <map>
#include <string>

struct dsk_status_object {
    dsk_status_code code;
    std::string message;
};

// A config table: key -> value, enough for providers that read their keys with dsk::Config.
struct dsk_config {
    struct Value {
        dsk_value_type type = DSK_VALUE_MISSING;
        int64_t i = 0;
        double f = 0;
        std::string s;
    };
    std::map<std::string, Value> values;

    dsk_config& set(const std::string& key, bool v) {
        values[key] = Value{DSK_VALUE_BOOL, v ? 1 : 0, 0, {}};
        return *this;
    }
    dsk_config& set(const std::string& key, int v) { return set(key, int64_t{v}); }
    dsk_config& set(const std::string& key, int64_t v) {
        values[key] = Value{DSK_VALUE_INT, v, 0, {}};
        return *this;
    }
    dsk_config& set(const std::string& key, double v) {
        values[key] = Value{DSK_VALUE_FLOAT, 0, v, {}};
        return *this;
    }
    dsk_config& set(const std::string& key, const char* v) {
        values[key] = Value{DSK_VALUE_STRING, 0, 0, v};
        return *this;
    }
    dsk_config& set(const std::string& key, const std::string& v) { return set(key, v.c_str()); }
};

namespace fake_host {

inline size_t& parallel_calls() {
    static size_t calls = 0;
    return calls;
}

inline dsk_status status_create(dsk_status_code code, const char* message) {
    return new dsk_status_object{code, message != nullptr ? message : ""};
}
inline dsk_status_code status_code(dsk_status status) {
    return status != nullptr ? status->code : DSK_OK;
}
inline const char* status_message(dsk_status status) {
    return status != nullptr ? status->message.c_str() : "";
}
inline void status_free(dsk_status status) {
    delete status;
}
inline dsk_value_type config_type(const dsk_config* cfg, const char* key) {
    const auto it = cfg->values.find(key);
    return it == cfg->values.end() ? DSK_VALUE_MISSING : it->second.type;
}
// The value at `key` if it has one of the types wanted; else a status (NOT_FOUND/INVALID_ARGUMENT).
inline dsk_status config_find(const dsk_config* cfg, const char* key, dsk_value_type want,
                              dsk_value_type also, const dsk_config::Value** out) {
    const auto it = cfg->values.find(key);
    if (it == cfg->values.end()) {
        return status_create(DSK_NOT_FOUND, (std::string("key '") + key + "' is missing").c_str());
    }
    if (it->second.type != want && it->second.type != also) {
        return status_create(
            DSK_INVALID_ARGUMENT,
            (std::string("test.toml:1:1: key '") + key + "' has another type").c_str());
    }
    *out = &it->second;
    return nullptr;
}
inline dsk_status config_get_bool(const dsk_config* cfg, const char* key, int32_t* out) {
    const dsk_config::Value* v = nullptr;
    if (dsk_status s = config_find(cfg, key, DSK_VALUE_BOOL, DSK_VALUE_BOOL, &v)) return s;
    *out = static_cast<int32_t>(v->i);
    return nullptr;
}
inline dsk_status config_get_int(const dsk_config* cfg, const char* key, int64_t* out) {
    const dsk_config::Value* v = nullptr;
    if (dsk_status s = config_find(cfg, key, DSK_VALUE_INT, DSK_VALUE_INT, &v)) return s;
    *out = v->i;
    return nullptr;
}
inline dsk_status config_get_float(const dsk_config* cfg, const char* key, double* out) {
    const dsk_config::Value* v = nullptr;
    if (dsk_status s = config_find(cfg, key, DSK_VALUE_FLOAT, DSK_VALUE_INT, &v)) return s;
    *out = v->type == DSK_VALUE_INT ? static_cast<double>(v->i) : v->f;
    return nullptr;
}
inline dsk_status config_get_string(const dsk_config* cfg, const char* key, const char** out) {
    const dsk_config::Value* v = nullptr;
    if (dsk_status s = config_find(cfg, key, DSK_VALUE_STRING, DSK_VALUE_STRING, &v)) return s;
    *out = v->s.c_str();
    return nullptr;
}

inline uint32_t thread_count() {
    return 1;
}
inline void parallel_for(size_t n, size_t grain, dsk_parallel_fn fn, void* user) {
    ++parallel_calls();
    if (n == 0) return;
    grain = std::max<size_t>(grain, 1);
    for (size_t begin = (n - 1) / grain * grain;; begin -= grain) {
        fn(user, begin, std::min(n, begin + grain));
        if (begin == 0) break;
    }
}

inline const dsk_host_api& api() {
    static const dsk_host_api table = [] {
        dsk_host_api t{};
        t.struct_size = sizeof t;
        t.abi_version = DSK_ABI_VERSION;
        t.kernel_version = "test";
        t.status_create = status_create;
        t.status_code = status_code;
        t.status_message = status_message;
        t.status_free = status_free;
        t.config_type = config_type;
        t.config_get_bool = config_get_bool;
        t.config_get_int = config_get_int;
        t.config_get_float = config_get_float;
        t.config_get_string = config_get_string;
        t.thread_count = thread_count;
        t.parallel_for = parallel_for;
        return t;
    }();
    return table;
}

// Makes dsk::host() return the fake table (what init_plugin does with the kernel's).
inline void install() {
    dsk::detail::host_slot().store(&api(), std::memory_order_release);
}

// Takes a returned status: its code (DSK_OK for NULL) and message, and frees it.
struct Outcome {
    dsk_status_code code;
    std::string message;
};
inline Outcome take(dsk_status status) {
    Outcome outcome{status_code(status), status_message(status)};
    status_free(status);
    return outcome;
}

}  // namespace fake_host

