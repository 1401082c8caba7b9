// A plugin written with the C++ wrapper whose init throws: the wrapper must turn the exception
// into a status carrying its message, and nothing may cross the C boundary.
#include <dsk/dsk_plugin.hpp>

#include <stdexcept>

static void register_nothing(dsk::Registrar&) {
    throw std::runtime_error("cannot open /dev/fake-npu0: device busy");
}

static const char* const provides[] = {"stage:init-throws", nullptr};
DSK_PLUGIN_DEFINE("throws from init", provides, register_nothing);
