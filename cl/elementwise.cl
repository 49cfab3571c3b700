/* Elementwise kernels. Every tensor arrives as (buffer, element offset); scalars follow.
 *
 * Unary kernels map n elements of x to y with one float parameter p (slope, scale, ...).
 * Binary kernels come in two forms: *_same for operands of the output's shape, and *_bcast,
 * which walks the output's 4-D index (dims, innermost last) and reads each operand through
 * its own strides, 0 along a broadcast dimension (NumPy rules, resolved on the host). */

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
  }

BINARY(add, u + v)
BINARY(sub, u - v)
BINARY(mul, u * v)
BINARY(div, u / v)

/* Materialises x broadcast to the output's shape. */
__kernel void broadcast_copy(__global float *y, uint y_off, __global const float *x, uint x_off, uint n,
                             int4 dims, int4 xs) {
  uint i = get_global_id(0);
  if (i >= n) return;
  y[y_off + i] = x[x_off + index4(i, dims, xs)];
}
