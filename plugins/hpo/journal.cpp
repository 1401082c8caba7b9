#include "journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace dsk::hpo {

Journal::Journal(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(DSK_UNAVAILABLE, "cannot open the study journal " + path_ + ": " + std::strerror(errno));
}

Journal::~Journal() {
    if (fd_ >= 0) ::close(fd_);
}

void Journal::append(const std::string& json_object) {
    const std::string line = json_object + "\n";
    size_t done = 0;
    while (done < line.size()) {
        const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(DSK_UNAVAILABLE, "cannot write the study journal " + path_ + ": " + std::strerror(errno));
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd_) != 0) throw Error(DSK_UNAVAILABLE, "cannot fsync the study journal " + path_ + ": " + std::strerror(errno));
}

std::vector<JsonValue> Journal::read(const std::string& path, std::string* dropped) {
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<JsonValue> events;
    size_t start = 0, line_no = 0;
    while (start < text.size()) {
        ++line_no;
        const size_t end = text.find('\n', start);
        const std::string line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
        start = end == std::string::npos ? text.size() : end + 1;
        if (line.empty()) continue;
        try {
            events.push_back(json_parse(line, path + ":" + std::to_string(line_no)));
        } catch (const Error& e) {
            if (end == std::string::npos) {  // the last line, never finished
                if (dropped) *dropped = e.what();
                break;
            }
            throw Error(DSK_DATA_LOSS, std::string(e.what()) + " (the study journal is damaged; move it away to start the study afresh)");
        }
    }
    return events;
}

}  // namespace dsk::hpo
