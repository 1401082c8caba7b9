// The `env` stage: what this run had to work with (kernel version, threads, plugins, devices),
// written into the stage's results in summary.json and as metrics.
#pragma once

#include <dsk/dsk_plugin.hpp>

namespace dsk::env {

Stage env_stage();

}  // namespace dsk::env
