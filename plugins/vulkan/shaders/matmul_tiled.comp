// Y[M, N] = alpha * A[M, K] * B[K, N] + beta * C (broadcast), for GPUs. A workgroup of
// (BM/8) x (BN/8) invocations computes a BM x BN tile of Y; each invocation accumulates an 8x8
// block in registers, as four 4x4 quadrants BM/2 rows and BN/2 columns apart, so that its
// operands come out of shared memory as vec4s (four 16-byte loads feed 64 multiply-adds) and
// neighbouring invocations read neighbouring vec4s. K advances BK at a time through two
// shared-memory buffers: while the tile in one is multiplied, the next BK-slice of A and B is
// already loaded from global memory into registers, and goes to the other buffer afterwards (one
// barrier per slice). A and B are read through strides (every transA/transB); consecutive
// invocations load along whichever of a panel's dimensions is contiguous, so the loads coalesce.
#version 450

layout(constant_id = 0) const uint BM = 128;  // rows of Y per workgroup (multiple of 8)
layout(constant_id = 1) const uint BN = 128;  // columns of Y per workgroup (multiple of 8)
layout(constant_id = 2) const uint BK = 8;    // slice of K staged per step
layout(constant_id = 3) const uint THREADS = 256;  // (BM / 8) * (BN / 8)
layout(local_size_x_id = 3) in;

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

// [buffer][k][vec4 of m or n]; one vec4 of padding per row spreads the stores over the banks.
shared vec4 tile_a[2][BK][BM / 4 + 1];
shared vec4 tile_b[2][BK][BN / 4 + 1];

const uint A_LOADS = BM * BK / THREADS;
const uint B_LOADS = BN * BK / THREADS;

float a_reg[A_LOADS];
float b_reg[B_LOADS];

// Element e of the BM x BK slice of A at k0: along k when A's rows are contiguous, else along m.
void a_slot(uint e, out uint kk, out uint mm) {
    if (pc.sak == 1) { kk = e % BK; mm = e / BK; }
    else { kk = e / BM; mm = e % BM; }
}
void b_slot(uint e, out uint kk, out uint nn) {
    if (pc.sbn == 1) { kk = e / BN; nn = e % BN; }
    else { kk = e % BK; nn = e / BK; }
}

void load_slice(uint k0, uint m_base, uint n_base, uint t) {
    for (uint l = 0; l < A_LOADS; ++l) {
        uint kk, mm;
        a_slot(t + l * THREADS, kk, mm);
        const uint k = k0 + kk, m = m_base + mm;
        a_reg[l] = (k < pc.K && m < pc.M) ? a[pc.off_a + m * pc.sam + k * pc.sak] : 0.0;
    }
    for (uint l = 0; l < B_LOADS; ++l) {
        uint kk, nn;
        b_slot(t + l * THREADS, kk, nn);
        const uint k = k0 + kk, n = n_base + nn;
        b_reg[l] = (k < pc.K && n < pc.N) ? b[pc.off_b + k * pc.sbk + n * pc.sbn] : 0.0;
    }
}

void store_slice(uint buf, uint t) {
    for (uint l = 0; l < A_LOADS; ++l) {
        uint kk, mm;
        a_slot(t + l * THREADS, kk, mm);
        tile_a[buf][kk][mm / 4][mm % 4] = a_reg[l];
    }
    for (uint l = 0; l < B_LOADS; ++l) {
        uint kk, nn;
        b_slot(t + l * THREADS, kk, nn);
        tile_b[buf][kk][nn / 4][nn % 4] = b_reg[l];
    }
}

void main() {
    const uint t = gl_LocalInvocationID.x;
    const uint tx = t % (BN / 8);  // vec4 column of the left quadrants
    const uint ty = t / (BN / 8);  // vec4 row of the upper quadrants
    const uint m_base = gl_WorkGroupID.y * BM;
    const uint n_base = gl_WorkGroupID.x * BN;

    vec4 acc_l[8];  // rows ty*4 + i (i < 4) and BM/2 + ty*4 + i - 4, columns tx*4 + 0..3
    vec4 acc_r[8];  // the same rows, columns BN/2 + tx*4 + 0..3
    for (int i = 0; i < 8; ++i) { acc_l[i] = vec4(0.0); acc_r[i] = vec4(0.0); }

    load_slice(0, m_base, n_base, t);
    store_slice(0, t);
    barrier();
    uint buf = 0;
    for (uint k0 = 0; k0 < pc.K; k0 += BK) {
        const bool more = k0 + BK < pc.K;
        if (more) load_slice(k0 + BK, m_base, n_base, t);
        for (uint kk = 0; kk < BK; ++kk) {
            const vec4 a_lo = tile_a[buf][kk][ty];
            const vec4 a_hi = tile_a[buf][kk][ty + BM / 8];
            const vec4 b_l = tile_b[buf][kk][tx];
            const vec4 b_r = tile_b[buf][kk][tx + BN / 8];
            for (int i = 0; i < 4; ++i) {
                acc_l[i] = fma(vec4(a_lo[i]), b_l, acc_l[i]);
                acc_r[i] = fma(vec4(a_lo[i]), b_r, acc_r[i]);
                acc_l[i + 4] = fma(vec4(a_hi[i]), b_l, acc_l[i + 4]);
                acc_r[i + 4] = fma(vec4(a_hi[i]), b_r, acc_r[i + 4]);
            }
        }
        if (more) store_slice(buf ^ 1, t);
        barrier();
        buf ^= 1;
    }

    for (uint i = 0; i < 8; ++i) {
        const uint m = m_base + (i < 4 ? ty * 4 + i : BM / 2 + ty * 4 + i - 4);
        if (m >= pc.M) continue;
        for (uint side = 0; side < 2; ++side) {
            const vec4 v4 = side == 0 ? acc_l[i] : acc_r[i];
            const uint n0 = n_base + side * (BN / 2) + tx * 4;
            for (uint j = 0; j < 4; ++j) {
                const uint n = n0 + j;
                if (n >= pc.N) continue;
                float v = pc.alpha * v4[j];
                if (pc.has_c != 0) v += pc.beta * c[pc.off_c + m * pc.scm + n * pc.scn];
                y[pc.off_y + m * pc.N + n] = v;
            }
        }
    }
}
