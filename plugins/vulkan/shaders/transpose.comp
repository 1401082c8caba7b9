// Y = X with permuted dimensions: Y is contiguous with `shape`; `stride[d]` is X's stride of
// the dimension that becomes Y's dimension d (at most 6 after dropping extents of 1).
#version 450

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer BufX { float x[]; };
layout(std430, binding = 1) writeonly buffer BufY { float y[]; };

layout(push_constant) uniform Push {
    uint off_x, off_y;
    uint n, ndim;
    uint shape[6];
    uint stride[6];
} pc;

void main() {
    const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    if (i >= pc.n) return;
    uint r = i;
    uint src = pc.off_x;
    for (int d = int(pc.ndim) - 1; d >= 0; --d) {
        src += (r % pc.shape[d]) * pc.stride[d];
        r /= pc.shape[d];
    }
    y[pc.off_y + i] = x[src];
}
