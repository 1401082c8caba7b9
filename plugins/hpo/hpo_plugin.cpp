// The hpo plugin: descriptor and registration only.
#include "hpo_stage.h"

static void register_hpo(dsk::Registrar& reg) { reg.stage(dsk::hpo::hpo_stage()); }

static const char* const provides[] = {"stage:hpo", nullptr};
DSK_PLUGIN_DEFINE("Hyperparameter optimisation stage: runs a pipeline as trials in separate processes, driven by search strategies",
                  provides, register_hpo);
