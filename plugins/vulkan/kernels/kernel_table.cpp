// kernel_table.cpp - registration, lookup and the argument helpers of the vulkan kernels.
#include "kernel_table.h"

#include <algorithm>
#include <cstring>

#include "vulkan_backend.h"

namespace dsk::vulkan {

//----------------------------------------------------------------------------------------------
// KernelArgs
//----------------------------------------------------------------------------------------------

KernelArgs::KernelArgs(dsk_exec_context* context, const dsk_node_view* node,
                       const dsk_tensor_desc* tensors)
    : context_(context), node_(node), tensors_(tensors), attrs_(node) {
    const dsk_host_api& api = host();
    if (!DSK_HAS_MEMBER(&api, dsk_host_api, exec_queue) || api.exec_queue == nullptr)
        fail("the dsk kernel offers no exec_queue (ABI 1.1); install a dsk of ABI 1.1 or later");
    dsk_queue* queue = api.exec_queue(context);
    if (queue == nullptr) fail("the session gave this node no queue (exec_queue returned NULL)");
    queue_ = from_handle(queue);
}

const dsk_tensor_desc& KernelArgs::input(size_t i) const {
    if (i >= node_->input_count)
        fail("input " + std::to_string(i) + " is missing (the node has " +
             std::to_string(node_->input_count) + ")");
    return tensors_[i];
}

const dsk_tensor_desc& KernelArgs::output(size_t i) const {
    if (i >= node_->output_count)
        fail("output " + std::to_string(i) + " is missing (the node has " +
             std::to_string(node_->output_count) + ")");
    return tensors_[node_->input_count + i];
}

BufferRange KernelArgs::range(const dsk_tensor_desc& t) const {
    const uint64_t bytes = static_cast<uint64_t>(numel(t)) * dtype_size(t.dtype);
    if (t.buffer == nullptr)
        fail("a tensor of shape " + shape_text(shape_of(t)) +
             " has no buffer; vulkan kernels read tensors[i].buffer, which must be memory of "
             "this vulkan device (the session inserts the copies)");
    const VulkanBuffer* buffer = from_handle(t.buffer);
    if (buffer->device != &device())
        fail("a tensor lives on " + buffer->device->label() + ", the node runs on " + device().label());
    if (!is_contiguous(t)) fail("a tensor of shape " + shape_text(shape_of(t)) + " is not contiguous");
    if (t.offset > buffer->size || bytes > buffer->size - t.offset)
        fail(std::to_string(bytes) + " bytes at offset " + std::to_string(t.offset) +
             " do not fit the tensor's " + std::to_string(buffer->size) + "-byte buffer");
    return {buffer, t.offset, bytes};
}

void KernelArgs::dispatch(const char* shader, std::initializer_list<const dsk_tensor_desc*> bindings,
                          std::initializer_list<int32_t> specialization,
                          std::span<const uint32_t> params, uint32_t groups_x, uint32_t groups_y,
                          uint32_t groups_z) const {
    BufferRange ranges[kMaxBindings];
    size_t count = 0;
    for (const dsk_tensor_desc* t : bindings) ranges[count++] = range(*t);
    const std::vector<int32_t> spec(specialization);
    const Pipeline& pipeline =
        device().pipelines().get(shader, static_cast<uint32_t>(count), spec);
    queue().dispatch(pipeline, std::span<const BufferRange>(ranges, count), params, groups_x,
                     groups_y, groups_z);
}

void KernelArgs::dispatch_items(const char* shader,
                                std::initializer_list<const dsk_tensor_desc*> bindings,
                                std::initializer_list<int32_t> specialization,
                                std::span<const uint32_t> params, uint64_t items) const {
    const uint64_t groups = (items + kLocalSize - 1) / kLocalSize;
    const uint64_t max_x = device().physical().properties.limits.maxComputeWorkGroupCount[0];
    const uint64_t x = std::min(groups, max_x);
    const uint64_t y = x == 0 ? 0 : (groups + x - 1) / x;
    dispatch(shader, bindings, specialization, params, static_cast<uint32_t>(x),
             static_cast<uint32_t>(y));
}

void KernelArgs::fail(const std::string& message) const {
    throw Error(DSK_INVALID_ARGUMENT,
                std::string("vulkan kernel ") + (node_->op ? node_->op : "?") + ": " + message);
}

void KernelArgs::expect_output_shape(size_t i, const std::vector<int64_t>& shape) const {
    const std::vector<int64_t> actual = shape_of(output(i));
    if (actual != shape)
        fail("output " + std::to_string(i) + " has shape " + shape_text(actual) + " but " +
             shape_text(shape) + " was expected (the schema's shape inference disagrees with the kernel)");
}

int64_t KernelArgs::axis(int64_t value, int64_t ndim, const char* attribute) const {
    if (value < -ndim || value >= std::max<int64_t>(ndim, 1))
        fail(std::string("attribute '") + attribute + "' = " + std::to_string(value) +
             " is out of range for a tensor of rank " + std::to_string(ndim));
    return value < 0 ? value + ndim : value;
}

uint32_t float_bits(float value) {
    uint32_t bits = 0;
    std::memcpy(&bits, &value, sizeof bits);
    return bits;
}

uint32_t u32(const KernelArgs& args, int64_t value, const char* what) {
    if (value < 0 || value > static_cast<int64_t>(UINT32_MAX))
        args.fail(std::string(what) + " = " + std::to_string(value) +
                  " does not fit the shaders' 32-bit indices");
    return static_cast<uint32_t>(value);
}

//----------------------------------------------------------------------------------------------
// The table
//----------------------------------------------------------------------------------------------

const std::vector<const KernelDef*>& all_kernels() {
    static const std::vector<const KernelDef*> table = [] {
        std::vector<const KernelDef*> kernels;
        for (std::span<const KernelDef> part : {matmul_kernels(), elementwise_kernels(), reduce_kernels(), softmax_kernels(), shape_kernels(),
              conv_kernels(), pooling_kernels(), dropout_kernels(),
              normalization_kernels(), gather_kernels(), optimizer_kernels()})
            for (const KernelDef& def : part) kernels.push_back(&def);
        return kernels;
    }();
    return table;
}

namespace {

bool same_op(const KernelDef& def, const dsk_node_view* node) {
    const bool core = node->domain == nullptr || node->domain[0] == '\0';
    return core && node->op != nullptr && std::strcmp(def.op, node->op) == 0;
}

// Why `node` does not fit `def`, or "" when it does.
std::string mismatch(const KernelDef& def, const dsk_node_view* node, const dsk_tensor_desc* tensors) {
    const size_t inputs = node->input_count;
    const size_t outputs = node->output_count;
    if (inputs < def.min_inputs || inputs > def.max_inputs)
        return "takes " + std::to_string(def.min_inputs) + " to " + std::to_string(def.max_inputs) +
               " inputs, not " + std::to_string(inputs);
    if (outputs < def.min_outputs || outputs > def.max_outputs)
        return "has " + std::to_string(def.min_outputs) + " to " + std::to_string(def.max_outputs) +
               " outputs, not " + std::to_string(outputs);
    if (tensors == nullptr) return "no tensors";
    for (size_t i = 0; i < inputs + outputs; ++i) {
        const bool is_input = i < inputs;
        const size_t k = is_input ? i : i - inputs;
        const size_t last = (is_input ? def.max_inputs : def.max_outputs) - 1;
        const size_t slot = std::min(std::min(k, last), kMaxSignature - 1);
        const uint32_t wanted = (is_input ? def.inputs : def.outputs)[slot];
        const uint32_t actual = tensors[i].dtype;
        if (wanted == ANY ? dtype_size(actual) == 0 : wanted != actual)
            return std::string(is_input ? "input " : "output ") + std::to_string(k) + " is " +
                   dtype_name(actual) + ", the vulkan kernel takes " +
                   (wanted == ANY ? "any dtype" : dtype_name(wanted));
    }
    return {};
}

dsk_status compute_thunk(void* self, dsk_exec_context* context, const dsk_node_view* node,
                         const dsk_tensor_desc* tensors) {
    return compute(*static_cast<const KernelDef*>(self), context, node, tensors);
}

}  // namespace

const KernelDef* find_kernel(const dsk_node_view* node, const dsk_tensor_desc* tensors,
                             const PhysicalDevice* device) noexcept {
    if (node == nullptr || node->op == nullptr) return nullptr;
    try {
        for (const KernelDef* def : all_kernels()) {
            if (!same_op(*def, node) || !mismatch(*def, node, tensors).empty()) continue;
            if (def->accepts != nullptr && !def->accepts(node, tensors)) continue;
            if (device != nullptr && def->device_accepts != nullptr && !def->device_accepts(*device)) continue;
            return def;
        }
    } catch (...) {
        // Out of memory while building a message: answer "no" rather than throw.
    }
    return nullptr;
}

dsk_status compute(const KernelDef& def, dsk_exec_context* context, const dsk_node_view* node,
                   const dsk_tensor_desc* tensors) noexcept {
    return guard([&] {
        if (node == nullptr) throw Error(DSK_INVALID_ARGUMENT, "vulkan kernel: node is NULL");
        const KernelArgs args(context, node, tensors);
        if (!same_op(def, node))
            args.fail(std::string("was given a node of op '") + (node->op ? node->op : "") + "'");
        if (const std::string why = mismatch(def, node, tensors); !why.empty()) args.fail(why);
        if (def.accepts != nullptr && !def.accepts(node, tensors))
            args.fail("this node's attributes or shapes are outside what the vulkan kernel "
                      "implements (supports_op answers 0 for it)");
        if (def.device_accepts != nullptr && !def.device_accepts(args.device().physical()))
            args.fail(args.device().label() + " lacks a feature this kernel needs (supports_op answers 0 for it)");
        def.fn(args);
    });
}

void register_kernels(Registrar& registrar) {
    static const std::vector<dsk_op_kernel> kernels = [] {
        std::vector<dsk_op_kernel> list;
        for (const KernelDef* def : all_kernels()) {
            dsk_op_kernel k{};
            k.struct_size = sizeof(dsk_op_kernel);
            k.input_dtype_count = def->min_inputs;
            k.op = def->op;
            k.domain = "";
            k.backend = "vulkan";
            k.input_dtypes = def->inputs;
            k.self = const_cast<KernelDef*>(def);
            k.compute = &compute_thunk;
            list.push_back(k);
        }
        return list;
    }();
    for (const dsk_op_kernel& k : kernels) registrar.op_kernel(k);
}

}  // namespace dsk::vulkan
