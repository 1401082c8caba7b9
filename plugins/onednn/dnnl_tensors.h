// dnnl_tensors.h - dsk tensors as oneDNN memory: descriptors over the row-major `data` of a
// dsk_tensor_desc (never its buffer or device: CPU-type backends share host memory, docs/abi.md),
// and oneDNN's errors as dsk errors that name the kernel.
#ifndef DSK_ONEDNN_DNNL_TENSORS_H_
#define DSK_ONEDNN_DNNL_TENSORS_H_

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "kernels/kernel_table.h"

namespace dsk::onednn {

using dnnl::memory;
using Dims = memory::dims;

// f32, u8, s8, s32 (the dtypes this backend's kernels take); throws for others.
memory::data_type data_type_of(uint32_t dtype);

Dims dims_of(const dsk_tensor_desc& t);

// Row-major (dense, C order) memory of these dims.
memory::desc plain(const Dims& dims, memory::data_type type = memory::data_type::f32);
// The same over a tensor's own shape and dtype.
memory::desc plain_of(const dsk_tensor_desc& t);

// A 2-D matrix stored row-major as [rows, cols], seen transposed when `transposed`: the logical
// [cols, rows] matrix with column-major strides. No copy.
memory::desc matrix(int64_t rows, int64_t cols, bool transposed,
                    memory::data_type type = memory::data_type::f32);

// oneDNN memory over caller-owned data (no copy; valid while the data is).
memory wrap(const memory::desc& desc, const void* data);

// Runs `body` (primitive creation, execution) and turns a dnnl::error into a dsk::Error that
// names the backend, the op and what was being done: "onednn kernel Conv: creating the
// primitive: could not create a descriptor ... (status 3)".
template <class F>
decltype(auto) with_dnnl(const cpu::KernelArgs& args, const char* what, F&& body) {
    try {
        return body();
    } catch (const dnnl::error& e) {
        throw Error(DSK_INTERNAL, std::string("onednn kernel ") + args.op() + ": " + what + ": " +
                                      e.what() + " (dnnl status " +
                                      std::to_string(static_cast<int>(e.status)) + ")");
    }
}

// A tensor in the layout a primitive chose for it (created with format_tag::any), with the
// reorder between that layout and dsk's plain one. Built with the plan; `needed` is false when
// the primitive takes the plain layout itself.
struct Relayout {
    memory::desc plain, chosen;
    dnnl::reorder reorder;  // plain -> chosen for an input, chosen -> plain for an output
    bool needed = false;
};
Relayout input_relayout(const memory::desc& plain, const memory::desc& chosen);
Relayout output_relayout(const memory::desc& plain, const memory::desc& chosen);

// Per call: the memory a primitive reads or writes for one tensor, in its chosen layout. For an
// input it reorders the tensor's data into a buffer of its own (or wraps the data when no
// reorder is needed); for an output finish() reorders the buffer into the tensor's data.
class Staged {
  public:
    Staged(const cpu::KernelArgs& args, const Relayout& layout, const void* data, bool input);
    const memory& get() const { return memory_; }
    void finish();  // outputs: copy back into the tensor (after the primitive ran)

  private:
    const cpu::KernelArgs& args_;
    const Relayout& layout_;
    void* data_;
    std::vector<uint8_t> buffer_;
    memory memory_;
};

// oneDNN runs every primitive on all the threads of the OpenMP pool (the kernel's pool too). For
// a small problem, waking the second thread and meeting it at the barrier costs more than the
// work itself (a batch-1 MLP layer, a bias-sized eltwise): this guard makes the primitives
// created and run in its scope use the calling thread only, when `work` (multiply-adds, or
// elements for memory-bound ops) is below kSerialWork. oneDNN sizes its partitioning by the
// thread count at creation and runs with the count at execution, so a kernel holds the guard
// around both (the plan's key is the shape, so one shape is always on the same side).
constexpr int64_t kSerialWork = int64_t{1} << 16;

class ThreadsFor {
  public:
    explicit ThreadsFor(int64_t work);
    ~ThreadsFor();
    ThreadsFor(const ThreadsFor&) = delete;
    ThreadsFor& operator=(const ThreadsFor&) = delete;

  private:
    int saved_ = 0;  // 0: nothing changed
};

// Executes a primitive on this thread's stream and waits for it.
void execute(const cpu::KernelArgs& args, const dnnl::primitive& primitive,
             const std::unordered_map<int, memory>& arguments);

}  // namespace dsk::onednn

#endif  // DSK_ONEDNN_DNNL_TENSORS_H_
