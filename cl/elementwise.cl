/* Elementwise kernels. Every tensor arrives as (buffer, element offset); scalars follow.
 *
 * Unary kernels map n elements of x to y with one float parameter p (slope, scale, ...).
 * Binary kernels come in three forms: *_same for operands of the output's shape; *_rows, for
 * the broadcasts that fit a 2-D view (below); and *_bcast for any other, which walks the
 * output's 4-D index (dims, innermost last) and reads each operand through its own strides, 0
 * along a broadcast dimension (NumPy rules, resolved on the host).
 *
 * *_rows sees the output as [n_rows, n_cols] with a 2-D range (dim 0 over columns), and reads
 * operand element (p, q) at (p % r.x) * r.y + q * r.z (broadcast.h, ut_bcast_rows). That
 * covers a per-plane operand ([B, C, 1, 1] or [C, 1, 1] against [B, C, H, W]: rows are the
 * planes), a per-feature one ([F] against [B, F]) and a per-sample one. The modulo depends on
 * the row alone, so it costs once per row where work-items of a row run as a loop (CPUs),
 * instead of the four divisions per operand per element of *_bcast. */

#define UNARY(name, expr)                                                                        \
  __kernel void unary_##name(__global float *y, uint y_off, __global const float *x, uint x_off, \
                             uint n, float p) {                                                  \
    uint i = get_global_id(0);                                                                   \
    if (i >= n) return;                                                                          \
    float v = x[x_off + i];                                                                      \
    y[y_off + i] = (expr);                                                                       \
  }

UNARY(neg, -v)
UNARY(abs, fabs(v))
UNARY(sign, v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f))
UNARY(exp, exp(v))
UNARY(log, log(v))
UNARY(sqrt, sqrt(v))
UNARY(square, v * v)
UNARY(relu, v > 0.0f ? v : 0.0f)
UNARY(leaky_relu, v > 0.0f ? v : v * p)
UNARY(tanh, tanh(v))
/* exp(-|v|) never overflows, so large negative inputs give 0 instead of NaN. */
UNARY(sigmoid, v >= 0.0f ? 1.0f / (1.0f + exp(-v)) : exp(v) / (1.0f + exp(v)))
UNARY(step, v > 0.0f ? 1.0f : p)
UNARY(scale, v * p)
UNARY(shift, v + p)

#define BINARY(name, expr)                                                                               \
  __kernel void binary_##name##_same(__global float *y, uint y_off, __global const float *a, uint a_off, \
                                     __global const float *b, uint b_off, uint n) {                      \
    uint i = get_global_id(0);                                                                           \
    if (i >= n) return;                                                                                  \
    float u = a[a_off + i], v = b[b_off + i];                                                            \
    y[y_off + i] = (expr);                                                                               \
  }                                                                                                      \
  __kernel void binary_##name##_bcast(__global float *y, uint y_off, __global const float *a, uint a_off, \
                                      __global const float *b, uint b_off, uint n, int4 dims, int4 as,    \
                                      int4 bs) {                                                          \
    uint i = get_global_id(0);                                                                           \
    if (i >= n) return;                                                                                  \
    float u = a[a_off + index4(i, dims, as)], v = b[b_off + index4(i, dims, bs)];              \
    y[y_off + i] = (expr);                                                                               \
  }                                                                                                      \
  __kernel void binary_##name##_rows(__global float *y, uint y_off, __global const float *a, uint a_off,  \
                                     __global const float *b, uint b_off, uint n_rows, uint n_cols,       \
                                     int4 ar, int4 br) {                                                  \
    uint q = get_global_id(0), p = get_global_id(1);                                                     \
    if (q >= n_cols || p >= n_rows) return;                                                              \
    float u = a[a_off + (p % (uint)ar.x) * (uint)ar.y + q * (uint)ar.z];                                 \
    float v = b[b_off + (p % (uint)br.x) * (uint)br.y + q * (uint)br.z];                                 \
    y[y_off + p * n_cols + q] = (expr);                                                                  \
  }

BINARY(add, u + v)
BINARY(sub, u - v)
BINARY(mul, u * v)
BINARY(div, u / v)

/* Materialises x broadcast to the output's shape. A single value (the seed gradient of every
 * loss, through sum's backward) needs no index arithmetic at all. */
__kernel void broadcast_copy(__global float *y, uint y_off, __global const float *x, uint x_off, uint n,
                             int4 dims, int4 xs) {
  uint i = get_global_id(0);
  if (i >= n) return;
  if ((xs.x | xs.y | xs.z | xs.w) == 0) {
    y[y_off + i] = x[x_off];
    return;
  }
  y[y_off + i] = x[x_off + index4(i, dims, xs)];
}

/* Activation gradients in one pass: dx from dy and the activation's input (leaky ReLU, whose
 * slope p is 0 for ReLU) or output (sigmoid, tanh). Each rounds exactly as the op chains they
 * replace did (mul(dy, step(x)); dy * (y * ((-y) + 1)); dy * ((-(y * y)) + 1)): the square is
 * its own statement so that it is not contracted into a fused multiply-add. */
#define ACT_GRAD(name, prep, expr)                                                                         \
  __kernel void name##_grad(__global float *y, uint y_off, __global const float *t, uint t_off,          \
                            __global const float *d, uint d_off, uint n, float p) {                     \
    uint i = get_global_id(0);                                                                           \
    if (i >= n) return;                                                                                  \
    float v = t[t_off + i], g = d[d_off + i];                                                            \
    prep;                                                                                                \
    y[y_off + i] = (expr);                                                                               \
  }

ACT_GRAD(leaky_relu, (void)0, v > 0.0f ? g : g * p)
ACT_GRAD(sigmoid, (void)0, g * (v * (1.0f - v)))
ACT_GRAD(tanh, float sq = v * v, g * (1.0f - sq))
