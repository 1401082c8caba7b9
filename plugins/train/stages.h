// The stages this plugin provides (each in the file of its name).
#pragma once

#include <dsk/dsk_plugin.hpp>

#include <functional>
#include <vector>

namespace dsk::train {

Stage train_stage();
Stage evaluate_stage();

// Runs every check, then throws one Error with all their messages (one per line), so that
// validation reports every problem at once.
void validate_all(const std::vector<std::function<void()>>& checks);

}  // namespace dsk::train
