#include "pipeline.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <filesystem>
#include <set>

#include "config_table.h"
#include "kernel.h"
#include "spelling.h"
#include "stage_context.h"
#include "status.h"

namespace fs = std::filesystem;

namespace dsk::kernel {
namespace {

const char* param_type_name(uint32_t type) {
    switch (type) {
        case DSK_PARAM_BOOL: return "boolean";
        case DSK_PARAM_INT: return "integer";
        case DSK_PARAM_FLOAT: return "number";
        case DSK_PARAM_STRING: return "string";
        case DSK_PARAM_ARRAY: return "array";
        case DSK_PARAM_TABLE: return "table";
    }
    return "value";
}

std::string shown(const toml::node& node) {
    std::ostringstream out;
    node.visit([&](const auto& v) { out << v; });
    std::string s = out.str();
    return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

bool type_matches(uint32_t type, const toml::node& node) {
    switch (type) {
        case DSK_PARAM_BOOL: return node.is_boolean();
        case DSK_PARAM_INT: return node.is_integer();
        case DSK_PARAM_FLOAT: return node.is_number();
        case DSK_PARAM_STRING: return node.is_string();
        case DSK_PARAM_ARRAY: return node.is_array();
        case DSK_PARAM_TABLE: return node.is_table();
    }
    return false;
}

// Checks the keys of a fixed section ([pipeline], [plugins], [devices]) by name and type.
struct FixedKey {
    const char* name;
    uint32_t type;
};
void check_section(const toml::table& table, const std::string& label,
                   std::initializer_list<FixedKey> keys, std::vector<std::string>& errors) {
    std::vector<std::string> names;
    for (const auto& k : keys) names.push_back(k.name);
    for (const auto& [key, node] : table) {
        const FixedKey* match = nullptr;
        for (const auto& k : keys)
            if (key.str() == k.name) match = &k;
        if (!match)
            errors.push_back(where(key, node) + ": " + label + ": unknown key '" + std::string(key.str()) + "'" +
                             did_you_mean(key.str(), names) + " (known: " + [&] {
                                 std::string s;
                                 for (auto& n : names) s += (s.empty() ? "" : ", ") + n;
                                 return s;
                             }() + ")");
        else if (!type_matches(match->type, node))
            errors.push_back(where(node) + ": " + label + "." + std::string(key.str()) + ": expected " +
                             param_type_name(match->type) + ", got " + type_name(node) + " " + shown(node));
    }
}

std::vector<std::string> strings_of(const toml::node* node, const std::string& label,
                                    std::vector<std::string>& errors) {
    std::vector<std::string> out;
    if (!node || !node->is_array()) return out;
    for (const auto& item : *node->as_array()) {
        if (auto* s = item.as_string()) out.push_back(s->get());
        else errors.push_back(where(item) + ": " + label + ": expected strings, got " + type_name(item));
    }
    return out;
}

// "stages[0].epochs" -> "stages.0.epochs"; "stages.report.epochs" -> "stages.<index>.epochs".
std::string normalize_override_path(std::string path, const toml::table& root) {
    std::string out;
    for (char c : path) {
        if (c == '[') out += '.';
        else if (c != ']') out += c;
    }
    const std::string prefix = "stages.";
    if (out.rfind(prefix, 0) == 0) {
        size_t dot = out.find('.', prefix.size());
        std::string part = out.substr(prefix.size(), dot == std::string::npos ? std::string::npos : dot - prefix.size());
        bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
        if (!numeric)
            if (const toml::array* stages = root["stages"].as_array())
                for (size_t i = 0; i < stages->size(); ++i)
                    if (auto* t = stages->get(i)->as_table())
                        if ((*t)["name"].value_or(std::string()) == part ||
                            (!t->contains("name") && (*t)["kind"].value_or(std::string()) == part))
                            return prefix + std::to_string(i) + (dot == std::string::npos ? "" : out.substr(dot));
    }
    return out;
}

void apply_overrides(toml::table& root, const std::vector<std::string>& overrides,
                     std::vector<std::string>& errors) {
    for (const auto& text : overrides) {
        const std::string source = "--set " + text;
        auto eq = text.find('=');
        if (eq == std::string::npos || eq == 0) {
            errors.push_back(source + ": expected key.path=value (e.g. --set stages.0.epochs=5)");
            continue;
        }
        std::string path = normalize_override_path(text.substr(0, eq), root);
        try {
            toml::table literal = parse_value_literal(text.substr(eq + 1), source);
            set_path(root, path, std::move(*literal.get("v")));
        } catch (const toml::parse_error& e) {
            errors.push_back(source + ": the value is not valid TOML: " + std::string(e.description()));
        } catch (const Error& e) {
            errors.push_back(source + ": " + e.what());
        }
    }
}

}  // namespace

void check_params(toml::table& table, const std::string& label, const dsk_param_spec* specs,
                  size_t count, const std::vector<std::string>& reserved,
                  std::vector<std::string>& errors) {
    std::vector<std::string> names = reserved;
    for (size_t i = 0; i < count; ++i) names.push_back(specs[i].name);
    for (const auto& [key, node] : table) {
        std::string k(key.str());
        if (std::find(names.begin(), names.end(), k) == names.end()) {
            std::string known;
            for (auto& n : names) known += (known.empty() ? "" : ", ") + n;
            errors.push_back(where(key, node) + ": " + label + ": unknown key '" + k + "'" + did_you_mean(k, names) +
                             " (known: " + known + ")");
        }
    }
    for (size_t i = 0; i < count; ++i) {
        const dsk_param_spec& spec = specs[i];
        const std::string key = label + "." + spec.name;
        toml::node* node = table.get(spec.name);
        if (!node) {
            if (spec.flags & DSK_PARAM_REQUIRED) {
                errors.push_back(where(table) + ": " + label + ": missing required key '" + spec.name + "' (" +
                                 param_type_name(spec.type) + (spec.description ? std::string(": ") + spec.description : "") + ")");
            } else if (spec.default_value) {
                toml::table literal = parse_value_literal(spec.default_value, std::string("default of ") + key);
                table.insert(spec.name, std::move(*literal.get("v")));
            }
            continue;
        }
        if (!type_matches(spec.type, *node)) {
            errors.push_back(where(*node) + ": " + key + ": expected " + param_type_name(spec.type) + ", got " +
                             type_name(*node) + " " + shown(*node));
            continue;
        }
        if ((spec.type == DSK_PARAM_INT || spec.type == DSK_PARAM_FLOAT) && (spec.flags & DSK_PARAM_BOUNDED)) {
            double v = node->is_integer() ? static_cast<double>(node->as_integer()->get()) : node->as_floating_point()->get();
            if (!(v >= spec.min_value && v <= spec.max_value)) {
                std::ostringstream range;
                range << "[" << spec.min_value << ", " << spec.max_value << "]";
                errors.push_back(where(*node) + ": " + key + " = " + shown(*node) + " is out of range " + range.str());
            }
        }
        if (spec.type == DSK_PARAM_STRING && spec.choices) {
            const std::string& v = node->as_string()->get();
            std::vector<std::string> choices;
            for (const char* const* c = spec.choices; *c; ++c) choices.push_back(*c);
            if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
                std::string list;
                for (auto& c : choices) list += (list.empty() ? "\"" : ", \"") + c + "\"";
                errors.push_back(where(*node) + ": " + key + " = \"" + v + "\" is not one of " + list +
                                 did_you_mean(v, choices));
            }
        }
    }
}

std::vector<std::string> check_param_specs(const dsk_param_spec* specs, size_t count,
                                           const std::string& label) {
    std::vector<std::string> errors;
    if (count > 0 && !specs) errors.push_back(label + ": param_count is " + std::to_string(count) + " but params is NULL");
    for (size_t i = 0; specs && i < count; ++i) {
        const dsk_param_spec& spec = specs[i];
        const std::string at = label + " param " + std::to_string(i);
        if (spec.struct_size < offsetof(dsk_param_spec, choices) + sizeof(spec.choices)) {
            errors.push_back(at + ": struct_size " + std::to_string(spec.struct_size) + " is smaller than ABI 1.0's");
            continue;
        }
        if (!spec.name || !*spec.name) {
            errors.push_back(at + ": the name is empty");
            continue;
        }
        if (spec.type < DSK_PARAM_BOOL || spec.type > DSK_PARAM_TABLE) {
            errors.push_back(label + " param '" + spec.name + "': unknown type " + std::to_string(spec.type));
            continue;
        }
        if (!spec.default_value) continue;
        // The default must pass the same checks as a user's value.
        toml::table one;
        try {
            toml::table literal = parse_value_literal(spec.default_value, label + " default of '" + spec.name + "'");
            one.insert(spec.name, std::move(*literal.get("v")));
        } catch (const toml::parse_error& e) {
            errors.push_back(label + " param '" + spec.name + "': default " + spec.default_value +
                             " is not a TOML literal: " + std::string(e.description()));
            continue;
        }
        check_params(one, label, &spec, 1, {}, errors);
    }
    return errors;
}

Pipeline load_pipeline(dsk_kernel& kernel, const std::string& path,
                       const std::vector<std::string>& overrides) {
    Pipeline p;
    p.path = path;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec))
        throw Error(DSK_NOT_FOUND, path + ": no such pipeline file");
    try {
        p.root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
        throw Error(DSK_INVALID_ARGUMENT, path + ":" + std::to_string(e.source().begin.line) + ":" +
                                              std::to_string(e.source().begin.column) +
                                              ": TOML syntax error: " + std::string(e.description()));
    }
    std::vector<std::string> errors;
    apply_overrides(p.root, overrides, errors);

    check_section(p.root, "pipeline file",
                  {{"pipeline", DSK_PARAM_TABLE}, {"plugins", DSK_PARAM_TABLE},
                   {"devices", DSK_PARAM_TABLE}, {"stages", DSK_PARAM_ARRAY}},
                  errors);
    if (auto* t = p.root["pipeline"].as_table()) {
        check_section(*t, "[pipeline]",
                      {{"name", DSK_PARAM_STRING}, {"description", DSK_PARAM_STRING}, {"execution", DSK_PARAM_STRING},
                       {"file", DSK_PARAM_STRING}},
                      errors);
        p.name = (*t)["name"].value_or(std::string());
        p.description = (*t)["description"].value_or(std::string());
        if (auto* e = t->get("execution"); e && e->is_string()) {
            p.execution = e->as_string()->get();
            std::vector<std::string> allowed = {"graph", "eager"};
            if (std::find(allowed.begin(), allowed.end(), p.execution) == allowed.end())
                errors.push_back(where(*e) + ": [pipeline] execution = \"" + p.execution +
                                 "\" is not one of \"graph\", \"eager\"" + did_you_mean(p.execution, allowed));
        }
    }
    if (p.name.empty()) p.name = fs::path(path).stem().string();
    // The file the pipeline came from, kept in the resolved config so that a resumed run (which
    // reads <run dir>/config.toml) still knows it; stages resolve relative paths against it.
    if (auto* t = p.root["pipeline"].as_table(); t && t->contains("file") && (*t)["file"].is_string()) {
        p.source_file = (*t)["file"].value_or(std::string());
    } else if (!path.empty()) {
        p.source_file = fs::absolute(path).lexically_normal().string();
        if (!p.root.contains("pipeline")) p.root.insert("pipeline", toml::table{});
        if (auto* table = p.root["pipeline"].as_table()) table->insert_or_assign("file", p.source_file);
    }

    std::vector<std::pair<std::string, std::string>> required;  // name, range
    std::vector<const toml::node*> required_nodes;
    if (auto* t = p.root["plugins"].as_table()) {
        check_section(*t, "[plugins]", {{"path", DSK_PARAM_ARRAY}, {"require", DSK_PARAM_TABLE}}, errors);
        fs::path base = fs::path(path).parent_path();
        for (const auto& dir : strings_of(t->get("path"), "[plugins] path", errors))
            p.plugin_paths.push_back(fs::path(dir).is_absolute() ? dir : fs::absolute(base / dir).lexically_normal().string());
        if (t->contains("path") && t->get("path")->is_array()) {
            // The resolved config must mean the same from anywhere (a resumed run reads it from
            // its run directory): relative directories become absolute.
            toml::array absolute;
            for (const auto& dir : p.plugin_paths) absolute.push_back(dir);
            t->insert_or_assign("path", std::move(absolute));
        }
        if (auto* req = (*t)["require"].as_table())
            for (const auto& [name, node] : *req) {
                if (!node.is_string()) {
                    errors.push_back(where(node) + ": [plugins] require." + std::string(name.str()) +
                                     ": expected a version range string (\"*\", \">=1.0, <2\"), got " + type_name(node));
                    continue;
                }
                required.emplace_back(std::string(name.str()), node.as_string()->get());
                required_nodes.push_back(&node);
            }
    }
    if (auto* t = p.root["devices"].as_table()) {
        check_section(*t, "[devices]", {{"prefer", DSK_PARAM_ARRAY}, {"fallback", DSK_PARAM_STRING}}, errors);
        p.device_preference = strings_of(t->get("prefer"), "[devices] prefer", errors);
        if (auto* f = t->get("fallback"); f && f->is_string()) {
            p.fallback = f->as_string()->get();
            std::vector<std::string> allowed = {"error", "warn", "allow"};
            if (std::find(allowed.begin(), allowed.end(), p.fallback) == allowed.end())
                errors.push_back(where(*f) + ": [devices] fallback = \"" + p.fallback +
                                 "\" is not one of \"error\", \"warn\", \"allow\"" + did_you_mean(p.fallback, allowed));
        }
    }

    // The plugin search path for this pipeline: its [plugins] path first.
    std::vector<std::string> saved_paths = kernel.user_paths;
    kernel.user_paths.insert(kernel.user_paths.begin(), p.plugin_paths.begin(), p.plugin_paths.end());
    kernel.discover();
    kernel.user_paths = saved_paths;

    for (size_t i = 0; i < required.size(); ++i) {
        auto range = VersionRange::parse(required[i].second);
        if (!range) {
            errors.push_back(where(*required_nodes[i]) + ": [plugins] require." + required[i].first + " = \"" +
                             required[i].second + "\" is not a version range (e.g. \">=1.0, <2\")");
            continue;
        }
        try {
            kernel.load(required[i].first, *range, where(*required_nodes[i]) + ": [plugins] require");
        } catch (const Error& e) {
            errors.push_back(e.what());
        }
    }

    std::vector<std::string> known_backends;
    for (auto& c : kernel.plugins)
        for (const auto& prov : c->manifest.provides)
            if (prov.rfind("device:", 0) == 0) known_backends.push_back(prov.substr(7));
    if (auto* t = p.root["devices"].as_table())
        if (auto* prefer = t->get("prefer"); prefer && prefer->is_array())
            for (const auto& item : *prefer->as_array()) {
                auto* s = item.as_string();
                if (!s) continue;
                Plugin* provider = kernel.find_provider("device", s->get());
                if (!provider) {
                    errors.push_back(where(item) + ": [devices] prefer: no plugin provides device backend '" + s->get() +
                                     "'" + did_you_mean(s->get(), known_backends) + " (searched: " +
                                     kernel.search_path_text() + ")");
                    continue;
                }
                try {
                    kernel.load(provider->manifest.name, *VersionRange::parse("*"), where(item) + ": [devices] prefer");
                } catch (const Error& e) {
                    errors.push_back(e.what());
                }
            }

    toml::array* stages = p.root["stages"].as_array();
    if (!stages || stages->empty()) {
        errors.push_back(path + ": the pipeline has no stages; add at least one [[stages]] table with kind = \"...\"");
    } else {
        std::vector<std::string> known_kinds;
        for (auto& c : kernel.plugins)
            for (const auto& prov : c->manifest.provides)
                if (prov.rfind("stage:", 0) == 0) known_kinds.push_back(prov.substr(6));
        std::set<std::string> names;
        for (size_t i = 0; i < stages->size(); ++i) {
            toml::node& node = *stages->get(i);
            std::string label = "stages[" + std::to_string(i) + "]";
            toml::table* t = node.as_table();
            if (!t) {
                errors.push_back(where(node) + ": " + label + ": expected a table ([[stages]]), got " + type_name(node));
                continue;
            }
            StagePlan s;
            s.index = i;
            s.table = t;
            toml::node* kind = t->get("kind");
            if (!kind || !kind->is_string()) {
                errors.push_back(where(kind ? *kind : node) + ": " + label +
                                 (kind ? ".kind must be a string" : ": missing required key 'kind'") +
                                 " (the stage kind, e.g. kind = \"env\")");
                continue;
            }
            s.kind = kind->as_string()->get();
            if (toml::node* name = t->get("name")) {
                if (!name->is_string()) errors.push_back(where(*name) + ": " + label + ".name must be a string");
                else s.name = name->as_string()->get();
            }
            if (s.name.empty()) {
                s.name = s.kind;
                for (int n = 2; names.count(s.name); ++n) s.name = s.kind + "-" + std::to_string(n);
                t->insert("name", s.name);
            } else if (names.count(s.name)) {
                errors.push_back(where(*t->get("name")) + ": " + label + ".name = \"" + s.name +
                                 "\" is used by an earlier stage; stage names must be unique");
            }
            names.insert(s.name);
            label += " (" + s.kind + ")";

            Plugin* provider = kernel.find_provider("stage", s.kind);
            if (!provider) {
                errors.push_back(where(*kind) + ": " + label + ": no plugin provides stage kind '" + s.kind + "'" +
                                 did_you_mean(s.kind, known_kinds) + " (searched: " + kernel.search_path_text() + ")");
                continue;
            }
            try {
                kernel.load(provider->manifest.name, *VersionRange::parse("*"), where(*kind) + ": " + label);
            } catch (const Error& e) {
                errors.push_back(e.what());
                continue;
            }
            auto it = kernel.registry.stages.find(s.kind);
            if (it == kernel.registry.stages.end()) {
                errors.push_back(where(*kind) + ": " + label + ": plugin '" + provider->manifest.name +
                                 "' loaded but did not register stage kind '" + s.kind + "'");
                continue;
            }
            s.plugin = it->second.plugin;
            s.iface = it->second.iface;
            check_params(*t, label, s.iface->params, s.iface->params ? s.iface->param_count : 0, {"kind", "name"},
                         errors);
            p.stages.push_back(s);
        }
    }

    // Deeper checks by the stages themselves (the tables naming an optimizer, a model...).
    for (const StagePlan& s : p.stages) {
        if (!DSK_HAS_MEMBER(s.iface, dsk_stage_iface, validate) || !s.iface->validate) continue;
        dsk_stage_context ctx{&kernel, nullptr, &p, &s, {s.table, "stages[" + std::to_string(s.index) + "]"}, {}, {},
                              [](dsk_log_level, const std::string&, const std::string&) {}, {}, {}};
        ctx.results_view = {&ctx.results, s.name + ".results"};  // filled and discarded
        dsk_status st = DSK_STATUS_OK;
        try {
            st = s.iface->validate(s.iface->self, &ctx);
        } catch (...) {
            st = status_from_current_exception();
        }
        errors.insert(errors.end(), ctx.problems.begin(), ctx.problems.end());
        if (st) {  // the stage's own findings: each line that config_check did not already report
            std::istringstream lines(st->message);
            for (std::string line; std::getline(lines, line);)
                if (!line.empty() && std::none_of(ctx.problems.begin(), ctx.problems.end(),
                                                  [&](const std::string& p) { return line.find(p) != std::string::npos; }))
                    errors.push_back(where(*s.table) + ": stages[" + std::to_string(s.index) + "] (" + s.kind + "): " + line);
        }
        free_status(st);
    }

    if (!errors.empty()) {
        std::string message;
        for (const auto& e : errors) message += (message.empty() ? "" : "\n") + e;
        throw Error(DSK_INVALID_ARGUMENT, message);
    }
    return p;
}

}  // namespace dsk::kernel
