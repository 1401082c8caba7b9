// BatchNormalization (MODE 0) and BatchNormalizationGrad (MODE 1), one workgroup per channel:
// its 64 invocations reduce the channel's N x spatial values through shared memory, then
// normalise (or differentiate) them. X is [N, C, S] (S = the product of the spatial extents).
//   MODE 0  training: mean, biased var of the batch; running = running * momentum +
//           batch * (1 - momentum) in place (the variance update with the unbiased variance);
//           eval: the running statistics. Y = (X - mean) * invstd * scale + B; saved_mean and
//           saved_invstd = the statistics used.
//           Bindings: X, scale, B, running_mean, running_var, Y, saved_mean, saved_invstd.
//   MODE 1  dB = sum dY, dscale = sum dY * xhat; training: dX = k (dY - mean dY - xhat mean(dY
//           xhat)), eval: dX = k dY, with k = scale * invstd.
//           Bindings: dY, X, scale, saved_mean, saved_invstd, dX, dscale, dB.
#version 450

layout(local_size_x = 64) in;
layout(constant_id = 0) const int MODE = 0;

layout(std430, binding = 0) readonly buffer Buf0 { float b0[]; };   // X | dY
layout(std430, binding = 1) readonly buffer Buf1 { float b1[]; };   // scale | X
layout(std430, binding = 2) readonly buffer Buf2 { float b2[]; };   // B | scale
layout(std430, binding = 3) buffer Buf3 { float b3[]; };            // running_mean | saved_mean
layout(std430, binding = 4) buffer Buf4 { float b4[]; };            // running_var | saved_invstd
layout(std430, binding = 5) writeonly buffer Buf5 { float b5[]; };  // Y | dX
layout(std430, binding = 6) writeonly buffer Buf6 { float b6[]; };  // saved_mean | dscale
layout(std430, binding = 7) writeonly buffer Buf7 { float b7[]; };  // saved_invstd | dB

layout(push_constant) uniform Push {
    uint off[8];
    uint N, C, S;
    float epsilon, momentum;
    uint training;
    uint has6, has7;  // bindings 6 and 7 are real outputs (else placeholders, never written)
} pc;

shared float red_a[64];
shared float red_b[64];

// Sums a and b over the workgroup (both results in every invocation).
void reduce2(inout float a, inout float b) {
    const uint t = gl_LocalInvocationID.x;
    red_a[t] = a;
    red_b[t] = b;
    barrier();
    for (uint width = 32; width > 0; width /= 2) {
        if (t < width) {
            red_a[t] += red_a[t + width];
            red_b[t] += red_b[t + width];
        }
        barrier();
    }
    a = red_a[0];
    b = red_b[0];
    barrier();
}

uint at(uint c, uint j) { return ((j / pc.S) * pc.C + c) * pc.S + j % pc.S; }

void main() {
    const uint c = gl_WorkGroupID.x;
    const uint t = gl_LocalInvocationID.x;
    const uint count = pc.N * pc.S;
    if (MODE == 0) {
        float mean, invstd;
        if (pc.training != 0) {
            float s = 0.0, unused = 0.0;
            for (uint j = t; j < count; j += 64) s += b0[pc.off[0] + at(c, j)];
            reduce2(s, unused);
            mean = s / float(count);
            float q = 0.0;
            unused = 0.0;
            for (uint j = t; j < count; j += 64) {
                const float d = b0[pc.off[0] + at(c, j)] - mean;
                q += d * d;
            }
            reduce2(q, unused);
            const float var = q / float(count);
            invstd = inversesqrt(var + pc.epsilon);
            if (t == 0) {
                const float unbiased = count > 1 ? var * float(count) / float(count - 1) : var;
                b3[pc.off[3] + c] = b3[pc.off[3] + c] * pc.momentum + mean * (1.0 - pc.momentum);
                b4[pc.off[4] + c] = b4[pc.off[4] + c] * pc.momentum + unbiased * (1.0 - pc.momentum);
            }
        } else {
            mean = b3[pc.off[3] + c];
            invstd = inversesqrt(b4[pc.off[4] + c] + pc.epsilon);
        }
        const float a = b1[pc.off[1] + c] * invstd;
        const float shift = b2[pc.off[2] + c] - mean * a;
        for (uint j = t; j < count; j += 64) {
            const uint e = at(c, j);
            b5[pc.off[5] + e] = b0[pc.off[0] + e] * a + shift;
        }
        if (t == 0 && pc.has6 != 0) b6[pc.off[6] + c] = mean;
        if (t == 0 && pc.has7 != 0) b7[pc.off[7] + c] = invstd;
        return;
    }
    const float m = b3[pc.off[3] + c];
    const float s = b4[pc.off[4] + c];
    float sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (uint j = t; j < count; j += 64) {
        const uint e = at(c, j);
        const float g = b0[pc.off[0] + e];
        sum_dy += g;
        sum_dy_xhat += g * (b1[pc.off[1] + e] - m);
    }
    reduce2(sum_dy, sum_dy_xhat);
    sum_dy_xhat *= s;
    if (t == 0 && pc.has6 != 0) b6[pc.off[6] + c] = sum_dy_xhat;
    if (t == 0 && pc.has7 != 0) b7[pc.off[7] + c] = sum_dy;
    const float k = b2[pc.off[2] + c] * s;
    const bool batch_stats = pc.training != 0 && count > 0;
    const float mean_dy = batch_stats ? sum_dy / float(count) : 0.0;
    const float mean_dy_xhat = batch_stats ? sum_dy_xhat / float(count) : 0.0;
    for (uint j = t; j < count; j += 64) {
        const uint e = at(c, j);
        const float g = b0[pc.off[0] + e];
        b5[pc.off[5] + e] = batch_stats ? k * (g - mean_dy - (b1[pc.off[1] + e] - m) * s * mean_dy_xhat) : g * k;
    }
}
