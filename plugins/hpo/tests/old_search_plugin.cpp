// A search plugin as the kernel sees one built for ABI 1.1: its dsk_search_iface ends before
// add_trial (struct_size), so the hpo stage cannot tell it about enqueued trials. The strategy
// is the search plugin's `random`, renamed `old-random`.
#include <cstddef>

#include "strategies.h"

static void register_old_search(dsk::Registrar& reg) {
    static const dsk_search_iface old = [] {
        dsk_search_iface iface = dsk::search::random_iface();
        iface.name = "old-random";
        iface.struct_size = offsetof(dsk_search_iface, add_trial);
        return iface;
    }();
    reg.search(old);
}

static const char* const provides[] = {"search:old-random", nullptr};
DSK_PLUGIN_DEFINE("Random search as a plugin built for ABI 1.1 sees it (no add_trial), for the hpo tests", provides,
                  register_old_search);
