// The halton plugin: descriptor and registration only.
#include "halton_search.h"

static void register_halton(dsk::Registrar& reg) {
    static const dsk_search_iface halton = halton_iface();
    reg.search(halton);
}

static const char* const provides[] = {"search:halton", nullptr};
DSK_PLUGIN_DEFINE("Quasi-random search along a randomly shifted Halton sequence (an out-of-tree strategy)", provides,
                  register_halton);
