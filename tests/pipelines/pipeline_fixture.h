// Writes pipeline files into a fresh temporary directory for one test, and runs them through the
// public C++ API with the fake `echo` stage plugin on the search path.
#pragma once

#include <dsk/dsk.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "temp_dir.h"  // tests/support

struct PipelineFixture {
    test_support::TempDir temp{"dsk-pipeline-tests"};
    const std::filesystem::path dir = temp.path;

    // A pipeline whose [plugins] path names the fake echo plugin, followed by `body`.
    std::string write(const std::string& body, const std::string& name = "p.toml") const {
        std::string path = (dir / name).string();
        std::ofstream(path) << "[plugins]\npath = [\"" << DSK_FAKE_PLUGINS_DIR << "/echo\"]\n" << body;
        return path;
    }

    // The error message of validating `body`, or "" when it is valid.
    std::string validation_error(const std::string& body, std::vector<std::string> overrides = {}) const {
        dsk::Kernel kernel;
        dsk::RunOptions options;
        options.pipeline_path = write(body);
        options.overrides = std::move(overrides);
        try {
            kernel.validate(options);
        } catch (const dsk::Error& e) {
            return e.what();
        }
        return "";
    }
};

inline bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

inline std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
