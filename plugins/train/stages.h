// The stages this plugin provides (each in the file of its name).
#pragma once

#include <dsk/dsk_plugin.hpp>

namespace dsk::train {

Stage train_stage();
Stage evaluate_stage();

// splitmix64: the counter-based generator behind shuffling and augmentation seeds.
uint64_t mix(uint64_t a, uint64_t b);

}  // namespace dsk::train
