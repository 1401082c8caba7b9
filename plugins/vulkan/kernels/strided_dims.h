// strided_dims.h - index spaces for the broadcasting and reducing shaders: a list of extents
// with, per operand, the stride of each (0 where the operand broadcasts). collapse() drops
// extents of 1 and merges neighbours that every operand walks contiguously, so that most
// real shapes fit the shaders' four (or six) dimensions.
#ifndef DSK_VULKAN_KERNELS_STRIDED_DIMS_H_
#define DSK_VULKAN_KERNELS_STRIDED_DIMS_H_

#include <cstdint>
#include <vector>

namespace dsk::vulkan {

struct StridedDims {
    std::vector<int64_t> extent;                 // outermost first
    std::vector<std::vector<int64_t>> strides;   // strides[operand][dim]

    explicit StridedDims(size_t operands) : strides(operands) {}

    void add(int64_t size, std::initializer_list<int64_t> operand_strides) {
        extent.push_back(size);
        size_t k = 0;
        for (int64_t s : operand_strides) strides[k++].push_back(s);
    }

    void collapse() {
        StridedDims out(strides.size());
        for (size_t d = 0; d < extent.size(); ++d) {
            if (extent[d] == 1) continue;
            bool merge = !out.extent.empty();
            for (size_t k = 0; merge && k < strides.size(); ++k)
                merge = out.strides[k].back() == strides[k][d] * extent[d];
            if (merge) {
                out.extent.back() *= extent[d];
                for (size_t k = 0; k < strides.size(); ++k) out.strides[k].back() = strides[k][d];
            } else {
                out.extent.push_back(extent[d]);
                for (size_t k = 0; k < strides.size(); ++k) out.strides[k].push_back(strides[k][d]);
            }
        }
        *this = std::move(out);
    }

    size_t rank() const { return extent.size(); }

    // Extents padded on the left with 1s (stride 0) to `rank` dimensions.
    std::vector<int64_t> padded_extent(size_t rank) const {
        std::vector<int64_t> out(rank - extent.size(), 1);
        out.insert(out.end(), extent.begin(), extent.end());
        return out;
    }
    std::vector<int64_t> padded_strides(size_t operand, size_t rank) const {
        std::vector<int64_t> out(rank - extent.size(), 0);
        out.insert(out.end(), strides[operand].begin(), strides[operand].end());
        return out;
    }
};

// Row-major strides of a shape.
inline std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
    std::vector<int64_t> strides(shape.size());
    int64_t s = 1;
    for (size_t d = shape.size(); d-- > 0;) {
        strides[d] = s;
        s *= shape[d];
    }
    return strides;
}

}  // namespace dsk::vulkan

#endif  // DSK_VULKAN_KERNELS_STRIDED_DIMS_H_
