// Y = f(X) elementwise (activation.glsl; OP is the specialization constant), four elements per
// invocation.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "activation.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 0) const int OP = 0;

layout(std430, binding = 0) readonly buffer BufX { float x[]; };
layout(std430, binding = 1) writeonly buffer BufY { float y[]; };

layout(push_constant) uniform Push {
    uint off_x, off_y;
    uint n;
    float alpha, beta;
} pc;

void main() {
    const uint id = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    const uint first = id * 4;
    for (uint i = first; i < min(first + 4, pc.n); ++i)
        y[pc.off_y + i] = activation(OP, x[pc.off_x + i], pc.alpha, pc.beta);
}
