// 2-D convolution and its two gradients as implicit GEMMs (no im2col buffer), register-blocked
// like matmul_blocked.comp: each invocation computes a TM x TN block of the GEMM's output,
// gathering the B operand from the image on the fly. One workgroup z-slice per (image, group)
// (MODE 0, 1) or per group (MODE 2). Layouts: X [N, C, H, W], W [M, C/G, KH, KW],
// Y [N, M, OH, OW], all contiguous; Cg = C/G, Mg = M/G, Q = Cg*KH*KW.
//   MODE 0  Y[n, g*Mg+i, p]  = sum_{q=(c,kh,kw)} W[g*Mg+i, q] * X[n, g*Cg+c, ih, iw] + bias
//           (p = (oh, ow), ih = oh*sh - pt + kh*dh, iw = ow*sw - pl + kw*dw; 0 outside X)
//   MODE 1  dX[n, g*Cg+i, p] = sum_{k=(m,kh,kw)} W[g*Mg+m, i, kh, kw] * dY[n, g*Mg+m, oh, ow]
//           (p = (ih, iw); oh = (ih + pt - kh*dh) / sh where that divides and is in range)
//   MODE 2  dW[g*Mg+i, q]    = sum_{k=(n,p)} dY[n, g*Mg+i, p] * X[n, g*Cg+c, ih, iw]
#version 450

layout(local_size_x = 64) in;
layout(constant_id = 0) const int MODE = 0;
layout(constant_id = 1) const int TM = 8;
layout(constant_id = 2) const int TN = 8;

layout(std430, binding = 0) readonly buffer BufA { float a[]; };     // W (MODE 0, 1) or dY (2)
layout(std430, binding = 1) readonly buffer BufB { float b[]; };     // X (MODE 0, 2) or dY (1)
layout(std430, binding = 2) readonly buffer BufBias { float bias[]; };
layout(std430, binding = 3) writeonly buffer BufY { float y[]; };

layout(push_constant) uniform Push {
    uint off_a, off_b, off_bias, off_y;
    uint N, C, H, W;
    uint M, OH, OW;
    uint KH, KW;
    uint sh, sw, dh, dw;
    int pt, pl;
    uint G;
    uint has_bias;
} pc;

void main() {
    const uint Cg = pc.C / pc.G;
    const uint Mg = pc.M / pc.G;
    const uint KK = pc.KH * pc.KW;
    const uint HW = pc.H * pc.W;
    const uint P = pc.OH * pc.OW;
    // GEMM extents: rows x cols, inner length.
    const uint rows = MODE == 0 ? Mg : MODE == 1 ? Cg : Mg;
    const uint cols = MODE == 0 ? P : MODE == 1 ? HW : Cg * KK;
    const uint inner = MODE == 0 ? Cg * KK : MODE == 1 ? Mg * KK : pc.N * P;

    const uint blocks_n = (cols + TN - 1) / TN;
    const uint id = gl_WorkGroupID.x * 64 + gl_LocalInvocationID.x;
    if (id >= blocks_n * ((rows + TM - 1) / TM)) return;
    const uint i0 = (id / blocks_n) * TM;
    const uint j0 = (id % blocks_n) * TN;
    const uint slice = gl_WorkGroupID.z;               // n * G + g (MODE 0, 1) or g (MODE 2)
    const uint g = MODE == 2 ? slice : slice % pc.G;
    const uint n = MODE == 2 ? 0 : slice / pc.G;

    // Per column: where its window starts (MODE 0: output pixel; 1: input pixel; 2: (c, kh, kw)).
    int col_h[TN];
    int col_w[TN];
    uint col_c[TN];
    for (int j = 0; j < TN; ++j) {
        const uint col = min(j0 + j, cols - 1);
        if (MODE == 0) {
            col_h[j] = int((col / pc.OW) * pc.sh) - pc.pt;
            col_w[j] = int((col % pc.OW) * pc.sw) - pc.pl;
            col_c[j] = 0;
        } else if (MODE == 1) {
            col_h[j] = int(col / pc.W) + pc.pt;
            col_w[j] = int(col % pc.W) + pc.pl;
            col_c[j] = 0;
        } else {
            const uint c = col / KK;
            const uint r = col % KK;
            col_h[j] = int((r / pc.KW) * pc.dh) - pc.pt;
            col_w[j] = int((r % pc.KW) * pc.dw) - pc.pl;
            col_c[j] = (g * Cg + c) * HW;
        }
    }
    uint row_base[TM];
    for (int i = 0; i < TM; ++i) {
        const uint row = min(i0 + i, rows - 1);
        row_base[i] = MODE == 0 ? pc.off_a + (g * Mg + row) * Cg * KK
                    : MODE == 1 ? pc.off_a + row * KK
                                : pc.off_a + (g * Mg + row) * P;
    }

    float acc[TM][TN];
    for (int i = 0; i < TM; ++i)
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0;

    for (uint k = 0; k < inner; ++k) {
        float av[TM];
        float bv[TN];
        if (MODE == 0) {
            const uint c = k / KK;
            const uint r = k % KK;
            const int kh = int((r / pc.KW) * pc.dh);
            const int kw = int((r % pc.KW) * pc.dw);
            const uint plane = pc.off_b + (n * pc.C + g * Cg + c) * HW;
            for (int i = 0; i < TM; ++i) av[i] = a[row_base[i] + k];
            for (int j = 0; j < TN; ++j) {
                const int ih = col_h[j] + kh;
                const int iw = col_w[j] + kw;
                const bool inside = ih >= 0 && ih < int(pc.H) && iw >= 0 && iw < int(pc.W);
                bv[j] = inside ? b[plane + uint(ih) * pc.W + uint(iw)] : 0.0;
            }
        } else if (MODE == 1) {
            const uint m = k / KK;
            const uint r = k % KK;
            const int kh = int((r / pc.KW) * pc.dh);
            const int kw = int((r % pc.KW) * pc.dw);
            const uint w_off = (g * Mg + m) * Cg * KK + r;
            const uint plane = pc.off_b + (n * pc.M + g * Mg + m) * P;
            for (int i = 0; i < TM; ++i) av[i] = a[row_base[i] + w_off];
            for (int j = 0; j < TN; ++j) {
                const int th = col_h[j] - kh;  // oh * sh
                const int tw = col_w[j] - kw;
                const int oh = th / int(pc.sh);
                const int ow = tw / int(pc.sw);
                const bool inside = th >= 0 && tw >= 0 && oh * int(pc.sh) == th && ow * int(pc.sw) == tw &&
                                    oh < int(pc.OH) && ow < int(pc.OW);
                bv[j] = inside ? b[plane + uint(oh) * pc.OW + uint(ow)] : 0.0;
            }
        } else {
            const uint image = k / P;
            const uint p = k % P;
            const int oh_s = int((p / pc.OW) * pc.sh);
            const int ow_s = int((p % pc.OW) * pc.sw);
            const uint dy_off = image * pc.M * P + p;
            const uint x_off = pc.off_b + image * pc.C * HW;
            for (int i = 0; i < TM; ++i) av[i] = a[row_base[i] + dy_off];
            for (int j = 0; j < TN; ++j) {
                const int ih = oh_s + col_h[j];
                const int iw = ow_s + col_w[j];
                const bool inside = ih >= 0 && ih < int(pc.H) && iw >= 0 && iw < int(pc.W);
                bv[j] = inside ? b[x_off + col_c[j] + uint(ih) * pc.W + uint(iw)] : 0.0;
            }
        }
        for (int i = 0; i < TM; ++i)
            for (int j = 0; j < TN; ++j) acc[i][j] = fma(av[i], bv[j], acc[i][j]);
    }

    for (int i = 0; i < TM; ++i) {
        const uint row = i0 + i;
        if (row >= rows) break;
        const uint out_row = MODE == 0 ? (n * pc.M + g * Mg + row) * P
                           : MODE == 1 ? (n * pc.C + g * Cg + row) * HW
                                       : (g * Mg + row) * Cg * KK;
        const float add = (MODE == 0 && pc.has_bias != 0) ? bias[pc.off_bias + g * Mg + row] : 0.0;
        for (int j = 0; j < TN; ++j) {
            const uint col = j0 + j;
            if (col >= cols) break;
            y[pc.off_y + out_row + col] = acc[i][j] + add;
        }
    }
}
