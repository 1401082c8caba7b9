// The vulkan backend interface: enumeration and probe scores, the no-driver entry, device
// memory (sub-allocation, map rules, out of memory), copies through staging, queue order,
// fences and timeouts, and the named errors.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "vulkan_instance.h"
#include "vulkan_test_support.h"

using namespace vulkan_test;
using fake_host::take;

namespace {

dsk_device_info info_of(uint32_t index) {
    dsk_device_info info{};
    info.struct_size = sizeof info;
    REQUIRE(take(backend().device_info(nullptr, index, &info)).code == DSK_OK);
    return info;
}

}  // namespace

TEST_CASE("vulkan devices are listed with a name and a probe score") {
    install_host();
    uint32_t count = 0;
    REQUIRE(take(backend().device_count(nullptr, &count)).code == DSK_OK);
    REQUIRE(count >= 1);  // an unusable entry says why when there is no driver
    for (uint32_t i = 0; i < count; ++i) {
        const dsk_device_info info = info_of(i);
        CHECK(std::string(info.name) != "");
        CHECK(info.type == DSK_DEVICE_GPU);  // vulkan memory is never host memory (ABI 1.1)
        if (info.score <= 0) {
            CHECK(std::string(info.unusable_reason) != "");
            continue;
        }
        CHECK(std::string(info.unusable_reason) == "");
        CHECK(info.subgroup_size > 0);
        CHECK(info.memory_bytes > 0);
        const dsk::vulkan::PhysicalDevice& d = dsk::vulkan::vulkan_instance().devices[i];
        if (d.cpu_emulated()) {
            // lavapipe must not win the automatic choice over the cpu backend (score 10).
            CHECK(info.score == dsk::vulkan::kScoreCpuEmulated);
            CHECK(info.score < 10);
        }
        if (d.type == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU) CHECK(info.score > 10);
    }
    CHECK(take(backend().device_info(nullptr, count, nullptr)).code == DSK_INVALID_ARGUMENT);
    dsk_device_info info{};
    info.struct_size = sizeof info;
    const fake_host::Outcome missing = take(backend().device_info(nullptr, count + 3, &info));
    CHECK(missing.code == DSK_NOT_FOUND);
    CHECK(missing.message.find("does not exist") != std::string::npos);
}

TEST_CASE("vulkan: an older caller's smaller device info is filled only as far as it reaches") {
    install_host();
    struct {
        dsk_device_info info;
        uint32_t guard;
    } old{};
    old.info.struct_size = offsetof(dsk_device_info, memory_bytes);
    old.info.memory_bytes = 12345;
    old.info.score = -77;
    REQUIRE(take(backend().device_info(nullptr, 0, &old.info)).code == DSK_OK);
    CHECK(old.info.name != nullptr);
    CHECK(old.info.memory_bytes == 12345);
    CHECK(old.info.score == -77);
}

TEST_CASE("vulkan without a loader: the backend lists one unusable device saying what to install") {
    dsk::vulkan::VulkanApi api;
    const dsk::vulkan::VulkanInstance probe = dsk::vulkan::probe_vulkan("libvulkan-missing.so.9", api);
    REQUIRE(probe.devices.size() == 1);
    CHECK(probe.devices[0].score == 0);
    CHECK(probe.devices[0].unusable_reason.find("libvulkan-missing.so.9") != std::string::npos);
    CHECK(probe.devices[0].unusable_reason.find("mesa-vulkan-drivers") != std::string::npos);
}

// Run by ctest as `vulkan_without_a_driver`, with the loader pointed at no ICD; in the normal
// run it only checks that a real driver's devices are not reported unusable for that reason.
TEST_CASE("vulkan without a driver: the backend reports score 0 with the reason and device_open refuses") {
    install_host();
    const dsk_device_info info = info_of(0);
    if (std::getenv("DSK_VULKAN_EXPECT_NO_DRIVER") == nullptr) {
        if (info.score > 0) CHECK(std::string(info.unusable_reason).empty());
        return;
    }
    uint32_t count = 0;
    REQUIRE(take(backend().device_count(nullptr, &count)).code == DSK_OK);
    CHECK(count == 1);
    CHECK(info.score <= 0);
    CHECK(std::string(info.unusable_reason).find("apt-get install") != std::string::npos);
    dsk_device* device = nullptr;
    const fake_host::Outcome opened = take(backend().device_open(nullptr, 0, &device));
    CHECK(opened.code == DSK_UNAVAILABLE);
    CHECK(opened.message.find("unusable") != std::string::npos);
    CHECK(device == nullptr);
}

TEST_CASE("vulkan buffers round-trip through staging and copy on the device in queue order") {
    Device dev;
    if (!dev.ok) return;
    Tensor a(dev, DSK_DTYPE_F32, {1000});
    Tensor b(dev, DSK_DTYPE_F32, {1000});
    for (size_t k = 0; k < a.f.size(); ++k) a.f[k] = static_cast<float>(k) * 0.5f;
    a.upload();
    // Recorded after the upload, in the same batch: the barrier must order them.
    REQUIRE(take(backend().copy_on_device(dev.queue, a.buffer, 40, b.buffer, 0, 400)).code == DSK_OK);
    REQUIRE(take(backend().copy_on_device(dev.queue, a.buffer, 0, b.buffer, 400, 3600)).code == DSK_OK);
    b.download();
    for (size_t k = 0; k < 100; ++k) CHECK(b.f[k] == a.f[k + 10]);
    for (size_t k = 100; k < 1000; ++k) CHECK(b.f[k] == a.f[k - 100]);

    // Overlapping ranges of one buffer copy like memmove.
    REQUIRE(take(backend().copy_on_device(dev.queue, a.buffer, 0, a.buffer, 8, 3992)).code == DSK_OK);
    std::vector<float> before = a.f;
    a.download();
    CHECK(a.f[0] == before[0]);
    CHECK(a.f[1] == before[1]);
    for (size_t k = 2; k < 1000; ++k) CHECK(a.f[k] == before[k - 2]);
}

TEST_CASE("vulkan copies check their ranges and name the call") {
    Device dev;
    if (!dev.ok) return;
    Tensor a(dev, DSK_DTYPE_F32, {16});
    float host[32] = {};
    const fake_host::Outcome out = take(backend().copy_to_host(dev.queue, a.buffer, 32, host, 64));
    CHECK(out.code == DSK_INVALID_ARGUMENT);
    CHECK(out.message == "vulkan: copy_to_host: 64 bytes at offset 32 do not fit the 64-byte source buffer");
    CHECK(take(backend().copy_to_device(dev.queue, host, a.buffer, 4, 64)).code == DSK_INVALID_ARGUMENT);
    CHECK(take(backend().copy_on_device(dev.queue, a.buffer, 0, a.buffer, 8, 60)).code == DSK_INVALID_ARGUMENT);
    CHECK(take(backend().copy_to_device(dev.queue, nullptr, a.buffer, 0, 4)).code == DSK_INVALID_ARGUMENT);
    CHECK(take(backend().copy_to_device(dev.queue, nullptr, a.buffer, 0, 0)).code == DSK_OK);
}

TEST_CASE("device-local vulkan buffers cannot be mapped and host-visible ones can") {
    Device dev;
    if (!dev.ok) return;
    dsk_buffer* local = nullptr;
    REQUIRE(take(backend().buffer_alloc(dev.device, 256, 64, 0, &local)).code == DSK_OK);
    void* ptr = reinterpret_cast<void*>(1);
    const fake_host::Outcome mapped = take(backend().buffer_map(local, &ptr));
    CHECK(mapped.code == DSK_UNIMPLEMENTED);
    CHECK(mapped.message.find("device-local") != std::string::npos);
    CHECK(ptr == nullptr);
    backend().buffer_free(local);

    dsk_buffer* visible = nullptr;
    REQUIRE(take(backend().buffer_alloc(dev.device, 256, 64, DSK_BUFFER_HOST_VISIBLE, &visible)).code == DSK_OK);
    REQUIRE(take(backend().buffer_map(visible, &ptr)).code == DSK_OK);
    REQUIRE(ptr != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(ptr) % 64 == 0);
    float* values = static_cast<float*>(ptr);
    for (int k = 0; k < 64; ++k) values[k] = static_cast<float>(k);
    float back[64] = {};
    REQUIRE(take(backend().copy_to_host(dev.queue, visible, 0, back, sizeof back)).code == DSK_OK);
    dev.finish();
    for (int k = 0; k < 64; ++k) CHECK(back[k] == static_cast<float>(k));
    backend().buffer_free(visible);
}

TEST_CASE("vulkan buffers are sub-allocated from shared blocks and their memory is reused") {
    Device dev;
    if (!dev.ok) return;
    dsk::vulkan::MemoryPool& pool = dev.object().device_memory();
    std::vector<dsk_buffer*> buffers(64, nullptr);
    for (dsk_buffer*& b : buffers) REQUIRE(take(backend().buffer_alloc(dev.device, 1000, 256, 0, &b)).code == DSK_OK);
    CHECK(pool.block_count() == 1);
    CHECK(pool.bytes_in_use() >= 64 * 1000);
    for (size_t k = 0; k < buffers.size(); ++k) {
        const auto* b = dsk::vulkan::from_handle(buffers[k]);
        CHECK(b->allocation.offset % 256 == 0);
        for (size_t j = 0; j < k; ++j) {  // no two overlap
            const auto* o = dsk::vulkan::from_handle(buffers[j]);
            const bool apart = b->allocation.offset + 1000 <= o->allocation.offset ||
                               o->allocation.offset + 1000 <= b->allocation.offset;
            CHECK(apart);
        }
    }
    const uint64_t first = dsk::vulkan::from_handle(buffers[10])->allocation.offset;
    backend().buffer_free(buffers[10]);
    backend().buffer_free(buffers[11]);
    dsk_buffer* merged = nullptr;  // fits where the two freed neighbours were
    REQUIRE(take(backend().buffer_alloc(dev.device, 2000, 256, 0, &merged)).code == DSK_OK);
    CHECK(dsk::vulkan::from_handle(merged)->allocation.offset == first);
    buffers[10] = merged;
    buffers[11] = nullptr;
    for (dsk_buffer* b : buffers) backend().buffer_free(b);
    CHECK(pool.bytes_in_use() == 0);

    // A buffer bigger than a block gets one of its own, returned when freed.
    dsk_buffer* big = nullptr;
    REQUIRE(take(backend().buffer_alloc(dev.device, 100ull << 20, 64, 0, &big)).code == DSK_OK);
    CHECK(pool.block_count() == 2);
    backend().buffer_free(big);
    CHECK(pool.block_count() == 1);
}

TEST_CASE("vulkan: an allocation larger than the device's memory is RESOURCE_EXHAUSTED with a message") {
    Device dev;
    if (!dev.ok) return;
    dsk_buffer* buffer = nullptr;
    const fake_host::Outcome out = take(backend().buffer_alloc(dev.device, 1ull << 50, 64, 0, &buffer));
    CHECK(out.code == DSK_RESOURCE_EXHAUSTED);
    CHECK(out.message.find("memory heap of vulkan#") != std::string::npos);
    CHECK(buffer == nullptr);
    CHECK(take(backend().buffer_alloc(dev.device, 64, 3, 0, &buffer)).code == DSK_INVALID_ARGUMENT);
}

TEST_CASE("vulkan: an empty flush gives a fence that follows the earlier work") {
    Device dev;
    if (!dev.ok) return;
    dsk_fence* fence = nullptr;
    REQUIRE(take(backend().queue_flush(dev.queue, &fence)).code == DSK_OK);
    CHECK(take(backend().fence_wait(fence, DSK_WAIT_INFINITE)).code == DSK_OK);
    CHECK(take(backend().fence_wait(fence, 0)).code == DSK_OK);  // stays signalled
    backend().fence_destroy(fence);
}

namespace {

// Eight 512^3 matmuls recorded on the queue: work that is still running right after the flush.
struct LongWork {
    Tensor a, y;
    explicit LongWork(const Device& dev) : a(dev, DSK_DTYPE_F32, {512, 512}), y(dev, DSK_DTYPE_F32, {512, 512}) {
        fill_random(a, 1);
        a.upload();
        for (int k = 0; k < 8; ++k) REQUIRE(record(dev, "MatMul", {}, {&a, &a}, {&y}).code == DSK_OK);
    }
};

}  // namespace

TEST_CASE("vulkan fence_wait returns UNAVAILABLE with timeout while the work runs") {
    Device dev;
    if (!dev.ok) return;
    const LongWork work(dev);
    dsk_fence* fence = nullptr;
    REQUIRE(take(backend().queue_flush(dev.queue, &fence)).code == DSK_OK);
    const fake_host::Outcome early = take(backend().fence_wait(fence, 0));
    CHECK(early.code == DSK_UNAVAILABLE);
    CHECK(early.message.find("timeout") != std::string::npos);
    CHECK(take(backend().fence_wait(fence, DSK_WAIT_INFINITE)).code == DSK_OK);
    backend().fence_destroy(fence);
}

TEST_CASE("vulkan fences are reset and reused: a reused fence waits for its new work") {
    Device dev;
    if (!dev.ok) return;
    dsk_fence* fence = nullptr;
    REQUIRE(take(backend().queue_flush(dev.queue, &fence)).code == DSK_OK);
    REQUIRE(take(backend().fence_wait(fence, DSK_WAIT_INFINITE)).code == DSK_OK);
    backend().fence_destroy(fence);
    REQUIRE(dev.object().idle_fences() == 1);

    const LongWork work(dev);
    REQUIRE(take(backend().queue_flush(dev.queue, &fence)).code == DSK_OK);
    CHECK(dev.object().idle_fences() == 0);  // the signalled one, reset
    CHECK(take(backend().fence_wait(fence, 0)).code == DSK_UNAVAILABLE);
    CHECK(take(backend().fence_wait(fence, DSK_WAIT_INFINITE)).code == DSK_OK);
    backend().fence_destroy(fence);
    CHECK(dev.object().idle_fences() == 1);
}

TEST_CASE("vulkan: a lost device and out-of-memory results become named errors") {
    try {
        dsk::vulkan::check_vk(VK_ERROR_DEVICE_LOST, "fence_wait on vulkan#0");
        FAIL("no error");
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_UNAVAILABLE);
        CHECK(std::string(e.what()).find("VK_ERROR_DEVICE_LOST") != std::string::npos);
        CHECK(std::string(e.what()).find("device lost") != std::string::npos);
    }
    try {
        dsk::vulkan::check_vk(VK_ERROR_OUT_OF_DEVICE_MEMORY, "allocating");
        FAIL("no error");
    } catch (const dsk::Error& e) {
        CHECK(e.code() == DSK_RESOURCE_EXHAUSTED);
    }
    Device dev;
    if (!dev.ok) return;
    dev.object().mark_lost();
    dsk_fence* fence = nullptr;
    const fake_host::Outcome out = take(backend().queue_flush(dev.queue, &fence));
    CHECK(out.code == DSK_UNAVAILABLE);
    CHECK(out.message.find("VK_ERROR_DEVICE_LOST") != std::string::npos);
    dsk_buffer* buffer = nullptr;
    CHECK(take(backend().buffer_alloc(dev.device, 64, 64, 0, &buffer)).code == DSK_UNAVAILABLE);
}
