// The shared-memory matmul for GPUs (matmul_tiled.glsl) with 64x128 tiles of Y.
#version 450
#extension GL_GOOGLE_include_directive : require
#define BM 64
#define BN 128
#include "matmul_tiled.glsl"
