/* Kernels over the batch dimension: batch normalization's running averages and the copy of a
 * range of batch entries (and its adjoint).
 *
 * running_average: r[i] = (1 - momentum) r[i] + momentum (scale v[i]), in place on a store
 *   tensor (nn.BatchNorm's update of running_mean with scale 1 and of running_var with the
 *   unbiased factor n / (n - 1)). One work-item per element of r.
 *
 * Row copies: a tensor is viewed as rows of `row` elements along dimension 0, so a range of
 * batch entries is one contiguous run starting `first` elements in.
 *   rows_slice: out [count rows] = x rows [start, start + count)  (first = start * row)
 *   rows_pad:   out [total rows] = x at rows [start, start + count), zeros elsewhere
 * One work-item per output element; the overhang of the rounded-up range returns at once. */

__kernel void running_average(__global float *r, uint r_off, __global const float *v, uint v_off, uint n,
                              float momentum, float scale) {
  uint i = get_global_id(0);
  if (i >= n) return;
  r[r_off + i] = (1.0f - momentum) * r[r_off + i] + momentum * (scale * v[v_off + i]);
}

__kernel void rows_slice(__global float *out, uint o_off, __global const float *x, uint x_off, uint n, uint first) {
  uint i = get_global_id(0);
  if (i >= n) return;
  out[o_off + i] = x[x_off + first + i];
}

/* [first, first + len) of out holds x; n is out's element count. */
__kernel void rows_pad(__global float *out, uint o_off, __global const float *x, uint x_off, uint n, uint first,
                       uint len) {
  uint i = get_global_id(0);
  if (i >= n) return;
  out[o_off + i] = (i >= first && i - first < len) ? x[x_off + (i - first)] : 0.0f;
}
