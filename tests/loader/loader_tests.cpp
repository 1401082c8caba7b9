// The loader, through the public C API: every way a plugin can fail is reported with its exact
// reason, and never stops the kernel or the other plugins.
#include <doctest/doctest.h>

#include <dsk/dsk.hpp>

#include <algorithm>
#include <string>

namespace {

const std::string kFakes = DSK_FAKE_PLUGINS_DIR;

dsk::PluginInfo plugin(const dsk::Kernel& kernel, const std::string& name) {
    auto all = kernel.plugins();
    auto it = std::find_if(all.begin(), all.end(), [&](const dsk::PluginInfo& p) { return p.name == name; });
    REQUIRE_MESSAGE(it != all.end(), "no candidate named " << name);
    return *it;
}

// A kernel that sees only `dir` (and the build tree's own plugins, which are always searched).
dsk::PluginInfo load_alone(const std::string& dir, const std::string& name) {
    dsk::Kernel kernel;
    kernel.add_plugin_path(kFakes + "/" + dir);
    kernel.load_all();
    return plugin(kernel, name);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a well-formed plugin loads and reports its manifest data") {
    auto p = load_alone("echo", "echo");
    CHECK(p.state == "loaded");
    CHECK(p.version == "1.2.0");
    CHECK(p.abi_version == DSK_ABI_VERSION);
    CHECK(p.kinds == "stage");
    CHECK(p.provides == "stage:echo");
    CHECK(contains(p.library_path, "dsk_echo.so"));
    CHECK(p.error.empty());
}

TEST_CASE("ABI major mismatch in the descriptor is refused with both numbers") {
    auto p = load_alone("single/abi_major", "abi-major");
    CHECK(p.state == "failed");
    CHECK(contains(p.error, "ABI major mismatch"));
    CHECK(contains(p.error, "ABI 2.0"));
    CHECK(contains(p.error, "ABI 1.3"));
}

TEST_CASE("ABI range in the manifest is checked before the library is loaded") {
    auto p = load_alone("single/manifest_abi", "manifest-abi");
    CHECK(p.state == "failed");
    CHECK(contains(p.error, ">=2.0, <3"));
    CHECK(contains(p.error, "implements ABI 1.3"));
    CHECK(p.abi_version == 0);  // never loaded
}

TEST_CASE("a newer minor ABI loads and negotiates down") {
    auto p = load_alone("single/newer_minor", "newer-minor");
    CHECK(p.state == "loaded");
    CHECK(p.abi_version == DSK_MAKE_ABI_VERSION(1, 7));
}

TEST_CASE("a library without the entry symbol is named as such") {
    auto p = load_alone("single/no_entry", "no-entry");
    CHECK(p.state == "failed");
    CHECK(contains(p.error, "does not export dsk_plugin_query"));
}

TEST_CASE("a query that returns NULL is an incompatible plugin") {
    auto p = load_alone("single/query_null", "query-null");
    CHECK(p.state == "failed");
    CHECK(contains(p.error, "returned NULL"));
}

TEST_CASE("a missing shared library is named as dlerror names it") {
    auto p = load_alone("single/missing_dep", "missing-dep");
    CHECK(p.state == "failed");
    CHECK(contains(p.error, "libfake_dependency.so: cannot open shared object file"));
}

TEST_CASE("init that fails shows the plugin's own message") {
    auto p = load_alone("single/init_fails", "init-fails");
    CHECK(p.state == "failed");
    CHECK(contains(p.error, "init failed (UNAVAILABLE)"));
    CHECK(contains(p.error, "fake license check failed: set FAKE_LICENSE_FILE"));
}

TEST_CASE("init that throws in C++ becomes a status with the exception's message") {
    auto p = load_alone("single/init_throws", "init-throws");
    CHECK(p.state == "failed");
    CHECK(contains(p.error, "cannot open /dev/fake-npu0: device busy"));
}

TEST_CASE("manifest and descriptor must agree") {
    SUBCASE("version") {
        auto p = load_alone("single/version_mismatch", "version-mismatch");
        CHECK(p.state == "failed");
        CHECK(contains(p.error, "disagrees with the library's descriptor"));
        CHECK(contains(p.error, "9.9.9"));
    }
    SUBCASE("provides") {
        auto p = load_alone("single/provides_mismatch", "provides-mismatch");
        CHECK(p.state == "failed");
        CHECK(contains(p.error, "stage:not-in-manifest"));
    }
    SUBCASE("registering what the manifest does not declare") {
        auto p = load_alone("single/registers_other", "registers-other");
        CHECK(p.state == "failed");
        CHECK(contains(p.error, "stage:undeclared"));
        CHECK(contains(p.error, "does not list in provides"));
    }
    SUBCASE("declaring what init never registers") {
        auto p = load_alone("single/unregistered", "unregistered");
        CHECK(p.state == "failed");
        CHECK(contains(p.error, "stage:never-registered"));
    }
}

TEST_CASE("a schema whose defaults break its own types or ranges is refused at registration") {
    auto p = load_alone("single/bad_defaults", "bad-defaults");
    CHECK(p.state == "failed");
    CHECK(contains(p.error, "invalid parameter schema"));
    CHECK(contains(p.error, "stage 'bad-defaults'.count: expected integer, got string 'ten'"));
    CHECK(contains(p.error, "ratio = 2.0 is out of range [0, 1]"));
}

TEST_CASE("requires: met - unmet - missing and conflicting") {
    dsk::Kernel kernel;
    kernel.add_plugin_path(kFakes + "/requires");
    kernel.load_all();
    CHECK(plugin(kernel, "base").state == "loaded");
    CHECK(plugin(kernel, "needs-base").state == "loaded");

    auto unmet = plugin(kernel, "needs-base-2");
    CHECK(unmet.state == "failed");
    CHECK(contains(unmet.error, "requires 'base' >=2.0"));
    CHECK(contains(unmet.error, "found base 1.5.0"));

    auto missing = plugin(kernel, "needs-missing");
    CHECK(missing.state == "failed");
    CHECK(contains(missing.error, "requires 'nowhere'"));
    CHECK(contains(missing.error, "not on the plugin search path"));

    // needs-old-base wants base <1.5 while needs-base (and the found 1.5.0) pull the other way.
    auto conflict = plugin(kernel, "needs-old-base");
    CHECK(conflict.state == "failed");
    CHECK(contains(conflict.error, "conflicting requirement"));
    CHECK(contains(conflict.error, "'needs-base' requires 'base' >=1.0, <2"));
}

TEST_CASE("two plugins with one name: the first in search order wins - the other is shadowed") {
    dsk::Kernel kernel;
    kernel.add_plugin_path(kFakes + "/dup_a");
    kernel.add_plugin_path(kFakes + "/dup_b");
    kernel.load_all();
    auto all = kernel.plugins();
    int loaded = 0, shadowed = 0;
    for (const auto& p : all) {
        if (p.name != "dup") continue;
        if (p.state == "loaded") {
            ++loaded;
            CHECK(p.version == "1.0.0");
        }
        if (p.state == "shadowed") {
            ++shadowed;
            CHECK(contains(p.error, "shadowed by"));
            CHECK(contains(p.error, "dup_a"));
        }
    }
    CHECK(loaded == 1);
    CHECK(shadowed == 1);
}

TEST_CASE("two plugins claiming one stage kind: the second fails with ALREADY_EXISTS") {
    dsk::Kernel kernel;
    kernel.add_plugin_path(kFakes + "/claims");
    kernel.load_all();
    auto a = plugin(kernel, "claim-a");
    auto b = plugin(kernel, "claim-b");
    CHECK(a.state == "loaded");
    CHECK(b.state == "failed");
    CHECK(contains(b.error, "ALREADY_EXISTS"));
    CHECK(contains(b.error, "already provided by plugin 'claim-a'"));
}

TEST_CASE("one broken plugin does not stop the others") {
    dsk::Kernel kernel;
    kernel.add_plugin_path(kFakes + "/mixed");
    kernel.load_all();
    CHECK(plugin(kernel, "good").state == "loaded");
    CHECK(plugin(kernel, "abi-major").state == "failed");
    CHECK(plugin(kernel, "init-fails").state == "failed");
    CHECK(plugin(kernel, "missing-dep").state == "failed");
    CHECK(plugin(kernel, "cpu").state == "loaded");  // the install directory is still searched
}

TEST_CASE("load_plugin names the plugin - the range and the search path") {
    dsk::Kernel kernel;
    kernel.add_plugin_path(kFakes + "/echo");
    CHECK_NOTHROW(kernel.load_plugin("echo", ">=1.0, <2"));
    try {
        kernel.load_plugin("echo", ">=2");
        FAIL("expected an error");
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_INCOMPATIBLE);
        CHECK(contains(e.what(), "'echo' >=2"));
        CHECK(contains(e.what(), "found echo 1.2.0"));
    }
    try {
        kernel.load_plugin("ecoh");
        FAIL("expected an error");
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_NOT_FOUND);
        CHECK(contains(e.what(), "searched:"));
        CHECK(contains(e.what(), "did you mean 'echo'"));
    }
}

TEST_CASE("a library without a manifest is a diagnostic - not a candidate") {
    dsk::Kernel kernel;
    kernel.add_plugin_path(kFakes + "/hidden");
    kernel.load_all();
    auto diagnostics = kernel.diagnostics();
    CHECK(std::any_of(diagnostics.begin(), diagnostics.end(), [](const std::string& d) {
        return contains(d, "libfake_dependency.so has no manifest");
    }));
}
