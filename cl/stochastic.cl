/* Dropout's masked scaling, given the uniform draw.
 *
 * dropout_apply: out[i] = u[i] > p ? x[i] * scale : 0, with u uniform in (0, 1) from
 *   ut_random_uniform and scale = 1 / (1 - p), so an element survives with probability 1 - p
 *   (u takes odd multiples of 2^-24: exactly 1 - p up to that grid) as in nn.Dropout. The op is
 *   linear in x, so the same kernel with the same u applies the gradient.
 * One work-item per element; the overhang of the rounded-up range returns at once. */

__kernel void dropout_apply(__global float *out, uint o_off, __global const float *x, uint x_off,
                            __global const float *u, uint u_off, uint n, float p, float scale) {
  uint i = get_global_id(0);
  if (i >= n) return;
  out[o_off + i] = u[u_off + i] > p ? x[x_off + i] * scale : 0.0f;
}
