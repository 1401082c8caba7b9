// dsk_tensor.hpp - C++17 helpers for dsk_tensor_desc, shared by the kernel, backends, op
// schemas and stages: dtype sizes and names, element counts, shapes, contiguous strides.
// Header-only, over dsk_plugin.h; no plugin or kernel state.
#ifndef DSK_TENSOR_HPP_
#define DSK_TENSOR_HPP_

#include <cstdint>
#include <string>
#include <vector>

#include "dsk/dsk_error.hpp"
#include "dsk/dsk_plugin.h"

namespace dsk {

inline size_t dtype_size(uint32_t dtype) {
    switch (dtype) {
        case DSK_DTYPE_F32: case DSK_DTYPE_I32: return 4;
        case DSK_DTYPE_F16: case DSK_DTYPE_BF16: return 2;
        case DSK_DTYPE_F64: case DSK_DTYPE_I64: return 8;
        case DSK_DTYPE_I8: case DSK_DTYPE_U8: case DSK_DTYPE_BOOL: return 1;
        default: return 0;
    }
}

inline const char* dtype_name(uint32_t dtype) {
    static const char* const names[] = {"invalid", "f32", "f16", "bf16", "f64", "i8", "u8", "i32", "i64", "bool"};
    return dtype < DSK_DTYPE_COUNT_ ? names[dtype] : "unknown";
}

inline int64_t numel(const dsk_tensor_desc& t) {
    int64_t n = 1;
    for (uint32_t i = 0; i < t.ndim; ++i) n *= t.shape[i];
    return n;
}

// Bytes of a contiguous tensor of this dtype and shape.
inline uint64_t byte_size(const dsk_tensor_desc& t) {
    return static_cast<uint64_t>(numel(t)) * dtype_size(t.dtype);
}

inline std::vector<int64_t> shape_of(const dsk_tensor_desc& t) {
    return std::vector<int64_t>(t.shape, t.shape + t.ndim);
}

inline std::string shape_text(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

// Sets dtype, shape and row-major strides; leaves device/buffer/data alone.
inline void set_contiguous(dsk_tensor_desc& t, uint32_t dtype, const std::vector<int64_t>& shape) {
    if (shape.size() > DSK_MAX_DIMS) throw Error(DSK_INVALID_ARGUMENT, "tensor rank " + std::to_string(shape.size()) + " exceeds DSK_MAX_DIMS");
    t.struct_size = sizeof(dsk_tensor_desc);
    t.dtype = dtype;
    t.ndim = static_cast<uint32_t>(shape.size());
    int64_t stride = 1;
    for (size_t i = shape.size(); i-- > 0;) {
        t.shape[i] = shape[i];
        t.strides[i] = stride;
        stride *= shape[i];
    }
}

// Row-major with no gaps: strides[i] is the product of the later dimensions (dimensions of size 1
// may have any stride).
inline bool is_contiguous(const dsk_tensor_desc& t) {
    int64_t stride = 1;
    for (uint32_t i = t.ndim; i-- > 0;) {
        if (t.shape[i] != 1 && t.strides[i] != stride) return false;
        stride *= t.shape[i];
    }
    return true;
}

// A host tensor descriptor over caller-owned memory.
inline dsk_tensor_desc host_tensor(uint32_t dtype, const std::vector<int64_t>& shape, void* data) {
    dsk_tensor_desc t{};
    set_contiguous(t, dtype, shape);
    t.data = data;
    return t;
}

template <class T>
T* data_of(const dsk_tensor_desc& t) {
    return static_cast<T*>(t.data);
}

}  // namespace dsk

#endif  // DSK_TENSOR_HPP_
