// Which samples of a training set the train stage trains on, and in which order: each epoch's
// shuffle, and the validation split (`validation_fraction`), a fixed part of the set held out,
// never trained on and never augmented, on which the model is measured after every epoch.
#pragma once

#include <cstdint>
#include <vector>

namespace dsk::train {

// 0 .. n-1 shuffled (Fisher-Yates) by draws from `state` only: the same order for the same state.
std::vector<uint64_t> permutation(uint64_t n, uint64_t state);

struct ValidationSplit {
    std::vector<uint64_t> train;       // indices of the samples trained on, ascending
    std::vector<uint64_t> validation;  // indices of the held-out samples, ascending
};

// The samples of a set of `samples` held out for validation: round(fraction * samples) of them,
// the first of a permutation drawn from a constant seed (never the stage's `seed`), so that every
// run on the same data (the same `limit`) holds out the same samples whatever its seed, and
// trials of a study compare on the same images. fraction = 0: every sample is trained on, in
// index order. Throws INVALID_ARGUMENT naming `key` when the fraction is outside [0, 1) or leaves
// no sample on either side.
ValidationSplit split_for_validation(uint64_t samples, double fraction, const char* key = "validation_fraction");

}  // namespace dsk::train
