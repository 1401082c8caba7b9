// Training checkpoints as safetensors files: every variable under its graph name (F32), the
// optimizer's state as one U8 tensor, and where training stands in the metadata. Written
// atomically, so an interrupted write never leaves a half checkpoint.
#pragma once

#include <string>
#include <vector>

#include "classifier.h"
#include "safetensors.h"

namespace dsk::train {

// Where training stands, so that a resumed run continues, and reports, exactly as an
// uninterrupted one. Everything but epoch_seconds is deterministic; epoch_seconds and the other
// epoch_* fields are non-zero only in a checkpoint taken mid-epoch (Ctrl-C), so the checkpoints
// written at the end of an epoch stay bitwise reproducible.
struct TrainingState {
    int64_t epoch = 0;          // epochs completed
    int64_t batch = 0;          // next batch of the current epoch (mid-epoch after Ctrl-C)
    int64_t step = 0;           // optimizer steps taken
    uint64_t session_runs = 0;  // the session's run counter (random ops continue from it)
    // The current epoch so far (mid-epoch after Ctrl-C; 0 at an epoch's end).
    double epoch_loss_sum = 0;     // sum of its batch losses
    int64_t epoch_loss_count = 0;  // batches summed
    double epoch_seconds = 0;      // time spent training in it
    double train_loss = 0;         // mean batch loss of the last completed epoch
    // Test accuracy and loss after each completed epoch (empty without test data).
    std::vector<double> test_accuracy_by_epoch, test_loss_by_epoch;
    // Validation accuracy and loss after each completed epoch (empty without validation_fraction).
    std::vector<double> validation_accuracy_by_epoch, validation_loss_by_epoch;
};

struct OptimizerRef {
    const dsk_optimizer_iface* iface;
    dsk_optimizer* optimizer;
};

// Reads the variables and the optimizer state once and writes the same checkpoint to each of
// `paths` in turn, each atomically.
void save_checkpoint(const std::vector<std::string>& paths, const Classifier& model, const Session& session,
                     OptimizerRef optimizer, const TrainingState& state, const std::string& model_name);
// Restores what save_checkpoint wrote (optimizer.iface may be null: variables only, and the
// returned state is empty). Throws DATA_LOSS naming the file and the variable that is missing or
// has another shape, or the metadata field that is missing or malformed.
TrainingState load_checkpoint(const std::string& path, const Classifier& model, const Session& session,
                              OptimizerRef optimizer);

}  // namespace dsk::train
