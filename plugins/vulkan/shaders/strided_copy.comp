// Y[dst_base + sum idx_d * ds[d]] = X[src_base + sum idx_d * ss[d]] for every index idx of
// `shape` (at most 6 dimensions after merging): Transpose (Y contiguous), Slice (X strided with
// steps), SliceGrad and Concat (Y strided: a region of the output). 32-bit elements.
#version 450

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer BufX { uint x[]; };
layout(std430, binding = 1) writeonly buffer BufY { uint y[]; };

layout(push_constant) uniform Push {
    uint off_x, off_y;
    uint n, ndim;
    uint src_base, dst_base;
    uint shape[6];
    uint ss[6];
    uint ds[6];
} pc;

void main() {
    const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    if (i >= pc.n) return;
    uint r = i;
    uint src = pc.off_x + pc.src_base;
    uint dst = pc.off_y + pc.dst_base;
    for (int d = int(pc.ndim) - 1; d >= 0; --d) {
        const uint k = r % pc.shape[d];
        r /= pc.shape[d];
        src += k * pc.ss[d];
        dst += k * pc.ds[d];
    }
    y[dst] = x[src];
}
