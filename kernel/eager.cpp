#include "eager.h"

#include <cstring>

#include "dsk/dsk_tensor.hpp"
#include "eager_autograd.h"
#include "kernel.h"
#include "session.h"
#include "status.h"

using namespace dsk::kernel;

namespace {

void make_contiguous(dsk_tensor_desc& d) {
    int64_t stride = 1;
    for (uint32_t i = d.ndim; i-- > 0;) {
        d.strides[i] = stride;
        stride *= d.shape[i];
    }
}

std::string describe(const dsk_tensor_desc& d) {
    return std::string(dsk::dtype_name(d.dtype)) + " " + dsk::shape_text(dsk::shape_of(d));
}

}  // namespace

dsk_eager::dsk_eager(dsk_kernel* k, const std::string& device_name, uint64_t s) : kernel(k), seed(s) {
    preference = resolve_preference(*kernel, nullptr, device_name);
    const std::string& name = preference.backends.front();
    const auto& entry = kernel->registry.backends.at(name);
    if (entry.plugin && entry.plugin->library) libraries.push_back(entry.plugin->library);
    const DeviceRecord* best = nullptr;
    for (const auto& d : kernel->devices)
        if (d.backend == name && d.info.score > 0 && (!best || d.info.score > best->info.score)) best = &d;
    if (!best) throw Error(DSK_UNAVAILABLE, "device backend '" + name + "' has no usable device");
    device = {name, entry.iface, nullptr};
    host_memory = best->info.type == DSK_DEVICE_CPU;
    throw_if_error(device.backend->device_open(device.backend->self, best->index, &device.device), "opening " + name);
    if (dsk_status st = device.backend->queue_create(device.device, &queue)) {
        device.backend->device_close(device.device);
        throw_if_error(st, "creating a queue on " + name);
    }
}

dsk_eager::~dsk_eager() {
    tape.reset();  // its tensors' buffers go back to the device
    for (const auto& [bytes, list] : cached)
        for (const CachedBuffer& c : list) device.backend->buffer_free(c.buffer);
    for (dsk_eager_tensor* t : spare_tensors) delete t;
    device.backend->queue_destroy(queue);
    device.backend->device_close(device.device);
}

void dsk_eager::recycle(dsk_eager_tensor* t) {
    if (spare_tensors.size() >= kSpareTensors) {
        delete t;
        return;
    }
    spare_tensors.push_back(t);
}

dsk_eager_tensor* dsk_eager::make(const dsk_tensor_desc& shape) {
    std::unique_ptr<dsk_eager_tensor> t;
    if (spare_tensors.empty()) {
        t = std::make_unique<dsk_eager_tensor>();
    } else {
        t.reset(spare_tensors.back());
        spare_tensors.pop_back();
        t->references.store(1, std::memory_order_relaxed);
        t->desc = dsk_tensor_desc{};
        t->tape_epoch = 0;
        t->tape_value = DSK_VALUE_NONE;
    }
    t->eager = this;
    t->desc.struct_size = sizeof(dsk_tensor_desc);
    t->desc.dtype = shape.dtype;
    t->desc.ndim = shape.ndim;
    for (uint32_t i = 0; i < shape.ndim; ++i) t->desc.shape[i] = shape.shape[i];
    make_contiguous(t->desc);
    t->bytes = dsk::byte_size(t->desc);
    t->desc.device = device.device;
    if (auto it = cached.find(t->bytes); it != cached.end() && !it->second.empty()) {
        t->desc.buffer = it->second.back().buffer;
        t->desc.data = it->second.back().data;
        cached_bytes -= t->bytes;
        it->second.pop_back();
        return t.release();
    }
    dsk_buffer* buffer = nullptr;
    throw_if_error(device.backend->buffer_alloc(device.device, t->bytes, 64, host_memory ? DSK_BUFFER_HOST_VISIBLE : 0u, &buffer),
                   "allocating " + std::to_string(t->bytes) + " bytes on " + device.name);
    t->desc.buffer = buffer;
    void* data = nullptr;
    if (device.backend->buffer_map) {
        if (dsk_status st = device.backend->buffer_map(buffer, &data)) free_status(st);  // device-only memory
        else t->desc.data = data;
    }
    return t.release();
}

void dsk_eager::free_buffer(dsk_buffer* buffer, void* data, uint64_t bytes) {
    if (cached_bytes + bytes > kCachedBytes) {
        device.backend->buffer_free(buffer);
        return;
    }
    cached[bytes].push_back(CachedBuffer{buffer, data});
    cached_bytes += bytes;
}

dsk_eager_tensor* dsk_eager::make_from_host(const dsk_tensor_desc& desc, const void* host) {
    std::unique_ptr<dsk_eager_tensor, void (*)(dsk_eager_tensor*)> t(make(desc), dsk_eager_tensor_release);
    write(*t, host);
    return t.release();
}

void dsk_eager::write(dsk_eager_tensor& t, const void* host) {
    if (!t.bytes) return;
    if (t.desc.data) {
        std::memcpy(t.desc.data, host, t.bytes);
        return;
    }
    throw_if_error(device.backend->copy_to_device(queue, host, t.desc.buffer, 0, t.bytes), "copying to " + device.name);
    dsk_fence* fence = nullptr;
    throw_if_error(device.backend->queue_flush(queue, &fence), "submitting to " + device.name);
    dsk_status st = device.backend->fence_wait(fence, DSK_WAIT_INFINITE);
    device.backend->fence_destroy(fence);
    throw_if_error(st, "waiting for " + device.name);
}

void dsk_eager::read(const dsk_eager_tensor& t, void* host) {
    if (!t.bytes) return;
    if (!host_memory || !t.desc.data)
        throw_if_error(device.backend->copy_to_host(queue, t.desc.buffer, 0, host, t.bytes), "copying from " + device.name);
    dsk_fence* fence = nullptr;  // also completes the ops that made `t`
    throw_if_error(device.backend->queue_flush(queue, &fence), "submitting to " + device.name);
    dsk_status st = device.backend->fence_wait(fence, DSK_WAIT_INFINITE);
    device.backend->fence_destroy(fence);
    throw_if_error(st, "waiting for " + device.name);
    if (host_memory && t.desc.data) std::memcpy(host, t.desc.data, t.bytes);
}

const dsk_eager::Dispatch& dsk_eager::find_dispatch(const char* op, dsk_eager_tensor* const* inputs, size_t input_count) {
    for (const Dispatch& d : dispatch) {
        if (d.dtypes.size() != input_count || std::strcmp(d.op.c_str(), op) != 0) continue;
        bool same = true;
        for (size_t i = 0; i < input_count && same; ++i) same = d.dtypes[i] == inputs[i]->desc.dtype;
        if (same) return d;
    }
    Dispatch d;
    d.op = op;
    for (size_t i = 0; i < input_count; ++i) d.dtypes.push_back(inputs[i]->desc.dtype);
    const auto& schema = find_op_schema(*kernel, d.op);
    d.schema = schema.iface;
    if (schema.plugin && schema.plugin->library) libraries.push_back(schema.plugin->library);
    if (auto dot = d.op.rfind('.'); dot != std::string::npos) {
        d.domain = d.op.substr(0, dot);
        d.name = dot + 1;
    }
    const std::string bare = d.op.substr(d.name);
    const auto* k = find_kernel(kernel->registry, bare, d.domain, d.dtypes, device.name);
    if (!k)
        if (Plugin* provider = kernel->find_provider("kernel", bare + "@" + device.name))
            if (provider->state == PluginState::Available) {
                kernel->load(provider->manifest.name, *VersionRange::parse("*"));
                k = find_kernel(kernel->registry, bare, d.domain, d.dtypes, device.name);
            }
    if (!k) {
        std::string types;
        for (uint32_t t : d.dtypes) types += (types.empty() ? "" : ", ") + std::string(dsk::dtype_name(t));
        throw Error(DSK_UNIMPLEMENTED, "no " + device.name + " kernel for op " + d.op + " with inputs (" + types + ")");
    }
    if (k->plugin && k->plugin->library) libraries.push_back(k->plugin->library);
    d.kernel = k->iface;
    dispatch.push_back(std::move(d));
    return dispatch.back();
}

dsk_value_id dsk_eager::traced_value(dsk_eager_tensor* t) {
    auto it = trace->values.find(t);
    if (it != trace->values.end()) return it->second;
    // Made before the trace (a weight): tensors never change, so it is a constant of the graph.
    std::vector<uint8_t> bytes(t->bytes);
    read(*t, bytes.data());
    dsk_tensor_desc host = t->desc;
    host.device = nullptr;
    host.buffer = nullptr;
    host.data = bytes.data();
    Value v;
    v.kind = ValueKind::Constant;
    v.desc = host;
    v.desc.data = nullptr;
    v.constant = std::move(bytes);
    const dsk_value_id id = trace->graph.add_value(std::move(v));
    trace->values[t] = id;
    return id;
}

void dsk_eager::run(const char* op, const dsk_attr* attrs, size_t attr_count, dsk_eager_tensor* const* inputs,
                    size_t input_count, dsk_eager_tensor** outputs, size_t output_count) {
    if (!op) throw Error(DSK_INVALID_ARGUMENT, "eager op: null op name");
    for (size_t i = 0; i < input_count; ++i)
        if (!inputs[i] || inputs[i]->eager != this)
            throw Error(DSK_INVALID_ARGUMENT, std::string(op) + ": input " + std::to_string(i) +
                                                  " is null or belongs to another eager context");
    const Dispatch& d = find_dispatch(op, inputs, input_count);
    check_arity(*d.schema, d.op, input_count, output_count);

    // The node as kernels see it: tensors are inputs then outputs.
    uint32_t ids[64];
    if (input_count + output_count > sizeof ids / sizeof ids[0])
        throw Error(DSK_INVALID_ARGUMENT, std::string(op) + ": too many inputs and outputs for an eager op");
    for (uint32_t i = 0; i < input_count + output_count; ++i) ids[i] = i;
    dsk_node_view view{sizeof(dsk_node_view), 1, op + d.name, d.domain.c_str(),
                       attrs, attr_count, ids, input_count, ids + input_count, output_count};
    // On the stack for the usual few tensors: an op's own work can be tens of nanoseconds.
    constexpr size_t kOnStack = 8;
    dsk_tensor_desc stack_tensors[kOnStack];  // not zeroed as a whole: a `rep stos` of 1.4 KB per op
    std::vector<dsk_tensor_desc> heap_tensors(input_count + output_count > kOnStack ? input_count + output_count : 0);
    dsk_tensor_desc* tensors = heap_tensors.empty() ? stack_tensors : heap_tensors.data();
    for (size_t i = 0; i < input_count; ++i) tensors[i] = inputs[i]->desc;
    for (size_t i = 0; i < output_count; ++i) {
        tensors[input_count + i] = dsk_tensor_desc{};
        tensors[input_count + i].struct_size = sizeof(dsk_tensor_desc);
    }
    // Messages are built only on failure: a string per op costs as much as a small op's work.
    if (dsk_status st = d.schema->infer_shapes(d.schema->self, &view, tensors)) throw_if_error(st, op);

    // The outputs, released (their buffers back to the cache) unless the op succeeds.
    struct Made {
        dsk_eager_tensor* stack[kOnStack] = {};
        std::vector<dsk_eager_tensor*> heap;
        dsk_eager_tensor** tensors = stack;
        size_t count = 0;
        ~Made() {
            for (size_t i = 0; i < count; ++i) dsk_eager_tensor_release(tensors[i]);
        }
    } made;
    if (output_count > kOnStack) {
        made.heap.resize(output_count);
        made.tensors = made.heap.data();
    }
    for (size_t i = 0; i < output_count; ++i) {
        made.tensors[i] = make(tensors[input_count + i]);
        ++made.count;
        tensors[input_count + i] = made.tensors[i]->desc;
    }
    dsk_exec_context ctx{seed, ops, 0, queue};
    dsk_status st = DSK_STATUS_OK;
    try {
        st = d.kernel->compute(d.kernel->self, &ctx, &view, tensors);
    } catch (...) {
        st = status_from_current_exception();
    }
    if (st) throw_if_error(st, std::string(op) + " on " + device.name);
    ++ops;

    if (trace) {
        std::vector<dsk_value_id> in_ids;
        for (size_t i = 0; i < input_count; ++i) in_ids.push_back(traced_value(inputs[i]));
        const auto out_ids = trace->graph.add_node(op, attrs, attr_count, in_ids.data(), in_ids.size(), output_count);
        for (size_t i = 0; i < output_count; ++i) trace->values[made.tensors[i]] = out_ids[i];
    }
    if (tape) record_on_tape(*this, op, attrs, attr_count, inputs, input_count, made.tensors, output_count);
    for (size_t i = 0; i < output_count; ++i) outputs[i] = made.tensors[i];
    made.count = 0;
}

// --- C API -------------------------------------------------------------------------------------

namespace {

dsk_status_code fail_with(dsk_kernel* kernel) {
    try {
        throw;
    } catch (const Error& e) {
        if (kernel) kernel->last_error = e.what();
        return e.code();
    } catch (const std::bad_alloc&) {
        if (kernel) kernel->last_error = "out of memory";
        return DSK_RESOURCE_EXHAUSTED;
    } catch (const std::exception& e) {
        if (kernel) kernel->last_error = e.what();
        return DSK_INTERNAL;
    }
}

template <class F>
dsk_status_code eager_call(dsk_kernel* kernel, F&& body) noexcept {
    try {
        body();
        return DSK_OK;
    } catch (...) {
        return fail_with(kernel);
    }
}

}  // namespace

extern "C" {

dsk_status_code dsk_eager_create(dsk_kernel* kernel, const char* device, uint64_t seed, dsk_eager** out) {
    if (!kernel || !out) return DSK_INVALID_ARGUMENT;
    return eager_call(kernel, [&] {
        kernel->discover();
        *out = new dsk_eager(kernel, device && *device ? device : "cpu", seed);
    });
}

void dsk_eager_destroy(dsk_eager* eager) { delete eager; }

dsk_status_code dsk_eager_tensor_create(dsk_eager* eager, const dsk_tensor_desc* host, dsk_eager_tensor** out) {
    if (!eager || !host || !out) return DSK_INVALID_ARGUMENT;
    return eager_call(eager->kernel, [&] {
        if (host->ndim > DSK_MAX_DIMS || !dsk::is_contiguous(*host) || (!host->data && dsk::byte_size(*host)))
            throw Error(DSK_INVALID_ARGUMENT, "eager tensor: host data must be contiguous, of rank <= " +
                                                  std::to_string(DSK_MAX_DIMS) + ", and not null");
        *out = eager->make_from_host(*host, host->data);
    });
}

void dsk_eager_tensor_retain(dsk_eager_tensor* t) {
    if (t) t->references.fetch_add(1, std::memory_order_relaxed);
}

void dsk_eager_tensor_release(dsk_eager_tensor* t) {
    if (!t || t->references.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (t->eager->trace) t->eager->trace->values.erase(t);  // its id may not be reused for another tensor
    t->eager->free_buffer(t->desc.buffer, t->desc.data, t->bytes);
    t->eager->recycle(t);
}

dsk_status_code dsk_eager_tensor_desc(const dsk_eager_tensor* t, dsk_tensor_desc* out) {
    if (!t || !out) return DSK_INVALID_ARGUMENT;
    copy_out(t->desc, out);
    return DSK_OK;
}

dsk_status_code dsk_eager_tensor_read(dsk_eager_tensor* t, const dsk_tensor_desc* host) {
    if (!t || !host) return DSK_INVALID_ARGUMENT;
    return eager_call(t->eager->kernel, [&] {
        if (host->dtype != t->desc.dtype || dsk::shape_of(*host) != dsk::shape_of(t->desc) || !dsk::is_contiguous(*host) ||
            (!host->data && t->bytes))
            throw Error(DSK_INVALID_ARGUMENT, "eager tensor read: the tensor is " + describe(t->desc) + ", the host buffer " +
                                                  describe(*host) + " (contiguous, with data)");
        t->eager->read(*t, host->data);
    });
}

dsk_status_code dsk_eager_op(dsk_eager* eager, const char* op, const dsk_attr* attrs, size_t attr_count,
                             dsk_eager_tensor* const* inputs, size_t input_count, dsk_eager_tensor** outputs,
                             size_t output_count) {
    if (!eager || (input_count && !inputs) || (output_count && !outputs)) return DSK_INVALID_ARGUMENT;
    return eager_call(eager->kernel, [&] { eager->run(op, attrs, attr_count, inputs, input_count, outputs, output_count); });
}

dsk_status_code dsk_eager_trace_begin(dsk_eager* eager, dsk_eager_tensor* const* inputs, size_t count) {
    if (!eager || (count && !inputs)) return DSK_INVALID_ARGUMENT;
    return eager_call(eager->kernel, [&] {
        if (eager->trace) throw Error(DSK_FAILED_PRECONDITION, "trace_begin: a trace is already running");
        auto trace = std::make_unique<dsk_eager::Trace>();
        trace->graph.kernel = eager->kernel;
        for (size_t i = 0; i < count; ++i) {
            if (!inputs[i] || inputs[i]->eager != eager) throw Error(DSK_INVALID_ARGUMENT, "trace_begin: input " + std::to_string(i) + " is null or foreign");
            if (trace->values.count(inputs[i])) throw Error(DSK_INVALID_ARGUMENT, "trace_begin: input " + std::to_string(i) + " is listed twice");
            Value v;
            v.kind = ValueKind::Input;
            v.desc = inputs[i]->desc;
            v.desc.device = nullptr;
            v.desc.buffer = nullptr;
            v.desc.data = nullptr;
            v.name = "input" + std::to_string(i);
            const dsk_value_id id = trace->graph.add_value(std::move(v));
            trace->values[inputs[i]] = id;
            trace->inputs.push_back(id);
        }
        eager->trace = std::move(trace);
    });
}

void dsk_eager_trace_cancel(dsk_eager* eager) {
    if (eager) eager->trace.reset();
}

dsk_status_code dsk_eager_trace_end(dsk_eager* eager, dsk_eager_tensor* const* outputs, size_t count,
                                    dsk_eager_function** out) {
    if (!eager || (count && !outputs) || !out) return DSK_INVALID_ARGUMENT;
    return eager_call(eager->kernel, [&] {
        if (!eager->trace) throw Error(DSK_FAILED_PRECONDITION, "trace_end without trace_begin");
        std::unique_ptr<dsk_eager::Trace> trace = std::move(eager->trace);
        auto f = std::make_unique<dsk_eager_function>();
        f->eager = eager;
        for (size_t i = 0; i < count; ++i) {
            auto it = outputs[i] ? trace->values.find(outputs[i]) : trace->values.end();
            if (it == trace->values.end())
                throw Error(DSK_INVALID_ARGUMENT, "trace_end: output " + std::to_string(i) +
                                                      " was not computed by the traced ops (return a tensor that an op made)");
            f->outputs.push_back(it->second);
        }
        f->inputs = trace->inputs;
        for (dsk_value_id v : f->inputs) f->input_descs.push_back(trace->graph.values[v].desc);
        f->session = std::make_unique<dsk_session>(eager->kernel, trace->graph, eager->preference, eager->seed);
        *out = f.release();
    });
}

dsk_status_code dsk_eager_function_run(dsk_eager_function* f, dsk_eager_tensor* const* inputs, size_t input_count,
                                       dsk_eager_tensor** outputs, size_t output_count) {
    if (!f || (input_count && !inputs) || (output_count && !outputs)) return DSK_INVALID_ARGUMENT;
    dsk_eager* eager = f->eager;
    return eager_call(eager->kernel, [&] {
        if (input_count != f->inputs.size() || output_count != f->outputs.size())
            throw Error(DSK_INVALID_ARGUMENT, "function run: traced with " + std::to_string(f->inputs.size()) + " inputs and " +
                                                  std::to_string(f->outputs.size()) + " outputs, called with " +
                                                  std::to_string(input_count) + " and " + std::to_string(output_count));
        for (size_t i = 0; i < input_count; ++i) {
            const dsk_eager_tensor* t = inputs[i];
            if (!t || t->eager != eager) throw Error(DSK_INVALID_ARGUMENT, "function run: input " + std::to_string(i) + " is null or foreign");
            if (t->desc.dtype != f->input_descs[i].dtype || dsk::shape_of(t->desc) != dsk::shape_of(f->input_descs[i]))
                throw Error(DSK_INVALID_ARGUMENT, "function run: input " + std::to_string(i) + " is " + describe(t->desc) +
                                                      ", the function was traced for " + describe(f->input_descs[i]) +
                                                      " (trace again for another signature)");
        }
        std::vector<std::unique_ptr<dsk_eager_tensor, void (*)(dsk_eager_tensor*)>> made;
        for (size_t i = 0; i < output_count; ++i)
            made.emplace_back(eager->make(f->session->graph.values[f->outputs[i]].desc), dsk_eager_tensor_release);
        std::vector<bool> written(output_count, false);
        std::vector<uint8_t> staging;
        if (eager->host_memory && f->session->host_memory_only()) {
            // Both sides compute in host memory: the plan reads the inputs and writes the outputs
            // where the eager tensors are, with no copy.
            auto binding = [](dsk_value_id v, const dsk_eager_tensor& t) {
                return dsk_session::Binding{v, t.desc.buffer, t.desc.data, t.bytes};
            };
            std::vector<dsk_session::Binding> in, out;
            for (size_t i = 0; i < input_count; ++i) in.push_back(binding(f->inputs[i], *inputs[i]));
            for (size_t i = 0; i < output_count; ++i) out.push_back(binding(f->outputs[i], *made[i]));
            written = f->session->run_bound(f->outputs, in, out);
        } else {
            for (size_t i = 0; i < input_count; ++i) {
                dsk_tensor_desc host = inputs[i]->desc;
                if (!host.data) {
                    staging.resize(inputs[i]->bytes);
                    eager->read(*inputs[i], staging.data());
                    host.data = staging.data();
                }
                f->session->write(f->inputs[i], host);
            }
            f->session->run(f->outputs);
        }
        for (size_t i = 0; i < output_count; ++i) {
            if (written[i]) continue;
            dsk_tensor_desc host = made[i]->desc;
            if (host.data) {
                f->session->read(f->outputs[i], host);
            } else {
                staging.resize(made[i]->bytes);
                host.data = staging.data();
                f->session->read(f->outputs[i], host);
                eager->write(*made[i], staging.data());
            }
        }
        for (size_t i = 0; i < output_count; ++i) outputs[i] = made[i].release();
    });
}

void dsk_eager_function_destroy(dsk_eager_function* f) { delete f; }

dsk_status_code dsk_eager_tensor_set_requires_grad(dsk_eager_tensor* t, int32_t requires_grad) {
    if (!t) return DSK_INVALID_ARGUMENT;
    return eager_call(t->eager->kernel, [&] { set_requires_grad(*t->eager, *t, requires_grad != 0); });
}

int32_t dsk_eager_tensor_requires_grad(const dsk_eager_tensor* t) { return t && requires_grad(*t->eager, *t) ? 1 : 0; }

dsk_status_code dsk_eager_backward(dsk_eager* eager, dsk_eager_tensor* loss, dsk_eager_tensor* const* wrt, size_t count,
                                   uint32_t flags, dsk_eager_tensor** out_grads) {
    if (!eager || !loss || (count && (!wrt || !out_grads))) return DSK_INVALID_ARGUMENT;
    return eager_call(eager->kernel, [&] {
        if (loss->eager != eager) throw Error(DSK_INVALID_ARGUMENT, "backward: the loss belongs to another eager context");
        if (flags & ~uint32_t{DSK_EAGER_RETAIN_TAPE})
            throw Error(DSK_INVALID_ARGUMENT, "backward: unknown flags " + std::to_string(flags) + " (DSK_EAGER_RETAIN_TAPE is the only one)");
        const auto grads = backward(*eager, *loss, wrt, count, (flags & DSK_EAGER_RETAIN_TAPE) != 0);
        for (size_t i = 0; i < count; ++i) out_grads[i] = grads[i];
    });
}

void dsk_eager_tape_clear(dsk_eager* eager) {
    if (eager) eager->tape.reset();
}

}  // extern "C"
