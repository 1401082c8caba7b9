#include "sample_order.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include <dsk/dsk_error.hpp>
#include <dsk/dsk_random.hpp>

namespace dsk::train {

namespace {

// The split's own seed: a constant, so the held-out samples never depend on the stage's seed.
constexpr uint64_t kValidationSeed = 0x76616c6964617465ull;  // "validate"

std::string fraction_text(double fraction) {
    std::string text = std::to_string(fraction);
    while (text.size() > 1 && text.back() == '0' && text[text.size() - 2] != '.') text.pop_back();
    return text;
}

}  // namespace

std::vector<uint64_t> permutation(uint64_t n, uint64_t state) {
    std::vector<uint64_t> p(n);
    std::iota(p.begin(), p.end(), 0);
    for (uint64_t i = n; i > 1; --i) {
        state = mix(state, i);
        std::swap(p[i - 1], p[state % i]);
    }
    return p;
}

ValidationSplit split_for_validation(uint64_t samples, double fraction, const char* key) {
    const std::string what = std::string(key) + " = " + fraction_text(fraction);
    if (!(fraction >= 0 && fraction < 1))
        throw Error(DSK_INVALID_ARGUMENT, what + " must be in [0, 1): the fraction of the training set held out for validation "
                                                 "(e.g. 0.1; 0 turns it off)");
    ValidationSplit split;
    const auto held_out = static_cast<uint64_t>(std::llround(fraction * static_cast<double>(samples)));
    if (fraction > 0 && held_out == 0)
        throw Error(DSK_INVALID_ARGUMENT, what + " holds out no sample of the " + std::to_string(samples) +
                                              " training samples; raise it to at least " +
                                              fraction_text(1.0 / static_cast<double>(std::max<uint64_t>(samples, 1))) +
                                              ", or set it to 0 to turn validation off");
    if (held_out >= samples && samples > 0)
        throw Error(DSK_INVALID_ARGUMENT, what + " leaves no training sample of the " + std::to_string(samples) +
                                              "; lower it (e.g. 0.1) or train on more data (train_data.limit)");
    // The first `held_out` samples of the constant seed's permutation are held out.
    std::vector<uint64_t> p(samples);
    if (held_out > 0) {
        p = permutation(samples, kValidationSeed);
    } else {
        std::iota(p.begin(), p.end(), 0);
    }
    split.validation.assign(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(held_out));
    split.train.assign(p.begin() + static_cast<std::ptrdiff_t>(held_out), p.end());
    std::sort(split.validation.begin(), split.validation.end());
    std::sort(split.train.begin(), split.train.end());
    return split;
}

}  // namespace dsk::train
