// The optimizer state format of checkpoints (version 1), written and read through the ABI's
// dsk_write_fn / dsk_read_fn streams. All integers little-endian; floats raw IEEE-754 binary32
// in little-endian order (this plugin builds for little-endian hosts only):
//
//   magic          8 bytes  "DSKOPT1\0"  (the 1 is the format version)
//   name length    u32      then the optimizer's name ("sgd", "adam", "adamw"), no NUL
//   step           u64      updates done so far (the schedule's position)
//   buffer count   u64
//   per buffer:    u64 length (floats), then length * 4 bytes
//
// Buffers are the optimizer's per-parameter state in parameter order (SGD: one momentum buffer
// per parameter, none without momentum; Adam/AdamW: exp_avg then exp_avg_sq per parameter).
#pragma once

#include <cstdint>
#include <dsk/dsk_plugin.hpp>
#include <string>
#include <vector>

namespace dsk::optim {

inline constexpr char kStateMagic[8] = {'D', 'S', 'K', 'O', 'P', 'T', '1', '\0'};

struct OptimizerState {
    std::string name;
    uint64_t step = 0;
    std::vector<std::vector<float>> buffers;
};

// Writes the state; UNAVAILABLE naming the optimizer and the part when `write` fails.
void write_optimizer_state(const std::string& name, uint64_t step,
                           const std::vector<std::vector<float>>& buffers, dsk_write_fn write,
                           void* user);

// Reads a state and checks its magic and name (`expected_name`). DATA_LOSS naming what differs,
// or the part that could not be read when the stream ends early.
OptimizerState read_optimizer_state(const std::string& expected_name, dsk_read_fn read, void* user);

}  // namespace dsk::optim
