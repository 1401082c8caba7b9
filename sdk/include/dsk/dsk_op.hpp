// dsk_op.hpp - C++17 helpers for code that builds or runs operators: op schemas (shape inference,
// gradient rules), backend kernels and models. Header-only, over dsk_plugin.h and dsk_plugin.hpp.
//
//   dsk::Attrs          reads a node's attributes with ONNX defaults
//   dsk::Attr           owns one attribute to pass to graph_add_node
//   dsk::Graph          adds nodes / variables / constants to a dsk_graph (throws dsk::Error)
//   (tensor descriptor helpers: dsk_tensor.hpp)
//
//     dsk::Graph g(graph);
//     dsk_value_id h = g.node("Gemm", {x, w, b}, {dsk::Attr("transB", 1)});
//     dsk_value_id y = g.node("Relu", {h});
#ifndef DSK_OP_HPP_
#define DSK_OP_HPP_

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "dsk/dsk_plugin.hpp"
#include "dsk/dsk_tensor.hpp"

namespace dsk {

//==============================================================================================
// Attributes
//==============================================================================================

// Reads a node's attributes; the defaults are the ONNX ones the caller passes in.
class Attrs {
public:
    explicit Attrs(const dsk_node_view* node) : node_(node) {}

    const dsk_attr* find(const char* name) const {
        for (size_t i = 0; i < node_->attr_count; ++i)
            if (std::strcmp(node_->attrs[i].name, name) == 0) return &node_->attrs[i];
        return nullptr;
    }
    bool has(const char* name) const { return find(name) != nullptr; }

    int64_t get_int(const char* name, int64_t fallback) const {
        const dsk_attr* a = find(name);
        if (!a) return fallback;
        expect(a, DSK_ATTR_INT, "an integer");
        return a->i;
    }
    double get_float(const char* name, double fallback) const {
        const dsk_attr* a = find(name);
        if (!a) return fallback;
        if (a->type == DSK_ATTR_INT) return static_cast<double>(a->i);
        expect(a, DSK_ATTR_FLOAT, "a number");
        return a->f;
    }
    std::string get_string(const char* name, const std::string& fallback) const {
        const dsk_attr* a = find(name);
        if (!a) return fallback;
        expect(a, DSK_ATTR_STRING, "a string");
        return a->s ? a->s : "";
    }
    std::vector<int64_t> get_ints(const char* name, std::vector<int64_t> fallback) const {
        const dsk_attr* a = find(name);
        if (!a) return fallback;
        expect(a, DSK_ATTR_INTS, "a list of integers");
        return std::vector<int64_t>(a->ints, a->ints + a->count);
    }
    // A string attribute holding a list, items separated by `separator` ("Relu,,Tanh": three
    // items, the second empty); empty or absent: no items.
    std::vector<std::string> get_string_list(const char* name, char separator = ',') const {
        const std::string text = get_string(name, "");
        std::vector<std::string> items;
        if (text.empty()) return items;
        size_t begin = 0;
        for (size_t end; (end = text.find(separator, begin)) != std::string::npos; begin = end + 1)
            items.push_back(text.substr(begin, end - begin));
        items.push_back(text.substr(begin));
        return items;
    }
    std::vector<int64_t> require_ints(const char* name) const {
        if (!has(name)) throw Error(DSK_INVALID_ARGUMENT, std::string(node_->op) + ": attribute '" + name + "' is required");
        return get_ints(name, {});
    }

private:
    void expect(const dsk_attr* a, uint32_t type, const char* what) const {
        if (a->type != type)
            throw Error(DSK_INVALID_ARGUMENT, std::string(node_->op) + ": attribute '" + a->name + "' must be " + what);
    }
    const dsk_node_view* node_;
};

// One attribute with its own storage, for graph_add_node.
class Attr {
public:
    Attr(std::string name, int64_t v) : name_(std::move(name)), type_(DSK_ATTR_INT), i_(v) {}
    Attr(std::string name, int v) : Attr(std::move(name), static_cast<int64_t>(v)) {}
    Attr(std::string name, double v) : name_(std::move(name)), type_(DSK_ATTR_FLOAT), f_(v) {}
    Attr(std::string name, const char* v) : name_(std::move(name)), type_(DSK_ATTR_STRING), s_(v) {}
    Attr(std::string name, std::string v) : name_(std::move(name)), type_(DSK_ATTR_STRING), s_(std::move(v)) {}
    Attr(std::string name, std::vector<int64_t> v) : name_(std::move(name)), type_(DSK_ATTR_INTS), ints_(std::move(v)) {}

    // Valid while this Attr lives.
    dsk_attr view() const {
        dsk_attr a{};
        a.struct_size = sizeof a;
        a.type = type_;
        a.name = name_.c_str();
        a.i = i_;
        a.f = f_;
        a.s = s_.c_str();
        a.ints = ints_.data();
        a.count = ints_.size();
        return a;
    }
    // Copies every attribute of a node (a gradient rule passing the forward op's attributes on).
    static std::vector<Attr> all_of(const dsk_node_view* node) {
        std::vector<Attr> out;
        for (size_t k = 0; k < node->attr_count; ++k) {
            const dsk_attr& a = node->attrs[k];
            switch (a.type) {
                case DSK_ATTR_INT: out.emplace_back(a.name, a.i); break;
                case DSK_ATTR_FLOAT: out.emplace_back(a.name, a.f); break;
                case DSK_ATTR_STRING: out.emplace_back(a.name, std::string(a.s ? a.s : "")); break;
                case DSK_ATTR_INTS: out.emplace_back(a.name, std::vector<int64_t>(a.ints, a.ints + a.count)); break;
                default: break;  // DSK_ATTR_FLOATS is not used by the core set
            }
        }
        return out;
    }

private:
    std::string name_;
    uint32_t type_;
    int64_t i_ = 0;
    double f_ = 0;
    std::string s_;
    std::vector<int64_t> ints_;
};

//==============================================================================================
// Kernels: what a node keeps across runs (ABI 1.3)
//==============================================================================================

// The version of input `input` of the node a kernel computes (exec_input_version): non-zero and
// the same from run to run while the input keeps its contents, 0 when it may change on every run
// (or the kernel is older than ABI 1.3).
inline uint64_t input_version(dsk_exec_context* ctx, uint32_t input) {
    const dsk_host_api& h = host();
    return DSK_HAS_MEMBER(&h, dsk_host_api, exec_input_version) && h.exec_input_version
               ? h.exec_input_version(ctx, input)
               : 0;
}

// The node's cache (exec_cache) as a T, default-constructed on the first call and deleted with
// the plan; nullptr where the node has none (an eager op, a kernel older than ABI 1.3). Only the
// node's own kernel may use it, always with the same T.
template <class T>
T* node_cache(dsk_exec_context* ctx) {
    const dsk_host_api& h = host();
    if (!DSK_HAS_MEMBER(&h, dsk_host_api, exec_set_cache) || !h.exec_cache || !h.exec_set_cache) return nullptr;
    if (void* cache = h.exec_cache(ctx)) return static_cast<T*>(cache);
    T* made = new T();
    h.exec_set_cache(ctx, made, [](void* cache) { delete static_cast<T*>(cache); });
    return h.exec_cache(ctx) == made ? made : nullptr;  // an eager op released it at once
}

//==============================================================================================
// Graph building (gradient rules, models, stages)
//==============================================================================================

class Graph {
public:
    explicit Graph(dsk_graph* graph) : graph_(graph) {}
    dsk_graph* raw() const { return graph_; }

    // Adds `op` and returns its outputs (all `output_count` of them).
    std::vector<dsk_value_id> nodes(const char* op, std::initializer_list<dsk_value_id> inputs,
                                    const std::vector<Attr>& attrs, size_t output_count) const {
        return nodes(op, std::vector<dsk_value_id>(inputs), attrs, output_count);
    }
    std::vector<dsk_value_id> nodes(const char* op, const std::vector<dsk_value_id>& inputs,
                                    const std::vector<Attr>& attrs, size_t output_count) const {
        std::vector<dsk_attr> views;
        for (const Attr& a : attrs) views.push_back(a.view());
        std::vector<dsk_value_id> out(output_count, DSK_VALUE_NONE);
        check(host().graph_add_node(graph_, op, views.data(), views.size(), inputs.data(), inputs.size(), out.data(),
                                    out.size()));
        return out;
    }
    // Adds a single-output op and returns its output.
    dsk_value_id node(const char* op, std::initializer_list<dsk_value_id> inputs, const std::vector<Attr>& attrs = {}) const {
        return nodes(op, inputs, attrs, 1)[0];
    }

    dsk_value_id input(const std::string& name, uint32_t dtype, const std::vector<int64_t>& shape) const {
        dsk_tensor_desc d{};
        set_contiguous(d, dtype, shape);
        dsk_value_id v = DSK_VALUE_NONE;
        check(host().graph_input(graph_, name.c_str(), &d, &v));
        return v;
    }
    dsk_value_id variable(const std::string& name, const std::vector<int64_t>& shape, const char* init, double scale,
                          uint32_t flags = DSK_VARIABLE_TRAINABLE) const {
        dsk_tensor_desc d{};
        set_contiguous(d, DSK_DTYPE_F32, shape);
        dsk_value_id v = DSK_VALUE_NONE;
        check(host().graph_variable(graph_, name.c_str(), &d, flags, init, scale, &v));
        return v;
    }
    dsk_value_id constant(const dsk_tensor_desc& value) const {
        dsk_value_id v = DSK_VALUE_NONE;
        check(host().graph_constant(graph_, &value, &v));
        return v;
    }
    dsk_value_id scalar(float value) const {
        dsk_tensor_desc d = host_tensor(DSK_DTYPE_F32, {}, &value);
        return constant(d);
    }

    dsk_tensor_desc desc(dsk_value_id v) const {
        dsk_tensor_desc d{};
        d.struct_size = sizeof d;
        check(host().graph_value_desc(graph_, v, &d));
        return d;
    }
    std::vector<int64_t> shape(dsk_value_id v) const { return shape_of(desc(v)); }

private:
    dsk_graph* graph_;
};

// Owns a dsk_graph (graph_create / graph_destroy).
class UniqueGraph : public Graph {
public:
    explicit UniqueGraph(dsk_stage_context* ctx) : Graph(create(ctx)) {}
    ~UniqueGraph() { host().graph_destroy(raw()); }
    UniqueGraph(const UniqueGraph&) = delete;
    UniqueGraph& operator=(const UniqueGraph&) = delete;

private:
    static dsk_graph* create(dsk_stage_context* ctx) {
        dsk_graph* g = nullptr;
        check(host().graph_create(ctx, &g), "creating a graph");
        return g;
    }
};

// Owns a dsk_session: a graph placed on a device (session_create / session_destroy).
class Session {
public:
    // `device` empty: the pipeline's preferred device.
    Session(dsk_stage_context* ctx, const Graph& graph, const std::string& device, uint64_t seed) {
        check(host().session_create(ctx, graph.raw(), device.empty() ? nullptr : device.c_str(), seed, &session_),
              "placing the graph on a device");
    }
    ~Session() { host().session_destroy(session_); }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    dsk_session* raw() const { return session_; }

    void write(dsk_value_id v, const dsk_tensor_desc& host_data) const { check(host().session_write(session_, v, &host_data)); }
    void read(dsk_value_id v, const dsk_tensor_desc& host_data) const { check(host().session_read(session_, v, &host_data)); }
    void run(const std::vector<dsk_value_id>& targets) const { check(host().session_run(session_, targets.data(), targets.size())); }
    dsk_tensor_desc tensor(dsk_value_id v) const {
        dsk_tensor_desc d{};
        d.struct_size = sizeof d;
        check(host().session_tensor(session_, v, &d));
        return d;
    }
    uint64_t run_count() const { return host().session_run_count(session_); }
    void set_run_count(uint64_t runs) const { check(host().session_set_run_count(session_, runs)); }

private:
    dsk_session* session_ = nullptr;
};

}  // namespace dsk

#endif  // DSK_OP_HPP_
