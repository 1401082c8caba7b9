// dsk plugins list | plugins info NAME | devices | doctor
#include <fmt/core.h>

#include <algorithm>

#include "commands.h"

namespace dsk::cli {
namespace {

std::string abi_text(uint32_t v) {
    return v ? fmt::format("{}.{}", DSK_ABI_MAJOR(v), DSK_ABI_MINOR(v)) : "-";
}

const char* type_text(dsk_device_type type) {
    switch (type) {
        case DSK_DEVICE_CPU: return "cpu";
        case DSK_DEVICE_GPU: return "gpu";
        case DSK_DEVICE_NPU: return "npu";
        case DSK_DEVICE_ACCELERATOR: return "accelerator";
    }
    return "?";
}

std::string bytes_text(uint64_t bytes) {
    if (bytes == 0) return "-";
    return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
}

bool no_extra_args(const Args& args, const char* command) {
    if (args.empty()) return true;
    fmt::print(stderr, "dsk {}: unexpected argument '{}'\n", command, args[0]);
    return false;
}

}  // namespace

int plugins_list(Kernel& kernel, const Args& args) {
    if (!no_extra_args(args, "plugins list")) return kUsage;
    kernel.load_all();
    auto plugins = kernel.plugins();
    if (plugins.empty()) {
        fmt::print("no plugins found (searched: ");
        auto path = kernel.search_path();
        for (size_t i = 0; i < path.size(); ++i) fmt::print("{}{}", i ? ", " : "", path[i]);
        fmt::print(")\n");
        return kOk;
    }
    size_t wn = 4, wv = 7, wk = 5, wp = 8;
    for (const auto& p : plugins) {
        wn = std::max(wn, p.name.size());
        wv = std::max(wv, p.version.size());
        wk = std::max(wk, p.kinds.size());
        wp = std::max(wp, p.provides.size());
    }
    fmt::print("{:<{}}  {:<{}}  {:<4}  {:<{}}  {:<{}}  {:<9}  {}\n", "NAME", wn, "VERSION", wv, "ABI", "KINDS", wk,
               "PROVIDES", wp, "STATE", "PATH");
    for (const auto& p : plugins) {
        fmt::print("{:<{}}  {:<{}}  {:<4}  {:<{}}  {:<{}}  {:<9}  {}\n", p.name, wn, p.version, wv,
                   abi_text(p.abi_version), p.kinds, wk, p.provides, wp, p.state,
                   p.library_path.empty() ? p.manifest_path : p.library_path);
        if (!p.error.empty()) fmt::print("    why: {}\n", p.error);
    }
    return kOk;
}

int plugins_info(Kernel& kernel, const Args& args) {
    if (args.size() != 1) {
        fmt::print(stderr, "usage: dsk plugins info NAME\n");
        return kUsage;
    }
    kernel.load_all();
    auto plugins = kernel.plugins();
    auto it = std::find_if(plugins.begin(), plugins.end(), [&](const PluginInfo& p) { return p.name == args[0]; });
    if (it == plugins.end()) {
        fmt::print(stderr, "dsk: no plugin named '{}' on the search path; known:", args[0]);
        for (const auto& p : plugins) fmt::print(stderr, " {}", p.name);
        fmt::print(stderr, "\n");
        return kFailure;
    }
    fmt::print("name:      {}\nversion:   {}\nabi:       {}\nkinds:     {}\nprovides:  {}\nstate:     {}\n"
               "library:   {}\nmanifest:  {}\n",
               it->name, it->version, abi_text(it->abi_version), it->kinds, it->provides, it->state,
               it->library_path, it->manifest_path);
    if (!it->error.empty()) fmt::print("why:       {}\n", it->error);
    for (const auto& d : kernel.devices())
        if (d.plugin == it->name)
            fmt::print("device:    {}#{} {} (score {})\n", d.backend, d.index, d.name, d.score);
    return it->state == "failed" ? kFailure : kOk;
}

int devices(Kernel& kernel, const Args& args) {
    if (!no_extra_args(args, "devices")) return kUsage;
    kernel.load_all();
    auto devices = kernel.devices();
    if (devices.empty()) {
        fmt::print(stderr, "dsk: no devices: no device backend plugin loaded (run 'dsk doctor' to see why)\n");
        return kFailure;
    }
    size_t wd = 6, wn = 4;
    for (const auto& d : devices) {
        wd = std::max(wd, d.backend.size() + 1 + std::to_string(d.index).size());
        wn = std::max(wn, d.name.size());
    }
    fmt::print("{:<{}}  {:<{}}  {:<11}  {:>10}  {:>8}  {:>5}  {}\n", "DEVICE", wd, "NAME", wn, "TYPE", "MEMORY",
               "SUBGROUP", "SCORE", "STATUS");
    for (const auto& d : devices)
        fmt::print("{:<{}}  {:<{}}  {:<11}  {:>10}  {:>8}  {:>5}  {}\n", d.backend + "#" + std::to_string(d.index), wd,
                   d.name, wn, type_text(d.type), bytes_text(d.memory_bytes),
                   d.subgroup_size ? std::to_string(d.subgroup_size) : "-", d.score,
                   d.usable() ? (d.description.empty() ? std::string("usable") : "usable (" + d.description + ")")
                              : "unusable: " + d.unusable_reason);
    return kOk;
}

int doctor(Kernel& kernel, const Args& args) {
    if (!no_extra_args(args, "doctor")) return kUsage;
    kernel.load_all();
    fmt::print("dsk {} (plugin ABI {})\n\nplugin search path, in order:\n", Kernel::version(),
               abi_text(Kernel::abi_version()));
    for (const auto& dir : kernel.search_path()) fmt::print("  {}\n", dir);
    auto plugins = kernel.plugins();
    size_t failed = 0;
    fmt::print("\nplugin candidates ({}):\n", plugins.size());
    for (const auto& p : plugins) {
        if (p.state == "failed") ++failed;
        const char* mark = p.state == "loaded" ? "ok    " : p.state == "failed" ? "FAILED" : "note  ";
        fmt::print("  {} {} {} ({})\n", mark, p.name, p.version.empty() ? "" : p.version, p.manifest_path);
        if (!p.error.empty()) fmt::print("         {}\n", p.error);
    }
    auto diagnostics = kernel.diagnostics();
    if (!diagnostics.empty()) {
        fmt::print("\nother findings:\n");
        for (const auto& d : diagnostics) fmt::print("  {}\n", d);
    }
    auto devices = kernel.devices();
    fmt::print("\ndevices: {}", devices.size());
    for (const auto& d : devices)
        fmt::print("{} {}#{} {}", &d == &devices.front() ? " (" : ",", d.backend, d.index,
                   d.usable() ? "usable" : "unusable");
    fmt::print("{}\n\n", devices.empty() ? "" : ")");
    fmt::print("{} plugin(s) loaded, {} failed\n", plugins.size() - failed -
               static_cast<size_t>(std::count_if(plugins.begin(), plugins.end(),
                                                 [](const PluginInfo& p) { return p.state != "loaded" && p.state != "failed"; })),
               failed);
    return failed ? kFailure : kOk;
}

}  // namespace dsk::cli
