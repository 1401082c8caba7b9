// loss = -scale * sum_n log_prob[n, label[n]] (scale 1/N for "mean"), log_prob computed here
// from the scores (max-subtracted log-sum-exp per row). Labels are i64, read as their low 32-bit word (little endian);
// a label outside [0, C) makes the loss NaN (a shader cannot fail; the cpu kernel names it).
// One workgroup: each invocation sums a strided share of the rows, then a tree in shared memory.
#version 450

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer BufScores { float scores[]; };
layout(std430, binding = 1) readonly buffer BufLabels { int labels[]; };
layout(std430, binding = 2) writeonly buffer BufLoss { float loss[]; };

layout(push_constant) uniform Push {
    uint off_scores, off_labels, off_loss;
    uint rows, classes;
    float scale;
} pc;

shared float partial[64];

void main() {
    const uint t = gl_LocalInvocationID.x;
    float s = 0.0;
    for (uint n = t; n < pc.rows; n += 64) {
        const int label = labels[pc.off_labels + 2 * n];
        const bool high_ok = labels[pc.off_labels + 2 * n + 1] == 0;
        const uint row = pc.off_scores + n * pc.classes;
        float m = -1.0 / 0.0;
        for (uint c = 0; c < pc.classes; ++c) m = max(m, scores[row + c]);
        float e = 0.0;
        for (uint c = 0; c < pc.classes; ++c) e += exp(scores[row + c] - m);
        s += (label >= 0 && uint(label) < pc.classes && high_ok)
                 ? scores[row + uint(label)] - m - log(e)
                 : 0.0 / 0.0;
    }
    partial[t] = s;
    barrier();
    for (uint width = 32; width > 0; width /= 2) {
        if (t < width) partial[t] += partial[t + width];
        barrier();
    }
    if (t == 0) loss[pc.off_loss] = -partial[0] * pc.scale;
}
