// Softmax (MODE 0) or LogSoftmax (MODE 1) along one axis: X viewed as [outer, L, inner], one
// row (o, i) per invocation, max-subtracted.
#version 450

layout(local_size_x = 64) in;
layout(constant_id = 0) const int MODE = 0;

layout(std430, binding = 0) readonly buffer BufX { float x[]; };
layout(std430, binding = 1) writeonly buffer BufY { float y[]; };

layout(push_constant) uniform Push {
    uint off_x, off_y;
    uint outer, len, inner;
} pc;

void main() {
    const uint row = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    if (row >= pc.outer * pc.inner) return;
    const uint base = (row / pc.inner) * pc.len * pc.inner + row % pc.inner;
    float m = -1.0 / 0.0;
    for (uint k = 0; k < pc.len; ++k) m = max(m, x[pc.off_x + base + k * pc.inner]);
    float s = 0.0;
    for (uint k = 0; k < pc.len; ++k) s += exp(x[pc.off_x + base + k * pc.inner] - m);
    if (MODE == 0) {
        const float inv = 1.0 / s;
        for (uint k = 0; k < pc.len; ++k)
            y[pc.off_y + base + k * pc.inner] = exp(x[pc.off_x + base + k * pc.inner] - m) * inv;
    } else {
        const float shift = m + log(s);
        for (uint k = 0; k < pc.len; ++k)
            y[pc.off_y + base + k * pc.inner] = x[pc.off_x + base + k * pc.inner] - shift;
    }
}
