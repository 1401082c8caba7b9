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

// Executes a primitive on this thread's stream and waits for it.
void execute(const cpu::KernelArgs& args, const dnnl::primitive& primitive,
             const std::unordered_map<int, memory>& arguments);

}  // namespace dsk::onednn

#endif  // DSK_ONEDNN_DNNL_TENSORS_H_
