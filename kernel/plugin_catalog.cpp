// Finding plugins on the search path and loading them: the part of dsk_kernel that must be loud
// and isolated. Every candidate that fails keeps its reason; one broken plugin never stops the
// kernel or the others.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "dsk/dsk.h"
#include "kernel.h"
#include "spelling.h"
#include "status.h"

namespace fs = std::filesystem;
using namespace dsk::kernel;

namespace {

constexpr const char* kManifestSuffix = ".plugin.toml";

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string join(const std::vector<std::string>& items, const char* sep) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : sep) + item;
    return out;
}

std::string abi_text(uint32_t v) {
    return std::to_string(DSK_ABI_MAJOR(v)) + "." + std::to_string(DSK_ABI_MINOR(v));
}

}  // namespace

namespace dsk::kernel {
const char* state_name(PluginState state) {
    switch (state) {
        case PluginState::Available: return "available";
        case PluginState::Loading: return "loading";
        case PluginState::Loaded: return "loaded";
        case PluginState::Failed: return "failed";
        case PluginState::Shadowed: return "shadowed";
    }
    return "?";
}
}  // namespace dsk::kernel

dsk_kernel::~dsk_kernel() {
    // Unload in reverse load order, so a plugin outlives the plugins that required it.
    std::vector<Plugin*> loaded;
    for (auto& p : plugins)
        if (p->state == PluginState::Loaded) loaded.push_back(p.get());
    std::sort(loaded.begin(), loaded.end(),
              [](const Plugin* a, const Plugin* b) { return a->load_order > b->load_order; });
    for (Plugin* p : loaded) unload(*p);
}

void dsk_kernel::unload(Plugin& plugin) {
    registry.remove(&plugin);
    if (plugin.descriptor && plugin.descriptor->shutdown) plugin.descriptor->shutdown(plugin.plugin_state);
    plugin.descriptor = nullptr;
    plugin.library.reset();
}

std::string dsk_kernel::search_path_text() const {
    return search_path.empty() ? "(empty)" : join(search_path, ", ");
}

void dsk_kernel::discover() {
    search_path = user_paths;
    if (const char* env = std::getenv("DSK_PLUGIN_PATH")) {
        std::string value = env;
        size_t start = 0;
        while (start <= value.size()) {
            size_t end = value.find(':', start);
            if (end == std::string::npos) end = value.size();
            if (end > start) search_path.push_back(value.substr(start, end - start));
            start = end + 1;
        }
    }
    std::string lib_dir = directory_of_address(reinterpret_cast<const void*>(&dsk_version));
    if (!lib_dir.empty()) search_path.push_back((fs::path(lib_dir) / "dsk" / "plugins").string());

    // Loaded plugins keep their registrations and take their place in the new search order;
    // everything else is read again.
    std::vector<std::unique_ptr<Plugin>> kept;
    for (auto& p : plugins)
        if (p->state == PluginState::Loaded) kept.push_back(std::move(p));
    plugins.clear();
    diagnostics.clear();
    // Whatever happens below (even an exception), loaded plugins come back into the list:
    // their registrations are live. Those whose directory left the search path are listed last.
    struct KeepLoaded {
        std::vector<std::unique_ptr<Plugin>>& kept;
        std::vector<std::unique_ptr<Plugin>>& plugins;
        ~KeepLoaded() {
            for (auto& k : kept)
                if (k) plugins.push_back(std::move(k));
        }
    } keep_loaded{kept, plugins};

    std::set<std::string> seen_dirs;
    for (const auto& dir : search_path) {
        std::error_code ec;
        fs::path canonical = fs::weakly_canonical(dir, ec);
        if (!seen_dirs.insert(canonical.string()).second) continue;
        if (!fs::is_directory(dir, ec)) {
            diagnostics.push_back("search path entry '" + dir + "' is not a directory; skipped");
            continue;
        }
        std::vector<fs::path> entries;
        // Error codes, not exceptions: loaded plugins are out of `plugins` until the end.
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(it->path());
        if (ec) {
            diagnostics.push_back("cannot read '" + dir + "': " + ec.message());
            continue;
        }
        std::sort(entries.begin(), entries.end());
        std::set<std::string> libraries_with_manifest;
        for (const auto& entry : entries) {
            std::string file = entry.string();
            if (!ends_with(file, kManifestSuffix)) continue;
            auto plugin = std::make_unique<Plugin>();
            plugin->manifest.path = file;
            try {
                plugin->manifest = read_manifest(file);
                libraries_with_manifest.insert(fs::path(plugin->manifest.library_path).filename().string());
            } catch (const Error& e) {
                plugin->manifest.name = entry.filename().string();
                plugin->manifest.name.resize(plugin->manifest.name.size() - std::string(kManifestSuffix).size());
                plugin->fail(std::string("invalid manifest: ") + e.what());
                plugins.push_back(std::move(plugin));
                continue;
            }
            // Already loaded from this same manifest: the loaded entry takes this place.
            auto loaded = std::find_if(kept.begin(), kept.end(), [&](auto& k) { return k && k->manifest.path == file; });
            if (loaded != kept.end()) {
                for (auto& earlier : plugins)  // never two plugins of one name loaded
                    if (earlier->manifest.name == plugin->manifest.name && earlier->state == PluginState::Available) {
                        earlier->state = PluginState::Shadowed;
                        earlier->error = "a plugin with this name is already loaded from " + file;
                    }
                plugins.push_back(std::move(*loaded));
                continue;
            }
            if (Plugin* first = find(plugin->manifest.name)) {
                plugin->state = PluginState::Shadowed;
                plugin->error = "shadowed by " + first->manifest.path +
                                " (same name, earlier in the search path)";
            }
            plugins.push_back(std::move(plugin));
        }
        for (const auto& entry : entries) {
            std::string name = entry.filename().string();
            if (ends_with(name, ".so") && !libraries_with_manifest.count(name))
                diagnostics.push_back("library " + entry.string() +
                                      " has no manifest naming it (expected a *.plugin.toml with "
                                      "library = \"" + name + "\" beside it); ignored");
        }
    }
}

Plugin* dsk_kernel::find(const std::string& name) {
    for (auto& p : plugins)
        if (p->manifest.name == name && p->state != PluginState::Shadowed &&
            !(p->state == PluginState::Failed && p->manifest.library_path.empty()))
            return p.get();
    return nullptr;
}

Plugin* dsk_kernel::find_provider(const std::string& kind, const std::string& name) {
    // An exact "kind:name" wins over a "kind:*" wildcard (a plugin providing every op).
    const std::string wanted = kind + ":" + name, wildcard = kind + ":*";
    Plugin* fallback = nullptr;
    for (auto& p : plugins) {
        if (p->state == PluginState::Shadowed) continue;
        const auto& provides = p->manifest.provides;
        if (std::find(provides.begin(), provides.end(), wanted) != provides.end()) return p.get();
        if (!fallback && std::find(provides.begin(), provides.end(), wildcard) != provides.end()) fallback = p.get();
    }
    return fallback;
}

Plugin& dsk_kernel::load(const std::string& name, const VersionRange& range,
                         const std::string& required_by) {
    Plugin* plugin = find(name);
    std::string who = required_by.empty() ? "" : required_by + " ";
    if (!plugin) {
        for (auto& p : plugins)  // a candidate whose manifest is broken: say so, not "not found"
            if (p->manifest.name == name && p->state == PluginState::Failed)
                throw Error(DSK_INVALID_ARGUMENT, who + "needs plugin '" + name + "', whose manifest " + p->manifest.path +
                                                      " is broken: " + p->error);
        std::vector<std::string> names;
        for (auto& p : plugins) names.push_back(p->manifest.name);
        throw Error(DSK_NOT_FOUND, who + "needs plugin '" + name + "', which is not on the plugin search path (searched: " +
                                       search_path_text() + ")" + did_you_mean(name, names) +
                                       "; add its directory with [plugins] path or DSK_PLUGIN_PATH");
    }
    if (!range.contains(plugin->manifest.version)) {
        throw Error(DSK_INCOMPATIBLE, who + "needs plugin '" + name + "' " + range.str() + ", but found " +
                                          name + " " + plugin->manifest.version.str() + " at " +
                                          plugin->manifest.path);
    }
    std::vector<std::string> chain;
    load_candidate(*plugin, chain);
    if (plugin->state != PluginState::Loaded)
        throw Error(DSK_UNAVAILABLE, "plugin '" + name + "' (" + plugin->manifest.path + ") failed to load: " + plugin->error);
    return *plugin;
}

void dsk_kernel::load_all() {
    for (size_t i = 0; i < plugins.size(); ++i) {  // index: load_candidate may not add, but be safe
        Plugin& p = *plugins[i];
        if (p.state != PluginState::Available) continue;
        std::vector<std::string> chain;
        load_candidate(p, chain);
    }
}

void dsk_kernel::load_candidate(Plugin& plugin, std::vector<std::string>& chain) {
    if (plugin.state != PluginState::Available) return;
    const Manifest& m = plugin.manifest;
    const std::string label = "plugin '" + m.name + "'";

    const Version kernel_abi{DSK_ABI_VERSION_MAJOR, DSK_ABI_VERSION_MINOR, 0, {}};
    if (!m.abi.contains(kernel_abi)) {
        plugin.fail("ABI mismatch: the manifest says it works with dsk ABI " + m.abi.str() +
                    ", but this kernel implements ABI " + abi_text(DSK_ABI_VERSION) +
                    "; install a build of the plugin made against dsk SDK " +
                    std::to_string(DSK_ABI_VERSION_MAJOR) + ".x");
        return;
    }

    // Requirements first, so that they are loaded (and registered) before this plugin's init.
    plugin.state = PluginState::Loading;
    chain.push_back(m.name);
    for (const Requirement& req : m.requirements) {
        if (std::find(chain.begin(), chain.end(), req.plugin) != chain.end()) {
            plugin.fail("requires cycle: " + join(chain, " -> ") + " -> " + req.plugin + " (" + req.where + ")");
            chain.pop_back();
            return;
        }
        Plugin* dep = find(req.plugin);
        if (!dep) {
            plugin.fail("unmet requirement: requires '" + req.plugin + "' " + req.range.str() + " (" + req.where +
                        "), which is not on the plugin search path (searched: " + search_path_text() + ")");
            chain.pop_back();
            return;
        }
        if (!req.range.contains(dep->manifest.version)) {
            std::string message = "unmet requirement: requires '" + req.plugin + "' " + req.range.str() +
                                  " (" + req.where + "), but found " + req.plugin + " " +
                                  dep->manifest.version.str() + " at " + dep->manifest.path;
            // Name the plugins whose requirements pull the other way: a conflict, not a typo.
            for (auto& other : plugins) {
                if (other.get() == &plugin || other->state == PluginState::Shadowed) continue;
                for (const Requirement& o : other->manifest.requirements)
                    if (o.plugin == req.plugin && o.range.contains(dep->manifest.version))
                        message += "; conflicting requirement: '" + other->manifest.name + "' requires '" +
                                   req.plugin + "' " + o.range.str() + " (" + o.where + ")";
            }
            plugin.fail(message);
            chain.pop_back();
            return;
        }
        load_candidate(*dep, chain);
        if (dep->state != PluginState::Loaded) {
            plugin.fail("requires '" + req.plugin + "', which failed to load: " + dep->error);
            chain.pop_back();
            return;
        }
    }
    chain.pop_back();

    try {
        plugin.library = std::make_shared<DynamicLibrary>(m.library_path);
    } catch (const Error& e) {
        plugin.fail(std::string("cannot load ") + m.library_path + ": " + e.what());
        return;
    }
    auto query = reinterpret_cast<dsk_plugin_query_fn>(plugin.library->symbol(DSK_PLUGIN_QUERY_SYMBOL));
    if (!query) {
        plugin.library.reset();
        plugin.fail(m.library_path + " does not export " DSK_PLUGIN_QUERY_SYMBOL
                    "; is it a dsk plugin? (build it with dsk_add_plugin() and DSK_PLUGIN_DEFINE)");
        return;
    }
    const dsk_plugin_descriptor* d = query(DSK_ABI_VERSION);
    auto fail_unload = [&](const std::string& message) {
        plugin.library.reset();
        plugin.fail(message);
    };
    if (!d) return fail_unload(DSK_PLUGIN_QUERY_SYMBOL " returned NULL: the plugin refuses kernel ABI " + abi_text(DSK_ABI_VERSION));
    if (d->struct_size < offsetof(dsk_plugin_descriptor, shutdown) + sizeof(d->shutdown))
        return fail_unload("descriptor is " + std::to_string(d->struct_size) + " bytes, smaller than ABI 1.0's; the library is corrupt or not a dsk plugin");
    plugin.abi_version = d->abi_version;
    if (DSK_ABI_MAJOR(d->abi_version) != DSK_ABI_VERSION_MAJOR)
        return fail_unload("ABI major mismatch: the library was built for dsk ABI " + abi_text(d->abi_version) +
                           ", this kernel implements ABI " + abi_text(DSK_ABI_VERSION) +
                           " (majors must match); rebuild it against dsk SDK " + std::to_string(DSK_ABI_VERSION_MAJOR) + ".x");
    // A newer minor loads: the plugin sees host->struct_size and keeps to what this kernel has.

    std::vector<std::string> problems;
    if (!d->name || m.name != d->name)
        problems.push_back(std::string("name: manifest \"") + m.name + "\", library \"" + (d->name ? d->name : "(null)") + "\"");
    if (!d->version || m.version.str() != (Version::parse(d->version) ? Version::parse(d->version)->str() : ""))
        problems.push_back("version: manifest \"" + m.version.str() + "\", library \"" + (d->version ? d->version : "(null)") + "\"");
    std::set<std::string> lib_provides;
    for (const char* const* p = d->provides; p && *p; ++p) lib_provides.insert(*p);
    if (lib_provides != std::set<std::string>(m.provides.begin(), m.provides.end())) {
        std::vector<std::string> lp(lib_provides.begin(), lib_provides.end());
        problems.push_back("provides: manifest [" + join(m.provides, ", ") + "], library [" + join(lp, ", ") + "]");
    }
    if (!d->init) problems.push_back("the descriptor has no init function");
    if (!problems.empty())
        return fail_unload("manifest " + m.path + " disagrees with the library's descriptor (" + join(problems, "; ") +
                           "); rebuild and reinstall the plugin so both come from one build");

    plugin.descriptor = d;
    plugin.registrar = std::make_shared<dsk_registrar>(dsk_registrar{this, &plugin, true});
    dsk_status status = DSK_STATUS_OK;
    try {
        status = d->init(&host_api(), plugin.registrar.get(), &plugin.plugin_state);
    } catch (...) {  // a plugin without the C++ wrapper let an exception escape
        status = status_from_current_exception();
    }
    plugin.registrar->open = false;
    if (status) {
        std::string message = "init failed (" + std::string(status_code_name(status->code)) + "): " + status->message;
        free_status(status);
        registry.remove(&plugin);
        plugin.descriptor = nullptr;
        return fail_unload(message);
    }
    std::vector<std::string> registered = registry.provided_by(&plugin);
    std::vector<std::string> missing;
    for (const auto& p : m.provides) {
        auto colon = p.find(':');
        bool wildcard = p.substr(colon + 1) == "*";
        bool found = std::any_of(registered.begin(), registered.end(), [&](const std::string& r) {
            return wildcard ? r.rfind(p.substr(0, colon + 1), 0) == 0 : r == p;
        });
        if (!found) missing.push_back(p);
    }
    if (!missing.empty()) {
        unload(plugin);
        plugin.fail("declares provides [" + join(missing, ", ") + "] but its init did not register them");
        return;
    }
    plugin.state = PluginState::Loaded;
    plugin.load_order = ++loads;
    refresh_devices();
}

dsk_plugin_info dsk_kernel::plugin_info(size_t index) const {
    Plugin& p = *plugins.at(index);
    p.version_text = p.manifest.library_path.empty() ? "" : p.manifest.version.str();
    p.kinds_text = join(p.manifest.kinds, ",");
    p.provides_text = join(p.manifest.provides, ",");
    dsk_plugin_info info{};
    info.struct_size = sizeof info;
    info.abi_version = p.abi_version;
    info.name = p.manifest.name.c_str();
    info.version = p.version_text.c_str();
    info.kinds = p.kinds_text.c_str();
    info.provides = p.provides_text.c_str();
    info.library_path = p.manifest.library_path.c_str();
    info.manifest_path = p.manifest.path.c_str();
    info.state = state_name(p.state);
    info.error = p.error.c_str();
    return info;
}

dsk_device_entry dsk_kernel::device_entry(size_t index) const {
    const DeviceRecord& d = devices.at(index);
    dsk_device_entry e{};
    e.struct_size = sizeof e;
    e.index = d.index;
    e.backend = d.backend.c_str();
    e.plugin = d.plugin.c_str();
    e.info = &d.info;
    return e;
}
