// The dsk subcommands. Each takes the arguments after its name and returns the process exit
// code: 0 success, 1 a failure at run time (a stage failed, doctor found a broken plugin),
// 2 a usage or configuration error (bad arguments, an invalid pipeline).
#pragma once

#include <string>
#include <vector>

#include <dsk/dsk.hpp>

namespace dsk::cli {

enum ExitCode { kOk = 0, kFailure = 1, kUsage = 2 };

using Args = std::vector<std::string>;

int plugins_list(Kernel& kernel, const Args& args);
int plugins_info(Kernel& kernel, const Args& args);
int devices(Kernel& kernel, const Args& args);
int doctor(Kernel& kernel, const Args& args);
int validate(Kernel& kernel, const Args& args);
int run(Kernel& kernel, const Args& args);

// Set while `dsk run` runs, so that Ctrl-C asks the kernel to stop at the next safe point.
extern Kernel* g_running_kernel;

}  // namespace dsk::cli
