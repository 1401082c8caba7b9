// Gather along axis 0 (MODE 0) and GatherGrad (MODE 1), rows of `width` 32-bit elements.
// Indices are i64, read as (low, high) words; negative ones count from the end (ONNX). A shader
// cannot fail: an index outside [-rows, rows) reads (MODE 0) zeros and is ignored by MODE 1.
//   MODE 0  Y[p, j] = data[index[p], j]              one invocation per element of Y
//   MODE 1  dData[v, j] = sum over p with index[p] == v of dY[p, j], in p order: one
//           invocation per element of dData, gathering (no atomics; O(positions) each)
// Bindings: MODE 0 data, indices, Y; MODE 1 dY, indices, dData.
#version 450

layout(local_size_x = 64) in;
layout(constant_id = 0) const int MODE = 0;

layout(std430, binding = 0) readonly buffer BufSrc { uint src[]; };
layout(std430, binding = 1) readonly buffer BufIndex { int index[]; };
layout(std430, binding = 2) writeonly buffer BufDst { uint dst[]; };

layout(push_constant) uniform Push {
    uint off_src, off_index, off_dst;
    uint positions, rows, width;
} pc;

// Row of position p, or -1 when the index is out of range.
int row_of(uint p) {
    const int low = index[pc.off_index + 2 * p];
    const int high = index[pc.off_index + 2 * p + 1];
    const int rows = int(pc.rows);
    // In range iff the 64-bit value lies in [-rows, rows): high word 0 or -1 matching low's sign.
    const bool fits = (high == 0 && low >= 0) || (high == -1 && low < 0);
    if (!fits || low < -rows || low >= rows) return -1;
    return low < 0 ? low + rows : low;
}

void main() {
    const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    if (MODE == 0) {
        if (i >= pc.positions * pc.width) return;
        const int row = row_of(i / pc.width);
        dst[pc.off_dst + i] = row < 0 ? 0u : src[pc.off_src + uint(row) * pc.width + i % pc.width];
        return;
    }
    if (i >= pc.rows * pc.width) return;
    const int v = int(i / pc.width);
    const uint j = i % pc.width;
    float sum = 0.0;
    for (uint p = 0; p < pc.positions; ++p)
        if (row_of(p) == v) sum += uintBitsToFloat(src[pc.off_src + p * pc.width + j]);
    dst[pc.off_dst + i] = floatBitsToUint(sum);
}
