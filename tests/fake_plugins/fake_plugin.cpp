// One source for the fake plugins of the loader and pipeline tests, written against the raw C
// ABI (no C++ wrapper) so that each can break a rule on purpose. The FAKE_* macros choose how:
//   FAKE_ABI=v                 descriptor abi_version (default DSK_ABI_VERSION)
//   FAKE_DESCRIPTOR_VERSION=s  descriptor version (default the manifest's, DSK_PLUGIN_VERSION)
//   FAKE_STAGE_KIND=s          stage kind provided and registered (default the plugin name)
//   FAKE_EXTRA_PROVIDES=s      one more "kind:name" in the descriptor's provides
//   FAKE_REGISTER_KIND=s       register this stage kind instead of FAKE_STAGE_KIND
//   FAKE_INIT_FAILS            init returns a status with a message
//   FAKE_USES_DEPENDENCY       calls into libfake_dependency.so (which the loader cannot find)
//   FAKE_NO_ENTRY              does not export dsk_plugin_query
//   FAKE_QUERY_RETURNS_NULL    dsk_plugin_query refuses the kernel
//   FAKE_BAD_DEFAULTS          its schema's defaults break its own types and ranges
//   FAKE_UNUSABLE_BACKEND      also a device backend "fake-npu" whose one device is unusable
// The stage itself ("echo") has a schema with every parameter type, for validation tests.
#include <dsk/dsk_plugin.h>

#include <chrono>
#include <string>
#include <thread>

#ifndef FAKE_ABI
#define FAKE_ABI DSK_ABI_VERSION
#endif
#ifndef FAKE_DESCRIPTOR_VERSION
#define FAKE_DESCRIPTOR_VERSION DSK_PLUGIN_VERSION
#endif
#ifndef FAKE_STAGE_KIND
#define FAKE_STAGE_KIND DSK_PLUGIN_NAME
#endif
#ifndef FAKE_REGISTER_KIND
#define FAKE_REGISTER_KIND FAKE_STAGE_KIND
#endif

#ifdef FAKE_USES_DEPENDENCY
extern "C" int fake_dependency_answer();
#endif

namespace {

const dsk_host_api* host = nullptr;
dsk_registrar* saved_registrar = nullptr;  // kept past init on purpose (see run)

const char* const modes[] = {"fast", "slow", nullptr};
#ifdef FAKE_BAD_DEFAULTS
const char* const count_default = "\"ten\"";
const char* const ratio_default = "2.0";
#else
const char* const count_default = "1";
const char* const ratio_default = "0.5";
#endif
const dsk_param_spec params[] = {
    {sizeof(dsk_param_spec), DSK_PARAM_STRING, DSK_PARAM_REQUIRED, "message", "what to echo", nullptr, 0, -1, nullptr},
    {sizeof(dsk_param_spec), DSK_PARAM_INT, DSK_PARAM_BOUNDED, "count", "how many times", count_default, 1, 10, nullptr},
    {sizeof(dsk_param_spec), DSK_PARAM_FLOAT, DSK_PARAM_BOUNDED, "ratio", "a fraction", ratio_default, 0, 1, nullptr},
    {sizeof(dsk_param_spec), DSK_PARAM_STRING, 0, "mode", "how", "\"fast\"", 0, -1, modes},
    {sizeof(dsk_param_spec), DSK_PARAM_BOOL, 0, "fail", "fail on purpose", "false", 0, -1, nullptr},
    {sizeof(dsk_param_spec), DSK_PARAM_BOOL, 0, "wait_for_stop", "run until asked to stop", "false", 0, -1, nullptr},
    {sizeof(dsk_param_spec), DSK_PARAM_TABLE, 0, "extra", "anything", nullptr, 0, -1, nullptr},
};

extern const dsk_stage_iface stage;

dsk_status run(void*, dsk_stage_context* ctx) {
    const dsk_config* cfg = host->stage_config(ctx);
    const char* message = "";
    int64_t count = 0;
    int32_t fail = 0, wait = 0;
    if (dsk_status s = host->config_get_string(cfg, "message", &message)) return s;
    if (dsk_status s = host->config_get_int(cfg, "count", &count)) return s;
    if (dsk_status s = host->config_get_bool(cfg, "fail", &fail)) return s;
    if (dsk_status s = host->config_get_bool(cfg, "wait_for_stop", &wait)) return s;
    if (fail) return host->status_create(DSK_DATA_LOSS, "echo was asked to fail");
    for (int64_t i = 0; i < count; ++i) {
        host->stage_log(ctx, DSK_LOG_INFO, message);
        if (dsk_status s = host->stage_metric(ctx, "count", static_cast<double>(i + 1), i)) return s;
    }
    dsk_config* results = host->stage_results(ctx);
    host->config_set_string(results, "message", message);
    // Registering outside init must be refused, not crash.
    dsk_status late = host->register_stage(saved_registrar, &stage);
    host->config_set_int(results, "late_registration_code", host->status_code(late));
    host->status_free(late);
    host->config_set_int(results, "count", count);
    if (wait) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        host->stage_log(ctx, DSK_LOG_INFO, "waiting for a stop request");
        while (!host->stage_should_stop(ctx)) {
            if (std::chrono::steady_clock::now() > deadline)
                return host->status_create(DSK_INTERNAL, "no stop request within 20 s");
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        host->config_set_bool(results, "stopped", 1);
        return host->status_create(DSK_CANCELLED, "stopped on request");
    }
    return DSK_STATUS_OK;
}

// Validation-time checks: also uses the parts of the context that only matter while running
// (metrics, results, the run directory), which must be harmless then.
dsk_status validate(void*, dsk_stage_context* ctx) {
    if (dsk_status s = host->stage_metric(ctx, "validated", 1, 0)) return s;
    if (dsk_status s = host->config_set_int(host->stage_results(ctx), "validated", 1)) return s;
    if (*host->stage_run_dir(ctx) != '\0') return host->status_create(DSK_INTERNAL, "a run directory while validating");
    const char* message = "";
    dsk_status missing = host->config_get_string(host->stage_config(ctx), "message", &message);
    if (missing) {  // reported by the kernel's own check of required keys
        host->status_free(missing);
        return nullptr;
    }
    if (std::string(message) == "invalid!")
        return host->status_create(DSK_INVALID_ARGUMENT, "message may not be 'invalid!' (the echo stage's own check)");
    return nullptr;
}

extern const dsk_stage_iface stage = {sizeof(dsk_stage_iface), FAKE_REGISTER_KIND, "echoes its message", nullptr,
                               params, sizeof(params) / sizeof(params[0]), run, validate};

#ifdef FAKE_UNUSABLE_BACKEND
// A backend as a vendor plugin without its driver would show: one device, score 0, a reason.
dsk_status no_driver() { return host->status_create(DSK_UNAVAILABLE, "fake-npu: no driver loaded"); }
const dsk_backend_iface backend = {
    sizeof(dsk_backend_iface), "fake-npu", nullptr,
    [](void*, uint32_t* n) -> dsk_status { *n = 1; return nullptr; },
    [](void*, uint32_t, dsk_device_info* info) -> dsk_status {
        info->type = DSK_DEVICE_NPU;
        info->name = "Fake NPU";
        info->description = "a test backend";
        info->score = 0;
        info->unusable_reason = "no fake-npu driver is installed (install the vendor driver)";
        return nullptr;
    },
    [](void*, uint32_t, dsk_device**) { return no_driver(); },
    [](dsk_device*) {},
    [](dsk_device*, uint64_t, uint64_t, uint32_t, dsk_buffer**) { return no_driver(); },
    [](dsk_buffer*) {},
    nullptr,
    [](dsk_device*, dsk_queue**) { return no_driver(); },
    [](dsk_queue*) {},
    [](dsk_queue*, const void*, dsk_buffer*, uint64_t, uint64_t) { return no_driver(); },
    [](dsk_queue*, dsk_buffer*, uint64_t, void*, uint64_t) { return no_driver(); },
    nullptr,
    [](dsk_queue*, dsk_fence**) { return no_driver(); },
    [](dsk_fence*, uint64_t) { return no_driver(); },
    [](dsk_fence*) {},
    [](dsk_device*, const dsk_node_view*, const dsk_tensor_desc*) -> int32_t { return 0; },
    nullptr, nullptr, nullptr, nullptr};
#endif

dsk_status init(const dsk_host_api* h, dsk_registrar* reg, void** out_state) {
    host = h;
    saved_registrar = reg;
    *out_state = nullptr;
#ifdef FAKE_INIT_FAILS
    return h->status_create(DSK_UNAVAILABLE, "fake license check failed: set FAKE_LICENSE_FILE to a valid license");
#endif
#ifdef FAKE_USES_DEPENDENCY
    if (fake_dependency_answer() != 42) return h->status_create(DSK_INTERNAL, "wrong answer");
#endif
#ifdef FAKE_UNUSABLE_BACKEND
    if (dsk_status s = h->register_backend(reg, &backend)) return s;
#endif
    return h->register_stage(reg, &stage);
}

const char* const provides[] = {"stage:" FAKE_STAGE_KIND,
#ifdef FAKE_EXTRA_PROVIDES
                                FAKE_EXTRA_PROVIDES,
#endif
#ifdef FAKE_UNUSABLE_BACKEND
                                "device:fake-npu",
#endif
                                nullptr};


const dsk_plugin_descriptor descriptor = {sizeof(dsk_plugin_descriptor), FAKE_ABI, DSK_PLUGIN_NAME,
                                          FAKE_DESCRIPTOR_VERSION, "a fake plugin for tests", provides, init,
                                          nullptr};

}  // namespace

#ifndef FAKE_NO_ENTRY
extern "C" DSK_PLUGIN_EXPORT const dsk_plugin_descriptor* dsk_plugin_query(uint32_t host_abi_version) {
    (void)host_abi_version;
#ifdef FAKE_QUERY_RETURNS_NULL
    return nullptr;
#else
    return &descriptor;
#endif
}
#else
extern "C" DSK_PLUGIN_EXPORT int not_a_dsk_plugin() { return descriptor.struct_size > 0; }
#endif
