// Dropout (MODE 0) and DropoutGrad (MODE 1), with the cpu backend's mask exactly: element i is
// kept when the high 32 bits of dsk::mix(seed, i) (SplitMix64, sdk dsk_random.hpp) are at or
// above `threshold` = ratio * 2^32. MODE 0: Y = keep ? X * scale : 0 and mask = keep (or, when
// not training, Y = X and mask = 1); MODE 1: dX = dY * mask * scale.
// Bindings: MODE 0 X, Y, mask; MODE 1 dY, mask, dX (mask as bytes, u8).
#version 450
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require
#extension GL_EXT_shader_8bit_storage : require

layout(local_size_x = 64) in;
layout(constant_id = 0) const int MODE = 0;
layout(constant_id = 1) const bool HAS_MASK = true;

layout(std430, binding = 0) readonly buffer BufIn { float src[]; };
layout(std430, binding = 1) buffer BufSecond { float second_f[]; };
layout(std430, binding = 1) buffer BufSecondBytes { uint8_t second_u8[]; };
layout(std430, binding = 2) buffer BufThird { float third_f[]; };
layout(std430, binding = 2) buffer BufThirdBytes { uint8_t third_u8[]; };

layout(push_constant) uniform Push {
    uint off0, off1, off2;
    uint n;
    uint seed_lo, seed_hi;
    uint threshold;    // keep when (hash >> 32) >= threshold
    uint drop_all;     // ratio = 1: nothing is kept
    uint training;     // 0: Y = X, mask = 1
    float scale;       // 1 / (1 - ratio), 0 when everything is dropped
} pc;

const uint64_t kGamma = 0x9e3779b97f4a7c15UL;

uint64_t finalize(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
    return z ^ (z >> 31);
}

void main() {
    const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    if (i >= pc.n) return;
    // Byte offsets: the word offsets the dispatch pushes, times 4.
    if (MODE == 1) {
        const float m = float(uint(second_u8[pc.off1 * 4 + i]));
        third_f[pc.off2 + i] = src[pc.off0 + i] * m * pc.scale;
        return;
    }
    bool keep = true;
    if (pc.training != 0) {
        const uint64_t seed = (uint64_t(pc.seed_hi) << 32) | uint64_t(pc.seed_lo);
        const uint64_t hash = finalize(seed + kGamma * (uint64_t(i) + 1UL));
        keep = pc.drop_all == 0 && uint(hash >> 32) >= pc.threshold;
    }
    const float x = src[pc.off0 + i];
    second_f[pc.off1 + i] = pc.training == 0 ? x : (keep ? x * pc.scale : 0.0);
    if (HAS_MASK) third_u8[pc.off2 * 4 + i] = uint8_t(keep ? 1 : 0);
}
