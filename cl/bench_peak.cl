/* Micro-kernels of the benchmark harness's peak suite (benchmarks/bench_peak.c), in the manner
 * of clpeak: the FP32 FMA rate and the device-memory bandwidth a kernel can actually reach.
 * The harness builds this file itself; the engine embeds it with the others but never uses it.
 *
 * FMA: every work-item runs independent chains x = fma(x, a, b), enough of them to cover the
 * FMA latency of every pipeline (a GPU lane needs a few; a CPU core with two 16-wide FMA units
 * and a latency of 4 needs 8 vector chains). a and b come from the host so nothing folds, and
 * x converges to b / (1 - a), so no value overflows or turns denormal. The scalar kernel suits
 * SIMT GPUs, where each work-item is one lane; the float16 one suits CPUs, where PoCL maps it to
 * whole vector registers. Each loop iteration does 4 x 16 FMAs per chain group.
 *
 * Bandwidth: copy (read one float4, write one) and triad (a = b + s c, two reads and a write),
 * over buffers far larger than any cache. */

#define CHAIN16(F, a, b)                                                                             \
  x0 = F(x0, a, b); x1 = F(x1, a, b); x2 = F(x2, a, b); x3 = F(x3, a, b); x4 = F(x4, a, b);         \
  x5 = F(x5, a, b); x6 = F(x6, a, b); x7 = F(x7, a, b); x8 = F(x8, a, b); x9 = F(x9, a, b);         \
  x10 = F(x10, a, b); x11 = F(x11, a, b); x12 = F(x12, a, b); x13 = F(x13, a, b); x14 = F(x14, a, b); \
  x15 = F(x15, a, b);

/* 16 scalar chains: 4 * 16 FMAs = 128 FLOPs per work-item per iteration. */
__kernel void fma_float(__global float *out, float a, float b, int iters) {
  float x0 = (float)get_global_id(0) * 1e-7f, x1 = x0 + 0.1f, x2 = x0 + 0.2f, x3 = x0 + 0.3f, x4 = x0 + 0.4f;
  float x5 = x0 + 0.5f, x6 = x0 + 0.6f, x7 = x0 + 0.7f, x8 = x0 + 0.8f, x9 = x0 + 0.9f, x10 = x0 + 1.0f;
  float x11 = x0 + 1.1f, x12 = x0 + 1.2f, x13 = x0 + 1.3f, x14 = x0 + 1.4f, x15 = x0 + 1.5f;
  for (int i = 0; i < iters; i++) {
    CHAIN16(fma, a, b)
    CHAIN16(fma, a, b)
    CHAIN16(fma, a, b)
    CHAIN16(fma, a, b)
  }
  out[get_global_id(0)] = x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11 + x12 + x13 + x14 + x15;
}

#define CHAIN8(a, b)                                                                                 \
  y0 = fma(y0, a, b); y1 = fma(y1, a, b); y2 = fma(y2, a, b); y3 = fma(y3, a, b);                     \
  y4 = fma(y4, a, b); y5 = fma(y5, a, b); y6 = fma(y6, a, b); y7 = fma(y7, a, b);

/* 8 chains of float16: 4 * 8 * 16 FMAs = 1024 FLOPs per work-item per iteration. */
__kernel void fma_float16(__global float *out, float a, float b, int iters) {
  float16 y0 = (float16)((float)get_global_id(0) * 1e-7f) +
               (float16)(0.0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 1.0f, 1.1f, 1.2f, 1.3f, 1.4f, 1.5f);
  float16 y1 = y0 + 0.01f, y2 = y0 + 0.02f, y3 = y0 + 0.03f, y4 = y0 + 0.04f, y5 = y0 + 0.05f, y6 = y0 + 0.06f;
  float16 y7 = y0 + 0.07f, va = (float16)(a), vb = (float16)(b);
  for (int i = 0; i < iters; i++) {
    CHAIN8(va, vb)
    CHAIN8(va, vb)
    CHAIN8(va, vb)
    CHAIN8(va, vb)
  }
  float16 s = y0 + y1 + y2 + y3 + y4 + y5 + y6 + y7;
  float8 h = s.lo + s.hi;
  float4 q = h.lo + h.hi;
  out[get_global_id(0)] = q.x + q.y + q.z + q.w;
}

__kernel void copy_float4(__global float4 *dst, __global const float4 *src) {
  size_t i = get_global_id(0);
  dst[i] = src[i];
}

__kernel void triad_float4(__global float4 *a, __global const float4 *b, __global const float4 *c, float s) {
  size_t i = get_global_id(0);
  a[i] = b[i] + s * c[i];
}
