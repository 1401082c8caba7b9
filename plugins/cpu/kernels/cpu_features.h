// cpu_features.h - what the CPU the kernels run on offers, asked once: the kernels with a
// hand-written AVX-512 path (pooling rows, im2col / col2im rows) test it before taking it.
#ifndef DSK_CPU_KERNELS_CPU_FEATURES_H_
#define DSK_CPU_KERNELS_CPU_FEATURES_H_

namespace dsk::cpu {

// True when the CPU runs AVX-512F (always false off x86-64).
inline bool cpu_has_avx512f() {
#if defined(__x86_64__) && defined(__GNUC__)
    static const bool has = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") != 0;
    }();
    return has;
#else
    return false;
#endif
}

// True when the CPU also runs AVX-512VL (the 256-bit forms with masks; always false off x86-64).
inline bool cpu_has_avx512vl() {
#if defined(__x86_64__) && defined(__GNUC__)
    static const bool has = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512vl") != 0;
    }();
    return has;
#else
    return false;
#endif
}

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_CPU_FEATURES_H_
