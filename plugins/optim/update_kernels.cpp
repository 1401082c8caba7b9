#include "update_kernels.h"

#include <cmath>
#include <cstring>
#include <dsk/dsk_tensor.hpp>

namespace dsk::optim {
namespace {

// Tensors smaller than this are updated on the calling thread; larger ones in chunks of kGrain
// elements on the kernel's pool. Every element gets the same arithmetic whatever the split.
constexpr size_t kParallelMinElements = size_t{1} << 15;
constexpr size_t kGrain = size_t{1} << 13;

// body(begin, end) over [0, size): on the calling thread when small, else over the pool.
template <class F>
void over_chunks(size_t size, const F& body) {
    if (size >= kParallelMinElements)
        parallel_for(size, kGrain, body);
    else
        body(0, size);
}

// constants = [beta1, 1-beta1, beta2, 1-beta2, eps, l2_weight_decay, decay_factor, step_size,
// sqrt(1-beta2^t)]; buffers = m, v.
void adam_update(const float* c, const ParamSlot& slot, size_t begin, size_t end) {
    float* p = slot.param;
    const float* g = slot.grad;
    float* m = slot.buffers[0];
    float* v = slot.buffers[1];
    const bool l2 = c[5] != 0.0f;
    const bool decoupled = c[6] != 1.0f;
    for (size_t j = begin; j < end; ++j) {
        float grad = g[j];
        if (l2) grad = grad + c[5] * p[j];
        if (decoupled) p[j] = p[j] * c[6];
        m[j] = c[0] * m[j] + c[1] * grad;
        v[j] = c[2] * v[j] + c[3] * (grad * grad);
        const float denom = std::sqrt(v[j]) / c[8] + c[4];
        p[j] = p[j] - c[7] * (m[j] / denom);
    }
}

// constants = [lr, momentum, 1-dampening, weight_decay, first_step, nesterov]; buffers = the
// momentum buffer, or none.
void sgd_update(const float* c, const ParamSlot& slot, size_t begin, size_t end) {
    float* p = slot.param;
    const float* g = slot.grad;
    float* buf = slot.buffers[0];
    const bool decay = c[3] != 0.0f;
    const bool first = c[4] != 0.0f;
    const bool nesterov = c[5] != 0.0f;
    for (size_t j = begin; j < end; ++j) {
        float d = g[j];
        if (decay) d = d + c[3] * p[j];
        if (buf != nullptr) {
            buf[j] = first ? d : c[1] * buf[j] + c[2] * d;
            d = nesterov ? d + c[1] * buf[j] : buf[j];
        }
        p[j] = p[j] - c[0] * d;
    }
}

// The functional form: copies the parameter and states of `from` into `to` chunk by chunk, each
// chunk updated while it is in cache, so the inputs stay as they were.
struct CopyThenUpdate {
    UpdateFunction update;
    const float* constants;
    ParamSlot from, to;
    size_t states;

    void operator()(size_t begin, size_t end) const {
        const size_t bytes = (end - begin) * sizeof(float);
        std::memcpy(to.param + begin, from.param + begin, bytes);
        for (size_t s = 0; s < states; ++s) std::memcpy(to.buffers[s] + begin, from.buffers[s] + begin, bytes);
        update(constants, to, begin, end);
    }
};

// inputs: constants, X, G, state...; outputs: a scalar token (0), and in the functional form
// the new X and state.
template <UpdateFunction kUpdate, size_t kStates>
dsk_status update_kernel(void*, dsk_exec_context*, const dsk_node_view* node, const dsk_tensor_desc* t) {
    return guard([&] {
        const size_t states = node->input_count - 3;
        if (states > kStates) throw Error(DSK_INVALID_ARGUMENT, std::string(node->op) + ": too many state inputs");
        const bool functional = node->output_count > 1;
        if (functional && node->output_count != 2 + states)
            throw Error(DSK_INVALID_ARGUMENT, std::string(node->op) + ": the functional form has " +
                                                  std::to_string(2 + states) + " outputs");
        for (size_t i = 0; i < node->input_count + node->output_count; ++i)
            if (!t[i].data && numel(t[i]) > 0)
                throw Error(DSK_INVALID_ARGUMENT, std::string(node->op) + ": tensor " + std::to_string(i) + " is not in host memory");
        const float* constants = static_cast<const float*>(t[0].data);
        auto slot_at = [&](size_t param, size_t first_state) {
            ParamSlot slot{static_cast<float*>(t[param].data), static_cast<const float*>(t[2].data), {nullptr, nullptr},
                           static_cast<size_t>(numel(t[1]))};
            for (size_t s = 0; s < states; ++s) slot.buffers[s] = static_cast<float*>(t[first_state + s].data);
            return slot;
        };
        const ParamSlot in_place = slot_at(1, 3);
        const size_t token = node->input_count;
        if (!functional) {
            apply_update(kUpdate, constants, in_place);
        } else {
            over_chunks(in_place.size, CopyThenUpdate{kUpdate, constants, in_place, slot_at(token + 1, token + 2), states});
        }
        *static_cast<float*>(t[token].data) = 0.0f;
    });
}

const uint32_t kF32[] = {DSK_DTYPE_F32, DSK_DTYPE_F32, DSK_DTYPE_F32};

}  // namespace

UpdateFunction update_function(const std::string& op) {
    if (op == "AdamUpdate") return adam_update;
    if (op == "SGDUpdate") return sgd_update;
    throw Error(DSK_INTERNAL, "no update function for op " + op);
}

void apply_update(UpdateFunction update, const float* constants, const ParamSlot& slot) {
    over_chunks(slot.size, [&](size_t begin, size_t end) { update(constants, slot, begin, end); });
}

void register_update_kernels(Registrar& reg) {
    static const dsk_op_kernel adam = {sizeof(dsk_op_kernel), 3, "AdamUpdate", "", "cpu", kF32, nullptr,
                                       update_kernel<adam_update, 2>};
    static const dsk_op_kernel sgd = {sizeof(dsk_op_kernel), 3, "SGDUpdate", "", "cpu", kF32, nullptr,
                                      update_kernel<sgd_update, 1>};
    reg.op_kernel(adam);
    reg.op_kernel(sgd);
}

}  // namespace dsk::optim
