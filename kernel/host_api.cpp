// The host function table: the only way plugins reach the kernel. It is constant and shared by
// every kernel instance; all state flows through the handles passed to each function.
#include <cstring>

#include "config_table.h"
#include "graph.h"
#include "session.h"
#include "kernel.h"
#include "pipeline_runner.h"
#include "registry.h"
#include "status.h"
#include "thread_pool.h"

namespace dsk::kernel {
namespace {

dsk_host_api make_host_api() {
    dsk_host_api api{};
    api.struct_size = sizeof(dsk_host_api);
    api.abi_version = DSK_ABI_VERSION;
    api.kernel_version = DSK_VERSION_STRING;
    api.status_create = [](dsk_status_code code, const char* message) {
        return make_status(code, message ? message : "");  // NULL for DSK_OK
    };
    api.status_code = [](dsk_status s) { return s ? s->code : DSK_OK; };
    api.status_message = [](dsk_status s) { return s ? s->message.c_str() : ""; };
    api.status_free = free_status;
    fill_registration_api(api);
    fill_config_api(api);
    fill_stage_api(api);
    fill_graph_api(api);
    fill_session_api(api);
    api.thread_count = thread_count;
    api.parallel_for = parallel_for;
    return api;
}

}  // namespace

const dsk_host_api& host_api() {
    static const dsk_host_api api = make_host_api();
    return api;
}

}  // namespace dsk::kernel
