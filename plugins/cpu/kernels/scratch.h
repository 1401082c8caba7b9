// scratch.h - aligned float work buffers for the cpu kernels (packed GEMM panels, im2col
// columns, partial sums), recycled through a small pool so that a training step does not call
// malloc and fault fresh pages for every op.
//
// A Scratch is owned by the code that takes it and goes back to the pool when destroyed. Any
// thread may take one; a buffer is never shared between two live Scratch objects.
#ifndef DSK_CPU_KERNELS_SCRATCH_H_
#define DSK_CPU_KERNELS_SCRATCH_H_

#include <cstddef>

namespace dsk::cpu {

class Scratch {
  public:
    // At least `count` floats, 64-byte aligned, contents undefined. Throws std::bad_alloc.
    explicit Scratch(size_t count);
    ~Scratch();
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;

    float* data() const noexcept { return data_; }
    size_t size() const noexcept { return count_; }

  private:
    float* data_;
    size_t count_;  // capacity of data_, in floats
};

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_SCRATCH_H_
