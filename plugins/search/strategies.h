// The providers this plugin registers (each in the file of its name). Strategies propose
// assignments (suggest); schedulers decide which running trials to stop (report/should_prune).
#pragma once

#include <dsk/dsk_search.hpp>

namespace dsk::search {

dsk_search_iface random_iface();     // random_search.cpp
dsk_search_iface grid_iface();       // grid_search.cpp
dsk_search_iface tpe_iface();        // tpe.cpp
dsk_search_iface evolution_iface();  // evolution.cpp
dsk_search_iface asha_iface();       // asha.cpp
dsk_search_iface median_iface();     // median_stopping.cpp

}  // namespace dsk::search
