/* Sums over chosen dimensions. Every path adds in an order fixed by the launch's shape alone,
 * so a plan gives the same bits on every run.
 *
 * Fast paths. The host merges the input's dimensions into the view [outer, keep, inner]
 * (row-major): `keep` is the output count, the sum runs over outer and inner. Nothing here
 * divides per element.
 *   reduce_rows, reduce_rows_group: for inner >= 8 (or outer == 1, on CPUs). Output k's elements are
 *     `outer` contiguous rows of `inner` floats. Its reduction index r = ro * inner + ri is cut
 *     into parts of `chunk`; each (output, part) is one work-item on CPUs (a stream through
 *     contiguous memory in 8-wide vectors) or one work-group on GPUs (work-items interleaved
 *     over 8-float blocks, so neighbours read neighbouring memory, then a fixed tree).
 *     Output k of part p lands at y[p * keep + k].
 *   reduce_cols: for shorter rows. Columns c < keep * inner of the view [outer, keep * inner] are
 *     summed over a part of the rows; a work-item takes 8 adjacent columns, so its loads are
 *     one vector per row. Column c of part p lands at y[p * keep * inner + c].
 *   reduce_finish: when a first stage left several partial sums per output (parts > 1, or the
 *     inner columns of reduce_cols), adds them in a fixed order.
 *
 * General path (reduce_sum): any other mask (kept dimensions on both sides of a reduced one).
 * One work-group per output element: its work-items stride over the reduced index space and
 * combine their partial sums in local memory by a fixed tree. The input is viewed as 4-D (dims,
 * innermost last) with row-major strides xs; `keep` holds the output's dims (1 where reduced),
 * `red` the reduced dims (1 where kept); an output index and a reduction index each decompose
 * over their dims and the input index is the sum. */

/* Sum of the elements [r0, r1) of output k's reduction index space (see above), taken by work-item
 * `lane` of `lanes`: the 8-float blocks lane, lane + lanes, ... of each piece of a row, then its
 * tail elements likewise. */
inline float rows_range(__global const float *x, uint n_keep, uint n_inner, uint k, uint r0, uint r1, uint lane,
                        uint lanes) {
  float8 acc8 = (float8)(0.0f);
  float acc = 0.0f;
  if (r0 >= r1) return 0.0f;
  uint ro = r0 / n_inner, ri = r0 - ro * n_inner; /* once per work-item */
  __global const float *row = x + (ro * n_keep + k) * n_inner;
  const uint row_step = n_keep * n_inner;
  while (r0 < r1) {
    uint len = min(n_inner - ri, r1 - r0);
    __global const float *seg = row + ri;
    uint blocks = len / 8;
    for (uint v = lane; v < blocks; v += lanes) acc8 += vload8(v, seg);
    for (uint j = blocks * 8 + lane; j < len; j += lanes) acc += seg[j];
    r0 += len;
    ri = 0;
    row += row_step;
  }
  float4 a4 = acc8.lo + acc8.hi;
  float2 a2 = a4.lo + a4.hi;
  return (a2.x + a2.y) + acc;
}

__kernel void reduce_rows(__global float *y, uint y_off, __global const float *x, uint x_off, uint n_outer,
                          uint n_keep, uint n_inner, uint chunk, uint parts) {
  uint item = get_global_id(0);
  if (item >= n_keep * parts) return;
  uint p = item / n_keep, k = item - p * n_keep;
  uint n = n_outer * n_inner, r0 = p * chunk, r1 = min(r0 + chunk, n);
  y[y_off + item] = rows_range(x + x_off, n_keep, n_inner, k, r0, r1, 0, 1);
}

__kernel void reduce_rows_group(__global float *y, uint y_off, __global const float *x, uint x_off, uint n_outer,
                                uint n_keep, uint n_inner, uint chunk, uint parts, __local float *partial) {
  uint item = get_group_id(0), lid = get_local_id(0), lsize = get_local_size(0);
  uint p = item / n_keep, k = item - p * n_keep;
  uint n = n_outer * n_inner, r0 = p * chunk, r1 = min(r0 + chunk, n);
  partial[lid] = rows_range(x + x_off, n_keep, n_inner, k, r0, r1, lid, lsize);
  barrier(CLK_LOCAL_MEM_FENCE);
  for (uint width = lsize / 2; width > 0; width /= 2) {
    if (lid < width) partial[lid] += partial[lid + width];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (lid == 0) y[y_off + item] = partial[0];
}

__kernel void reduce_cols(__global float *y, uint y_off, __global const float *x, uint x_off, uint n_rows, uint n_cols,
                          uint chunk) {
  uint c8 = get_global_id(0) * 8, p = get_global_id(1);
  if (c8 >= n_cols) return;
  uint r0 = p * chunk, r1 = min(r0 + chunk, n_rows);
  __global const float *col = x + x_off + c8;
  __global float *out = y + y_off + p * n_cols + c8;
  if (c8 + 8 <= n_cols) {
    float8 acc = (float8)(0.0f);
    for (uint r = r0; r < r1; r++) acc += vload8(0, col + r * n_cols);
    vstore8(acc, 0, out);
  } else {
    for (uint c = 0; c < n_cols - c8; c++) {
      float acc = 0.0f;
      for (uint r = r0; r < r1; r++) acc += col[r * n_cols + c];
      out[c] = acc;
    }
  }
}

/* y[k] = the sum over p < parts (outer) and j < m (inner) of part[p * part_stride + k * m + j]. */
__kernel void reduce_finish(__global float *y, uint y_off, __global const float *part, uint part_off, uint n_keep,
                            uint parts, uint part_stride, uint m) {
  uint k = get_global_id(0);
  if (k >= n_keep) return;
  __global const float *base = part + part_off + k * m;
  float acc = 0.0f;
  for (uint p = 0; p < parts; p++)
    for (uint j = 0; j < m; j++) acc += base[p * part_stride + j];
  y[y_off + k] = acc;
}

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
