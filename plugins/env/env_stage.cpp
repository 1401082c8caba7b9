#include "env_stage.h"

#include <unistd.h>

#include <string>

namespace dsk::env {
namespace {

void run(StageContext& ctx) {
    const Config config = ctx.config();
    const bool with_plugins = config.get_or("include_plugins", true);
    const bool with_devices = config.get_or("include_devices", true);
    const int64_t min_usable = config.get_or<int64_t>("min_usable_devices", 0);

    Table results = ctx.results();
    const dsk_host_api& h = host();
    results.set("kernel_version", h.kernel_version);
    results.set("abi_version", std::to_string(DSK_ABI_MAJOR(h.abi_version)) + "." +
                                   std::to_string(DSK_ABI_MINOR(h.abi_version)));
    results.set("threads", static_cast<int64_t>(thread_count()));
    char hostname[256] = {};
    if (gethostname(hostname, sizeof hostname - 1) == 0) results.set("host", hostname);

    int64_t loaded = 0;
    for (const dsk_plugin_info& p : ctx.plugins()) {
        if (std::string(p.state) == "loaded") ++loaded;
        if (!with_plugins) continue;
        const std::string key = std::string("plugins.") + p.name;
        results.set(key + ".version", p.version);
        results.set(key + ".state", p.state);
        results.set(key + ".provides", p.provides);
        if (*p.error) results.set(key + ".error", p.error);
    }
    results.set("plugins_loaded", loaded);

    int64_t usable = 0;
    for (const dsk_device_entry& d : ctx.devices()) {
        const bool ok = d.info->score > 0;
        usable += ok ? 1 : 0;
        if (!with_devices) continue;
        const std::string key = std::string("devices.") + d.backend + "#" + std::to_string(d.index);
        results.set(key + ".name", d.info->name);
        results.set(key + ".score", static_cast<int64_t>(d.info->score));
        results.set(key + ".memory_bytes", static_cast<int64_t>(d.info->memory_bytes));
        if (!ok) results.set(key + ".unusable_reason", d.info->unusable_reason ? d.info->unusable_reason : "");
        ctx.info(std::string("device ") + d.backend + "#" + std::to_string(d.index) + ": " + d.info->name +
                 (ok ? "" : std::string(" (unusable: ") + d.info->unusable_reason + ")"));
    }
    results.set("devices_usable", usable);
    ctx.metric("plugins_loaded", static_cast<double>(loaded), 0);
    ctx.metric("devices_usable", static_cast<double>(usable), 0);
    ctx.info(std::to_string(loaded) + " plugin(s) loaded, " + std::to_string(usable) + " usable device(s)");
    if (usable < min_usable)
        throw Error(DSK_UNAVAILABLE, "found " + std::to_string(usable) + " usable device(s), fewer than min_usable_devices = " +
                                         std::to_string(min_usable) +
                                         "; load a device backend ([devices] prefer = [\"cpu\"]) or lower the minimum");
}

}  // namespace

Stage env_stage() {
    return {"env",
            "Reports the kernel, its plugins and devices into the run summary",
            {param_bool("include_plugins", "list every plugin the kernel knows", "true"),
             param_bool("include_devices", "list every device of the loaded backends", "true"),
             param_int("min_usable_devices", "fail unless at least this many devices are usable", "0", 0, 1024)},
            run,
            {}};
}

}  // namespace dsk::env
