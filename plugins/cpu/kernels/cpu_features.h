// cpu_features.h - what the CPU the kernels run on offers, asked once: the kernels with a
// hand-written AVX-512 or AVX2 path (the SGEMM, pooling rows, im2col / col2im rows, the direct and
// Winograd convolutions) test it before taking it.
#ifndef DSK_CPU_KERNELS_CPU_FEATURES_H_
#define DSK_CPU_KERNELS_CPU_FEATURES_H_

namespace dsk::cpu {

struct CpuFeatures {
    bool avx512f = false;   // AVX-512 Foundation
    bool avx512vl = false;  // the 128/256-bit forms with masks
    bool avx2 = false;
    bool fma = false;       // FMA3, which the AVX2 multiply-add paths also need
};

// The features of this CPU (all false off x86-64).
inline const CpuFeatures& cpu_features() {
    static const CpuFeatures features = [] {
        CpuFeatures f;
#if defined(__x86_64__) && defined(__GNUC__)
        __builtin_cpu_init();
        f.avx512f = __builtin_cpu_supports("avx512f") != 0;
        f.avx512vl = __builtin_cpu_supports("avx512vl") != 0;
        f.avx2 = __builtin_cpu_supports("avx2") != 0;
        f.fma = __builtin_cpu_supports("fma") != 0;
#endif
        return f;
    }();
    return features;
}

inline bool cpu_has_avx512f() {
    return cpu_features().avx512f;
}

inline bool cpu_has_avx512vl() {
    return cpu_features().avx512vl;
}

inline bool cpu_has_avx2() {
    return cpu_features().avx2;
}

inline bool cpu_has_avx2_fma() {
    return cpu_features().avx2 && cpu_features().fma;
}

}  // namespace dsk::cpu

#endif  // DSK_CPU_KERNELS_CPU_FEATURES_H_
