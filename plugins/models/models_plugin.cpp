// The models plugin: descriptor and registration only (each model is in the file of its name).
#include "zoo.h"

static void register_models(dsk::Registrar& reg) {
    reg.model(dsk::models::mlp_model());
    reg.model(dsk::models::cnn_model());
    reg.model(dsk::models::resnet_model());
    reg.model(dsk::models::mobilenet_v3_small_model());
    reg.model(dsk::models::sequential_model());
}

static const char* const provides[] = {"model:mlp", "model:cnn", "model:resnet", "model:mobilenet_v3_small",
                                       "model:sequential", nullptr};
DSK_PLUGIN_DEFINE("The model zoo", provides, register_models);
