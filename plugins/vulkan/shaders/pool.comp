// 2-D pooling over NCHW planes, one element per invocation.
//   MODE 0  MaxPool:         Y[o] = max over the window's in-image taps (padding never wins)
//   MODE 1  AveragePool:     Y[o] = sum / divisor (KH*KW with count_include_pad, else the taps
//                            inside the image; an empty window gives 0)
//   MODE 2  MaxPoolGrad:     dX[i] = sum of dY[o] over the windows whose first maximum is i
//   MODE 3  AveragePoolGrad: dX[i] = sum of dY[o] / divisor(o) over the windows that cover i
// The gradients gather (each dX element finds the windows that cover it), so no two
// invocations write one element. Bindings: src (X or dY), aux (X for MODE 2), out.
#version 450

layout(local_size_x = 64) in;
layout(constant_id = 0) const int MODE = 0;

layout(std430, binding = 0) readonly buffer BufSrc { float src[]; };
layout(std430, binding = 1) readonly buffer BufAux { float aux[]; };
layout(std430, binding = 2) writeonly buffer BufOut { float dst[]; };

layout(push_constant) uniform Push {
    uint off_src, off_aux, off_out;
    uint planes, H, W, OH, OW;
    uint KH, KW, sh, sw, dh, dw;
    int pt, pl;
    uint include_pad;
} pc;

// The flat in-plane index of the first maximum of window (oh, ow) of plane `x_plane` of aux
// (MODE 2), or -1 when the window covers no input.
int first_max(uint x_plane, uint oh, uint ow) {
    int best = -1;
    float best_value = 0.0;
    for (uint kh = 0; kh < pc.KH; ++kh) {
        const int ih = int(oh * pc.sh) - pc.pt + int(kh * pc.dh);
        if (ih < 0 || ih >= int(pc.H)) continue;
        for (uint kw = 0; kw < pc.KW; ++kw) {
            const int iw = int(ow * pc.sw) - pc.pl + int(kw * pc.dw);
            if (iw < 0 || iw >= int(pc.W)) continue;
            const int at = ih * int(pc.W) + iw;
            const float v = aux[x_plane + uint(at)];
            if (best < 0 || v > best_value) {
                best = at;
                best_value = v;
            }
        }
    }
    return best;
}

float divisor(uint oh, uint ow) {
    if (pc.include_pad != 0) return float(pc.KH * pc.KW);
    uint rows = 0, cols = 0;
    for (uint kh = 0; kh < pc.KH; ++kh) {
        const int ih = int(oh * pc.sh) - pc.pt + int(kh * pc.dh);
        rows += (ih >= 0 && ih < int(pc.H)) ? 1u : 0u;
    }
    for (uint kw = 0; kw < pc.KW; ++kw) {
        const int iw = int(ow * pc.sw) - pc.pl + int(kw * pc.dw);
        cols += (iw >= 0 && iw < int(pc.W)) ? 1u : 0u;
    }
    return float(rows * cols);
}

void main() {
    const uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64 + gl_LocalInvocationID.x;
    const uint in_plane = pc.H * pc.W;
    const uint out_plane = pc.OH * pc.OW;
    if (MODE <= 1) {
        if (i >= pc.planes * out_plane) return;
        const uint plane = i / out_plane;
        const uint oh = (i % out_plane) / pc.OW;
        const uint ow = i % pc.OW;
        const uint base = pc.off_src + plane * in_plane;
        float acc = MODE == 0 ? -1.0 / 0.0 : 0.0;
        for (uint kh = 0; kh < pc.KH; ++kh) {
            const int ih = int(oh * pc.sh) - pc.pt + int(kh * pc.dh);
            if (ih < 0 || ih >= int(pc.H)) continue;
            for (uint kw = 0; kw < pc.KW; ++kw) {
                const int iw = int(ow * pc.sw) - pc.pl + int(kw * pc.dw);
                if (iw < 0 || iw >= int(pc.W)) continue;
                const float v = src[base + uint(ih) * pc.W + uint(iw)];
                acc = MODE == 0 ? max(acc, v) : acc + v;
            }
        }
        if (MODE == 1) {
            const float d = divisor(oh, ow);
            acc = d > 0.0 ? acc / d : 0.0;
        }
        dst[pc.off_out + i] = acc;
        return;
    }
    if (i >= pc.planes * in_plane) return;
    const uint plane = i / in_plane;
    const int ih = int((i % in_plane) / pc.W);
    const int iw = int(i % pc.W);
    // Outputs whose window can cover (ih, iw): top = oh * sh - pt in [ih - (KH-1) dh, ih].
    const int span_h = int((pc.KH - 1) * pc.dh);
    const int span_w = int((pc.KW - 1) * pc.dw);
    const int oh_first = (ih + pc.pt - span_h) >= 0 ? (ih + pc.pt - span_h + int(pc.sh) - 1) / int(pc.sh) : 0;
    const int oh_last = min(int(pc.OH) - 1, (ih + pc.pt) / int(pc.sh));
    const int ow_first = max(0, (iw + pc.pl - span_w) >= 0 ? (iw + pc.pl - span_w + int(pc.sw) - 1) / int(pc.sw) : 0);
    const int ow_last = min(int(pc.OW) - 1, (iw + pc.pl) / int(pc.sw));
    float acc = 0.0;
    for (int oh = oh_first; oh <= oh_last; ++oh) {
        const int top = oh * int(pc.sh) - pc.pt;
        if ((ih - top) % int(pc.dh) != 0) continue;
        for (int ow = ow_first; ow <= ow_last; ++ow) {
            const int left = ow * int(pc.sw) - pc.pl;
            if ((iw - left) % int(pc.dw) != 0) continue;
            const float g = src[pc.off_src + plane * out_plane + uint(oh) * pc.OW + uint(ow)];
            if (MODE == 2) {
                if (first_max(pc.off_aux + plane * in_plane, uint(oh), uint(ow)) == ih * int(pc.W) + iw) acc += g;
            } else {
                acc += g / divisor(uint(oh), uint(ow));
            }
        }
    }
    dst[pc.off_out + i] = acc;
}
