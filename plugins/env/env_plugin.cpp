// The env plugin: descriptor and registration only (the stage is in env_stage.cpp).
#include "env_stage.h"

static void register_env(dsk::Registrar& reg) { reg.stage(dsk::env::env_stage()); }

static const char* const provides[] = {"stage:env", nullptr};
DSK_PLUGIN_DEFINE("Reports the kernel, its plugins and devices into the run summary", provides, register_env);
