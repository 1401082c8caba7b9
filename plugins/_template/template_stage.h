// template_stage.h - the `template-hello` pipeline stage.
#ifndef DSK_TEMPLATE_STAGE_H_
#define DSK_TEMPLATE_STAGE_H_

#include <dsk/dsk_plugin.hpp>

namespace template_plugin {

// The stage's kind, description, keys and run function, ready for Registrar::stage().
dsk::Stage hello_stage();

}  // namespace template_plugin

#endif  // DSK_TEMPLATE_STAGE_H_
