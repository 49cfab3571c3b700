/* Copies along dimension 1 (channels of NCHW, features of [B, F]).
 *
 * Every tensor is viewed as [outer, inner] with outer = the batch and inner = the product of
 * the dimensions from 1 on, so a channel range is one contiguous run per batch entry. One
 * work-item per output element; the overhang of the rounded-up range returns at once.
 *
 * concat2:      out [outer, ia + ib] = a [outer, ia] next to b [outer, ib]
 * slice_inner:  out [outer, count] = x [outer, stride] columns [start, start + count)
 * pad_inner:    out [outer, stride] = x [outer, count] at columns [start, start + count),
 *               zeros elsewhere (the adjoint of slice_inner) */

__kernel void concat2(__global float *out, uint o_off, __global const float *a, uint a_off,
                      __global const float *b, uint b_off, uint total, uint ia, uint ib) {
  uint i = get_global_id(0);
  if (i >= total) return;
  uint row = i / (ia + ib), col = i % (ia + ib);
  out[o_off + i] = col < ia ? a[a_off + row * ia + col] : b[b_off + row * ib + (col - ia)];
}

__kernel void slice_inner(__global float *out, uint o_off, __global const float *x, uint x_off, uint total,
                          uint stride, uint start, uint count) {
  uint i = get_global_id(0);
  if (i >= total) return;
  uint row = i / count, col = i % count;
  out[o_off + i] = x[x_off + row * stride + start + col];
}

__kernel void pad_inner(__global float *out, uint o_off, __global const float *x, uint x_off, uint total,
                        uint stride, uint start, uint count) {
  uint i = get_global_id(0);
  if (i >= total) return;
  uint row = i / stride, col = i % stride;
  out[o_off + i] = (col >= start && col < start + count) ? x[x_off + row * count + (col - start)] : 0.0f;
}
