#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>


#include "manifest.h"
#include "temp_dir.h"  // tests/support
#include "status.h"

using namespace dsk::kernel;
namespace fs = std::filesystem;

namespace {

std::string write_manifest(const std::string& text) {
    static const test_support::TempDir dir("dsk-manifest-tests");  // removed at exit
    static int n = 0;
    fs::path file = dir.path / ("m" + std::to_string(n++) + ".plugin.toml");
    std::ofstream(file) << text;
    return file.string();
}

std::string error_of(const std::string& text) {
    try {
        read_manifest(write_manifest(text));
    } catch (const Error& e) {
        CHECK(e.code() == DSK_INVALID_ARGUMENT);
        return e.what();
    }
    FAIL("the manifest was accepted");
    return {};
}

const char* kGood = R"([plugin]
name = "npu"
version = "1.4.2"
description = "A vendor NPU"
library = "dsk_npu.so"
abi = ">=1.0, <2"
kinds = ["device", "kernel"]
provides = ["device:npu", "kernel:*"]
system_libraries = ["libnpu_driver.so.3"]

[requires]
cpu = ">=0.1"
)";

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a complete manifest is read") {
    std::string path = write_manifest(kGood);
    Manifest m = read_manifest(path);
    CHECK(m.name == "npu");
    CHECK(m.version.str() == "1.4.2");
    CHECK(m.library_path == (fs::path(path).parent_path() / "dsk_npu.so").string());
    CHECK(m.abi.contains(Version{1, 0, 0, {}}));
    CHECK(m.kinds.size() == 2);
    CHECK(m.provides[1] == "kernel:*");
    CHECK(m.system_libraries[0] == "libnpu_driver.so.3");
    REQUIRE(m.requirements.size() == 1);
    CHECK(m.requirements[0].plugin == "cpu");
    CHECK(has(m.requirements[0].where, ":12:7"));
}

TEST_CASE("manifest errors name file - line - column and key") {
    CHECK(has(error_of("[plugin]\nname = \"x\"\nversion = \"1.0\"\nlibrary = 3\n"), ":4:"));
    CHECK(has(error_of("[plugin]\nname = \"x\"\nversion = \"1.0\"\nlibrary = 3\n"), "library must be a string"));
    CHECK(has(error_of("[plugin]\nname = \"x\"\n"), "no 'version' key"));
    CHECK(has(error_of("[plugin]\nname = \"x\"\nversion = \"one\"\nlibrary = \"a.so\"\nabi = \"1\"\n"),
              "not a semantic version"));
    CHECK(has(error_of("[plugin]\nname = \"x\"\nversion = \"1.0.0\"\nlibrary = \"a.so\"\nabi = \"1\"\nprovide = []\n"),
              "did you mean 'provides'"));
    CHECK(has(error_of("[plugin]\nname = \"x\"\nversion = \"1.0.0\"\nlibrary = \"a.so\"\nabi = \"1\"\n"
                       "kinds = [\"stage\"]\nprovides = [\"env\"]\n"),
              "must be \"kind:name\""));
    CHECK(has(error_of("[plugin]\nname = \"x\"\nversion = \"1.0.0\"\nlibrary = \"a.so\"\nabi = \"1\"\n"
                       "kinds = [\"device\"]\nprovides = [\"stage:env\"]\n"),
              "kinds must list exactly"));
    CHECK(has(error_of("[plugin]\nname = \"x\"\nversion = \"1.0.0\"\nlibrary = \"a.so\"\nabi = \"1\"\n"
                       "[requires]\ncpu = 1\n"),
              "requires.cpu must be a version range string"));
    CHECK(has(error_of("[plugin\nname = \"x\"\n"), "TOML syntax error"));
    CHECK(has(error_of("[plugins]\nname = \"x\"\n"), "did you mean 'plugin'"));
}
