// kernel_table.cpp - registration and lookup of the cpu kernels (see kernel_table.h).
#include "kernel_table.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace dsk::cpu {

//----------------------------------------------------------------------------------------------
// KernelArgs
//----------------------------------------------------------------------------------------------

void KernelArgs::missing(const char* what, size_t i, size_t count) const {
    fail(std::string(what) + " " + std::to_string(i) + " is missing (the node has " + std::to_string(count) + ")");
}

void KernelArgs::fail(const std::string& message) const {
    throw Error(DSK_INVALID_ARGUMENT, std::string(backend_) + " kernel " +
                                          (node_->op ? node_->op : "?") + ": " + message);
}

void KernelArgs::wrong_output_shape(size_t i, const int64_t* shape, size_t ndim) const {
    const dsk_tensor_desc& actual = output(i);
    fail("output " + std::to_string(i) + " has shape " + shape_text(shape_of(actual)) + " but " +
         shape_text(std::vector<int64_t>(shape, shape + ndim)) +
         " was expected (the schema's shape inference disagrees with the kernel)");
}

void KernelArgs::expect_rank(const dsk_tensor_desc& t, uint32_t ndim, const char* what) const {
    if (t.ndim != ndim)
        fail(std::string(what) + " must have " + std::to_string(ndim) + " dimensions, not " +
             std::to_string(t.ndim) + " (shape " + shape_text(shape_of(t)) + ")");
}

int64_t KernelArgs::axis(int64_t value, int64_t ndim, const char* attribute) const {
    if (value < -ndim || value >= std::max<int64_t>(ndim, 1))
        fail(std::string("attribute '") + attribute + "' = " + std::to_string(value) +
             " is out of range for a tensor of rank " + std::to_string(ndim));
    return value < 0 ? value + ndim : value;
}

//----------------------------------------------------------------------------------------------
// The table
//----------------------------------------------------------------------------------------------

KernelTable::KernelTable(const char* backend,
                         std::initializer_list<std::span<const KernelDef>> parts)
    : backend_(backend) {
    for (std::span<const KernelDef> part : parts)
        for (const KernelDef& def : part) defs_.push_back(&def);
    entries_.reserve(defs_.size());  // kernels_ point into entries_: no reallocation after this
    for (const KernelDef* def : defs_) {
        entries_.push_back(Entry{this, def});
        dsk_op_kernel k{};
        k.struct_size = sizeof(dsk_op_kernel);
        k.input_dtype_count = def->input_count;
        k.op = def->op;
        k.domain = "";
        k.backend = backend_;
        k.input_dtypes = def->inputs;
        k.self = &entries_.back();
        k.compute = &KernelTable::compute_thunk;
        kernels_.push_back(k);
    }
}

const KernelTable& cpu_kernel_table() {
    static const KernelTable table(
        "cpu", {linear_kernels(), conv_kernels(), pooling_kernels(), normalization_kernels(),
                activation_kernels(), elementwise_kernels(), softmax_kernels(), shape_kernels(),
                reduce_kernels(), dropout_kernels(), gather_kernels(), integer_kernels(),
                fused_kernels(), fused_elementwise_kernels(), gemm_chain_kernels()});
    return table;
}

namespace {

bool dtype_fits(uint32_t wanted, uint32_t actual) {
    return wanted == actual || (wanted == ANY && dtype_size(actual) != 0);  // the common case first
}

// Whether `node` fits `def`'s signature: counts and dtypes (on every call, so no allocation),
// and with `need_data` host memory behind every tensor with elements, in the same pass.
template <bool need_data>
bool fits_signature(const KernelDef& def, const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    const size_t inputs = node->input_count, outputs = node->output_count;
    if (inputs < def.required_inputs || (!def.variadic && inputs > def.input_count)) return false;
    if (outputs < def.required_outputs || outputs > def.output_count || tensors == nullptr) return false;
    const auto usable = [](uint32_t wanted, const dsk_tensor_desc& t) {
        return dtype_fits(wanted, t.dtype) && (!need_data || t.data != nullptr || numel(t) == 0);
    };
    for (size_t i = 0; i < inputs; ++i)  // a variadic kernel's inputs past the list: the last dtype
        if (!usable(def.inputs[std::min<size_t>(i, def.input_count - 1)], tensors[i])) return false;
    for (size_t i = 0; i < outputs; ++i)
        if (!usable(def.outputs[i], tensors[inputs + i])) return false;
    return true;
}

bool fits(const KernelDef& def, const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    return fits_signature<false>(def, node, tensors);
}

// Why `node` does not fit `def`, or "" when it does: the message of fits() == false.
std::string mismatch(const KernelDef& def, const dsk_node_view* node,
                     const dsk_tensor_desc* tensors, const std::string& backend) {
    const size_t inputs = node->input_count;
    const size_t outputs = node->output_count;
    if (inputs < def.required_inputs || (!def.variadic && inputs > def.input_count))
        return "takes " + std::to_string(def.required_inputs) +
               (def.variadic                            ? " or more"
                : def.input_count > def.required_inputs ? " to " + std::to_string(def.input_count)
                                                        : std::string()) +
               " inputs, not " + std::to_string(inputs);
    if (outputs < def.required_outputs || outputs > def.output_count)
        return "has " + std::to_string(def.required_outputs) +
               (def.output_count > def.required_outputs ? " to " + std::to_string(def.output_count)
                                                        : std::string()) +
               " outputs, not " + std::to_string(outputs);
    if (tensors == nullptr) return "no tensors";
    for (size_t i = 0; i < inputs; ++i) {
        const uint32_t wanted = def.inputs[std::min<size_t>(i, def.input_count - 1)];
        if (!dtype_fits(wanted, tensors[i].dtype))
            return "input " + std::to_string(i) + " is " + dtype_name(tensors[i].dtype) +
                   ", the " + backend + " kernel takes " + (wanted == ANY ? "any dtype" : dtype_name(wanted));
    }
    for (size_t i = 0; i < outputs; ++i) {
        const uint32_t wanted = def.outputs[i];
        const uint32_t actual = tensors[inputs + i].dtype;
        if (!dtype_fits(wanted, actual))
            return "output " + std::to_string(i) + " is " + dtype_name(actual) +
                   ", the " + backend + " kernel writes " + (wanted == ANY ? "any dtype" : dtype_name(wanted));
    }
    return {};
}

// Checked on every call: an inline loop over a few characters, not a call to strcmp.
bool same_op(const KernelDef& def, const dsk_node_view* node) {
    const bool core = node->domain == nullptr || node->domain[0] == '\0';
    if (!core || node->op == nullptr) return false;
    const char *a = def.op, *b = node->op;
    while (*a != '\0' && *a == *b) ++a, ++b;
    return *a == *b;
}

// Whether a call may run: the op, the signature and host memory behind every tensor with
// elements. Checked on every call (the C ABI does not promise that the node is one the kernel was
// chosen for); for a 16-float op these checks cost as much as the kernel, so they are plain loops.
bool callable(const KernelDef& def, const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    return node != nullptr && same_op(def, node) && fits_signature<true>(def, node, tensors);
}

// Why a call is refused (what the checks of KernelTable::compute found): thrown, off the hot path.
[[noreturn, gnu::noinline, gnu::cold]] void refuse(const KernelDef& def, dsk_exec_context* context,
                                                  const dsk_node_view* node,
                                                  const dsk_tensor_desc* tensors, const char* backend) {
    if (node == nullptr) throw Error(DSK_INVALID_ARGUMENT, std::string(backend) + " kernel: node is NULL");
    const KernelArgs args(context, node, tensors, backend);
    if (!same_op(def, node))
        args.fail(std::string("was given a node of op '") + (node->op ? node->op : "") + "'");
    if (!fits(def, node, tensors)) args.fail(mismatch(def, node, tensors, backend));
    for (size_t i = 0; i < args.input_count(); ++i)
        if (args.input(i).data == nullptr && numel(args.input(i)) != 0)
            args.fail("input " + std::to_string(i) + " has no host memory (data is NULL)");
    for (size_t i = 0; i < args.output_count(); ++i)
        if (args.output(i).data == nullptr && numel(args.output(i)) != 0)
            args.fail("output " + std::to_string(i) + " has no host memory (data is NULL)");
    args.fail("was refused for no reason found (a bug in KernelTable::compute)");
}

}  // namespace

dsk_status KernelTable::compute_thunk(void* self, dsk_exec_context* context,
                                      const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    const Entry& entry = *static_cast<const Entry*>(self);
    return entry.table->compute(*entry.def, context, node, tensors);
}

bool KernelTable::has_op(const dsk_node_view* node) const noexcept {
    if (node == nullptr || node->op == nullptr) return false;
    for (const KernelDef* def : defs_)
        if (same_op(*def, node)) return true;
    return false;
}

const KernelDef* KernelTable::find(const dsk_node_view* node,
                                   const dsk_tensor_desc* tensors) const noexcept {
    if (node == nullptr || node->op == nullptr) return nullptr;
    try {
        for (const KernelDef* def : defs_) {
            if (!same_op(*def, node) || !fits(*def, node, tensors)) continue;
            if (def->accepts != nullptr && !def->accepts(node, tensors)) continue;
            return def;
        }
    } catch (...) {
        // Out of memory while building a message: answer "no" rather than throw.
    }
    return nullptr;
}

dsk_status KernelTable::compute(const KernelDef& def, dsk_exec_context* context,
                                const dsk_node_view* node,
                                const dsk_tensor_desc* tensors) const noexcept {
    return guard([&] {
        if (!callable(def, node, tensors)) refuse(def, context, node, tensors, backend_);
        def.fn(KernelArgs(context, node, tensors, backend_));
    });
}

void KernelTable::register_all(Registrar& registrar) const {
    for (const dsk_op_kernel& k : kernels_) registrar.op_kernel(k);
}

}  // namespace dsk::cpu
