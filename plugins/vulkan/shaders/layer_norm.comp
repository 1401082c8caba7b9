// LayerNormalization and its gradient over rows of `width` (X viewed as [rows, width]).
//   MODE 0  one workgroup per row: mean, biased var, Y = (X - mean) invstd scale + B, saved
//           mean/invstd per row. Bindings: X, scale, B, Y, saved_mean, saved_invstd.
//   MODE 1  one workgroup per row: dX = s (g scale - mean(g scale) - xhat mean(g scale xhat)).
//           Bindings: dY, X, scale, saved_mean, saved_invstd, dX.
//   MODE 2  one invocation per column: dscale = sum_rows dY xhat, dB = sum_rows dY.
//           Bindings: dY, X, saved_mean, saved_invstd, dscale, dB.
// Bindings that a node lacks are placeholders, never written (has_* flags).
#version 450

layout(local_size_x = 64) in;
layout(constant_id = 0) const int MODE = 0;

layout(std430, binding = 0) readonly buffer Buf0 { float b0[]; };
layout(std430, binding = 1) readonly buffer Buf1 { float b1[]; };
layout(std430, binding = 2) readonly buffer Buf2 { float b2[]; };
layout(std430, binding = 3) buffer Buf3 { float b3[]; };
layout(std430, binding = 4) buffer Buf4 { float b4[]; };
layout(std430, binding = 5) buffer Buf5 { float b5[]; };

layout(push_constant) uniform Push {
    uint off[6];
    uint rows, width;
    float epsilon;
    uint has2, has4, has5;  // MODE 0: B, saved_mean, saved_invstd; MODE 2: -, dscale, dB
} pc;

shared float red_a[64];
shared float red_b[64];

void reduce2(inout float a, inout float b) {
    const uint t = gl_LocalInvocationID.x;
    red_a[t] = a;
    red_b[t] = b;
    barrier();
    for (uint w = 32; w > 0; w /= 2) {
        if (t < w) {
            red_a[t] += red_a[t + w];
            red_b[t] += red_b[t + w];
        }
        barrier();
    }
    a = red_a[0];
    b = red_b[0];
    barrier();
}

void main() {
    const uint t = gl_LocalInvocationID.x;
    const uint group = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (MODE == 2) {
        const uint j = group * 64 + t;
        if (j >= pc.width) return;
        float sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (uint r = 0; r < pc.rows; ++r) {
            const float g = b0[pc.off[0] + r * pc.width + j];
            sum_dy += g;
            sum_dy_xhat += g * ((b1[pc.off[1] + r * pc.width + j] - b2[pc.off[2] + r]) * b3[pc.off[3] + r]);
        }
        if (pc.has4 != 0) b4[pc.off[4] + j] = sum_dy_xhat;
        if (pc.has5 != 0) b5[pc.off[5] + j] = sum_dy;
        return;
    }
    const uint row = group;
    if (row >= pc.rows) return;  // uniform per workgroup: the barriers stay safe
    const uint base = row * pc.width;
    const float inv_width = 1.0 / float(pc.width);
    if (MODE == 0) {
        float s = 0.0, unused = 0.0;
        for (uint j = t; j < pc.width; j += 64) s += b0[pc.off[0] + base + j];
        reduce2(s, unused);
        const float mean = s * inv_width;
        float q = 0.0;
        unused = 0.0;
        for (uint j = t; j < pc.width; j += 64) {
            const float d = b0[pc.off[0] + base + j] - mean;
            q += d * d;
        }
        reduce2(q, unused);
        const float invstd = inversesqrt(q * inv_width + pc.epsilon);
        for (uint j = t; j < pc.width; j += 64) {
            float v = (b0[pc.off[0] + base + j] - mean) * invstd * b1[pc.off[1] + j];
            if (pc.has2 != 0) v += b2[pc.off[2] + j];
            b3[pc.off[3] + base + j] = v;
        }
        if (t == 0 && pc.has4 != 0) b4[pc.off[4] + row] = mean;
        if (t == 0 && pc.has5 != 0) b5[pc.off[5] + row] = invstd;
        return;
    }
    const float m = b3[pc.off[3] + row];
    const float s = b4[pc.off[4] + row];
    float mean_g = 0.0, mean_gx = 0.0;
    for (uint j = t; j < pc.width; j += 64) {
        const float gs = b0[pc.off[0] + base + j] * b2[pc.off[2] + j];
        mean_g += gs;
        mean_gx += gs * ((b1[pc.off[1] + base + j] - m) * s);
    }
    reduce2(mean_g, mean_gx);
    mean_g *= inv_width;
    mean_gx *= inv_width;
    for (uint j = t; j < pc.width; j += 64) {
        const float gs = b0[pc.off[0] + base + j] * b2[pc.off[2] + j];
        b5[pc.off[5] + base + j] = s * (gs - mean_g - (b1[pc.off[1] + base + j] - m) * s * mean_gx);
    }
}
