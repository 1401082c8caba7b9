// template_plugin.cpp - the plugin's descriptor and registration; the stage is in
// template_stage.cpp.
#include <dsk/dsk_plugin.hpp>

#include "template_stage.h"

namespace {

// Called once per load. What it throws fails the load, with what() shown to the user.
void register_template(dsk::Registrar& registrar) {
    registrar.stage(template_plugin::hello_stage());
}

// Must match `provides` in template.plugin.toml.
const char* const provides[] = {"stage:template-hello", nullptr};

}  // namespace

DSK_PLUGIN_DEFINE("Template stage plugin: logs a greeting (copy me to start a plugin)", provides,
                  register_template);
