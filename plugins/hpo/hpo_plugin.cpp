// The hpo plugin: descriptor and registration only.
#include "hpo_stage.h"

static void register_hpo(dsk::Registrar& reg) {
    reg.stage(dsk::hpo::hpo_stage());
    reg.stage(dsk::hpo::nas_stage());
}

static const char* const provides[] = {"stage:hpo", "stage:nas", nullptr};
DSK_PLUGIN_DEFINE("Hyperparameter and architecture search stages (hpo, nas): trials as separate processes, driven by search strategies",
                  provides, register_hpo);
