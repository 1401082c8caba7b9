// Embedding: the C API holds no global state, and misuse gives statuses, not crashes.
#include <doctest/doctest.h>

#include <dsk/dsk.h>
#include <dsk/dsk.hpp>

#include <cstddef>
#include <cstring>
#include <string>

TEST_CASE("two kernels in one process do not see each other's registries") {
    dsk::Kernel a, b;
    a.add_plugin_path(std::string(DSK_FAKE_PLUGINS_DIR) + "/echo");
    a.load_plugin("echo");
    auto names = [](const dsk::Kernel& k) {
        std::string all;
        for (const auto& p : k.plugins()) all += p.name + "(" + p.state + ") ";
        return all;
    };
    CHECK(names(a).find("echo(loaded)") != std::string::npos);
    CHECK(names(b).find("echo") == std::string::npos);
    CHECK_THROWS_AS(b.load_plugin("echo"), dsk::Error);
    CHECK(a.devices().empty());  // neither loaded a backend yet
    b.load_plugin("cpu");
    CHECK(b.devices().size() == 1);
    CHECK(a.devices().empty());
}

TEST_CASE("the C API returns statuses and a last error") {
    dsk_kernel* k = nullptr;
    REQUIRE(dsk_kernel_create(&k) == DSK_OK);
    CHECK(dsk_kernel_load_plugin(k, "no-such-plugin", nullptr) == DSK_NOT_FOUND);
    CHECK(std::string(dsk_kernel_last_error(k)).find("no-such-plugin") != std::string::npos);
    CHECK(dsk_kernel_load_plugin(k, "cpu", "not a range") == DSK_INVALID_ARGUMENT);
    CHECK(dsk_kernel_add_plugin_path(k, "") == DSK_INVALID_ARGUMENT);
    CHECK(dsk_kernel_load_plugin(nullptr, "cpu", nullptr) == DSK_INVALID_ARGUMENT);
    dsk_run_options opts{};
    opts.struct_size = sizeof opts;
    CHECK(dsk_kernel_run_pipeline(k, &opts) == DSK_INVALID_ARGUMENT);
    dsk_plugin_info info{};
    info.struct_size = sizeof info;
    CHECK(dsk_kernel_plugin_info(k, 9999, &info) == DSK_INVALID_ARGUMENT);
    CHECK(std::string(dsk_version()) == DSK_PROJECT_VERSION);
    CHECK(dsk_abi_version() == DSK_ABI_VERSION);
    dsk_kernel_destroy(k);
    dsk_kernel_destroy(nullptr);
}

TEST_CASE("an older caller's smaller info struct is filled only as far as it reaches") {
    dsk::Kernel kernel;
    kernel.load_plugin("cpu");
    // A caller compiled against a struct that ended after `version`.
    struct {
        dsk_plugin_info info;
        char guard[64];
    } buffer;
    std::memset(&buffer, 0x5a, sizeof buffer);
    buffer.info.struct_size = offsetof(dsk_plugin_info, kinds);
    REQUIRE(dsk_kernel_plugin_count(kernel.raw()) > 0);
    REQUIRE(dsk_kernel_plugin_info(kernel.raw(), 0, &buffer.info) == DSK_OK);
    CHECK(buffer.info.struct_size == offsetof(dsk_plugin_info, kinds));
    CHECK(std::string(buffer.info.name).size() > 0);
    const unsigned char* after = reinterpret_cast<const unsigned char*>(&buffer.info) + offsetof(dsk_plugin_info, kinds);
    CHECK(after[0] == 0x5a);  // untouched
}
