// dscores[n, c] = (exp(log_prob[n, c]) - (c == label[n])) * dloss * scale (scale 1/N for
// "mean"); dloss is the one element of a device tensor. Labels as in cross_entropy.comp.
#version 450

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer BufDLoss { float dloss[]; };
layout(std430, binding = 1) readonly buffer BufLogProb { float log_prob[]; };
layout(std430, binding = 2) readonly buffer BufLabels { int labels[]; };
layout(std430, binding = 3) writeonly buffer BufDScores { float dscores[]; };

layout(push_constant) uniform Push {
    uint off_dloss, off_lp, off_labels, off_ds;
    uint rows, classes;
    float scale;
} pc;

void main() {
    const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    if (i >= pc.rows * pc.classes) return;
    const uint n = i / pc.classes;
    const uint c = i % pc.classes;
    const int label = labels[pc.off_labels + 2 * n];
    const float onehot = (label >= 0 && uint(label) == c) ? 1.0 : 0.0;
    dscores[pc.off_ds + i] = (exp(log_prob[pc.off_lp + i]) - onehot) * dloss[pc.off_dloss] * pc.scale;
}
