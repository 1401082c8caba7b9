// SoftmaxGrad (MODE 0): dX = Y (dY - sum dY Y); LogSoftmaxGrad (MODE 1): dX = dY - exp(Y) sum dY.
// Rows as in softmax.comp.
#version 450

layout(local_size_x = 64) in;
layout(constant_id = 0) const int MODE = 0;

layout(std430, binding = 0) readonly buffer BufDY { float dy[]; };
layout(std430, binding = 1) readonly buffer BufY { float y[]; };
layout(std430, binding = 2) writeonly buffer BufDX { float dx[]; };

layout(push_constant) uniform Push {
    uint off_dy, off_y, off_dx;
    uint outer, len, inner;
} pc;

void main() {
    const uint row = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    if (row >= pc.outer * pc.inner) return;
    const uint base = (row / pc.inner) * pc.len * pc.inner + row % pc.inner;
    float s = 0.0;
    for (uint k = 0; k < pc.len; ++k) {
        const uint e = base + k * pc.inner;
        s += MODE == 0 ? dy[pc.off_dy + e] * y[pc.off_y + e] : dy[pc.off_dy + e];
    }
    for (uint k = 0; k < pc.len; ++k) {
        const uint e = base + k * pc.inner;
        const float g = dy[pc.off_dy + e];
        const float v = y[pc.off_y + e];
        dx[pc.off_dx + e] = MODE == 0 ? v * (g - s) : g - exp(v) * s;
    }
}
