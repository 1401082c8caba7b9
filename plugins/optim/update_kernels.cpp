#include "update_kernels.h"

#include <cmath>
#include <dsk/dsk_tensor.hpp>

namespace dsk::optim {
namespace {

// The work of one element for dsk::parallel_for's rule (dsk_work.hpp): the parameter and the
// gradient read, the parameter and each state buffer read and written back, and a few flops per
// buffer. Adam on the MLP's 784x256 weight splits over the pool; its biases stay on the calling
// thread. Chunks are multiples of kGrain elements; every element gets the same arithmetic
// whatever the split.
constexpr size_t kGrain = size_t{1} << 13;

// body(begin, end) over [0, size), on as many threads as `states` buffers' updates pay for.
template <class F>
void over_chunks(size_t size, size_t states, const F& body) {
    const Work per_element{4.0 + 6.0 * static_cast<double>(states), 4.0 * static_cast<double>(3 + 2 * states)};
    parallel_for(size, kGrain, per_element, body);
}

// The update loops are compiled for AVX-512, AVX2 and baseline x86-64, one picked by the CPU on
// first use: Adam's sqrt and divisions are most of a small model's step. Every variant does the
// same IEEE operations per element (no contraction into FMA: -ffp-contract=off), so results are
// bitwise the same on every machine. Chosen by hand rather than by target_clones: its IFUNC
// resolvers, in a plugin opened with dlopen, crash LeakSanitizer's exit-time tracer.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DSK_UPDATE_LOOP inline __attribute__((always_inline))
#define DSK_UPDATE_VARIANTS(name)                                                                                  \
    __attribute__((target("avx512f"))) void name##_avx512(UPDATE_PARAMS) { name##_loop(UPDATE_ARGS); }            \
    __attribute__((target("avx2"))) void name##_avx2(UPDATE_PARAMS) { name##_loop(UPDATE_ARGS); }                 \
    void name##_baseline(UPDATE_PARAMS) { name##_loop(UPDATE_ARGS); }                                              \
    void name(UPDATE_PARAMS) {                                                                                     \
        static const UpdateFunction chosen = __builtin_cpu_supports("avx512f") ? name##_avx512                    \
                                             : __builtin_cpu_supports("avx2")  ? name##_avx2                      \
                                                                               : name##_baseline;                 \
        chosen(UPDATE_ARGS);                                                                                       \
    }
#else
#define DSK_UPDATE_LOOP inline
#define DSK_UPDATE_VARIANTS(name) \
    void name(UPDATE_PARAMS) { name##_loop(UPDATE_ARGS); }
#endif
#define UPDATE_PARAMS const float *c, const ParamSlot &in, const ParamSlot &out, size_t begin, size_t end
#define UPDATE_ARGS c, in, out, begin, end

// constants = [beta1, 1-beta1, beta2, 1-beta2, eps, l2_weight_decay, decay_factor, step_size,
// sqrt(1-beta2^t)]; buffers = m, v. Reads the parameter and state of `in`, writes those of `out`
// (the same slot for an update in place).
DSK_UPDATE_LOOP void adam_update_loop(UPDATE_PARAMS) {
    const float* g = in.grad;
    const bool l2 = c[5] != 0.0f;
    const bool decoupled = c[6] != 1.0f;
    // Element j reads index j of `in` and writes index j of `out`, whose arrays are either
    // `in`'s own or disjoint from every array: no dependence across elements.
#pragma GCC ivdep
    for (size_t j = begin; j < end; ++j) {
        float p = in.param[j];
        float grad = g[j];
        if (l2) grad = grad + c[5] * p;
        if (decoupled) p = p * c[6];
        const float m = c[0] * in.buffers[0][j] + c[1] * grad;
        const float v = c[2] * in.buffers[1][j] + c[3] * (grad * grad);
        const float denom = std::sqrt(v) / c[8] + c[4];
        out.buffers[0][j] = m;
        out.buffers[1][j] = v;
        out.param[j] = p - c[7] * (m / denom);
    }
}

DSK_UPDATE_VARIANTS(adam_update)

// constants = [lr, momentum, 1-dampening, weight_decay, first_step, nesterov]; buffers = the
// momentum buffer, or none. `in` and `out` as adam_update's.
DSK_UPDATE_LOOP void sgd_update_loop(UPDATE_PARAMS) {
    const float* g = in.grad;
    const bool momentum = in.buffers[0] != nullptr;
    const bool decay = c[3] != 0.0f;
    const bool first = c[4] != 0.0f;
    const bool nesterov = c[5] != 0.0f;
#pragma GCC ivdep  // as in adam_update
    for (size_t j = begin; j < end; ++j) {
        const float p = in.param[j];
        float d = g[j];
        if (decay) d = d + c[3] * p;
        if (momentum) {
            const float b = first ? d : c[1] * in.buffers[0][j] + c[2] * d;
            out.buffers[0][j] = b;
            d = nesterov ? d + c[1] * b : b;
        }
        out.param[j] = p - c[0] * d;
    }
}

DSK_UPDATE_VARIANTS(sgd_update)

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
        const size_t token = node->input_count;
        const ParamSlot in = slot_at(1, 3);
        const ParamSlot out = functional ? slot_at(token + 1, token + 2) : in;
        over_chunks(in.size, states, [&](size_t begin, size_t end) { kUpdate(constants, in, out, begin, end); });
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
    const size_t states = (slot.buffers[0] ? 1 : 0) + (slot.buffers[1] ? 1 : 0);
    over_chunks(slot.size, states, [&](size_t begin, size_t end) { update(constants, slot, slot, begin, end); });
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
