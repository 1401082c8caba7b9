// AdamUpdate (MODE 0) and SGDUpdate (MODE 1) in place, with the arithmetic of the cpu kernels
// (plugins/optim/update_kernels.cpp) and no contraction into fma (`precise`), so that both
// backends round alike. constants: Adam [b1, 1-b1, b2, 1-b2, eps, l2, decay, step_size,
// sqrt(1-b2^t)]; SGD [lr, momentum, 1-dampening, weight_decay, first_step, nesterov].
// Bindings: constants, X, G, state0 (M | B), state1 (V | unused), token (written 0).
#version 450

layout(local_size_x = 64) in;
layout(constant_id = 0) const int MODE = 0;

layout(std430, binding = 0) readonly buffer BufC { float c[]; };
layout(std430, binding = 1) buffer BufX { float p[]; };
layout(std430, binding = 2) readonly buffer BufG { float g[]; };
layout(std430, binding = 3) buffer BufS0 { float s0[]; };
layout(std430, binding = 4) buffer BufS1 { float s1[]; };
layout(std430, binding = 5) writeonly buffer BufToken { float token[]; };

layout(push_constant) uniform Push {
    uint off_c, off_x, off_g, off_s0, off_s1, off_token;
    uint n;
    uint has_state;  // SGD: the momentum buffer exists
} pc;

float k(uint i) { return c[pc.off_c + i]; }

void main() {
    const uint j = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    if (j == 0) token[pc.off_token] = 0.0;
    if (j >= pc.n) return;
    const uint xi = pc.off_x + j;
    if (MODE == 0) {
        precise float grad = g[pc.off_g + j];
        if (k(5) != 0.0) grad = grad + k(5) * p[xi];
        if (k(6) != 1.0) p[xi] = p[xi] * k(6);
        precise float m = k(0) * s0[pc.off_s0 + j] + k(1) * grad;
        precise float v = k(2) * s1[pc.off_s1 + j] + k(3) * (grad * grad);
        s0[pc.off_s0 + j] = m;
        s1[pc.off_s1 + j] = v;
        precise float denom = sqrt(v) / k(8) + k(4);
        precise float x = p[xi] - k(7) * (m / denom);
        p[xi] = x;
        return;
    }
    precise float d = g[pc.off_g + j];
    if (k(3) != 0.0) d = d + k(3) * p[xi];
    if (pc.has_state != 0) {
        precise float b = k(4) != 0.0 ? d : k(1) * s0[pc.off_s0 + j] + k(2) * d;
        s0[pc.off_s0 + j] = b;
        d = k(5) != 0.0 ? d + k(1) * b : b;
    }
    precise float x = p[xi] - k(0) * d;
    p[xi] = x;
}
