// Statuses at the C boundary (dsk_status objects) and the kernel's exception.
// Inside the kernel, failures are thrown as dsk::Error; every C entry point catches
// them and turns them into a status code plus the kernel's last error (nothing crosses the ABI).
#pragma once

#include <stdexcept>
#include <string>

#include "dsk/dsk_error.hpp"
#include "dsk/dsk_plugin.h"

struct dsk_status_object {
    dsk_status_code code;
    std::string message;
};

namespace dsk::kernel {

// The SDK's exception type: a status code and a user-facing message.
using Error = dsk::Error;

// NULL for DSK_OK. When memory runs out, a static RESOURCE_EXHAUSTED status (never NULL, which
// would read as success); free_status knows not to free it.
dsk_status make_status(dsk_status_code code, const std::string& message);
void free_status(dsk_status status);
// Throws Error carrying the status's code and message, and frees the status. No-op for OK.
void throw_if_error(dsk_status status, const std::string& context = {});
// Converts the exception being handled (call inside a catch block) into a status.
dsk_status status_from_current_exception();

// Runs `body` for a host-table function: OK, or the status of whatever it threw.
template <class F>
dsk_status guarded(F&& body) noexcept {
    try {
        body();
        return DSK_STATUS_OK;
    } catch (...) {
        return status_from_current_exception();
    }
}
using dsk::status_code_name;  // one table of names, shared with the SDK wrappers

}  // namespace dsk::kernel
