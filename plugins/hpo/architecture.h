// The architectures of the nas stage: a chain of blocks (op, width), an activation, optional
// batch norm and a classifier head, read from the named parameters of an assignment and written
// as the `layers` of the models plugin's `sequential` model.
//
//   depth           number of blocks (int, or categorical of ints)
//   op<k>, width<k> block k = 1..depth: "conv3x3" | "conv5x5" | "dwsep3x3" | "dwsep5x5" | "skip",
//                   and its output channels (not needed when op<k> is "skip")
//   residual<k>     true | false (default false): a skip connection around block k's op and batch
//                   norm (the input added back; a 1x1 projection when the channels change)
//   activation      "relu" (default), "gelu", "silu", ...    (optional)
//   batch_norm      true | false (default false)              (optional)
//   hidden          units of a hidden linear layer in the head, 0 = none (default 0) (optional)
//   dropout         dropout ratio before the classifier, 0 = none (default 0)         (optional)
// Each block is its op, [batch norm], [+ its input], the activation, and a 2x2 max pool (until
// the feature map is 1x1); a skip block (the identity op) is the pool alone. The head flattens,
// [hidden linear + activation], [dropout], and a linear layer to the classes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <dsk/dsk_search.hpp>

namespace dsk::hpo {

struct Architecture {
    std::string layers;      // the TOML array for model.layers
    int64_t parameters = 0;  // trainable and batch-norm parameters, as the model would have
    std::string summary;     // "conv3x3:16 dwsep5x5:32+res | relu bn | hidden 64"
};

// The architecture of `a` for inputs of shape `input` (channels, height, width) and `classes`
// outputs. Throws dsk::Error(INVALID_ARGUMENT) naming a missing or wrong parameter.
Architecture build_architecture(const search::Assignment& a, const std::vector<int64_t>& input, int64_t classes);

// Checks at validation time that the space declares what build_architecture reads.
void check_architecture_space(const search::Space& space);

}  // namespace dsk::hpo
