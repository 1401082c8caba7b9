// kernel_table.h - how the vulkan backend declares, registers and looks up its op kernels.
//
// A kernel is a C++ function that records dispatches on the node's queue (host->exec_queue)
// and returns at once: nothing runs until the kernel (the dsk one) flushes the queue. Each
// *_kernels.cpp file lists its kernels in one table:
//
//     void relu(const KernelArgs& args) { ... args.dispatch("unary", ...); }
//     const KernelDef kActivationKernels[] = {
//         {"Relu", 1, 1, 1, 1, {F32}, {F32}, relu},
//     };
//
// register_kernels() turns every KernelDef into a dsk_op_kernel with one compute thunk (it
// checks the node against the signature and runs the function under dsk::guard) and
// has_kernel() answers supports_op from the same tables, so the two cannot disagree.
#ifndef DSK_VULKAN_KERNELS_KERNEL_TABLE_H_
#define DSK_VULKAN_KERNELS_KERNEL_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include <dsk/dsk_op.hpp>

#include "vulkan_device.h"

namespace dsk::vulkan {

constexpr uint32_t F32 = DSK_DTYPE_F32;
constexpr uint32_t I64 = DSK_DTYPE_I64;
constexpr uint32_t U8 = DSK_DTYPE_U8;
constexpr uint32_t ANY = 0;

// Workgroup size of the one-dimensional shaders: a multiple of lavapipe's 8 lanes and of the
// 32/64-wide subgroups of GPUs.
constexpr uint32_t kLocalSize = 64;

// What a kernel function sees during one compute call.
class KernelArgs {
  public:
    KernelArgs(dsk_exec_context* context, const dsk_node_view* node, const dsk_tensor_desc* tensors);

    const char* op() const { return node_->op; }
    const Attrs& attrs() const { return attrs_; }
    const dsk_node_view& node() const { return *node_; }
    dsk_exec_context* context() const { return context_; }

    size_t input_count() const { return node_->input_count; }
    size_t output_count() const { return node_->output_count; }
    bool has_input(size_t i) const { return i < node_->input_count; }
    bool has_output(size_t i) const { return i < node_->output_count; }
    const dsk_tensor_desc& input(size_t i) const;
    const dsk_tensor_desc& output(size_t i) const;

    // The queue this node records on, and its device.
    VulkanQueue& queue() const { return *queue_; }
    VulkanDevice& device() const { return queue_->device(); }

    // The tensor's memory as a shader binding (fails for a tensor without a vulkan buffer).
    BufferRange range(const dsk_tensor_desc& t) const;

    // Records `shader` (with `bindings` and these specialization constants) over `groups`
    // workgroups; the parameters follow the bindings' word offsets in the push constants.
    void dispatch(const char* shader, std::initializer_list<const dsk_tensor_desc*> bindings,
                  std::initializer_list<int32_t> specialization, std::span<const uint32_t> params,
                  uint32_t groups_x, uint32_t groups_y = 1, uint32_t groups_z = 1) const;
    // The same over `items` invocations of a kLocalSize-wide shader, spread over x and y when
    // there are more workgroups than maxComputeWorkGroupCount[0] (the shaders linearise
    // gl_WorkGroupID with gl_NumWorkGroups.x).
    void dispatch_items(const char* shader, std::initializer_list<const dsk_tensor_desc*> bindings,
                        std::initializer_list<int32_t> specialization,
                        std::span<const uint32_t> params, uint64_t items) const;

    // Throws dsk::Error(INVALID_ARGUMENT) with "vulkan kernel <op>: <message>".
    [[noreturn]] void fail(const std::string& message) const;
    void expect_output_shape(size_t i, const std::vector<int64_t>& shape) const;
    int64_t axis(int64_t value, int64_t ndim, const char* attribute = "axis") const;

  private:
    dsk_exec_context* context_;
    const dsk_node_view* node_;
    const dsk_tensor_desc* tensors_;
    Attrs attrs_;
    VulkanQueue* queue_ = nullptr;
};

// A float as the 32-bit word a push constant carries.
uint32_t float_bits(float value);
// A count as a 32-bit shader parameter; fails when it does not fit.
uint32_t u32(const KernelArgs& args, int64_t value, const char* what);

using KernelFn = void (*)(const KernelArgs& args);
// Extra condition for supports_op (attributes, ranks, sizes); must not throw.
using KernelAccepts = bool (*)(const dsk_node_view* node, const dsk_tensor_desc* tensors);
// What the kernel needs of the device (optional features); must not throw.
using DeviceAccepts = bool (*)(const PhysicalDevice& device);

constexpr size_t kMaxSignature = 6;

struct KernelDef {
    const char* op;
    uint32_t min_inputs, max_inputs;
    uint32_t min_outputs, max_outputs;
    uint32_t inputs[kMaxSignature];   // dtype of input i (the last entry repeats)
    uint32_t outputs[kMaxSignature];  // dtype of output i
    KernelFn fn;
    KernelAccepts accepts = nullptr;
    DeviceAccepts device_accepts = nullptr;
};

// The tables, one per file.
std::span<const KernelDef> matmul_kernels();       // matmul_kernels.cpp
std::span<const KernelDef> elementwise_kernels();  // elementwise_kernels.cpp
std::span<const KernelDef> reduce_kernels();       // reduce_kernels.cpp
std::span<const KernelDef> softmax_kernels();      // softmax_kernels.cpp
std::span<const KernelDef> shape_kernels();        // shape_kernels.cpp
std::span<const KernelDef> conv_kernels();         // conv_kernels.cpp
std::span<const KernelDef> pooling_kernels();      // pooling_kernels.cpp
std::span<const KernelDef> dropout_kernels();      // dropout_kernels.cpp
std::span<const KernelDef> normalization_kernels();  // normalization_kernels.cpp
std::span<const KernelDef> gather_kernels();       // gather_kernels.cpp
std::span<const KernelDef> optimizer_kernels();    // optimizer_kernels.cpp

const std::vector<const KernelDef*>& all_kernels();

// The kernel for this node (on `device`, when given), or nullptr. Never throws.
const KernelDef* find_kernel(const dsk_node_view* node, const dsk_tensor_desc* tensors,
                             const PhysicalDevice* device = nullptr) noexcept;
inline bool has_kernel(const dsk_node_view* node, const dsk_tensor_desc* tensors,
                       const PhysicalDevice* device = nullptr) noexcept {
    return find_kernel(node, tensors, device) != nullptr;
}

// Registers every kernel (backend "vulkan", domain "").
void register_kernels(Registrar& registrar);

// The dsk_op_kernel compute thunk of one kernel: for tests.
dsk_status compute(const KernelDef& def, dsk_exec_context* context, const dsk_node_view* node,
                   const dsk_tensor_desc* tensors) noexcept;

}  // namespace dsk::vulkan

#endif  // DSK_VULKAN_KERNELS_KERNEL_TABLE_H_
