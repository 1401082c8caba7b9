// kernel_table.h - how the cpu backend declares, registers and looks up its op kernels.
//
// Each *_kernels.cpp file writes its kernels as plain C++ functions over a KernelArgs and lists
// them in one table:
//
//     void relu(const KernelArgs& args) { ... }      // throw dsk::Error to fail the node
//
//     const KernelDef kActivationKernels[] = {
//         kernel("Relu", {F32}, {F32}, relu),
//     };
//     std::span<const KernelDef> activation_kernels() { return kActivationKernels; }
//
// register_kernels() turns every KernelDef into a dsk_op_kernel (one compute thunk for all of
// them: it checks the node against the signature, runs the function under dsk::guard so that
// nothing throws across the ABI) and has_kernel() answers the backend's supports_op from the
// same tables, so the two cannot disagree.
//
// The machinery is not cpu-specific: a KernelTable is one backend's list of KernelDefs under its
// backend name. Other backends whose kernels work on host memory (plugins/onednn) build their
// own KernelTable from their own KernelDefs and register it the same way.
//
// Signatures: `inputs[i]` is the dtype of input i (0 = any dtype with a known element size).
// Inputs from `required_inputs` on are optional (Gemm's C, Conv's bias); a `variadic` kernel
// accepts any number of inputs past the list, each of the last listed dtype (Concat). Outputs
// after the first are optional (saved statistics, Dropout's mask) unless the op needs them.
#ifndef DSK_CPU_KERNELS_KERNEL_TABLE_H_
#define DSK_CPU_KERNELS_KERNEL_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <dsk/dsk_op.hpp>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

namespace dsk::cpu {

constexpr uint32_t F32 = DSK_DTYPE_F32;
constexpr uint32_t I64 = DSK_DTYPE_I64;
constexpr uint32_t U8 = DSK_DTYPE_U8;
constexpr uint32_t ANY = 0;

// What a kernel function sees: the node and its tensors (inputs then outputs, contiguous,
// host-visible), for the duration of one call.
class KernelArgs {
  public:
    // `backend` names the backend in error messages ("cpu kernel Gemm: ..."); static storage.
    KernelArgs(dsk_exec_context* context, const dsk_node_view* node, const dsk_tensor_desc* tensors,
               const char* backend = "cpu")
        : context_(context), node_(node), tensors_(tensors), attrs_(node), backend_(backend) {}

    const char* op() const { return node_->op; }
    const dsk_node_view* node() const { return node_; }
    const Attrs& attrs() const { return attrs_; }
    dsk_exec_context* context() const { return context_; }

    size_t input_count() const { return node_->input_count; }
    size_t output_count() const { return node_->output_count; }
    bool has_input(size_t i) const { return i < node_->input_count; }
    bool has_output(size_t i) const { return i < node_->output_count; }
    // Tensor i (fails when the node has no input or output i). Inline: kernels call them often.
    const dsk_tensor_desc& input(size_t i) const {
        if (i >= node_->input_count) missing("input", i, node_->input_count);
        return tensors_[i];
    }
    const dsk_tensor_desc& output(size_t i) const {
        if (i >= node_->output_count) missing("output", i, node_->output_count);
        return tensors_[node_->input_count + i];
    }
    const float* in(size_t i) const { return data_of<const float>(input(i)); }
    float* out(size_t i) const { return data_of<float>(output(i)); }

    // Throws dsk::Error(INVALID_ARGUMENT) with "<backend> kernel <op>: <message>".
    [[noreturn]] void fail(const std::string& message) const;
    // Fails unless output `i` has exactly `shape` (what the kernel is about to write). Neither
    // form allocates when the shape matches (this runs on every call of every kernel).
    void expect_output_shape(size_t i, std::initializer_list<int64_t> shape) const {
        expect_output_dims(i, shape.begin(), shape.size());
    }
    void expect_output_shape(size_t i, const std::vector<int64_t>& shape) const {
        expect_output_dims(i, shape.data(), shape.size());
    }
    // Fails unless output `i` has the shape of tensor `like` (an elementwise result).
    void expect_output_shape_of(size_t i, const dsk_tensor_desc& like) const {
        expect_output_dims(i, like.shape, like.ndim);
    }
    // Fails unless tensor `t` (named `what` in the message) has `ndim` dimensions.
    void expect_rank(const dsk_tensor_desc& t, uint32_t ndim, const char* what) const;
    // A possibly negative axis of a rank-`ndim` tensor, checked and made non-negative.
    int64_t axis(int64_t value, int64_t ndim, const char* attribute = "axis") const;

  private:
    // Inline when the shape matches; the message is built out of line.
    void expect_output_dims(size_t i, const int64_t* shape, size_t ndim) const {
        const dsk_tensor_desc& actual = output(i);
        size_t same = actual.ndim == ndim ? 0 : ndim + 1;  // a loop, not std::equal's memcmp call
        while (same < ndim && shape[same] == actual.shape[same]) ++same;
        if (same != ndim) wrong_output_shape(i, shape, ndim);
    }
    [[noreturn]] void wrong_output_shape(size_t i, const int64_t* shape, size_t ndim) const;
    [[noreturn]] void missing(const char* what, size_t i, size_t count) const;

    dsk_exec_context* context_;
    const dsk_node_view* node_;
    const dsk_tensor_desc* tensors_;
    Attrs attrs_;
    const char* backend_;
};

using KernelFn = void (*)(const KernelArgs& args);
// Optional extra condition for supports_op (attribute values, ranks); must not throw.
using KernelAccepts = bool (*)(const dsk_node_view* node, const dsk_tensor_desc* tensors);

constexpr size_t kMaxSignature = 6;

struct KernelDef {
    const char* op;
    uint32_t input_count;  // entries in `inputs`
    uint32_t inputs[kMaxSignature];
    uint32_t required_inputs;
    bool variadic;
    uint32_t output_count;  // entries in `outputs`: the most outputs the op has
    uint32_t outputs[kMaxSignature];
    uint32_t required_outputs;
    KernelFn fn;
    KernelAccepts accepts;
};

// A kernel whose inputs and outputs are all required.
constexpr KernelDef kernel(const char* op, std::initializer_list<uint32_t> inputs,
                           std::initializer_list<uint32_t> outputs, KernelFn fn,
                           KernelAccepts accepts = nullptr) {
    KernelDef def{op, 0, {}, 0, false, 0, {}, 0, fn, accepts};
    for (uint32_t dtype : inputs) def.inputs[def.input_count++] = dtype;
    for (uint32_t dtype : outputs) def.outputs[def.output_count++] = dtype;
    def.required_inputs = def.input_count;
    def.required_outputs = def.output_count;
    return def;
}

// Modifiers: kernel(...) | optional_inputs_from(2) | optional_outputs_from(1) | variadic.
struct OptionalInputsFrom {
    uint32_t index;
};
struct OptionalOutputsFrom {
    uint32_t index;
};
struct Variadic {};
constexpr OptionalInputsFrom optional_inputs_from(uint32_t index) {
    return {index};
}
constexpr OptionalOutputsFrom optional_outputs_from(uint32_t index) {
    return {index};
}
constexpr Variadic variadic{};

constexpr KernelDef operator|(KernelDef def, OptionalInputsFrom optional) {
    def.required_inputs = optional.index;
    return def;
}
constexpr KernelDef operator|(KernelDef def, OptionalOutputsFrom optional) {
    def.required_outputs = optional.index;
    return def;
}
constexpr KernelDef operator|(KernelDef def, Variadic) {
    def.variadic = true;
    return def;
}

// The tables, one per file.
std::span<const KernelDef> linear_kernels();         // linear_kernels.cpp
std::span<const KernelDef> conv_kernels();           // conv_kernels.cpp
std::span<const KernelDef> pooling_kernels();        // pooling_kernels.cpp
std::span<const KernelDef> normalization_kernels();  // normalization_kernels.cpp
std::span<const KernelDef> activation_kernels();     // activation_kernels.cpp
std::span<const KernelDef> elementwise_kernels();    // elementwise_kernels.cpp
std::span<const KernelDef> softmax_kernels();        // softmax_kernels.cpp
std::span<const KernelDef> shape_kernels();          // shape_kernels.cpp
std::span<const KernelDef> reduce_kernels();         // reduce_kernels.cpp
std::span<const KernelDef> dropout_kernels();        // dropout_kernels.cpp
std::span<const KernelDef> gather_kernels();         // gather_kernels.cpp
std::span<const KernelDef> integer_kernels();        // integer_kernels.cpp
std::span<const KernelDef> fused_kernels();          // fused_kernels.cpp
std::span<const KernelDef> fused_elementwise_kernels();  // fused_elementwise_kernels.cpp
std::span<const KernelDef> gemm_chain_kernels();     // gemm_chain_kernels.cpp

// One backend's kernels. Keep it in static storage: register_all() hands the kernel
// dsk_op_kernel structs that point into it, borrowed until the plugin's shutdown.
class KernelTable {
  public:
    // `backend` (static storage) is the dsk_backend_iface name the kernels run on.
    KernelTable(const char* backend, std::initializer_list<std::span<const KernelDef>> parts);
    KernelTable(const KernelTable&) = delete;
    KernelTable& operator=(const KernelTable&) = delete;

    const char* backend() const { return backend_; }
    // Every kernel, in table order.
    const std::vector<const KernelDef*>& defs() const { return defs_; }
    // The kernel for this node, or nullptr: op (core domain), input/output counts and dtypes,
    // and the kernel's own `accepts` condition. The backend's supports_op. Never throws.
    const KernelDef* find(const dsk_node_view* node, const dsk_tensor_desc* tensors) const noexcept;
    // Whether the table has any kernel for the node's op (whatever its inputs).
    bool has_op(const dsk_node_view* node) const noexcept;
    // Registers every kernel for this backend (domain "").
    void register_all(Registrar& registrar) const;
    // Runs one kernel as the kernel's executor would (the dsk_op_kernel compute thunk).
    dsk_status compute(const KernelDef& def, dsk_exec_context* context, const dsk_node_view* node,
                       const dsk_tensor_desc* tensors) const noexcept;

  private:
    struct Entry {
        const KernelTable* table;
        const KernelDef* def;
    };
    static dsk_status compute_thunk(void* self, dsk_exec_context* context,
                                    const dsk_node_view* node, const dsk_tensor_desc* tensors);

    const char* backend_;
    std::vector<const KernelDef*> defs_;
    std::vector<Entry> entries_;         // one per def: the compute thunk's `self`
    std::vector<dsk_op_kernel> kernels_; // what register_all() registers
};

// The cpu backend's table: every kernel of every table above, in a stable order.
const KernelTable& cpu_kernel_table();
inline const std::vector<const KernelDef*>& all_kernels() { return cpu_kernel_table().defs(); }

// The cpu kernel for this node, or nullptr (see KernelTable::find).
inline const KernelDef* find_kernel(const dsk_node_view* node,
                                    const dsk_tensor_desc* tensors) noexcept {
    return cpu_kernel_table().find(node, tensors);
}

// Whether the cpu table has any kernel for the node's op (whatever its inputs).
inline bool has_op(const dsk_node_view* node) noexcept { return cpu_kernel_table().has_op(node); }

// supports_op of the cpu backend.
inline bool has_kernel(const dsk_node_view* node, const dsk_tensor_desc* tensors) noexcept {
    return find_kernel(node, tensors) != nullptr;
}

// Registers every cpu kernel (backend "cpu", domain "").
inline void register_kernels(Registrar& registrar) { cpu_kernel_table().register_all(registrar); }

// Runs one cpu kernel as the kernel's executor would (the dsk_op_kernel compute thunk): for tests.
inline dsk_status compute(const KernelDef& def, dsk_exec_context* context,
                          const dsk_node_view* node, const dsk_tensor_desc* tensors) noexcept {
    return cpu_kernel_table().compute(def, context, node, tensors);
}

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_KERNEL_TABLE_H_
