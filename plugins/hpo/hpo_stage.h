// The `hpo` stage kind (hpo_stage.cpp): keys, validation, and the run that drives a Study.
#pragma once

#include <dsk/dsk_plugin.hpp>

namespace dsk::hpo {

Stage hpo_stage();

}  // namespace dsk::hpo
