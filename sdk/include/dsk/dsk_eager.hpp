// dsk_eager.hpp - eager tensors and dsk::jit for C++ apps, over the dsk_eager_* C API (dsk.h).
//
//     dsk::Kernel kernel;
//     dsk::Eager eager(kernel);                       // ops run on the cpu as they are called
//     dsk::Tensor w = eager.tensor({784, 256}, weights);
//     auto layer = [&](const std::vector<dsk::Tensor>& in) {
//         return std::vector<dsk::Tensor>{relu(matmul(in[0], w))};
//     };
//     auto y = layer({x});                            // eager: one kernel call per op
//     auto fast = dsk::jit(eager, layer);             // traced on the first call per signature,
//     auto z = fast({x});                             // then replayed as a compiled graph
//
// Tensors are immutable and reference counted: copies share. A tensor used by a traced function
// that is not one of its inputs (`w` above) is captured by value, as a constant of the graph.
// Every failure throws dsk::Error with the kernel's message.
//
// Autograd: mark the tensors to differentiate, compute a scalar loss, ask for its gradients.
//
//     w.requires_grad();                              // w goes on the eager context's tape
//     dsk::Tensor loss = softmax_cross_entropy(matmul(x, w), labels);
//     std::vector<dsk::Tensor> g = dsk::grad(loss, {w});   // d(loss)/dw; the tape is consumed
//
// Every op with an input that requires a gradient is recorded on the tape; grad() builds the
// gradient ops with the op schemas' rules (the graph_gradients code), runs them eagerly and
// consumes the tape (retain_tape = true keeps it for another grad). A training step is then
// plain eager code, and dsk::jit compiles it, backward and optimizer update included, into one
// graph; its tensors being immutable, the step returns the new weights and optimizer state
// (adam_step below):
//
//     auto step = dsk::jit(eager, [&](const std::vector<dsk::Tensor>& in) {  // c, x, y, w, m, v
//         in[3].requires_grad();
//         dsk::Tensor g = dsk::grad(softmax_cross_entropy(matmul(in[1], in[3]), in[2]), {in[3]})[0];
//         return adam_step(in[0], in[3], g, in[4], in[5]);                      // new w, m, v
//     });
#ifndef DSK_EAGER_HPP_
#define DSK_EAGER_HPP_

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dsk/dsk.hpp"

namespace dsk {

// An op attribute with its storage (dsk_attr borrows).
struct OpAttr {
    std::string name;
    uint32_t type = DSK_ATTR_INT;
    int64_t i = 0;
    double f = 0;
    std::string s;
    std::vector<int64_t> ints;

    static OpAttr integer(std::string name, int64_t v) { return {std::move(name), DSK_ATTR_INT, v, 0, {}, {}}; }
    static OpAttr real(std::string name, double v) { return {std::move(name), DSK_ATTR_FLOAT, 0, v, {}, {}}; }
    static OpAttr text(std::string name, std::string v) { return {std::move(name), DSK_ATTR_STRING, 0, 0, std::move(v), {}}; }
    static OpAttr list(std::string name, std::vector<int64_t> v) { return {std::move(name), DSK_ATTR_INTS, 0, 0, {}, std::move(v)}; }

    dsk_attr view() const {
        dsk_attr a{};
        a.struct_size = sizeof a;
        a.name = name.c_str();
        a.type = type;
        a.i = i;
        a.f = f;
        a.s = s.c_str();
        a.ints = ints.data();
        a.count = ints.size();
        return a;
    }
};

class Eager;

class Tensor {
public:
    Tensor() = default;
    // Adopts one reference.
    Tensor(Eager* eager, dsk_eager_tensor* t) : eager_(eager), t_(t, &dsk_eager_tensor_release) {}

    dsk_eager_tensor* raw() const noexcept { return t_.get(); }
    Eager& eager() const noexcept { return *eager_; }
    bool defined() const noexcept { return t_ != nullptr; }

    // Marks this tensor as requiring a gradient (or unmarks it): the ops that read it from now
    // on are recorded on its eager context's tape (dsk_eager_tensor_set_requires_grad).
    const Tensor& requires_grad(bool on = true) const;
    // Whether it is on the running tape and requires a gradient (marked, or computed from a
    // marked tensor since the tape started).
    bool tracks_grad() const noexcept { return dsk_eager_tensor_requires_grad(t_.get()) != 0; }

    uint32_t dtype() const { return desc().dtype; }
    std::vector<int64_t> shape() const {
        const dsk_tensor_desc d = desc();
        return std::vector<int64_t>(d.shape, d.shape + d.ndim);
    }
    // The values, copied to the host (T must match the dtype's size).
    template <class T>
    std::vector<T> values() const {
        dsk_tensor_desc d = desc();
        int64_t n = 1;
        for (uint32_t k = 0; k < d.ndim; ++k) n *= d.shape[k];
        std::vector<T> out(static_cast<size_t>(n));
        dsk_tensor_desc host = d;
        host.device = nullptr;
        host.buffer = nullptr;
        host.offset = 0;
        host.data = out.data();
        check(dsk_eager_tensor_read(t_.get(), &host));
        return out;
    }

private:
    dsk_tensor_desc desc() const {
        dsk_tensor_desc d{};
        d.struct_size = sizeof d;
        dsk_eager_tensor_desc(t_.get(), &d);
        return d;
    }
    void check(dsk_status_code code) const;

    Eager* eager_ = nullptr;
    std::shared_ptr<dsk_eager_tensor> t_;
};

// An eager context: one device, a seed for random ops. Outlives its tensors and functions.
class Eager {
public:
    explicit Eager(Kernel& kernel, const std::string& device = "cpu", uint64_t seed = 0) : kernel_(&kernel) {
        check(dsk_eager_create(kernel.raw(), device.c_str(), seed, &eager_), "creating an eager context");
    }
    ~Eager() { dsk_eager_destroy(eager_); }
    Eager(const Eager&) = delete;
    Eager& operator=(const Eager&) = delete;

    dsk_eager* raw() const noexcept { return eager_; }

    // A tensor holding a copy of `values` (f32 or i64).
    Tensor tensor(const std::vector<int64_t>& shape, const std::vector<float>& values) {
        return make(DSK_DTYPE_F32, shape, values.data());
    }
    Tensor tensor(const std::vector<int64_t>& shape, const std::vector<int64_t>& values) {
        return make(DSK_DTYPE_I64, shape, values.data());
    }

    // Runs `op` now.
    std::vector<Tensor> run(const std::string& op, const std::vector<Tensor>& inputs, const std::vector<OpAttr>& attrs = {},
                            size_t output_count = 1) {
        std::vector<dsk_attr> views;
        views.reserve(attrs.size());
        for (const OpAttr& a : attrs) views.push_back(a.view());
        std::vector<dsk_eager_tensor*> in;
        in.reserve(inputs.size());
        for (const Tensor& t : inputs) in.push_back(t.raw());
        std::vector<dsk_eager_tensor*> out(output_count, nullptr);
        check(dsk_eager_op(eager_, op.c_str(), views.data(), views.size(), in.data(), in.size(), out.data(), out.size()), op);
        std::vector<Tensor> result;
        result.reserve(output_count);
        for (dsk_eager_tensor* t : out) result.emplace_back(this, t);
        return result;
    }
    Tensor run1(const std::string& op, const std::vector<Tensor>& inputs, const std::vector<OpAttr>& attrs = {}) {
        return run(op, inputs, attrs, 1)[0];
    }

    // d(loss)/d(wrt[i]), computed eagerly from the tape (dsk_eager_backward); an undefined
    // Tensor where the loss does not depend on wrt[i]. Consumes the tape unless retain_tape.
    std::vector<Tensor> grad(const Tensor& loss, const std::vector<Tensor>& wrt, bool retain_tape = false) {
        std::vector<dsk_eager_tensor*> in, out(wrt.size(), nullptr);
        in.reserve(wrt.size());
        for (const Tensor& t : wrt) in.push_back(t.raw());
        check(dsk_eager_backward(eager_, loss.raw(), in.data(), in.size(), retain_tape ? DSK_EAGER_RETAIN_TAPE : 0u,
                                 out.data()),
              "backward");
        std::vector<Tensor> result;
        result.reserve(out.size());
        for (dsk_eager_tensor* t : out) result.push_back(t ? Tensor(this, t) : Tensor());
        return result;
    }
    // Drops the tape without differentiating.
    void clear_tape() noexcept { dsk_eager_tape_clear(eager_); }

    void check(dsk_status_code code, const std::string& what) const {
        if (code != DSK_OK) throw Error(code, what + ": " + detail::copy_string(dsk_kernel_last_error(kernel_->raw())));
    }

private:
    Tensor make(uint32_t dtype, const std::vector<int64_t>& shape, const void* data) {
        dsk_tensor_desc d{};
        d.struct_size = sizeof d;
        d.dtype = dtype;
        d.ndim = static_cast<uint32_t>(shape.size());
        int64_t stride = 1;
        for (size_t k = shape.size(); k-- > 0;) {
            d.shape[k] = shape[k];
            d.strides[k] = stride;
            stride *= shape[k];
        }
        d.data = const_cast<void*>(data);
        dsk_eager_tensor* t = nullptr;
        check(dsk_eager_tensor_create(eager_, &d, &t), "creating a tensor");
        return Tensor(this, t);
    }

    Kernel* kernel_;
    dsk_eager* eager_ = nullptr;
};

inline void Tensor::check(dsk_status_code code) const { eager_->check(code, "reading a tensor"); }

inline const Tensor& Tensor::requires_grad(bool on) const {
    eager_->check(dsk_eager_tensor_set_requires_grad(t_.get(), on ? 1 : 0), "set_requires_grad");
    return *this;
}

inline std::vector<Tensor> grad(const Tensor& loss, const std::vector<Tensor>& wrt, bool retain_tape = false) {
    return loss.eager().grad(loss, wrt, retain_tape);
}

// A few ops by name (any other: eager.run("Op", ...)).
inline Tensor matmul(const Tensor& a, const Tensor& b) { return a.eager().run1("MatMul", {a, b}); }
inline Tensor gemm(const Tensor& a, const Tensor& b, const Tensor& c, bool trans_b = false) {
    return a.eager().run1("Gemm", {a, b, c}, {OpAttr::integer("transB", trans_b ? 1 : 0)});
}
inline Tensor relu(const Tensor& x) { return x.eager().run1("Relu", {x}); }
inline Tensor operator+(const Tensor& a, const Tensor& b) { return a.eager().run1("Add", {a, b}); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return a.eager().run1("Mul", {a, b}); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return a.eager().run1("Sub", {a, b}); }
// The mean softmax cross-entropy of scores [N, C] against i64 labels [N]: a scalar.
inline Tensor softmax_cross_entropy(const Tensor& scores, const Tensor& labels) {
    return scores.eager().run("SoftmaxCrossEntropyLoss", {scores, labels}, {}, 2)[0];
}
// One Adam step without changing its inputs (AdamUpdate's functional form, docs/ops.md):
// {new x, new m, new v}. `constants` is AdamUpdate's [9] f32 for this step.
inline std::vector<Tensor> adam_step(const Tensor& constants, const Tensor& x, const Tensor& g, const Tensor& m,
                                     const Tensor& v) {
    std::vector<Tensor> out = x.eager().run("AdamUpdate", {constants, x, g, m, v}, {}, 4);
    return {out[1], out[2], out[3]};
}

// A function of tensors, traced on its first call for each input signature (dtypes and shapes)
// and replayed afterwards as a compiled graph (dsk_eager_trace_*). The function must compute its
// outputs with ops only (no host logic that depends on tensor values), as with torch.jit.trace.
template <class F>
class Jit {
public:
    Jit(Eager& eager, F fn) : eager_(&eager), fn_(std::move(fn)) {}

    std::vector<Tensor> operator()(const std::vector<Tensor>& inputs) {
        std::vector<dsk_eager_tensor*> in;
        std::string signature;
        for (const Tensor& t : inputs) {
            in.push_back(t.raw());
            signature += std::to_string(t.dtype()) + ":";
            for (int64_t d : t.shape()) signature += std::to_string(d) + ",";
            signature += ";";
        }
        auto it = compiled_.find(signature);
        if (it == compiled_.end()) return trace(signature, in, inputs);
        std::vector<dsk_eager_tensor*> out(it->second.outputs, nullptr);
        eager_->check(dsk_eager_function_run(it->second.function.get(), in.data(), in.size(), out.data(), out.size()),
                      "running a traced function");
        std::vector<Tensor> result;
        for (dsk_eager_tensor* t : out) result.emplace_back(eager_, t);
        return result;
    }

    size_t traces() const noexcept { return compiled_.size(); }

private:
    struct Compiled {
        std::shared_ptr<dsk_eager_function> function;
        size_t outputs = 0;
    };

    std::vector<Tensor> trace(const std::string& signature, std::vector<dsk_eager_tensor*>& in,
                              const std::vector<Tensor>& inputs) {
        eager_->check(dsk_eager_trace_begin(eager_->raw(), in.data(), in.size()), "starting a trace");
        std::vector<Tensor> result;
        try {
            result = fn_(inputs);
        } catch (...) {
            dsk_eager_trace_cancel(eager_->raw());
            throw;
        }
        std::vector<dsk_eager_tensor*> out;
        for (const Tensor& t : result) out.push_back(t.raw());
        dsk_eager_function* f = nullptr;
        eager_->check(dsk_eager_trace_end(eager_->raw(), out.data(), out.size(), &f), "compiling a traced function");
        compiled_[signature] = Compiled{std::shared_ptr<dsk_eager_function>(f, &dsk_eager_function_destroy), out.size()};
        return result;  // the traced call ran eagerly: its results are the eager ones
    }

    Eager* eager_;
    F fn_;
    std::map<std::string, Compiled> compiled_;
};

template <class F>
Jit<F> jit(Eager& eager, F fn) {
    return Jit<F>(eager, std::move(fn));
}

}  // namespace dsk

#endif  // DSK_EAGER_HPP_
