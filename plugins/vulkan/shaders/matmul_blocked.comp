// Y[M, N] = alpha * A[M, K] * B[K, N] + beta * C (broadcast), for devices that emulate Vulkan
// on a CPU (lavapipe): no shared memory, and each invocation computes a TM x TN block of Y in
// registers, so that every value loaded feeds TM or TN multiply-adds (lavapipe pays a guarded
// scalar load per lane for every component, whatever the access pattern). A and B are read
// through strides, so one shader serves every transA/transB combination; the four-wide inner
// step over K lets the compiler keep the loads of one row in flight together.
#version 450

layout(local_size_x = 64) in;
layout(constant_id = 0) const int TM = 8;   // rows of Y per invocation
layout(constant_id = 1) const int TN = 8;   // columns of Y per invocation

layout(std430, binding = 0) readonly buffer BufA { float a[]; };
layout(std430, binding = 1) readonly buffer BufB { float b[]; };
layout(std430, binding = 2) readonly buffer BufC { float c[]; };
layout(std430, binding = 3) writeonly buffer BufY { float y[]; };

layout(push_constant) uniform Push {
    uint off_a, off_b, off_c, off_y;
    uint M, N, K;
    uint sam, sak;  // A(m, k) = a[off_a + m * sam + k * sak]
    uint sbk, sbn;  // B(k, n) = b[off_b + k * sbk + n * sbn]
    uint scm, scn;  // C(m, n) = c[off_c + m * scm + n * scn] (0 strides broadcast)
    float alpha, beta;
    uint has_c;
} pc;

void main() {
    const uint blocks_n = (pc.N + TN - 1) / TN;
    const uint blocks = blocks_n * ((pc.M + TM - 1) / TM);
    const uint id = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    if (id >= blocks) return;
    const uint m0 = (id / blocks_n) * TM;
    const uint n0 = (id % blocks_n) * TN;

    // Rows/columns past the edge load the last valid one (and are not stored).
    uint a_row[TM];
    for (int i = 0; i < TM; ++i) a_row[i] = pc.off_a + min(m0 + i, pc.M - 1) * pc.sam;
    uint b_col[TN];
    for (int j = 0; j < TN; ++j) b_col[j] = pc.off_b + min(n0 + j, pc.N - 1) * pc.sbn;

    float acc[TM][TN];
    for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0;

    for (uint k = 0; k < pc.K; ++k) {
        float av[TM];
        float bv[TN];
        const uint ak = k * pc.sak;
        const uint bk = k * pc.sbk;
        for (int i = 0; i < TM; ++i) av[i] = a[a_row[i] + ak];
        for (int j = 0; j < TN; ++j) bv[j] = b[b_col[j] + bk];
        for (int i = 0; i < TM; ++i)
            for (int j = 0; j < TN; ++j) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
    }

    for (int i = 0; i < TM; ++i) {
        const uint m = m0 + i;
        if (m >= pc.M) break;
        for (int j = 0; j < TN; ++j) {
            const uint n = n0 + j;
            if (n >= pc.N) break;
            float v = pc.alpha * acc[i][j];
            if (pc.has_c != 0) v += pc.beta * c[pc.off_c + m * pc.scm + n * pc.scn];
            y[pc.off_y + m * pc.N + n] = v;
        }
    }
}
