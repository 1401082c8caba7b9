// Y[o] = scale * sum (or max) of X over the reduced index space, one output per invocation.
// The kernel splits X's dimensions into kept ones (Y's, at most 4 after merging) and reduced
// ones (at most 4 after merging), each with X's strides. MODE: 0 sum, 1 max.
#version 450

layout(local_size_x = 64) in;
layout(constant_id = 0) const int MODE = 0;

layout(std430, binding = 0) readonly buffer BufX { float x[]; };
layout(std430, binding = 1) writeonly buffer BufY { float y[]; };

layout(push_constant) uniform Push {
    uint off_x, off_y;
    uint n;          // outputs
    uint keep[4];    // kept extents, outermost first (leading 1s)
    uint ks[4];      // X strides of the kept dimensions
    uint red[4];     // reduced extents (leading 1s)
    uint rs[4];      // X strides of the reduced dimensions
    float scale;
} pc;

void main() {
    const uint o = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    if (o >= pc.n) return;
    uint r = o;
    const uint k3 = r % pc.keep[3]; r /= pc.keep[3];
    const uint k2 = r % pc.keep[2]; r /= pc.keep[2];
    const uint k1 = r % pc.keep[1];
    const uint k0 = r / pc.keep[1];
    const uint base = pc.off_x + k0 * pc.ks[0] + k1 * pc.ks[1] + k2 * pc.ks[2] + k3 * pc.ks[3];
    float total = MODE == 1 ? -1.0 / 0.0 : 0.0;
    for (uint r0 = 0; r0 < pc.red[0]; ++r0)
        for (uint r1 = 0; r1 < pc.red[1]; ++r1)
            for (uint r2 = 0; r2 < pc.red[2]; ++r2) {
                // Partial sums per innermost run keep the float error small.
                const uint row = base + r0 * pc.rs[0] + r1 * pc.rs[1] + r2 * pc.rs[2];
                float part = MODE == 1 ? -1.0 / 0.0 : 0.0;
                for (uint r3 = 0; r3 < pc.red[3]; ++r3) {
                    const float v = x[row + r3 * pc.rs[3]];
                    part = MODE == 1 ? max(part, v) : part + v;
                }
                total = MODE == 1 ? max(total, part) : total + part;
            }
    y[pc.off_y + o] = MODE == 1 ? total : total * pc.scale;
}
