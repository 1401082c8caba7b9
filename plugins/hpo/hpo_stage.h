// The stage kinds of this plugin: `hpo` (hpo_stage.cpp) and `nas` (nas_stage.cpp).
#pragma once

#include <dsk/dsk_plugin.hpp>

namespace dsk::hpo {

Stage hpo_stage();
Stage nas_stage();  // nas_stage.cpp

}  // namespace dsk::hpo
