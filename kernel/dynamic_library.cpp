#include "dynamic_library.h"

#include <dlfcn.h>

#include <filesystem>

#include "status.h"

namespace dsk::kernel {

DynamicLibrary::DynamicLibrary(const std::string& path) {
    dlerror();
    // RTLD_NOW: an unresolved symbol fails here, with its name, not later at a call.
    // RTLD_LOCAL: one plugin's symbols never satisfy another's.
    // RTLD_NODELETE: dlclose never unmaps the code. Device plugins start threads (OpenMP's,
    // oneDNN's, Mesa's lavapipe workers) and keep caches that those threads or the runtimes
    // they load still reach; unmapping their code under a live thread crashes the process.
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!handle_) {
        const char* err = dlerror();
        throw Error(DSK_UNAVAILABLE, err ? err : ("dlopen failed for " + path));
    }
}

DynamicLibrary::~DynamicLibrary() {
    if (handle_) dlclose(handle_);
}

void* DynamicLibrary::symbol(const char* name) const { return dlsym(handle_, name); }

std::string directory_of_address(const void* address) {
    Dl_info info{};
    if (!dladdr(address, &info) || !info.dli_fname) return {};
    std::error_code ec;
    auto path = std::filesystem::canonical(info.dli_fname, ec);
    return ec ? std::filesystem::path(info.dli_fname).parent_path().string()
              : path.parent_path().string();
}

}  // namespace dsk::kernel
