#include "status.h"

#include <new>

namespace dsk::kernel {

namespace {
dsk_status_object out_of_memory{DSK_RESOURCE_EXHAUSTED, "out of memory"};
}

dsk_status make_status(dsk_status_code code, const std::string& message) {
    if (code == DSK_OK) return DSK_STATUS_OK;
    try {
        return new dsk_status_object{code, message};
    } catch (const std::bad_alloc&) {
        return &out_of_memory;
    }
}

void free_status(dsk_status status) {
    if (status != &out_of_memory) delete status;
}

void throw_if_error(dsk_status status, const std::string& context) {
    if (!status) return;
    dsk_status_code code = status->code;
    std::string message = context.empty() ? status->message : context + ": " + status->message;
    free_status(status);
    throw Error(code, message);
}

dsk_status status_from_current_exception() {
    try {
        throw;
    } catch (const Error& e) {
        return make_status(e.code(), e.what());
    } catch (const std::bad_alloc&) {
        return make_status(DSK_RESOURCE_EXHAUSTED, "out of memory");
    } catch (const std::exception& e) {
        return make_status(DSK_INTERNAL, e.what());
    } catch (...) {
        return make_status(DSK_INTERNAL, "unknown exception");
    }
}


}  // namespace dsk::kernel
