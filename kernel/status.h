// Statuses at the C boundary (dsk_status objects) and the kernel's internal exception.
// Inside the kernel, failures are thrown as dsk::kernel::Error; every C entry point catches
// them and turns them into a status code plus the kernel's last error (nothing crosses the ABI).
#pragma once

#include <stdexcept>
#include <string>

#include "dsk/dsk_plugin.h"

struct dsk_status_object {
    dsk_status_code code;
    std::string message;
};

namespace dsk::kernel {

class Error : public std::runtime_error {
public:
    Error(dsk_status_code code, const std::string& message)
        : std::runtime_error(message), code_(code) {}
    dsk_status_code code() const { return code_; }

private:
    dsk_status_code code_;
};

dsk_status make_status(dsk_status_code code, const std::string& message);
// Throws Error carrying the status's code and message, and frees the status. No-op for OK.
void throw_if_error(dsk_status status, const std::string& context = {});
// Converts the exception being handled (call inside a catch block) into a status.
dsk_status status_from_current_exception();
const char* status_code_name(dsk_status_code code);

}  // namespace dsk::kernel
