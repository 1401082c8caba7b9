// The TOML manifest that ships beside each plugin library (read without loading the library):
//
//   [plugin]
//   name = "cpu"                 version = "0.1.0"          description = "..."
//   library = "dsk_cpu.so"       abi = ">=1.0, <2"          (kernel ABI versions it works with)
//   kinds = ["device"]           provides = ["device:cpu"]  system_libraries = ["libfoo.so.1"]
//   [requires]
//   other = ">=1.2, <2"
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "semver.h"

namespace dsk::kernel {

struct Requirement {
    std::string plugin;
    VersionRange range;
    std::string where;  // file:line:column of the entry, for messages
};

struct Manifest {
    std::string path;          // the manifest file
    std::string library_path;  // absolute: the manifest's directory / library
    std::string name, description;
    Version version;
    VersionRange abi;
    std::vector<std::string> kinds, provides, system_libraries;
    std::vector<Requirement> requirements;
};

// Throws Error(INVALID_ARGUMENT) naming file:line:column and the key for any problem.
Manifest read_manifest(const std::string& path);

}  // namespace dsk::kernel
