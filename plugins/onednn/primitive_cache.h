// primitive_cache.h - oneDNN's engine and stream for this process, and the cache of prepared
// primitives that makes a training loop create each primitive once.
//
// A kernel describes what it is about to run by a key (cache_key(): the op, every tensor's dtype
// and shape, every attribute) and asks for its plan:
//
//     struct MatMulPlan { dnnl::matmul primitive; ... };
//     auto plan = cached<MatMulPlan>(cache_key(args), [&] { return MatMulPlan{...}; });
//     plan->primitive.execute(stream(), {...});
//
// The first call with a key builds the plan (primitive descriptor and primitive: the expensive
// part, tens of microseconds to milliseconds); every later call finds it. Plans never hold
// tensor memory: the kernels wrap `tensors[i].data` in dnnl::memory objects per call.
#ifndef DSK_ONEDNN_PRIMITIVE_CACHE_H_
#define DSK_ONEDNN_PRIMITIVE_CACHE_H_

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/kernel_table.h"

namespace dsk::onednn {

// The CPU engine (one for the process).
const dnnl::engine& engine();
// A stream on it for the calling thread. oneDNN's CPU streams run work before execute()
// returns with the OpenMP runtime, the same pool as the kernel's parallel_for.
dnnl::stream& stream();

// What a kernel's plan is looked up by: the op, the dtype and shape of every input and output,
// and every attribute (name, type, value). Two nodes with the same key run the same primitive.
std::string cache_key(const cpu::KernelArgs& args);

struct PrimitiveCacheStats {
    size_t hits = 0;     // lookups that found a plan
    size_t created = 0;  // plans built (each one a primitive descriptor + primitive)
    size_t size = 0;     // plans held now
};
PrimitiveCacheStats primitive_cache_stats();
// Drops every plan (tests; the next call of each key builds it again).
void primitive_cache_clear();

namespace detail {
std::shared_ptr<const void> cache_find(const std::string& key);
std::shared_ptr<const void> cache_insert(const std::string& key, std::shared_ptr<const void> plan);
}  // namespace detail

// The plan stored under `key`, built by make() (returning a Plan) on the first call. Plans are
// immutable once built and may be used by several threads at once (oneDNN primitives are).
template <class Plan, class Make>
std::shared_ptr<const Plan> cached(const std::string& key, Make&& make) {
    if (std::shared_ptr<const void> found = detail::cache_find(key))
        return std::static_pointer_cast<const Plan>(found);
    std::shared_ptr<const void> built = std::make_shared<const Plan>(make());
    // Another thread may have built the same plan meanwhile: the first one stored wins.
    return std::static_pointer_cast<const Plan>(detail::cache_insert(key, std::move(built)));
}

}  // namespace dsk::onednn

#endif  // DSK_ONEDNN_PRIMITIVE_CACHE_H_
