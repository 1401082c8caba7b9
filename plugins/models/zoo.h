// The models of the zoo, one function each (defined in the file named after the model).
#pragma once

#include <dsk/dsk_plugin.hpp>

#include <vector>

namespace dsk::models {

Model mlp_model();
Model cnn_model();
Model resnet_model();
Model mobilenet_v3_small_model();
Model sequential_model();

// An array of integers from the config ("hidden = [256, 128]"), each at least `min`.
std::vector<int64_t> int_list(const Config& config, const std::string& key, int64_t min);

}  // namespace dsk::models
