// dsk_file.hpp - replacing a file atomically and durably (POSIX), for the kernel's run directory
// (config.toml, summary.json) and for plugins' own files (checkpoints).
//
// Header-only, over dsk_error.hpp; no kernel or plugin state.
//
//   std::string text = "...";
//   dsk::write_file_atomically(dir + "/summary.json", {{text.data(), text.size()}});
#ifndef DSK_FILE_HPP_
#define DSK_FILE_HPP_

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "dsk/dsk_error.hpp"

namespace dsk {

// Replaces `path` with the concatenation of `chunks` (pointer, size; borrowed for the call).
// Writes "<path>.tmp" beside it, fsyncs and closes it, renames it over `path`, then fsyncs the
// directory, so that a crash leaves either the old file or the new one, never a mix. On any
// failure the temporary file is closed and removed and `path` is left as it was; throws
// dsk::Error(DSK_UNAVAILABLE) naming the path, the step and the system's reason.
inline void write_file_atomically(const std::string& path, const std::vector<std::pair<const void*, size_t>>& chunks) {
    const std::string temp = path + ".tmp";
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    // The step that failed, with errno saved before anything can change it.
    auto fail = [&](const char* step) {
        const int err = errno;
        if (fd >= 0) ::close(fd);
        ::unlink(temp.c_str());
        throw Error(DSK_UNAVAILABLE, "cannot write " + path + ": " + step + " " + temp + ": " + std::strerror(err));
    };
    if (fd < 0) fail("creating");
    for (const auto& [data, size] : chunks) {
        const char* p = static_cast<const char*>(data);
        size_t left = size;
        while (left > 0) {
            const ssize_t n = ::write(fd, p, left);
            if (n < 0 && errno == EINTR) continue;
            if (n == 0) errno = ENOSPC;  // no progress and no error: treat as a full disk
            if (n <= 0) fail("writing");
            p += n;
            left -= static_cast<size_t>(n);
        }
    }
    if (::fsync(fd) != 0) fail("flushing");
    const int closed = ::close(fd);
    fd = -1;  // closed (or unusable) either way: never close it twice
    if (closed != 0) fail("closing");
    if (std::rename(temp.c_str(), path.c_str()) != 0) fail("renaming");

    // Make the rename itself durable. Some file systems cannot sync a directory (EINVAL); the
    // file is in place then, as durable as that file system makes it.
    const size_t slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) return;  // e.g. a directory we may write in but not read: the rename is done
    const int synced = ::fsync(dir_fd) == 0 ? 0 : errno;
    ::close(dir_fd);
    if (synced != 0 && synced != EINVAL && synced != ENOTSUP)
        throw Error(DSK_UNAVAILABLE, "cannot write " + path + ": flushing its directory " + dir + ": " + std::strerror(synced));
}

}  // namespace dsk

#endif  // DSK_FILE_HPP_
