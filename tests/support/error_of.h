// error_of(body): the dsk::Error that `body` throws; the test fails when it throws none.
#pragma once

#include <doctest/doctest.h>

#include <dsk/dsk_error.hpp>

namespace test_support {

template <class F>
dsk::Error error_of(F&& body) {
    try {
        body();
    } catch (const dsk::Error& e) {
        return e;
    }
    FAIL("expected a dsk::Error");
    return dsk::Error(DSK_INTERNAL, "");
}

}  // namespace test_support
