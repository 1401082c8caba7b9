// Runs a validated pipeline: one stage after another, each through its plugin's run function,
// with the run directory written as it goes and summary.json written at the end, whatever the
// outcome (ok, failed, cancelled).
#pragma once

#include <string>
#include <vector>

#include "dsk/dsk.h"

namespace dsk::kernel {

// Throws Error on validation failure (nothing is created) or stage failure (the run directory
// holds the log and a summary with status "failed").
void run_pipeline(dsk_kernel& kernel, const dsk_run_options& options);
void validate_pipeline(dsk_kernel& kernel, const dsk_run_options& options);

// The host table's stage_* and introspection members.
void fill_stage_api(dsk_host_api& api);

}  // namespace dsk::kernel
