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
    if (wanted == ANY) return dtype_size(actual) != 0;
    return wanted == actual;
}

// Whether `node` fits `def`'s signature: counts and dtypes (on every call, so no allocation).
bool fits(const KernelDef& def, const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    const size_t inputs = node->input_count, outputs = node->output_count;
    if (inputs < def.required_inputs || (!def.variadic && inputs > def.input_count)) return false;
    if (outputs < def.required_outputs || outputs > def.output_count || tensors == nullptr) return false;
    for (size_t i = 0; i < inputs; ++i)
        if (!dtype_fits(def.inputs[std::min<size_t>(i, def.input_count - 1)], tensors[i].dtype)) return false;
    for (size_t i = 0; i < outputs; ++i)
        if (!dtype_fits(def.outputs[i], tensors[inputs + i].dtype)) return false;
    return true;
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

// Checks that every tensor with elements has host memory.
void check_data(const KernelArgs& args) {
    for (size_t i = 0; i < args.input_count(); ++i)
        if (args.input(i).data == nullptr && numel(args.input(i)) != 0)
            args.fail("input " + std::to_string(i) + " has no host memory (data is NULL)");
    for (size_t i = 0; i < args.output_count(); ++i)
        if (args.output(i).data == nullptr && numel(args.output(i)) != 0)
            args.fail("output " + std::to_string(i) + " has no host memory (data is NULL)");
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
        if (node == nullptr)
            throw Error(DSK_INVALID_ARGUMENT, std::string(backend_) + " kernel: node is NULL");
        const KernelArgs args(context, node, tensors, backend_);
        if (!same_op(def, node))
            args.fail(std::string("was given a node of op '") + (node->op ? node->op : "") + "'");
        if (!fits(def, node, tensors)) args.fail(mismatch(def, node, tensors, backend_));
        check_data(args);
        def.fn(args);
    });
}

void KernelTable::register_all(Registrar& registrar) const {
    for (const dsk_op_kernel& k : kernels_) registrar.op_kernel(k);
}

}  // namespace dsk::cpu
