// gemm.h - single-precision matrix multiply for the cpu kernels (Gemm, MatMul, Conv and its
// gradients).
//
//     C = alpha * op(A) * op(B) + beta * C      op(A) is M x K, op(B) is K x N, C is M x N
//
// All matrices are row-major with leading dimensions lda/ldb/ldc (elements between rows as
// stored: A is M x K, or K x M when trans_a). beta == 0 means C is not read (NaN in C does not
// survive), as in BLAS.
//
// It is a blocked SGEMM in the BLIS style: panels of op(A) and op(B) are packed into contiguous
// scratch, and a register-blocked micro-kernel (AVX-512 8x32 or AVX2 6x16 FMA, chosen at run
// time from what the CPU has; a portable 4x16 otherwise) computes each tile of C. The AVX2
// micro-kernel reads a non-transposed A where it is, 6 rows at a time, instead of a packed panel
// (unless its rows are a multiple of 4 KB apart). The sum over K runs in a fixed order that
// depends only on K and the micro-kernel, never on the thread count, so results are bitwise
// reproducible on a given machine. With 1 to 4 rows (inference at a small batch) and AVX-512 or
// AVX2, op(B) is read in place instead (no packing, no padded rows).
//
// An optional epilogue runs on each tile of C as soon as its sum over K is complete (right after
// the micro-kernel's last K slice for that tile, while the tile is still in L1): the fused
// kernels add a bias and apply an activation there instead of making more passes over C.
#ifndef DSK_CPU_KERNELS_GEMM_H_
#define DSK_CPU_KERNELS_GEMM_H_

#include <cstdint>

namespace dsk::cpu {

// Work on finished tiles of C. `apply` gets rows [i0, i0 + rows) x columns [j0, j0 + cols) of C
// (c points at C[i0][j0], rows ldc apart) once their values are final; it may rewrite them and
// write elsewhere, but must not touch other parts of C. Every element of C passes through
// exactly one call, on the thread that computed it; calls of one sgemm may run concurrently.
// `context` is the epilogue's own data, borrowed for the call to sgemm.
//
// `column_bias` (optional) says that all `apply` does is C[i][j] += column_bias[j] (j counted
// from C's first column), then C = Relu(C) (x < 0 ? 0 : x) when `relu`, in place. sgemm may then
// do that in the micro-kernel's registers for whole tiles, before their store, and call `apply`
// only on the partial tiles at C's edges.
struct GemmEpilogue {
    void (*apply)(const void* context, int64_t i0, int64_t j0, int64_t rows, int64_t cols, float* c,
                  int64_t ldc);
    const void* context;
    const float* column_bias = nullptr;
    bool relu = false;
};

// op(B) packed once into the micro-kernel's panels, for products that reuse the same B (a
// layer's weights across the runs of an inference session): sgemm then reads the panels instead
// of packing B for every call and every thread. It belongs to the micro-kernel it was packed for;
// under another one (sgemm_select_isa), or with at most 4 rows (B read in place), sgemm ignores it.
class PackedB {
  public:
    PackedB() = default;
    ~PackedB();
    PackedB(const PackedB&) = delete;
    PackedB& operator=(const PackedB&) = delete;

    // Packs op(B) (K x N; B is N x K when trans_b) for the micro-kernel in use.
    void pack(bool trans_b, int64_t n, int64_t k, const float* b, int64_t ldb);
    // Whether this holds op(B) of these dimensions (whatever its values) for the micro-kernel in
    // use.
    bool holds(bool trans_b, int64_t n, int64_t k) const;
    const float* data() const { return data_; }

  private:
    float* data_ = nullptr;  // a Scratch's memory: 64-byte aligned
    void* scratch_ = nullptr;
    const void* config_ = nullptr;
    bool trans_b_ = false;
    int64_t n_ = 0, k_ = 0;
};

// Whether a product of `m` rows reads a PackedB (with at most 4 rows and AVX-512 or AVX2 it
// reads B in place).
bool sgemm_reads_packed_b(int64_t m);

// Splits the work over the kernel's thread pool (host().parallel_for) when it is large enough.
// `epilogue` (may be null) is borrowed for the call. `packed_b` (may be null) holds op(B) packed
// (B itself must still be given: the paths that read it in place use it).
void sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc,
           const GemmEpilogue* epilogue = nullptr, const PackedB* packed_b = nullptr);

// The same on the calling thread only: for kernels that already run inside parallel_for.
void sgemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc, const GemmEpilogue* epilogue = nullptr);

// The micro-kernels, for tests and benchmarks. `automatic` is the best one the CPU runs.
enum class GemmIsa { automatic, avx512, avx2, generic };

// Selects the micro-kernel for every later call (process-wide; not for use while another thread
// multiplies). Returns false, changing nothing, when this CPU cannot run it.
bool sgemm_select_isa(GemmIsa isa);

// "avx512", "avx2" or "generic": the micro-kernel now in use.
const char* sgemm_isa_name();

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_GEMM_H_
