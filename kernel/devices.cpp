// The devices of every loaded backend, as the backends describe them (usable or not).
#include "kernel.h"
#include "status.h"

using namespace dsk::kernel;

void dsk_kernel::refresh_devices() {
    devices.clear();
    for (const auto& [name, entry] : registry.backends) {
        const dsk_backend_iface* b = entry.iface;
        uint32_t count = 0;
        if (dsk_status s = b->device_count(b->self, &count)) {
            // Enumeration itself failed: show the backend as one unusable pseudo-device.
            DeviceRecord rec{name, entry.plugin->manifest.name, 0, {}, {}};
            rec.info.struct_size = sizeof(dsk_device_info);
            rec.info.name = "(enumeration failed)";
            rec.info.score = 0;
            rec.reason = s->message;
            free_status(s);
            devices.push_back(rec);
            continue;
        }
        for (uint32_t i = 0; i < count; ++i) {
            DeviceRecord rec{name, entry.plugin->manifest.name, i, {}, {}};
            rec.info.struct_size = sizeof(dsk_device_info);
            if (dsk_status s = b->device_info(b->self, i, &rec.info)) {
                rec.info.name = "(device_info failed)";
                rec.info.score = 0;
                rec.reason = std::string("device_info failed: ") + s->message;
                free_status(s);
            }
            if (!rec.info.name) rec.info.name = "";
            if (!rec.info.description) rec.info.description = "";
            if (rec.info.score <= 0 && !rec.info.unusable_reason) rec.info.unusable_reason = "(no reason given)";
            devices.push_back(rec);
        }
    }
    for (auto& rec : devices)  // point at the records' own strings now that the vector is final
        if (!rec.reason.empty()) rec.info.unusable_reason = rec.reason.c_str();
}
