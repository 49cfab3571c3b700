/* Sum over chosen dimensions. One work-group per output element: its work-items stride over
 * the reduced index space and combine their partial sums in local memory by a fixed tree, so
 * the result is the same on every run.
 *
 * The input is viewed as 4-D (dims, innermost last) with row-major strides xs. `keep` holds
 * the output's dims (1 where reduced); `red` the reduced dims (1 where kept). An output index
 * o and a reduction index r each decompose over their dims; the input index is the sum. */

__kernel void reduce_sum(__global float *y, uint y_off, __global const float *x, uint x_off, uint n_red,
                         int4 keep, int4 red, int4 xs, __local float *partial) {
  uint o = get_group_id(0), lid = get_local_id(0), lsize = get_local_size(0);
  uint base = x_off + index4(o, keep, xs);
  float acc = 0.0f;
  for (uint r = lid; r < n_red; r += lsize) acc += x[base + index4(r, red, xs)];
  partial[lid] = acc;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint width = lsize / 2; width > 0; width /= 2) {
    if (lid < width) partial[lid] += partial[lid + width];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) y[y_off + o] = partial[0];
}
