// ReduceGrad for "max": dX = dY at the first position of each reduced group (in row-major order)
// where X equals Y (NaN equal to NaN, as on the cpu), zero elsewhere. One invocation per
// output walks its group, so no two invocations write one element. The index space is
// reduce.comp's (kept and reduced dimensions of X with X's strides); dX has X's layout.
#version 450

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer BufDY { float dy[]; };
layout(std430, binding = 1) readonly buffer BufX { float x[]; };
layout(std430, binding = 2) readonly buffer BufY { float y[]; };
layout(std430, binding = 3) writeonly buffer BufDX { float dx[]; };

layout(push_constant) uniform Push {
    uint off_dy, off_x, off_y, off_dx;
    uint n;
    uint keep[4];
    uint ks[4];
    uint red[4];
    uint rs[4];
} pc;

void main() {
    const uint o = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    if (o >= pc.n) return;
    uint r = o;
    const uint k3 = r % pc.keep[3]; r /= pc.keep[3];
    const uint k2 = r % pc.keep[2]; r /= pc.keep[2];
    const uint k1 = r % pc.keep[1];
    const uint k0 = r / pc.keep[1];
    const uint base = k0 * pc.ks[0] + k1 * pc.ks[1] + k2 * pc.ks[2] + k3 * pc.ks[3];
    const float g = dy[pc.off_dy + o];
    const float m = y[pc.off_y + o];
    bool found = false;
    for (uint r0 = 0; r0 < pc.red[0]; ++r0)
        for (uint r1 = 0; r1 < pc.red[1]; ++r1)
            for (uint r2 = 0; r2 < pc.red[2]; ++r2)
                for (uint r3 = 0; r3 < pc.red[3]; ++r3) {
                    const uint e = base + r0 * pc.rs[0] + r1 * pc.rs[1] + r2 * pc.rs[2] + r3 * pc.rs[3];
                    const float v = x[pc.off_x + e];
                    const bool first = !found && (v == m || (isnan(v) && isnan(m)));
                    dx[pc.off_dx + e] = first ? g : 0.0;
                    found = found || first;
                }
}
