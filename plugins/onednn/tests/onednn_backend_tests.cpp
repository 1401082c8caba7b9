// The onednn backend: its device (score 5, CPU type, host memory), supports_op answers, the
// primitive cache (a second call with the same shapes creates nothing), and that oneDNN runs on
// the same OpenMP pool as dsk's own parallel loops (no second pool on two cores).
#include <doctest/doctest.h>
#include <omp.h>

#include <dirent.h>

#include <string>
#include <vector>

#include "cpu_device.h"
#include "kernels/onednn_kernel_table.h"
#include "node_call.h"
#include "onednn_device.h"
#include "primitive_cache.h"
#include "threaded_host.h"

namespace {

using namespace onednn_tests;

const bool host_installed = (threaded_host::install(1), true);

// An opened onednn device, closed at the end of the scope.
struct Device {
    const dsk_backend_iface& iface = dsk::onednn::backend_iface();
    dsk_device* device = nullptr;
    Device() { REQUIRE(fake_host::take(iface.device_open(iface.self, 0, &device)).code == DSK_OK); }
    ~Device() { iface.device_close(device); }

    bool supports(const char* op, const std::vector<Attr>& attrs, std::vector<Tensor> inputs,
                  std::vector<Tensor> outputs) {
        Call c(op, attrs, inputs, outputs);
        return iface.supports_op(device, &c.node, c.tensors.data()) == 1;
    }
};

size_t thread_count_of_process() {
    size_t threads = 0;
    if (DIR* dir = opendir("/proc/self/task")) {
        while (const dirent* entry = readdir(dir))
            if (entry->d_name[0] != '.') ++threads;
        closedir(dir);
    }
    return threads;
}

}  // namespace

TEST_CASE("the onednn device is a CPU device on host memory that scores below cpu") {
    Device d;
    dsk_device_info info{};
    info.struct_size = sizeof info;
    REQUIRE(fake_host::take(d.iface.device_info(d.iface.self, 0, &info)).code == DSK_OK);
    CHECK(std::string(d.iface.name) == "onednn");
    CHECK(info.type == DSK_DEVICE_CPU);
    CHECK(info.score == 5);
    const dsk_backend_iface& cpu = dsk::cpu::backend_iface();
    dsk_device_info cpu_info{};
    cpu_info.struct_size = sizeof cpu_info;
    REQUIRE(fake_host::take(cpu.device_info(cpu.self, 0, &cpu_info)).code == DSK_OK);
    // Usable, but left out of automatic placement: only pipelines that name it use it.
    CHECK(info.score > 0);
    CHECK(info.score < cpu_info.score);

    dsk_buffer* buffer = nullptr;
    REQUIRE(fake_host::take(d.iface.buffer_alloc(d.device, 256, 64, 0, &buffer)).code == DSK_OK);
    void* host = nullptr;
    CHECK(fake_host::take(d.iface.buffer_map(buffer, &host)).code == DSK_OK);
    CHECK(host != nullptr);
    d.iface.buffer_free(buffer);

    dsk_device* missing = nullptr;
    const fake_host::Outcome o = fake_host::take(d.iface.device_open(d.iface.self, 1, &missing));
    CHECK(o.code == DSK_NOT_FOUND);
    CHECK(o.message.find("onednn") != std::string::npos);
}

TEST_CASE("onednn supports_op answers what its kernels handle") {
    Device d;
    const std::vector<int64_t> k2 = {2, 2};
    CHECK(d.supports("MatMul", {}, {f32({2, 3}), f32({3, 4})}, {f32({2, 4})}));
    CHECK(d.supports("Gemm", {}, {f32({2, 3}), f32({3, 4}), f32({4})}, {f32({2, 4})}));
    CHECK_FALSE(d.supports("MatMul", {}, {f32({2, 2, 3}), f32({3, 4})}, {f32({2, 2, 4})}));  // 3-D
    // One row (a GEMV) is faster on cpu.
    CHECK_FALSE(d.supports("Gemm", {Attr("transB", 1)}, {f32({1, 8}), f32({4, 8}), f32({4})}, {f32({1, 4})}));
    CHECK_FALSE(d.supports("Gemm", {Attr("transA", 1)}, {f32({8, 1}), f32({8, 4})}, {f32({1, 4})}));
    CHECK(d.supports("Gemm", {Attr("transA", 1)}, {f32({8, 2}), f32({8, 4})}, {f32({2, 4})}));
    CHECK_FALSE(d.supports("MatMul", {}, {i32({2, 3}), i32({3, 4})}, {i32({2, 4})}));       // dtype
    CHECK(d.supports("Conv", {Attr("group", 2)}, {f32({1, 4, 5, 5}), f32({6, 2, 3, 3})}, {f32({1, 6, 3, 3})}));
    CHECK_FALSE(d.supports("Conv", {Attr("group", 3)}, {f32({1, 4, 5, 5}), f32({6, 2, 3, 3})}, {f32({1, 6, 3, 3})}));
    CHECK_FALSE(d.supports("Conv", {}, {f32({1, 4, 5}), f32({6, 4, 3})}, {f32({1, 6, 3})}));  // 1-D conv
    CHECK(d.supports("MaxPool", {Attr("kernel_shape", k2)}, {f32({1, 1, 4, 4})}, {f32({1, 1, 3, 3})}));
    // The optional Indices output and ceil_mode stay on cpu.
    CHECK_FALSE(d.supports("MaxPool", {Attr("kernel_shape", k2)}, {f32({1, 1, 4, 4})},
                           {f32({1, 1, 3, 3}), Tensor{DSK_DTYPE_I64, {1, 1, 3, 3}, {}, {}, {}}}));
    CHECK_FALSE(d.supports("MaxPool", {Attr("kernel_shape", k2), Attr("ceil_mode", 1)}, {f32({1, 1, 4, 4})},
                           {f32({1, 1, 3, 3})}));
    CHECK(d.supports("Relu", {}, {f32({3})}, {f32({3})}));
    CHECK(d.supports("Gelu", {Attr("approximate", "tanh")}, {f32({3})}, {f32({3})}));
    CHECK_FALSE(d.supports("Gelu", {Attr("approximate", "erf")}, {f32({3})}, {f32({3})}));
    CHECK_FALSE(d.supports("HardSigmoid", {}, {f32({3})}, {f32({3})}));  // no oneDNN 2.6 algorithm
    CHECK(d.supports("ActivationGrad", {Attr("activation", "Silu")}, {f32({3}), f32({3})}, {f32({3})}));
    CHECK_FALSE(d.supports("ActivationGrad", {Attr("activation", "HardSigmoid")}, {f32({3}), f32({3})}, {f32({3})}));
    CHECK_FALSE(d.supports("ActivationGrad", {Attr("activation", "Neg")}, {f32({3}), f32({3})}, {f32({3})}));
    CHECK(d.supports("Softmax", {}, {f32({2, 3})}, {f32({2, 3})}));
    CHECK(d.supports("BatchNormalization", {}, {f32({2, 3}), f32({3}), f32({3}), f32({3}), f32({3})}, {f32({2, 3})}));
    const std::vector<Tensor> bn_grad = {f32({2, 3}), f32({2, 3}), f32({3}), f32({3}), f32({3})};
    CHECK(d.supports("BatchNormalizationGrad", {Attr("training_mode", 1)}, bn_grad, {f32({2, 3})}));
    CHECK(d.supports("BatchNormalizationGrad", {Attr("training_mode", 0)}, bn_grad, {f32({2, 3})}));
    CHECK_FALSE(d.supports("BatchNormalizationGrad", {}, {f32({6}), f32({6}), f32({1}), f32({1}), f32({1})},
                           {f32({6})}));  // X without a channel dimension
    // Fused ops: any activation with an eltwise algorithm; HardSigmoid (no algorithm) stays unfused.
    CHECK(d.supports("FusedGemm", {Attr("activation", "Relu")}, {f32({2, 3}), f32({3, 4}), f32({4})}, {f32({2, 4}), f32({2, 4})}));
    CHECK(d.supports("FusedConv", {Attr("activation", "Silu")}, {f32({1, 2, 4, 4}), f32({3, 2, 3, 3})}, {f32({1, 3, 2, 2})}));
    CHECK_FALSE(d.supports("FusedGemm", {Attr("activation", "HardSigmoid")}, {f32({2, 3}), f32({3, 4})}, {f32({2, 4})}));
    CHECK_FALSE(d.supports("FusedConv", {Attr("activation", "Neg")}, {f32({1, 2, 4, 4}), f32({3, 2, 3, 3})}, {f32({1, 3, 2, 2})}));
    // int8: u8 or i8 activations, i8 weights (u8 weights stay on cpu); zero points of the
    // tensor's dtype, per tensor (or per row / column / output channel where ONNX allows it).
    const Tensor a8 = bytes(DSK_DTYPE_U8, {4, 8}, 1, 0, 255), b8 = bytes(DSK_DTYPE_I8, {8, 3}, 2, -128, 127);
    const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
    const bool vnni = isa == dnnl::cpu_isa::avx512_core_vnni || isa == dnnl::cpu_isa::avx512_core_bf16 ||
                      isa == dnnl::cpu_isa::avx512_core_amx || isa == dnnl::cpu_isa::avx2_vnni;
    if (vnni) {  // where oneDNN's int8 products are exact (integer_kernels.cpp)
        CHECK(d.supports("MatMulInteger", {}, {a8, b8}, {i32({4, 3})}));
        CHECK(d.supports("MatMulInteger", {}, {a8, b8, bytes(DSK_DTYPE_U8, {4}, 3, 0, 9), bytes(DSK_DTYPE_I8, {3}, 4, 0, 9)},
                         {i32({4, 3})}));
        CHECK(d.supports("ConvInteger", {}, {bytes(DSK_DTYPE_U8, {1, 2, 4, 4}, 1, 0, 9), bytes(DSK_DTYPE_I8, {3, 2, 3, 3}, 1, 0, 9)},
                         {i32({1, 3, 2, 2})}));
    }
    CHECK_FALSE(d.supports("MatMulInteger", {}, {a8, bytes(DSK_DTYPE_U8, {8, 3}, 2, 0, 255)}, {i32({4, 3})}));
    CHECK_FALSE(d.supports("MatMulInteger", {}, {a8, b8, bytes(DSK_DTYPE_U8, {2}, 3, 0, 9)}, {i32({4, 3})}));
    // Ops the backend has no kernel for: placed on cpu.
    for (const char* op : {"Add", "ReduceSum", "LayerNormalization", "GlobalAveragePool", "Transpose", "AdamUpdate"})
        CHECK_FALSE_MESSAGE(d.supports(op, {}, {f32({2, 3}), f32({2, 3})}, {f32({2, 3})}), op);
}

TEST_CASE("a second call with the same shapes creates no primitive") {
    dsk::onednn::primitive_cache_clear();
    const dsk::onednn::PrimitiveCacheStats before = dsk::onednn::primitive_cache_stats();
    CHECK(before.size == 0);
    auto matmul = [](int64_t m) {
        std::vector<Tensor> in = {f32({m, 8}, 1), f32({8, 5}, 2)}, out = {f32({m, 5})};
        run_on(dsk::onednn::kernel_table(), "MatMul", {}, in, out);
    };
    matmul(4);
    const dsk::onednn::PrimitiveCacheStats first = dsk::onednn::primitive_cache_stats();
    CHECK(first.created == before.created + 1);
    for (int i = 0; i < 3; ++i) matmul(4);
    const dsk::onednn::PrimitiveCacheStats again = dsk::onednn::primitive_cache_stats();
    CHECK(again.created == first.created);
    CHECK(again.hits == first.hits + 3);
    matmul(6);  // another batch size: another primitive
    CHECK(dsk::onednn::primitive_cache_stats().created == first.created + 1);
    CHECK(dsk::onednn::primitive_cache_stats().size == 2);

    // Attributes are part of the key: the same shapes with another axis are another primitive.
    for (int64_t axis : {0, 1, 0, 1}) {
        std::vector<Tensor> in = {f32({3, 4}, 3)}, out = {f32({3, 4})};
        run_on(dsk::onednn::kernel_table(), "Softmax", {Attr("axis", axis)}, in, out);
    }
    CHECK(dsk::onednn::primitive_cache_stats().created == first.created + 3);
}

TEST_CASE("oneDNN runs on the OpenMP pool that dsk's own loops use") {
    const int threads = omp_get_max_threads();
    // dsk's parallel loops (kernel/thread_pool.cpp) are OpenMP parallel regions.
#pragma omp parallel
    { (void)omp_get_thread_num(); }
    const size_t after_dsk_loop = thread_count_of_process();
    std::vector<Tensor> in = {f32({256, 256}, 1), f32({256, 256}, 2)}, out = {f32({256, 256})};
    for (int i = 0; i < 3; ++i) run_on(dsk::onednn::kernel_table(), "MatMul", {}, in, out);
    // oneDNN added no thread of its own: its work ran on the threads of the same pool.
    CHECK(thread_count_of_process() == after_dsk_loop);
    CHECK(after_dsk_loop <= static_cast<size_t>(threads) + 1);
}
