#pragma once

#include <dsk/dsk_search.hpp>

dsk_search_iface halton_iface();
