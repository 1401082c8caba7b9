// dsk_error.hpp - the one exception type of the dsk C++ wrappers.
//
// Statuses travel across the C boundary; inside C++ they become dsk::Error, which keeps the
// status code so that a host can tell NOT_FOUND from INVALID_ARGUMENT and a plugin can turn the
// exception back into the same status (dsk::guard in dsk_plugin.hpp). Shared by dsk.hpp (hosts)
// and dsk_plugin.hpp (plugins).
#ifndef DSK_ERROR_HPP_
#define DSK_ERROR_HPP_

#include <stdexcept>
#include <string>

#include "dsk/dsk_plugin.h"

namespace dsk {

// "INVALID_ARGUMENT" for DSK_INVALID_ARGUMENT, "UNKNOWN" for a code this header does not know.
inline const char* status_code_name(dsk_status_code code) noexcept {
    switch (code) {
        case DSK_OK: return "OK";
        case DSK_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
        case DSK_NOT_FOUND: return "NOT_FOUND";
        case DSK_ALREADY_EXISTS: return "ALREADY_EXISTS";
        case DSK_UNIMPLEMENTED: return "UNIMPLEMENTED";
        case DSK_UNAVAILABLE: return "UNAVAILABLE";
        case DSK_INCOMPATIBLE: return "INCOMPATIBLE";
        case DSK_RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
        case DSK_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
        case DSK_CANCELLED: return "CANCELLED";
        case DSK_DATA_LOSS: return "DATA_LOSS";
        case DSK_INTERNAL: return "INTERNAL";
        default: return "UNKNOWN";
    }
}

// A failed dsk call, or a failure a plugin wants to report. what() is the user-facing message:
// it should name the file, key or plugin concerned and what would fix it.
class Error : public std::runtime_error {
public:
    // An error never carries DSK_OK: that would turn a failure into a success at the boundary.
    Error(dsk_status_code code, const std::string& message)
        : std::runtime_error(message), code_(code == DSK_OK ? DSK_INTERNAL : code) {}

    dsk_status_code code() const noexcept { return code_; }

private:
    dsk_status_code code_;
};

}  // namespace dsk

#endif  // DSK_ERROR_HPP_
