// dsk: run pipelines and inspect plugins and devices.
#include <csignal>
#include <cstdio>
#include <cstring>

#include "commands.h"

namespace dsk::cli {
Kernel* g_running_kernel = nullptr;
}

namespace {

const char* const kHelp = R"(usage: dsk [--plugin-path DIR]... COMMAND [ARGS]

Commands:
  run PIPELINE [--set KEY.PATH=VALUE]... [--run-dir DIR] [--device LIST] [--explain] [--dry-run]
                         validate a pipeline file and run its stages; --device vulkan (or
                         vulkan,cpu) sets [devices] prefer; --explain prints where each
                         session's ops run and what crosses between devices
  run --resume RUN_DIR   continue an interrupted run from its checkpoints
  validate PIPELINE [--set KEY.PATH=VALUE]... [--print-config]
                         check a pipeline file against the plugins' schemas; run nothing;
                         --print-config prints the resolved pipeline (TOML) instead
  plugins list           every plugin found: version, ABI, kinds, provides, path, state
  plugins info NAME      one plugin in detail
  devices                every device of every backend, with its probe score
  doctor                 every plugin candidate and, for each that fails, why

Options:
  --plugin-path DIR      search DIR for plugins first (repeatable)
  -h, --help             show this help
  --version              show the version and the plugin ABI

Plugins are searched in: --plugin-path and a pipeline's [plugins] path, then
DSK_PLUGIN_PATH (':'-separated), then the install directory (<libdir>/dsk/plugins).
Exit codes: 0 success, 1 failure while running, 2 usage or configuration error,
130 stopped by Ctrl-C (a second Ctrl-C ends the process at once).
)";

// The first Ctrl-C asks the run to stop at its next safe point (a checkpoint is written); a
// second one ends the process at once.
void on_sigint(int) {
    if (dsk::cli::g_running_kernel) dsk::cli::g_running_kernel->request_stop();
    std::signal(SIGINT, SIG_DFL);
}

}  // namespace

int main(int argc, char** argv) {
    using namespace dsk::cli;
    std::vector<std::string> args(argv + 1, argv + argc);
    std::vector<std::string> plugin_paths;
    size_t i = 0;
    for (; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "-h" || a == "--help") {
            std::fputs(kHelp, stdout);
            return kOk;
        }
        if (a == "--version") {
            std::printf("dsk %s (plugin ABI %u.%u)\n", dsk::Kernel::version().c_str(),
                        DSK_ABI_MAJOR(dsk::Kernel::abi_version()), DSK_ABI_MINOR(dsk::Kernel::abi_version()));
            return kOk;
        }
        if (a == "--plugin-path" && i + 1 < args.size()) {
            plugin_paths.push_back(args[++i]);
        } else if (a.rfind("--plugin-path=", 0) == 0) {
            plugin_paths.push_back(a.substr(std::strlen("--plugin-path=")));
        } else if (!a.empty() && a[0] == '-') {
            std::fprintf(stderr, "dsk: unknown option '%s'\n%s", a.c_str(), kHelp);
            return kUsage;
        } else {
            break;
        }
    }
    if (i == args.size()) {
        std::fputs(kHelp, stderr);
        return kUsage;
    }
    const std::string command = args[i];
    Args rest(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());

    try {
        dsk::Kernel kernel;
        for (const auto& dir : plugin_paths) kernel.add_plugin_path(dir);
        if (command == "run") {
            g_running_kernel = &kernel;
            std::signal(SIGINT, on_sigint);
            int code = run(kernel, rest);
            std::signal(SIGINT, SIG_DFL);
            g_running_kernel = nullptr;
            return code;
        }
        if (command == "validate") return validate(kernel, rest);
        if (command == "devices") return devices(kernel, rest);
        if (command == "doctor") return doctor(kernel, rest);
        if (command == "plugins") {
            std::string sub = rest.empty() ? "list" : rest[0];
            Args sub_args(rest.empty() ? rest.begin() : rest.begin() + 1, rest.end());
            if (sub == "list") return plugins_list(kernel, sub_args);
            if (sub == "info") return plugins_info(kernel, sub_args);
            std::fprintf(stderr, "dsk plugins: unknown subcommand '%s' (use 'list' or 'info NAME')\n", sub.c_str());
            return kUsage;
        }
        std::fprintf(stderr, "dsk: unknown command '%s'\n%s", command.c_str(), kHelp);
        return kUsage;
    } catch (const dsk::Error& e) {
        std::fprintf(stderr, "dsk: %s\n", e.what());
        return kFailure;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dsk: internal error: %s\n", e.what());
        return kFailure;
    }
}
