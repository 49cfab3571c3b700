/* Convolution as im2col + one GEMM over the whole batch, and the layout changes around it.
 *
 * Layouts (row-major, innermost last):
 *   x    [B, C, H, W]                          the image batch
 *   col  [C * kh * kw, B * OH * OW]            row  r = (c * kh + ki) * kw + kj,
 *                                              column j = (b * OH + oy) * OW + ox
 *   t    [O, B * OH * OW]                      W [O, C*kh*kw] x col: channel-major output
 *   y    [B, O, OH, OW]                        the convolution's output (batch-major)
 *
 * col[r, j] = x[b, c, src(oy * s + ki - p, H), src(ox * s + kj - p, W)], where src maps a
 * coordinate of the padded image (shifted by -p) back to the image: for zero padding it is
 * the coordinate itself or "outside" (value 0); for reflect padding (nn.ReflectionPad2d,
 * p < size) -q below 0 and 2 (size - 1) - q beyond size - 1.
 *
 * Putting the batch into the GEMM's N dimension (B * OH * OW columns) makes the forward pass,
 * the input gradient (W^T x dt) and the weight gradient (dt x col^T, summed over the batch by
 * the GEMM itself) one large GEMM each; the price is one reordering pass t <-> y.
 *
 * col2im is the adjoint of im2col written as a gather: each image pixel sums the col entries
 * that read it (up to three padded coordinates per axis map to one pixel under reflection),
 * in a fixed order, so the result is deterministic and needs no atomics.
 *
 * Geometry arrives as int4 bchw = (B, C, H, W), int4 ksp = (kh, kw, stride, pad), then OH, OW
 * and reflect (0 or 1). Every tensor is (buffer, uint element offset). */

/* The image coordinate read at shifted padded coordinate q, or -1 for a zero pad. */
inline int conv_src(int q, int size, int reflect) {
  if (reflect) {
    if (q < 0) q = -q;
    if (q >= size) q = 2 * (size - 1) - q;
    return q;
  }
  return (q >= 0 && q < size) ? q : -1;
}

/* One work-item per (c, j): it writes the kh * kw rows of channel c in column j. Neighbouring
 * work-items write neighbouring columns, so every store is coalesced. n = C * B * OH * OW. */
__kernel void im2col(__global float *col, uint col_off, __global const float *x, uint x_off, int4 bchw, int4 ksp,
                     int oh, int ow, int reflect, uint n) {
  uint i = get_global_id(0);
  if (i >= n) return;
  const int C = bchw.y, H = bchw.z, W = bchw.w, kh = ksp.x, kw = ksp.y, s = ksp.z, p = ksp.w;
  uint bn = (uint)bchw.x * (uint)oh * (uint)ow;
  uint j = i % bn, c = i / bn;
  int ox = (int)(j % (uint)ow), oy = (int)((j / (uint)ow) % (uint)oh), b = (int)(j / ((uint)ow * (uint)oh));
  __global const float *img = x + x_off + ((uint)b * (uint)C + c) * (uint)H * (uint)W;
  uint out = col_off + c * (uint)(kh * kw) * bn + j;
  for (int ki = 0; ki < kh; ki++) {
    int row = conv_src(oy * s + ki - p, H, reflect);
    for (int kj = 0; kj < kw; kj++, out += bn) {
      int cx = conv_src(ox * s + kj - p, W, reflect);
      col[out] = (row >= 0 && cx >= 0) ? img[row * W + cx] : 0.0f;
    }
  }
}

/* The shifted padded coordinates that read image coordinate v: v itself, and under reflection
 * -v (when 1 <= v <= p) and 2 (size - 1) - v (when size - 1 - p <= v <= size - 2). */
inline int conv_preimages(int v, int size, int p, int reflect, int q[3]) {
  int k = 0;
  q[k++] = v;
  if (reflect && v >= 1 && v <= p) q[k++] = -v;
  if (reflect && v <= size - 2 && v >= size - 1 - p) q[k++] = 2 * (size - 1) - v;
  return k;
}

/* One work-item per image element (b, c, y, x) of the gradient; n = B * C * H * W. For each
 * padded coordinate py that reads row y and each kernel row ki, the output row is
 * oy = (py - ki) / s when that divides and lies in [0, OH); likewise for columns. With
 * has_bias, bias[c] is added (the transposed convolution's bias rides on this pass). */
__kernel void col2im(__global float *x, uint x_off, __global const float *col, uint col_off, __global const float *bias,
                     uint bias_off, int has_bias, int4 bchw, int4 ksp, int oh, int ow, int reflect, uint n) {
  uint i = get_global_id(0);
  if (i >= n) return;
  const int C = bchw.y, H = bchw.z, W = bchw.w, kh = ksp.x, kw = ksp.y, s = ksp.z, p = ksp.w;
  uint bn = (uint)bchw.x * (uint)oh * (uint)ow;
  int xx = (int)(i % (uint)W), y = (int)((i / (uint)W) % (uint)H);
  uint bc = i / ((uint)W * (uint)H);
  uint c = bc % (uint)C, b = bc / (uint)C;
  int qy[3], qx[3];
  int ny = conv_preimages(y, H, p, reflect, qy), nx = conv_preimages(xx, W, p, reflect, qx);
  __global const float *rows = col + col_off + c * (uint)(kh * kw) * bn + b * (uint)oh * (uint)ow;
  float acc = 0.0f;
  for (int a = 0; a < ny; a++)
    for (int ki = 0; ki < kh; ki++) {
      int dy = qy[a] + p - ki;
      if (dy < 0 || dy % s) continue;
      int oy = dy / s;
      if (oy >= oh) continue;
      for (int e = 0; e < nx; e++)
        for (int kj = 0; kj < kw; kj++) {
          int dx = qx[e] + p - kj;
          if (dx < 0 || dx % s) continue;
          int ox = dx / s;
          if (ox >= ow) continue;
          acc += rows[(uint)(ki * kw + kj) * bn + (uint)(oy * ow + ox)];
        }
    }
  x[x_off + i] = has_bias ? acc + bias[bias_off + c] : acc;
}

/* y[b, o, q] = t[o, b * nq + q] (+ bias[o]): the GEMM's channel-major result to the batch-major
 * output, fused with the bias. nq = OH * OW; n = B * O * nq. */
__kernel void batch_major(__global float *y, uint y_off, __global const float *t, uint t_off, __global const float *bias,
                          uint bias_off, uint nb, uint no, uint nq, int has_bias, uint n) {
  uint i = get_global_id(0);
  if (i >= n) return;
  uint q = i % nq, r = i / nq;
  uint o = r % no, b = r / no;
  float v = t[t_off + (o * nb + b) * nq + q];
  if (has_bias) v += bias[bias_off + o];
  y[y_off + i] = v;
}

/* t[o, b * nq + q] = y[b, o, q]: the inverse reordering (the adjoint of batch_major without
 * bias, and the direct GEMM operand of a 1x1 convolution). n = O * B * nq. */
__kernel void channel_major(__global float *t, uint t_off, __global const float *y, uint y_off, uint nb, uint no, uint nq,
                            uint n) {
  uint i = get_global_id(0);
  if (i >= n) return;
  uint q = i % nq, r = i / nq;
  uint b = r % nb, o = r / nb;
  t[t_off + i] = y[y_off + (b * no + o) * nq + q];
}

/* ---- direct convolution for layers with 4 or fewer output channels --------------------------
 * (conv_launch.c chooses it, for the forward pass and the input gradient.) There im2col + GEMM
 * moves K = C * kh * kw column entries per output pixel into a product whose M side (O of 4 or
 * fewer) fills no GEMM tile: the RGB head of a generator (16 -> 3, 7x7). These kernels read
 * the image and the weights where they lie, each sum in a fixed order. Weights are
 * [O, C, kh, kw]. */

/* One work-item per output element (b, o, oy, ox) of y [B, O, OH, OW]; n = B * O * OH * OW. */
__kernel void direct_forward(__global float *y, uint y_off, __global const float *x, uint x_off,
                             __global const float *w, uint w_off, __global const float *bias, uint bias_off,
                             int has_bias, int o_count, int4 bchw, int4 ksp, int oh, int ow, int reflect, uint n) {
  uint i = get_global_id(0);
  if (i >= n) return;
  const int C = bchw.y, H = bchw.z, W = bchw.w, kh = ksp.x, kw = ksp.y, s = ksp.z, p = ksp.w;
  int ox = (int)(i % (uint)ow), oy = (int)((i / (uint)ow) % (uint)oh);
  uint bo = i / ((uint)ow * (uint)oh);
  uint o = bo % (uint)o_count, b = bo / (uint)o_count;
  __global const float *img = x + x_off + b * (uint)C * (uint)(H * W);
  __global const float *wo = w + w_off + o * (uint)(C * kh * kw);
  float acc = has_bias ? bias[bias_off + o] : 0.0f;
  for (int c = 0; c < C; c++, img += H * W)
    for (int ki = 0; ki < kh; ki++) {
      int row = conv_src(oy * s + ki - p, H, reflect);
      if (row < 0) continue;
      for (int kj = 0; kj < kw; kj++) {
        int cx = conv_src(ox * s + kj - p, W, reflect);
        if (cx >= 0) acc += wo[(c * kh + ki) * kw + kj] * img[row * W + cx];
      }
    }
  y[y_off + i] = acc;
}

/* One work-item per element (b, c, y, x) of dx [B, C, H, W]: the taps of every output channel
 * that read it, found as in col2im; n = B * C * H * W. With has_bias, bias[c] is added (the
 * transposed convolution's bias rides on this pass). */
__kernel void direct_grad_input(__global float *dx, uint dx_off, __global const float *dy, uint dy_off,
                                __global const float *w, uint w_off, __global const float *bias, uint bias_off,
                                int has_bias, int o_count, int4 bchw, int4 ksp, int oh, int ow, int reflect, uint n) {
  uint i = get_global_id(0);
  if (i >= n) return;
  const int C = bchw.y, H = bchw.z, W = bchw.w, kh = ksp.x, kw = ksp.y, s = ksp.z, p = ksp.w;
  int xx = (int)(i % (uint)W), yy = (int)((i / (uint)W) % (uint)H);
  uint bc = i / ((uint)W * (uint)H);
  uint c = bc % (uint)C, b = bc / (uint)C;
  int qy[3], qx[3];
  int ny = conv_preimages(yy, H, p, reflect, qy), nx = conv_preimages(xx, W, p, reflect, qx);
  float acc = has_bias ? bias[bias_off + c] : 0.0f;
  for (int o = 0; o < o_count; o++) {
    __global const float *g = dy + dy_off + (b * (uint)o_count + (uint)o) * (uint)(oh * ow);
    __global const float *wc = w + w_off + ((uint)o * (uint)C + c) * (uint)(kh * kw);
    for (int a = 0; a < ny; a++)
      for (int ki = 0; ki < kh; ki++) {
        int d = qy[a] + p - ki;
        if (d < 0 || d % s) continue;
        int oy = d / s;
        if (oy >= oh) continue;
        for (int e = 0; e < nx; e++)
          for (int kj = 0; kj < kw; kj++) {
            int dxx = qx[e] + p - kj;
            if (dxx < 0 || dxx % s) continue;
            int ox = dxx / s;
            if (ox < ow) acc += wc[ki * kw + kj] * g[oy * ow + ox];
          }
      }
  }
  dx[dx_off + i] = acc;
}
