// Y[M, N] = alpha * A[M, K] * B[K, N] + beta * C (broadcast), for GPUs: a 16x16 workgroup
// computes a 64x64 tile of Y, staging 64x16 panels of A and B through shared memory; each
// invocation accumulates a 4x4 block in registers. Strided reads serve every transA/transB.
#version 450

#define TILE 64
#define KT 16
layout(local_size_x = 16, local_size_y = 16) in;

layout(std430, binding = 0) readonly buffer BufA { float a[]; };
layout(std430, binding = 1) readonly buffer BufB { float b[]; };
layout(std430, binding = 2) readonly buffer BufC { float c[]; };
layout(std430, binding = 3) writeonly buffer BufY { float y[]; };

layout(push_constant) uniform Push {
    uint off_a, off_b, off_c, off_y;
    uint M, N, K;
    uint sam, sak;
    uint sbk, sbn;
    uint scm, scn;
    float alpha, beta;
    uint has_c;
} pc;

shared float tile_a[KT][TILE + 1];
shared float tile_b[KT][TILE + 1];

void main() {
    const uint tx = gl_LocalInvocationID.x;
    const uint ty = gl_LocalInvocationID.y;
    const uint t = ty * 16 + tx;
    const uint m_base = gl_WorkGroupID.y * TILE;
    const uint n_base = gl_WorkGroupID.x * TILE;

    float acc[4][4];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0;

    for (uint k0 = 0; k0 < pc.K; k0 += KT) {
        // 256 invocations load 64x16 values of each panel: 4 each.
        for (uint l = 0; l < 4; ++l) {
            const uint e = t + l * 256;
            const uint kk = e / TILE;
            const uint mm = e % TILE;
            const uint k = k0 + kk;
            const uint m = m_base + mm;
            const uint n = n_base + mm;
            tile_a[kk][mm] = (k < pc.K && m < pc.M) ? a[pc.off_a + m * pc.sam + k * pc.sak] : 0.0;
            tile_b[kk][mm] = (k < pc.K && n < pc.N) ? b[pc.off_b + k * pc.sbk + n * pc.sbn] : 0.0;
        }
        barrier();
        for (uint kk = 0; kk < KT; ++kk) {
            float av[4];
            float bv[4];
            for (int i = 0; i < 4; ++i) av[i] = tile_a[kk][ty + 16 * i];
            for (int j = 0; j < 4; ++j) bv[j] = tile_b[kk][tx + 16 * j];
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
        barrier();
    }

    for (int i = 0; i < 4; ++i) {
        const uint m = m_base + ty + 16 * i;
        if (m >= pc.M) continue;
        for (int j = 0; j < 4; ++j) {
            const uint n = n_base + tx + 16 * j;
            if (n >= pc.N) continue;
            float v = pc.alpha * acc[i][j];
            if (pc.has_c != 0) v += pc.beta * c[pc.off_c + m * pc.scm + n * pc.scn];
            y[pc.off_y + m * pc.N + n] = v;
        }
    }
}
