#include "status.h"

#include <new>

namespace dsk::kernel {

dsk_status make_status(dsk_status_code code, const std::string& message) {
    if (code == DSK_OK) return DSK_STATUS_OK;
    return new (std::nothrow) dsk_status_object{code, message};
}

void throw_if_error(dsk_status status, const std::string& context) {
    if (!status) return;
    dsk_status_code code = status->code;
    std::string message = context.empty() ? status->message : context + ": " + status->message;
    delete status;
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

const char* status_code_name(dsk_status_code code) {
    static const char* const names[] = {
        "OK",           "INVALID_ARGUMENT",    "NOT_FOUND", "ALREADY_EXISTS",
        "UNIMPLEMENTED", "UNAVAILABLE",        "INCOMPATIBLE", "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION", "CANCELLED",    "DATA_LOSS", "INTERNAL"};
    static_assert(sizeof(names) / sizeof(names[0]) == DSK_STATUS_CODE_COUNT_);
    return code >= 0 && code < DSK_STATUS_CODE_COUNT_ ? names[code] : "UNKNOWN";
}

}  // namespace dsk::kernel
