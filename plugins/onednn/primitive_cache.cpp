// primitive_cache.cpp - see primitive_cache.h.
#include "primitive_cache.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace dsk::onednn {
namespace {

struct Cache {
    std::mutex mutex;
    std::unordered_map<std::string, std::shared_ptr<const void>> plans;
    size_t hits = 0;
    size_t created = 0;
};

Cache& cache() {
    static Cache* instance = new Cache;  // never destroyed: plans may be used during exit
    return *instance;
}

// Appends without temporaries: the key is built on every kernel call.
void append_int(std::string& key, int64_t value) {
    char text[24];
    const auto end = std::to_chars(text, text + sizeof text, value).ptr;
    key.append(text, end);
}

void append_attr(std::string& key, const dsk_attr& a) {
    if (a.name != nullptr) key += a.name;
    switch (a.type) {
        case DSK_ATTR_INT:
            key += "=i";
            append_int(key, a.i);
            break;
        case DSK_ATTR_FLOAT: {
            char text[40];
            const int n = std::snprintf(text, sizeof text, "=f%a", a.f);  // exact: hexadecimal
            key.append(text, static_cast<size_t>(std::max(n, 0)));
            break;
        }
        case DSK_ATTR_STRING:
            key += "=s";
            if (a.s != nullptr) key += a.s;
            break;
        case DSK_ATTR_INTS:
            key += "=[";
            for (size_t k = 0; k < a.count; ++k) {
                append_int(key, a.ints[k]);
                key += ',';
            }
            key += ']';
            break;
        default: key += "=?"; break;  // FLOATS: no op of this backend takes them
    }
    key += ';';
}

void append_tensor(std::string& key, const dsk_tensor_desc& t) {
    append_int(key, t.dtype);
    key += ':';
    for (uint32_t d = 0; d < t.ndim; ++d) {
        append_int(key, t.shape[d]);
        key += 'x';
    }
    key += ';';
}

}  // namespace

const dnnl::engine& engine() {
    static const dnnl::engine instance(dnnl::engine::kind::cpu, 0);
    return instance;
}

dnnl::stream& stream() {
    thread_local dnnl::stream instance(engine());
    return instance;
}

std::string cache_key(const cpu::KernelArgs& args) {
    std::string key;
    key.reserve(160);
    key += args.op();
    key += '|';
    for (size_t i = 0; i < args.input_count(); ++i) append_tensor(key, args.input(i));
    key += '|';
    for (size_t i = 0; i < args.output_count(); ++i) append_tensor(key, args.output(i));
    key += '|';
    const dsk_node_view* node = args.node();
    for (size_t i = 0; i < node->attr_count; ++i) append_attr(key, node->attrs[i]);
    return key;
}

PrimitiveCacheStats primitive_cache_stats() {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    return {c.hits, c.created, c.plans.size()};
}

void primitive_cache_clear() {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.plans.clear();
}

namespace detail {

std::shared_ptr<const void> cache_find(const std::string& key) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    const auto it = c.plans.find(key);
    if (it == c.plans.end()) return nullptr;
    ++c.hits;
    return it->second;
}

std::shared_ptr<const void> cache_insert(const std::string& key, std::shared_ptr<const void> plan) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    const auto [it, inserted] = c.plans.emplace(key, std::move(plan));
    if (inserted) ++c.created;
    return it->second;
}

}  // namespace detail
}  // namespace dsk::onednn
