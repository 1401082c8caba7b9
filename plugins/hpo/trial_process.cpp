#include "trial_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <string_view>

#include <dsk/dsk_error.hpp>
#include <dsk/dsk_json.hpp>

extern char** environ;

namespace dsk::hpo {

TrialProcess::TrialProcess(const std::vector<std::string>& argv, const std::string& log_path, const std::vector<std::string>& env,
                           const std::string& stdout_path) {
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> vars;
    for (const std::string& e : env) vars.push_back(const_cast<char*>(e.c_str()));
    for (char** e = environ; *e; ++e) {
        const std::string_view entry(*e);
        const auto replaced = [&](const std::string& v) { return entry.substr(0, entry.find('=') + 1) == v.substr(0, v.find('=') + 1); };
        if (std::none_of(env.begin(), env.end(), replaced)) vars.push_back(*e);
    }
    vars.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (stdout_path.empty())
        posix_spawn_file_actions_adddup2(&actions, 2, 1);
    else
        posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    const int rc = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), vars.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0)
        throw Error(DSK_UNAVAILABLE, "cannot start trial process " + argv[0] + ": " + std::strerror(rc));
}

TrialProcess::~TrialProcess() {
    if (pid_ > 0 && !done_) {
        interrupt();
        wait();
    }
}

bool TrialProcess::finished() {
    if (done_) return true;
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        done_ = true;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    } else if (r < 0 && errno == ECHILD) {
        done_ = true;
        exit_code_ = -1;
    }
    return done_;
}

void TrialProcess::interrupt() {
    if (!done_) kill(pid_, SIGINT);
}

void TrialProcess::wait() {
    while (!done_) {
        int status = 0;
        const pid_t r = waitpid(pid_, &status, 0);
        if (r == pid_) {
            done_ = true;
            exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        } else if (r < 0 && errno != EINTR) {
            done_ = true;
        }
    }
}

std::vector<Metric> MetricsTail::read_new() {
    std::vector<Metric> out;
    std::ifstream in(path_, std::ios::binary);
    if (!in) return out;
    in.seekg(static_cast<std::streamoff>(offset_));
    std::string line;
    while (std::getline(in, line)) {
        if (in.eof()) break;  // no newline yet: a line still being written; read it next time
        offset_ += line.size() + 1;
        try {
            const JsonValue v = json_parse(line, path_);
            const JsonValue* name = v.find("name");
            const JsonValue* step = v.find("step");
            const JsonValue* value = v.find("value");
            const JsonValue* stage = v.find("stage");
            if (!name || !step || !value) continue;
            Metric m;
            m.stage = stage ? stage->string : "";
            m.name = name->string;
            m.step = static_cast<int64_t>(step->number);
            m.value = value->is(JsonValue::Type::Number) ? value->number : NAN;
            out.push_back(std::move(m));
        } catch (const Error&) {
            // a line that is not a metric is not ours to judge; skip it
        }
    }
    return out;
}

}  // namespace dsk::hpo
