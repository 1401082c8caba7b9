// The search plugin: descriptor and registration only.
#include "strategies.h"

static void register_search(dsk::Registrar& reg) {
    // Borrowed by the kernel until shutdown: static storage.
    static const dsk_search_iface random = dsk::search::random_iface();
    static const dsk_search_iface grid = dsk::search::grid_iface();
    static const dsk_search_iface tpe = dsk::search::tpe_iface();
    static const dsk_search_iface evolution = dsk::search::evolution_iface();
    static const dsk_search_iface asha = dsk::search::asha_iface();
    static const dsk_search_iface median = dsk::search::median_iface();
    for (const dsk_search_iface* iface : {&random, &grid, &tpe, &evolution, &asha, &median}) reg.search(*iface);
}

static const char* const provides[] = {"search:random", "search:grid", "search:tpe", "search:evolution",
                                       "search:asha",   "search:median", nullptr};
DSK_PLUGIN_DEFINE("Search strategies (random, grid, tpe, evolution) and early-stopping schedulers (asha, median)",
                  provides, register_search);
