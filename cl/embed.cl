/* Embedding lookups and their gradient.
 *
 * Layout: the table is [N, D] row-major, the indices are int [B], the rows gathered are
 * [B, D]. Every tensor arrives as (buffer, element offset).
 *
 * Out-of-range indices: indices are uploaded at run time, so the host cannot check them when
 * the graph is built. An index outside [0, N) reads a row of zeros in the gather and
 * contributes nothing to the gradient, so a bad index never touches memory outside the table
 * and never silently trains some other (clamped) row.
 *
 * The gradient is a scatter-add in which repeated indices add up. It uses no atomics, so it is
 * deterministic and needs no float atomic support:
 *   embed_zero     writes 0 over the whole [N, D] gradient (every row gets a dense gradient,
 *                  as Adam on every row each step expects);                       O(N*D)
 *   embed_scatter  one work-item per (batch entry b, column d): the first b of each distinct
 *                  index sums, in ascending b, the gradient rows of every b' >= b with the same
 *                  index and writes the row; later duplicates do nothing.        O(B*B*D)
 * so a row is written by exactly one work-item per column and the sum order is fixed. */

__kernel void embed_gather(__global float *y, uint y_off, __global const float *table, uint t_off,
                           __global const int *idx, uint i_off, uint n_rows, uint dim, uint count) {
  uint i = get_global_id(0);
  if (i >= count) return;
  uint b = i / dim, d = i % dim;
  int r = idx[i_off + b];
  y[y_off + i] = (r >= 0 && (uint)r < n_rows) ? table[t_off + (uint)r * dim + d] : 0.0f;
}

__kernel void embed_zero(__global float *y, uint y_off, uint count) {
  uint i = get_global_id(0);
  if (i < count) y[y_off + i] = 0.0f;
}

__kernel void embed_scatter(__global float *dtable, uint t_off, __global const float *dy, uint y_off,
                            __global const int *idx, uint i_off, uint n_rows, uint dim, uint batch) {
  uint i = get_global_id(0);
  if (i >= batch * dim) return;
  uint b = i / dim, d = i % dim;
  int r = idx[i_off + b];
  if (r < 0 || (uint)r >= n_rows) return;
  for (uint e = 0; e < b; e++)
    if (idx[i_off + e] == r) return; /* an earlier entry owns this row */
  float acc = 0.0f;
  for (uint e = b; e < batch; e++)
    if (idx[i_off + e] == r) acc += dy[y_off + e * dim + d];
  dtable[t_off + (uint)r * dim + d] = acc;
}
