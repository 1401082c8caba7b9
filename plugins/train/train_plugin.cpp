// The train plugin: descriptor and registration only.
#include "stages.h"

static void register_stages(dsk::Registrar& reg) {
    reg.stage(dsk::train::train_stage());
    reg.stage(dsk::train::evaluate_stage());
}

static const char* const provides[] = {"stage:train", "stage:evaluate", nullptr};
DSK_PLUGIN_DEFINE("Train a classifier with checkpoints and resume; evaluate a checkpoint", provides, register_stages);
