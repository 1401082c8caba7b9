// dX = dY * f'(X) elementwise (activation.glsl; OP is the specialization constant), four
// elements per invocation.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "activation.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 0) const int OP = 0;

layout(std430, binding = 0) readonly buffer BufDY { float dy[]; };
layout(std430, binding = 1) readonly buffer BufX { float x[]; };
layout(std430, binding = 2) writeonly buffer BufDX { float dx[]; };

layout(push_constant) uniform Push {
    uint off_dy, off_x, off_dx;
    uint n;
    float alpha, beta;
} pc;

void main() {
    const uint id = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    const uint first = id * 4;
    for (uint i = first; i < min(first + 4, pc.n); ++i)
        dx[pc.off_dx + i] = activation_grad(OP, dy[pc.off_dy + i], x[pc.off_x + i], pc.alpha, pc.beta);
}
