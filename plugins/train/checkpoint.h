// Training checkpoints as safetensors files: every variable under its graph name (F32), the
// optimizer's state as one U8 tensor, and where training stands in the metadata. Written
// atomically, so an interrupted write never leaves a half checkpoint.
#pragma once

#include <string>

#include "classifier.h"
#include "safetensors.h"

namespace dsk::train {

struct TrainingState {
    int64_t epoch = 0;          // epochs completed
    int64_t batch = 0;          // next batch of the current epoch (mid-epoch after Ctrl-C)
    int64_t step = 0;           // optimizer steps taken
    uint64_t session_runs = 0;  // the session's run counter (random ops continue from it)
};

struct OptimizerRef {
    const dsk_optimizer_iface* iface;
    dsk_optimizer* optimizer;
};

void save_checkpoint(const std::string& path, const Classifier& model, const Session& session, OptimizerRef optimizer,
                     const TrainingState& state, const std::string& model_name);
// Restores what save_checkpoint wrote (optimizer.iface may be null: variables only). Throws
// DATA_LOSS naming the file and the variable that is missing or has another shape.
TrainingState load_checkpoint(const std::string& path, const Classifier& model, const Session& session,
                              OptimizerRef optimizer);

}  // namespace dsk::train
