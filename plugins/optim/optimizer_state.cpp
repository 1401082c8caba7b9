#include "optimizer_state.h"

#include <algorithm>
#include <cstring>

namespace dsk::optim {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the optimizer state format stores raw little-endian floats");

// Sanity limits, so that a corrupt length fails with a message rather than a huge allocation.
constexpr uint32_t kMaxNameLength = 256;
constexpr uint64_t kMaxBuffers = uint64_t{1} << 24;
constexpr size_t kReadChunkFloats = size_t{1} << 20;

class Writer {
  public:
    Writer(const std::string& name, dsk_write_fn write, void* user)
        : name_(name), write_(write), user_(user) {}

    void bytes(const void* data, size_t size, const char* what) const {
        if (size == 0) return;
        if (write_(user_, data, size) != 0) {
            throw Error(DSK_UNAVAILABLE, "optimizer '" + name_ + "': writing its state failed at " +
                                             what +
                                             " (the checkpoint writer reported an error; "
                                             "is the disk full?)");
        }
    }
    template <class T>
    void value(T v, const char* what) const {
        bytes(&v, sizeof v, what);
    }

  private:
    const std::string& name_;
    dsk_write_fn write_;
    void* user_;
};

class Reader {
  public:
    Reader(const std::string& name, dsk_read_fn read, void* user)
        : name_(name), read_(read), user_(user) {}

    void bytes(void* data, size_t size, const std::string& what) const {
        if (size == 0) return;
        if (read_(user_, data, size) != 0) {
            throw Error(DSK_DATA_LOSS, "optimizer '" + name_ + "': its saved state ends early at " +
                                           what + " (truncated or corrupt checkpoint)");
        }
    }
    template <class T>
    T value(const std::string& what) const {
        T v{};
        bytes(&v, sizeof v, what);
        return v;
    }
    [[noreturn]] void fail(const std::string& what) const {
        throw Error(DSK_DATA_LOSS, "optimizer '" + name_ + "': " + what);
    }

  private:
    const std::string& name_;
    dsk_read_fn read_;
    void* user_;
};

std::string printable(const char* bytes, size_t size) {
    std::string text;
    for (size_t i = 0; i < size; ++i) {
        const unsigned char c = static_cast<unsigned char>(bytes[i]);
        if (c >= 0x20 && c < 0x7f) {
            text += static_cast<char>(c);
        } else {
            static const char hex[] = "0123456789abcdef";
            text += "\\x";
            text += hex[c >> 4];
            text += hex[c & 15];
        }
    }
    return text;
}

}  // namespace

void write_optimizer_state(const std::string& name, uint64_t step,
                           const std::vector<std::vector<float>>& buffers, dsk_write_fn write,
                           void* user) {
    const Writer out(name, write, user);
    out.bytes(kStateMagic, sizeof kStateMagic, "the header");
    out.value(static_cast<uint32_t>(name.size()), "the name");
    out.bytes(name.data(), name.size(), "the name");
    out.value(step, "the step count");
    out.value(static_cast<uint64_t>(buffers.size()), "the buffer count");
    for (const std::vector<float>& buffer : buffers) {
        out.value(static_cast<uint64_t>(buffer.size()), "a buffer length");
        out.bytes(buffer.data(), buffer.size() * sizeof(float), "a buffer");
    }
}

OptimizerState read_optimizer_state(const std::string& expected_name, dsk_read_fn read,
                                    void* user) {
    const Reader in(expected_name, read, user);
    char magic[sizeof kStateMagic];
    in.bytes(magic, sizeof magic, "the header");
    if (std::memcmp(magic, kStateMagic, sizeof magic) != 0) {
        in.fail("the saved state is not a dsk optimizer state of format 1: it starts with \"" +
                printable(magic, sizeof magic) + "\", expected \"DSKOPT1\\x00\"");
    }

    OptimizerState state;
    const uint32_t name_length = in.value<uint32_t>("the name");
    if (name_length > kMaxNameLength) {
        in.fail("the saved state has a name of " + std::to_string(name_length) +
                " bytes (corrupt checkpoint)");
    }
    state.name.resize(name_length);
    in.bytes(state.name.data(), name_length, "the name");
    if (state.name != expected_name) {
        in.fail("the saved state was written by optimizer '" +
                printable(state.name.data(), state.name.size()) +
                "'; resume with the same optimizer or start without the checkpoint's state");
    }
    state.step = in.value<uint64_t>("the step count");
    if (state.step > static_cast<uint64_t>(INT64_MAX)) {
        in.fail("the saved step count " + std::to_string(state.step) + " is out of range");
    }
    const uint64_t count = in.value<uint64_t>("the buffer count");
    if (count > kMaxBuffers) {
        in.fail("the saved state claims " + std::to_string(count) +
                " buffers (corrupt checkpoint)");
    }
    state.buffers.resize(count);
    for (uint64_t i = 0; i < count; ++i) {
        const std::string what = "buffer " + std::to_string(i);
        const uint64_t length = in.value<uint64_t>("the length of " + what);
        // Grown chunk by chunk: a corrupt length fails on the missing data, not on allocation.
        std::vector<float>& buffer = state.buffers[i];
        for (uint64_t done = 0; done < length;) {
            const size_t n =
                static_cast<size_t>(std::min<uint64_t>(kReadChunkFloats, length - done));
            buffer.resize(done + n);
            in.bytes(buffer.data() + done, n * sizeof(float),
                     what + " (" + std::to_string(length) + " floats)");
            done += n;
        }
    }
    return state;
}

}  // namespace dsk::optim
