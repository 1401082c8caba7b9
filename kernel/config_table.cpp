#include "config_table.h"

#include <charconv>

#include "status.h"

namespace dsk::kernel {

namespace {
std::string location(const toml::source_region& src) {
    std::string file = src.path ? *src.path : std::string("<input>");
    if (file.rfind("--set", 0) == 0) return file;
    return file + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
}
}  // namespace

std::string where(const toml::node& node) { return location(node.source()); }
std::string where(const toml::key& key, const toml::node& value) {
    return key.source().path ? location(key.source()) : where(value);
}

std::string type_name(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::table: return "table";
        case toml::node_type::array: return "array";
        case toml::node_type::string: return "string";
        case toml::node_type::integer: return "integer";
        case toml::node_type::floating_point: return "float";
        case toml::node_type::boolean: return "boolean";
        default: return "date/time";
    }
}

namespace {

bool parse_index(std::string_view part, size_t* out) {
    auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), *out);
    return ec == std::errc() && ptr == part.data() + part.size();
}

template <class Node>
Node* walk(Node* node, std::string_view path) {
    while (node && !path.empty()) {
        auto dot = path.find('.');
        std::string_view part = path.substr(0, dot);
        path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
        if (auto* t = node->as_table()) {
            node = t->get(part);
        } else if (auto* a = node->as_array()) {
            size_t i = 0;
            node = parse_index(part, &i) ? a->get(i) : nullptr;
        } else {
            return nullptr;
        }
    }
    return node;
}

}  // namespace

toml::node* find_path(toml::table& root, std::string_view path) {
    return path.empty() ? &root : walk<toml::node>(&root, path);
}
const toml::node* find_path(const toml::table& root, std::string_view path) {
    return path.empty() ? &root : walk<const toml::node>(&root, path);
}

void set_path(toml::table& root, std::string_view path, toml::node&& value) {
    toml::node* container = &root;
    std::string done;
    while (true) {
        auto dot = path.find('.');
        std::string_view part = path.substr(0, dot);
        bool last = dot == std::string_view::npos;
        if (part.empty()) throw Error(DSK_INVALID_ARGUMENT, "empty key part in '" + done + "'");
        if (auto* a = container->as_array()) {
            size_t i = 0;
            if (!parse_index(part, &i) || i >= a->size())
                throw Error(DSK_INVALID_ARGUMENT,
                            "'" + done + "' is an array of " + std::to_string(a->size()) +
                                " elements; '" + std::string(part) + "' is not an index in it");
            if (last) {
                a->replace(a->begin() + static_cast<ptrdiff_t>(i), std::move(value));
                return;
            }
            container = a->get(i);
        } else if (auto* t = container->as_table()) {
            if (last) {
                t->insert_or_assign(part, std::move(value));
                return;
            }
            toml::node* next = t->get(part);
            if (!next) next = &t->insert_or_assign(part, toml::table{}).first->second;
            container = next;
        } else {
            throw Error(DSK_INVALID_ARGUMENT,
                        "'" + done + "' is a " + type_name(*container) + ", not a table");
        }
        done += (done.empty() ? "" : ".") + std::string(part);
        path = path.substr(dot + 1);
    }
}

toml::table parse_value_literal(std::string_view literal, const std::string& source_name) {
    std::string doc = "v = " + std::string(literal);
    try {
        toml::table parsed = toml::parse(doc, source_name);
        if (parsed.size() == 1 && parsed.contains("v")) return parsed;
    } catch (const toml::parse_error&) {
        // not a literal: taken as a string below
    }
    // Not a literal: a bare string. Parsed (quoted) so that it keeps `source_name` as its source.
    std::string quoted = "v = \"";
    for (char c : literal) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
    }
    return toml::parse(quoted + "\"", source_name);
}

// --- host table: config access -------------------------------------------------------------

namespace {

std::string key_name(const dsk_config* cfg, const char* key) {
    std::string k = key ? key : "";
    if (cfg->path_prefix.empty()) return k;
    return k.empty() ? cfg->path_prefix : cfg->path_prefix + "." + k;
}

const toml::node* lookup(const dsk_config* cfg, const char* key) {
    if (!cfg || !cfg->table || !key) return nullptr;
    return find_path(*static_cast<const toml::table*>(cfg->table), key);
}

template <class T>
dsk_status get_value(const dsk_config* cfg, const char* key, T* out, const char* expected) {
    const toml::node* node = lookup(cfg, key);
    if (!node) return make_status(DSK_NOT_FOUND, "key '" + key_name(cfg, key) + "' is not set");
    if constexpr (std::is_same_v<T, double>) {
        if (auto v = node->value_exact<int64_t>()) {
            *out = static_cast<double>(*v);
            return DSK_STATUS_OK;
        }
    }
    using Stored = std::conditional_t<std::is_same_v<T, int32_t>, bool, T>;
    if (auto* v = node->as<Stored>()) {
        *out = static_cast<T>(v->get());
        return DSK_STATUS_OK;
    }
    return make_status(DSK_INVALID_ARGUMENT, where(*node) + ": '" + key_name(cfg, key) +
                                                 "' must be " + expected + ", not " +
                                                 type_name(*node));
}

dsk_value_type config_type(const dsk_config* cfg, const char* key) {
    const toml::node* node = lookup(cfg, key);
    if (!node) return DSK_VALUE_MISSING;
    switch (node->type()) {
        case toml::node_type::table: return DSK_VALUE_TABLE;
        case toml::node_type::array: return DSK_VALUE_ARRAY;
        case toml::node_type::integer: return DSK_VALUE_INT;
        case toml::node_type::floating_point: return DSK_VALUE_FLOAT;
        case toml::node_type::boolean: return DSK_VALUE_BOOL;
        default: return DSK_VALUE_STRING;
    }
}

dsk_status get_bool(const dsk_config* c, const char* k, int32_t* out) {
    return get_value<int32_t>(c, k, out, "a boolean (true/false)");
}
dsk_status get_int(const dsk_config* c, const char* k, int64_t* out) {
    return get_value<int64_t>(c, k, out, "an integer");
}
dsk_status get_float(const dsk_config* c, const char* k, double* out) {
    return get_value<double>(c, k, out, "a number");
}
dsk_status get_string(const dsk_config* cfg, const char* key, const char** out) {
    const toml::node* node = lookup(cfg, key);
    if (!node) return make_status(DSK_NOT_FOUND, "key '" + key_name(cfg, key) + "' is not set");
    if (auto* s = node->as_string()) {
        *out = s->get().c_str();
        return DSK_STATUS_OK;
    }
    return make_status(DSK_INVALID_ARGUMENT, where(*node) + ": '" + key_name(cfg, key) +
                                                 "' must be a string, not " + type_name(*node));
}

dsk_status size_of(const dsk_config* cfg, const char* key, size_t* out) {
    const toml::node* node = lookup(cfg, key);
    if (!node) return make_status(DSK_NOT_FOUND, "key '" + key_name(cfg, key) + "' is not set");
    if (auto* t = node->as_table()) *out = t->size();
    else if (auto* a = node->as_array()) *out = a->size();
    else
        return make_status(DSK_INVALID_ARGUMENT, where(*node) + ": '" + key_name(cfg, key) +
                                                     "' is a " + type_name(*node) +
                                                     ", not a table or array");
    return DSK_STATUS_OK;
}

dsk_status key_at(const dsk_config* cfg, const char* key, size_t i, const char** out) {
    const toml::node* node = lookup(cfg, key);
    const toml::table* t = node ? node->as_table() : nullptr;
    if (!t) return make_status(DSK_NOT_FOUND, "'" + key_name(cfg, key) + "' is not a table");
    if (i >= t->size())
        return make_status(DSK_INVALID_ARGUMENT, "index " + std::to_string(i) + " past the " +
                                                     std::to_string(t->size()) + " keys of '" +
                                                     key_name(cfg, key) + "'");
    auto it = t->begin();
    std::advance(it, static_cast<ptrdiff_t>(i));
    *out = it->first.str().data();
    return DSK_STATUS_OK;
}

template <class T>
dsk_status set_value(dsk_config* cfg, const char* key, T value) {
    if (!cfg || !cfg->table || !key)
        return make_status(DSK_INVALID_ARGUMENT, "config_set: null config or key");
    try {
        set_path(*cfg->table, key, toml::value<T>(std::move(value)));
        return DSK_STATUS_OK;
    } catch (...) {
        return status_from_current_exception();
    }
}

template <class T>
dsk_status set_array(dsk_config* cfg, const char* key, const T* values, size_t count) {
    if (!cfg || !cfg->table || !key || (count && !values))
        return make_status(DSK_INVALID_ARGUMENT, "config_set: null config, key or values");
    try {
        toml::array a;
        for (size_t i = 0; i < count; ++i) a.push_back(values[i]);
        set_path(*cfg->table, key, std::move(a));
        return DSK_STATUS_OK;
    } catch (...) {
        return status_from_current_exception();
    }
}

}  // namespace

void fill_config_api(dsk_host_api& api) {
    api.config_type = config_type;
    api.config_get_bool = get_bool;
    api.config_get_int = get_int;
    api.config_get_float = get_float;
    api.config_get_string = get_string;
    api.config_size = size_of;
    api.config_table = [](const dsk_config* cfg, const char* key) -> const dsk_config* {
        if (!cfg || !cfg->table || !key) return nullptr;
        toml::node* node = find_path(*cfg->table, key);
        if (!node || !node->is_table()) return nullptr;
        auto& slot = cfg->sections[key];
        if (!slot) slot = std::make_unique<dsk_config>(node->as_table(), key_name(cfg, key));
        slot->table = node->as_table();  // the table may have moved since (defaults filled in)
        return slot.get();
    };
    api.config_key_at = key_at;
    api.config_set_bool = [](dsk_config* c, const char* k, int32_t v) {
        return set_value<bool>(c, k, v != 0);
    };
    api.config_set_int = [](dsk_config* c, const char* k, int64_t v) {
        return set_value<int64_t>(c, k, v);
    };
    api.config_set_float = [](dsk_config* c, const char* k, double v) {
        return set_value<double>(c, k, v);
    };
    api.config_set_string = [](dsk_config* c, const char* k, const char* v) {
        return set_value<std::string>(c, k, v ? v : "");
    };
    api.config_set_ints = [](dsk_config* c, const char* k, const int64_t* v, size_t n) {
        return set_array(c, k, v, n);
    };
    api.config_set_floats = [](dsk_config* c, const char* k, const double* v, size_t n) {
        return set_array(c, k, v, n);
    };
    api.config_create = []() -> dsk_config* {
        try {
            auto owned = std::make_unique<OwnedConfig>();
            owned->table = &owned->storage;
            return owned.release();
        } catch (...) {
            return nullptr;
        }
    };
    api.config_destroy = [](dsk_config* c) {
        // Only tables from config_create are owned; their views (sections) go with them.
        delete static_cast<OwnedConfig*>(c);
    };
}

}  // namespace dsk::kernel
