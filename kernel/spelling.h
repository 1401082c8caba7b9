// "Did you mean": the candidate closest to a misspelt key, plugin or stage kind.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dsk::kernel {

size_t edit_distance(std::string_view a, std::string_view b);
// The closest candidate within a distance proportional to the word's length, or "".
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);
// "; did you mean 'x'?" or "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace dsk::kernel
