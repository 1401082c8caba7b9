// A dlopen()ed shared library. Errors carry the dlerror() text as the loader printed it
// ("libfoo.so.1: cannot open shared object file: No such file or directory").
#pragma once

#include <string>

namespace dsk::kernel {

class DynamicLibrary {
public:
    // Throws Error(UNAVAILABLE) with the dlerror() text.
    explicit DynamicLibrary(const std::string& path);
    ~DynamicLibrary();
    DynamicLibrary(const DynamicLibrary&) = delete;
    DynamicLibrary& operator=(const DynamicLibrary&) = delete;

    // nullptr when the symbol is absent.
    void* symbol(const char* name) const;

private:
    void* handle_ = nullptr;
};

// The directory holding the shared object that contains `address` (e.g. libdsk itself).
std::string directory_of_address(const void* address);

}  // namespace dsk::kernel
