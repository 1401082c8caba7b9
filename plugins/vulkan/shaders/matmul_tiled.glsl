// Y[M, N] = alpha * A[M, K] * B[K, N] + beta * C (broadcast), for GPUs. A workgroup of
// (BM/8) x (BN/8) invocations computes a BM x BN tile of Y; each invocation accumulates an 8x8
// block in registers, as four 4x4 quadrants BM/2 rows and BN/2 columns apart, so that its
// operands come out of shared memory as vec4s (four 16-byte loads feed 64 multiply-adds) and
// neighbouring invocations read neighbouring vec4s. K advances BK at a time through two
// shared-memory buffers: while the tile in one is multiplied, the next BK-slice of A and B is
// already loaded from global memory into registers, and goes to the other buffer afterwards (one
// barrier per slice). A and B are read through strides (every transA/transB); consecutive
// invocations load along whichever of a panel's dimensions is contiguous, so the loads coalesce.
//
// Included by matmul_tiled_<BM>x<BN>.comp, which defines BM and BN (multiples of 8, at most 512):
// with the tile known at compile time every loop unrolls, so the accumulators and the staged
// values stay in registers, indexed with constants only.
#extension GL_EXT_control_flow_attributes : require

#define BK 8  // slice of K staged per step
#define THREADS ((BM / 8) * (BN / 8))
layout(local_size_x = THREADS) in;

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

#define A_LOADS (BM * BK / THREADS)
#define B_LOADS (BN * BK / THREADS)

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
    [[unroll]] for (uint l = 0; l < A_LOADS; ++l) {
        uint kk, mm;
        a_slot(t + l * THREADS, kk, mm);
        const uint k = k0 + kk, m = m_base + mm;
        a_reg[l] = (k < pc.K && m < pc.M) ? a[pc.off_a + m * pc.sam + k * pc.sak] : 0.0;
    }
    [[unroll]] for (uint l = 0; l < B_LOADS; ++l) {
        uint kk, nn;
        b_slot(t + l * THREADS, kk, nn);
        const uint k = k0 + kk, n = n_base + nn;
        b_reg[l] = (k < pc.K && n < pc.N) ? b[pc.off_b + k * pc.sbk + n * pc.sbn] : 0.0;
    }
}

void store_slice(uint buf, uint t) {
    [[unroll]] for (uint l = 0; l < A_LOADS; ++l) {
        uint kk, mm;
        a_slot(t + l * THREADS, kk, mm);
        tile_a[buf][kk][mm / 4][mm % 4] = a_reg[l];
    }
    [[unroll]] for (uint l = 0; l < B_LOADS; ++l) {
        uint kk, nn;
        b_slot(t + l * THREADS, kk, nn);
        tile_b[buf][kk][nn / 4][nn % 4] = b_reg[l];
    }
}

void store(uint m, uint n, float v) {
    if (m >= pc.M || n >= pc.N) return;
    if (pc.has_c != 0) y[pc.off_y + m * pc.N + n] = pc.alpha * v + pc.beta * c[pc.off_c + m * pc.scm + n * pc.scn];
    else y[pc.off_y + m * pc.N + n] = pc.alpha * v;
}

void store_row(uint m, uint n, vec4 v) {
    store(m, n, v.x);
    store(m, n + 1, v.y);
    store(m, n + 2, v.z);
    store(m, n + 3, v.w);
}

void main() {
    const uint t = gl_LocalInvocationID.x;
    const uint tx = t % (BN / 8);  // vec4 column of the left quadrants
    const uint ty = t / (BN / 8);  // vec4 row of the upper quadrants
    const uint m_base = gl_WorkGroupID.y * BM;
    const uint n_base = gl_WorkGroupID.x * BN;

    vec4 acc_l[8];  // rows ty*4 + i (i < 4) and BM/2 + ty*4 + i - 4, columns tx*4 + 0..3
    vec4 acc_r[8];  // the same rows, columns BN/2 + tx*4 + 0..3
    [[unroll]] for (int i = 0; i < 8; ++i) { acc_l[i] = vec4(0.0); acc_r[i] = vec4(0.0); }

    load_slice(0, m_base, n_base, t);
    store_slice(0, t);
    barrier();
    uint buf = 0;
    for (uint k0 = 0; k0 < pc.K; k0 += BK) {
        const bool more = k0 + BK < pc.K;
        if (more) load_slice(k0 + BK, m_base, n_base, t);
        [[unroll]] for (uint kk = 0; kk < BK; ++kk) {
            const vec4 a_lo = tile_a[buf][kk][ty];
            const vec4 a_hi = tile_a[buf][kk][ty + BM / 8];
            const vec4 b_l = tile_b[buf][kk][tx];
            const vec4 b_r = tile_b[buf][kk][tx + BN / 8];
#define ROW(i, av) acc_l[i] = fma(vec4(av), b_l, acc_l[i]); acc_r[i] = fma(vec4(av), b_r, acc_r[i]);
            ROW(0, a_lo.x) ROW(1, a_lo.y) ROW(2, a_lo.z) ROW(3, a_lo.w)
            ROW(4, a_hi.x) ROW(5, a_hi.y) ROW(6, a_hi.z) ROW(7, a_hi.w)
#undef ROW
        }
        if (more) store_slice(buf ^ 1, t);
        barrier();
        buf ^= 1;
    }

    const uint m_lo = m_base + ty * 4, m_hi = m_lo + BM / 2;
    const uint n_l = n_base + tx * 4, n_r = n_l + BN / 2;
#define OUT(i, m) store_row(m, n_l, acc_l[i]); store_row(m, n_r, acc_r[i]);
    OUT(0, m_lo) OUT(1, m_lo + 1) OUT(2, m_lo + 2) OUT(3, m_lo + 3)
    OUT(4, m_hi) OUT(5, m_hi + 1) OUT(6, m_hi + 2) OUT(7, m_hi + 3)
#undef OUT
}
