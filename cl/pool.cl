/* Max pooling, general average pooling and bilinear upsampling by two, each with its adjoint
 * written as a gather, so that every result is a fixed-order sum (deterministic, no atomics).
 *
 * Layout: NCHW, row-major; batch and channel merge into planes = B*C. One work-item per
 * output element, n of them; the global range is rounded up and the overhang returns at once.
 * Every kernel takes (out, in0, in1) as (buffer, uint element offset) triples of tensors, then
 * sz = (H, W, OH, OW) where H x W is the pooled image's (or the small image's) plane and
 * OH x OW the pooled (or upsampled) plane, then ksp = (kernel, stride, pad, flag), then n.
 * Kernels with one input ignore in1.
 *
 * Max pooling (no padding, floor): window (oy, ox) covers rows oy*s .. oy*s + k - 1 and the
 * like for columns. Its chosen element is the first maximum in row-major window order; a NaN
 * wins over numbers and the first NaN over later ones, so NaNs propagate as in PyTorch.
 *   maxpool_gather:  out[o] = in1[chosen(in0, o)]       (pooling itself: in0 = in1 = x)
 *   maxpool_scatter: out[i] = sum of in1[o] over windows o whose chosen(in0, o) is i
 * Each is the other's adjoint in in1, for a fixed in0 (the key that decides the choice).
 *
 * Average pooling (nn.AvgPool2d, ceil_mode False): window rows oy*s - p .. oy*s - p + k - 1
 * clipped to the image; the divisor is k*k with flag (count_include_pad) set, else the number
 * of image elements in the window.
 *   avgpool:          out[o] = sum of the window / divisor(o)
 *   avgpool_adjoint:  out[i] = sum over windows o holding i of in0[o] / divisor(o)
 *
 * Bilinear upsampling by two (align_corners False): output coordinate o reads the source
 * coordinate max(0, (o + 0.5) / 2 - 0.5) between i0 = floor and i1 = min(i0 + 1, size - 1)
 * with weights 1 - l and l, l = source - i0: in effect 0.25 / 0.75 mixes of neighbours, with
 * the border pixel repeated.
 *   bilinear2x:          in0 [planes, H, W] -> out [planes, 2H, 2W]
 *   bilinear2x_adjoint:  in0 [planes, 2H, 2W] -> out [planes, H, W], the transpose; each
 *                        source pixel gathers from at most 4 x 4 output pixels. */

inline int first_window(int v, int k, int s) { /* the first window (stride s, size k) holding v */
  int lo = v - k + 1;
  return lo <= 0 ? 0 : (lo + s - 1) / s;
}

/* The index within plane of the chosen element of window (oy, ox). */
inline int maxpool_choice(__global const float *plane, int W, int oy, int ox, int k, int s) {
  int best_i = oy * s * W + ox * s;
  float best = plane[best_i];
  for (int ky = 0; ky < k; ky++)
    for (int kx = 0; kx < k; kx++) {
      int i = (oy * s + ky) * W + ox * s + kx;
      float v = plane[i];
      if (v > best || (isnan(v) && !isnan(best))) {
        best = v;
        best_i = i;
      }
    }
  return best_i;
}

__kernel void maxpool_gather(__global float *out, uint o_off, __global const float *key, uint k_off,
                             __global const float *val, uint v_off, int4 sz, int4 ksp, uint n) {
  uint i = get_global_id(0);
  if (i >= n) return;
  const int H = sz.x, W = sz.y, OH = sz.z, OW = sz.w;
  int ox = (int)(i % (uint)OW), oy = (int)((i / (uint)OW) % (uint)OH);
  uint plane = i / ((uint)OW * (uint)OH), base = plane * (uint)H * (uint)W;
  int c = maxpool_choice(key + k_off + base, W, oy, ox, ksp.x, ksp.y);
  out[o_off + i] = val[v_off + base + (uint)c];
}

__kernel void maxpool_scatter(__global float *out, uint o_off, __global const float *key, uint k_off,
                              __global const float *grad, uint g_off, int4 sz, int4 ksp, uint n) {
  uint i = get_global_id(0);
  if (i >= n) return;
  const int H = sz.x, W = sz.y, OH = sz.z, OW = sz.w, k = ksp.x, s = ksp.y;
  int x = (int)(i % (uint)W), y = (int)((i / (uint)W) % (uint)H);
  uint plane = i / ((uint)W * (uint)H);
  __global const float *kp = key + k_off + plane * (uint)H * (uint)W;
  __global const float *gp = grad + g_off + plane * (uint)OH * (uint)OW;
  int self = y * W + x;
  int oy1 = min(y / s, OH - 1), ox1 = min(x / s, OW - 1);
  float acc = 0.0f;
  for (int oy = first_window(y, k, s); oy <= oy1; oy++)
    for (int ox = first_window(x, k, s); ox <= ox1; ox++)
      if (maxpool_choice(kp, W, oy, ox, k, s) == self) acc += gp[oy * OW + ox];
  out[o_off + i] = acc;
}

/* The same two maps for VGG's pooling, 2x2 windows with stride 2 that tile the image exactly
 * (even H and W): each input element lies in exactly one window, so the scatter needs no
 * search over windows. One work-item per window over a 2-D range (OW, planes x OH), with no
 * loops inside, so a CPU compiler can vectorise across work-items. The choice is the general
 * kernels' rule written out for four elements: the first maximum in row-major order, a NaN
 * winning over numbers and the first NaN over later ones. maxpool2x2_scatter writes its whole
 * window, the gradient at the chosen element and zeros elsewhere. */
inline int better(float v, float best) { return v > best || (isnan(v) && !isnan(best)); }

/* The position (0..3, row-major) of the chosen element of the 2x2 window at p (row length W). */
inline int maxpool2x2_choice(__global const float *p, int W) {
  float best = p[0];
  int at = 0;
  if (better(p[1], best)) best = p[1], at = 1;
  if (better(p[W], best)) best = p[W], at = 2;
  if (better(p[W + 1], best)) at = 3;
  return at;
}

__kernel void maxpool2x2_gather(__global float *out, uint o_off, __global const float *key, uint k_off,
                                __global const float *val, uint v_off, int4 sz, int4 ksp, uint n) {
  const int W = sz.y, OH = sz.z, OW = sz.w;
  int ox = (int)get_global_id(0), row = (int)get_global_id(1);
  if (ox >= OW || (uint)row * (uint)OW >= n) return;
  int plane = row / OH, oy = row - plane * OH;
  uint at = (uint)plane * (uint)sz.x * (uint)W + (uint)(2 * oy * W + 2 * ox);
  int c = maxpool2x2_choice(key + k_off + at, W);
  out[o_off + (uint)row * (uint)OW + (uint)ox] = val[v_off + at + (uint)((c >> 1) * W + (c & 1))];
}

__kernel void maxpool2x2_scatter(__global float *out, uint o_off, __global const float *key, uint k_off,
                                 __global const float *grad, uint g_off, int4 sz, int4 ksp, uint n) {
  const int W = sz.y, OH = sz.z, OW = sz.w;
  int ox = (int)get_global_id(0), row = (int)get_global_id(1);
  if (ox >= OW || (uint)row * (uint)OW * 4u >= n) return;
  int plane = row / OH, oy = row - plane * OH;
  uint at = (uint)plane * (uint)sz.x * (uint)W + (uint)(2 * oy * W + 2 * ox);
  int c = maxpool2x2_choice(key + k_off + at, W);
  float g = grad[g_off + (uint)row * (uint)OW + (uint)ox];
  __global float *o = out + o_off + at;
  o[0] = c == 0 ? g : 0.0f;
  o[1] = c == 1 ? g : 0.0f;
  o[W] = c == 2 ? g : 0.0f;
  o[W + 1] = c == 3 ? g : 0.0f;
}

/* The first and one-past-last image rows of window o along an axis of `size`, and the span
 * the divisor counts. */
inline int avg_span(int o, int size, int k, int s, int p, int include, int *lo, int *hi) {
  int a = o * s - p, b = min(a + k, size + p);
  int span = b - a;
  *lo = max(a, 0);
  *hi = min(b, size);
  return include ? span : *hi - *lo;
}

__kernel void avgpool(__global float *out, uint o_off, __global const float *x, uint x_off, __global const float *unused,
                      uint u_off, int4 sz, int4 ksp, uint n) {
  uint i = get_global_id(0);
  if (i >= n) return;
  const int H = sz.x, W = sz.y, OH = sz.z, OW = sz.w;
  int ox = (int)(i % (uint)OW), oy = (int)((i / (uint)OW) % (uint)OH);
  uint plane = i / ((uint)OW * (uint)OH);
  __global const float *xp = x + x_off + plane * (uint)H * (uint)W;
  int y0, y1, x0, x1;
  int dy = avg_span(oy, H, ksp.x, ksp.y, ksp.z, ksp.w, &y0, &y1);
  int dx = avg_span(ox, W, ksp.x, ksp.y, ksp.z, ksp.w, &x0, &x1);
  float acc = 0.0f;
  for (int y = y0; y < y1; y++)
    for (int xx = x0; xx < x1; xx++) acc += xp[y * W + xx];
  out[o_off + i] = acc / (float)(dy * dx);
}

__kernel void avgpool_adjoint(__global float *out, uint o_off, __global const float *grad, uint g_off,
                              __global const float *unused, uint u_off, int4 sz, int4 ksp, uint n) {
  uint i = get_global_id(0);
  if (i >= n) return;
  const int H = sz.x, W = sz.y, OH = sz.z, OW = sz.w, k = ksp.x, s = ksp.y, p = ksp.z;
  int x = (int)(i % (uint)W), y = (int)((i / (uint)W) % (uint)H);
  uint plane = i / ((uint)W * (uint)H);
  __global const float *gp = grad + g_off + plane * (uint)OH * (uint)OW;
  int oy1 = min((y + p) / s, OH - 1), ox1 = min((x + p) / s, OW - 1);
  float acc = 0.0f;
  for (int oy = first_window(y + p, k, s); oy <= oy1; oy++) {
    int lo, hi;
    int dy = avg_span(oy, H, k, s, p, ksp.w, &lo, &hi);
    for (int ox = first_window(x + p, k, s); ox <= ox1; ox++) {
      int dx = avg_span(ox, W, k, s, p, ksp.w, &lo, &hi);
      acc += gp[oy * OW + ox] / (float)(dy * dx);
    }
  }
  out[o_off + i] = acc;
}

/* The two source coordinates of output coordinate o and the weight of the second. */
inline float bilinear_src(int o, int size, int *i0, int *i1) {
  float src = fmax(((float)o + 0.5f) * 0.5f - 0.5f, 0.0f);
  *i0 = (int)src;
  *i1 = *i0 + (*i0 < size - 1 ? 1 : 0);
  return src - (float)*i0;
}

/* The weight with which output coordinate o reads source coordinate v. */
inline float bilinear_weight(int o, int size, int v) {
  int i0, i1;
  float l1 = bilinear_src(o, size, &i0, &i1);
  return (i0 == v ? 1.0f - l1 : 0.0f) + (i1 == v ? l1 : 0.0f);
}

__kernel void bilinear2x(__global float *out, uint o_off, __global const float *x, uint x_off, __global const float *unused,
                         uint u_off, int4 sz, int4 ksp, uint n) {
  uint i = get_global_id(0);
  if (i >= n) return;
  const int H = sz.x, W = sz.y, OH = sz.z, OW = sz.w;
  int ox = (int)(i % (uint)OW), oy = (int)((i / (uint)OW) % (uint)OH);
  uint plane = i / ((uint)OW * (uint)OH);
  __global const float *xp = x + x_off + plane * (uint)H * (uint)W;
  int y0, y1, x0, x1;
  float ly = bilinear_src(oy, H, &y0, &y1), lx = bilinear_src(ox, W, &x0, &x1);
  /* PyTorch's grouping: the two columns of each source row first, then the two rows. */
  out[o_off + i] = (1.0f - ly) * ((1.0f - lx) * xp[y0 * W + x0] + lx * xp[y0 * W + x1]) +
                   ly * ((1.0f - lx) * xp[y1 * W + x0] + lx * xp[y1 * W + x1]);
}

__kernel void bilinear2x_adjoint(__global float *out, uint o_off, __global const float *grad, uint g_off,
                                 __global const float *unused, uint u_off, int4 sz, int4 ksp, uint n) {
  uint i = get_global_id(0);
  if (i >= n) return;
  const int H = sz.x, W = sz.y, OH = sz.z, OW = sz.w;
  int x = (int)(i % (uint)W), y = (int)((i / (uint)W) % (uint)H);
  uint plane = i / ((uint)W * (uint)H);
  __global const float *gp = grad + g_off + plane * (uint)OH * (uint)OW;
  float acc = 0.0f;
  for (int oy = max(2 * y - 1, 0); oy <= min(2 * y + 2, OH - 1); oy++) {
    float wy = bilinear_weight(oy, H, y);
    if (wy == 0.0f) continue;
    float row = 0.0f;
    for (int ox = max(2 * x - 1, 0); ox <= min(2 * x + 2, OW - 1); ox++) {
      float wx = bilinear_weight(ox, W, x);
      if (wx != 0.0f) row += wx * gp[oy * OW + ox];
    }
    acc += wy * row;
  }
  out[o_off + i] = acc;
}
