// The shared-memory matmul for GPUs (matmul_tiled.glsl) with 128x128 tiles of Y.
#version 450
#extension GL_GOOGLE_include_directive : require
#define BM 128
#define BN 128
#include "matmul_tiled.glsl"
