// Y = A op B with numpy broadcasting, over at most 4 dimensions (the kernel merges adjacent
// dimensions that broadcast alike; a stride of 0 repeats a value). OP: 0 add, 1 sub, 2 mul,
// 3 div, 4 Y = A * scale (B unused: the broadcast of ReduceGrad). Four elements per invocation.
#version 450

layout(local_size_x = 64) in;
layout(constant_id = 0) const int OP = 0;

layout(std430, binding = 0) readonly buffer BufA { float a[]; };
layout(std430, binding = 1) readonly buffer BufB { float b[]; };
layout(std430, binding = 2) writeonly buffer BufY { float y[]; };

layout(push_constant) uniform Push {
    uint off_a, off_b, off_y;
    uint n;
    uint shape[4];  // of Y, outermost first (leading 1s for fewer dimensions)
    uint sa[4];     // A's strides per Y dimension (0 where A broadcasts)
    uint sb[4];
    float scale;
} pc;

void main() {
    const uint id = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    const uint first = id * 4;
    for (uint i = first; i < min(first + 4, pc.n); ++i) {
        uint r = i;
        const uint i3 = r % pc.shape[3]; r /= pc.shape[3];
        const uint i2 = r % pc.shape[2]; r /= pc.shape[2];
        const uint i1 = r % pc.shape[1];
        const uint i0 = r / pc.shape[1];
        const float va = a[pc.off_a + i0 * pc.sa[0] + i1 * pc.sa[1] + i2 * pc.sa[2] + i3 * pc.sa[3]];
        float v;
        if (OP == 4) {
            v = va * pc.scale;
        } else {
            const float vb = b[pc.off_b + i0 * pc.sb[0] + i1 * pc.sb[1] + i2 * pc.sb[2] + i3 * pc.sb[3]];
            v = OP == 0 ? va + vb : OP == 1 ? va - vb : OP == 2 ? va * vb : va / vb;
        }
        y[pc.off_y + i] = v;
    }
}
