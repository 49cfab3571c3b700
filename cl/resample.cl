/* Resampling by two: nearest-neighbour upsampling and 2x2 sum pooling, each the other's
 * adjoint, both with a constant factor so that average pooling (0.25) and its gradient need no
 * extra pass.
 *
 * Layout: NCHW, row-major; the batch and channel dimensions merge into planes = B*C. A 2-D
 * range: dimension 0 the output column x, dimension 1 the output row r over all planes
 * (plane = r / oh), so only one division per row, none per element; the range is rounded up
 * and the overhang returns at once. `count` is the output's element count.
 *
 * upsample2x: in [planes, h, w] -> out [planes, oh, ow] with oh in {2h, 2h+1} (likewise ow),
 *   out[y][x] = s * in[y/2][x/2], and 0 on an extra last row/column (y/2 == h), which exists
 *   only as the gradient of pooling an odd size.
 * pool2x2: in [planes, h, w] -> out [planes, h/2, w/2] (floor, as nn.AvgPool2d(2)),
 *   out[y][x] = s * (sum of the 2x2 window at (2y, 2x)). */

__kernel void upsample2x(__global float *out, uint o_off, __global const float *in, uint i_off, uint count,
                         uint h, uint w, uint oh, uint ow, float s) {
  uint x = get_global_id(0), r = get_global_id(1);
  if (x >= ow || r * ow >= count) return;
  uint plane = r / oh, y = r - plane * oh;
  uint sy = y >> 1, sx = x >> 1;
  out[o_off + r * ow + x] = (sy < h && sx < w) ? s * in[i_off + (plane * h + sy) * w + sx] : 0.0f;
}

/* upsample2x when oh = 2h and ow = 2w (every use but pooling's odd-size gradient): one
 * work-item per input element, over a 2-D range of input columns x input rows r of all planes,
 * writing its 2x2 block. Output row 2r of the merged planes is the block's top row, so there is
 * no division at all, and each input element is read once (the general kernel's work-items
 * gather in[x/2], which PoCL's vectoriser turns into scalar loads: 4.5 ms for LORD's largest
 * upsampling, 32 x 32 planes of 16 x 16, against 0.9 ms for pooling the same data). */
__kernel void upsample2x_even(__global float *out, uint o_off, __global const float *in, uint i_off, uint count,
                              uint h, uint w, uint oh, uint ow, float s) {
  uint x = get_global_id(0), r = get_global_id(1);
  if (x >= w || r * w >= count / 4) return;
  float v = s * in[i_off + r * w + x];
  uint o = o_off + 2 * r * ow + 2 * x;
  vstore2((float2)(v, v), 0, out + o);
  vstore2((float2)(v, v), 0, out + o + ow);
}

__kernel void pool2x2(__global float *out, uint o_off, __global const float *in, uint i_off, uint count,
                      uint h, uint w, uint oh, uint ow, float s) {
  uint x = get_global_id(0), r = get_global_id(1);
  if (x >= ow || r * ow >= count) return;
  uint plane = r / oh, y = r - plane * oh;
  uint base = i_off + (plane * h + 2 * y) * w + 2 * x;
  out[o_off + r * ow + x] = s * ((in[base] + in[base + 1]) + (in[base + w] + in[base + w + 1]));
}
