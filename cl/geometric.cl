/* Affine resampling of NCHW images (OverLORD's augmentation T), as
 * F.grid_sample(x, F.affine_grid(theta, (B, C, OH, OW), align_corners=False), mode='bilinear',
 * padding_mode='zeros', align_corners=False).
 *
 * Per sample b, theta[b] is a row-major 2x3 matrix in normalized coordinates: output pixel
 * (i, j) sits at xn = (2j + 1) / OW - 1, yn = (2i + 1) / OH - 1, reads the input at
 * gx = t0 xn + t1 yn + t2, gy = t3 xn + t4 yn + t5, i.e. at input pixel coordinates
 * ix = ((gx + 1) W - 1) / 2, iy = ((gy + 1) H - 1) / 2. Both steps are affine, so each sample's
 * map folds into ix = a j + b i + c, iy = d j + e i + f (pixel_map). The fold is arranged so
 * that the identity, flips and quarter turns give integer coordinates exactly, and those
 * transforms therefore copy pixels bit for bit.
 *
 * Bilinear weights are the tent 1 - |ix - x| (times the same in y) on the four neighbours;
 * neighbours outside the image read zero.
 *
 * Kernels (every tensor as buffer + element offset, one work-item per output element, the
 * overhang of the rounded-up global range returns at once):
 *   grid_sample          x [B, C, H, W] -> out [B, C, OH, OW]
 *   grid_sample_adjoint  g [B, C, OH, OW] -> gx [B, C, H, W], the transpose of grid_sample in
 *                        gather form: each input pixel sums over the output pixels whose
 *                        sample point lies within one pixel of it (no atomics, fixed order)
 *   grid_sample_theta    (go, x) -> [B, 6, OH * OW]: per output pixel and theta entry, the
 *                        channel sum of go * d(out)/d(theta); the engine sums over pixels
 *   rotation_theta       angle [B] -> [B, 2, 3] rows (cos, -sin, 0), (sin, cos, 0)
 */

typedef struct {
  float a, b, c, d, e, f;
} pixmap;

static pixmap pixel_map(__global const float *t, int h, int w, int oh, int ow) {
  pixmap m;
  m.a = t[0] * (float)w / (float)ow;
  m.b = t[1] * (float)w / (float)oh;
  /* c = a/2 + b/2 - 1/2 + W (t2 + 1 - t0 - t1) / 2: the bracket is exactly 0 for the identity */
  m.c = 0.5f * ((m.a + m.b - 1.0f) + (float)w * ((t[2] + 1.0f) - t[0] - t[1]));
  m.d = t[3] * (float)h / (float)ow;
  m.e = t[4] * (float)h / (float)oh;
  m.f = 0.5f * ((m.d + m.e - 1.0f) + (float)h * ((t[5] + 1.0f) - t[3] - t[4]));
  return m;
}

__kernel void grid_sample(__global float *out, uint o_off, __global const float *x, uint x_off,
                          __global const float *theta, uint t_off, uint count, int C, int H, int W, int OH, int OW) {
  uint n = get_global_id(0);
  if (n >= count) return;
  int j = (int)(n % (uint)OW), i = (int)((n / (uint)OW) % (uint)OH);
  uint plane = n / ((uint)OW * (uint)OH), b = plane / (uint)C;
  pixmap m = pixel_map(theta + t_off + 6 * b, H, W, OH, OW);
  float ix = m.a * (float)j + m.b * (float)i + m.c;
  float iy = m.d * (float)j + m.e * (float)i + m.f;
  float acc = 0.0f;
  /* Also rejects NaN, and keeps the int conversions below in range. */
  if (ix > -1.0f && ix < (float)W && iy > -1.0f && iy < (float)H) {
    float fx = floor(ix), fy = floor(iy);
    float wx1 = ix - fx, wy1 = iy - fy, wx0 = 1.0f - wx1, wy0 = 1.0f - wy1;
    int x0 = (int)fx, y0 = (int)fy;
    __global const float *p = x + x_off + (size_t)plane * (uint)H * (uint)W;
    if (y0 >= 0) {
      if (x0 >= 0) acc += p[y0 * W + x0] * (wx0 * wy0);
      if (x0 + 1 < W) acc += p[y0 * W + x0 + 1] * (wx1 * wy0);
    }
    if (y0 + 1 < H) {
      if (x0 >= 0) acc += p[(y0 + 1) * W + x0] * (wx0 * wy1);
      if (x0 + 1 < W) acc += p[(y0 + 1) * W + x0 + 1] * (wx1 * wy1);
    }
  }
  out[o_off + n] = acc;
}

/* The open interval of t where |k t + r| < 1, intersected into [*lo, *hi]. */
static void tent_interval(float k, float r, float *lo, float *hi) {
  if (k == 0.0f) {
    if (!(fabs(r) < 1.0f)) *lo = INFINITY, *hi = -INFINITY;
    return;
  }
  float t0 = (-1.0f - r) / k, t1 = (1.0f - r) / k;
  *lo = fmax(*lo, fmin(t0, t1));
  *hi = fmin(*hi, fmax(t0, t1));
}

/* Rows (and per row, columns) come from inverting the map, widened by a small margin against
 * rounding and clamped to the output; the tent weight is then computed exactly as in the
 * forward pass, so a pixel the margin adds contributes zero. A singular or non-finite map
 * falls back to the whole clamped range (fmax/fmin drop NaN), so the cost per input pixel is
 * at most OH * OW and about (2 / scale + 1)^2 for a crop of the given side fraction. */
__kernel void grid_sample_adjoint(__global float *gx, uint gx_off, __global const float *g, uint g_off,
                                  __global const float *theta, uint t_off, uint count, int C, int H, int W, int OH,
                                  int OW) {
  uint n = get_global_id(0);
  if (n >= count) return;
  int x = (int)(n % (uint)W), y = (int)((n / (uint)W) % (uint)H);
  uint plane = n / ((uint)W * (uint)H), b = plane / (uint)C;
  pixmap m = pixel_map(theta + t_off + 6 * b, H, W, OH, OW);
  __global const float *gp = g + g_off + (size_t)plane * (uint)OH * (uint)OW;
  float xc = (float)x - m.c, yc = (float)y - m.f;
  float det = m.a * m.e - m.b * m.d;
  float ic = (m.a * yc - m.d * xc) / det, ih = (fabs(m.a) + fabs(m.d)) / fabs(det);
  float margin = 0.01f + 1e-5f * fabs(ic);
  /* lower bounds are also capped at the size so that the int conversion stays defined */
  float i_lo = fmin(fmax(ceil(ic - ih - margin), 0.0f), (float)OH), i_hi = fmin(floor(ic + ih + margin), (float)(OH - 1));
  float acc = 0.0f;
  for (int i = (int)i_lo; (float)i <= i_hi; i++) {
    float lo = -INFINITY, hi = INFINITY;
    tent_interval(m.a, m.b * (float)i + m.c - (float)x, &lo, &hi);
    tent_interval(m.d, m.e * (float)i + m.f - (float)y, &lo, &hi);
    if (!(lo <= hi)) continue;
    float jm = 0.01f + 1e-5f * fmax(fabs(lo), fabs(hi));
    float j_lo = fmin(fmax(ceil(lo - jm), 0.0f), (float)OW), j_hi = fmin(floor(hi + jm), (float)(OW - 1));
    for (int j = (int)j_lo; (float)j <= j_hi; j++) {
      float ix = m.a * (float)j + m.b * (float)i + m.c;
      float iy = m.d * (float)j + m.e * (float)i + m.f;
      float wx = 1.0f - fabs(ix - (float)x), wy = 1.0f - fabs(iy - (float)y);
      if (wx > 0.0f && wy > 0.0f) acc += gp[i * OW + j] * (wx * wy);
    }
  }
  gx[gx_off + n] = acc;
}

/* d(out)/d(ix) = sum over the corners of v * d(weight)/d(ix) (one-sided at integer ix, as
 * PyTorch's grid_sampler backward), and d(ix)/d(t0, t1, t2) = W/2 (xn, yn, 1); likewise for iy
 * with H/2 and t3..t5. One work-item per (b, output pixel) loops over the channels. */
__kernel void grid_sample_theta(__global float *out, uint o_off, __global const float *go, uint go_off,
                                __global const float *x, uint x_off, __global const float *theta, uint t_off, uint count,
                                int C, int H, int W, int OH, int OW) {
  uint n = get_global_id(0);
  if (n >= count) return;
  uint P = (uint)OH * (uint)OW, pix = n % P, b = n / P;
  int j = (int)(pix % (uint)OW), i = (int)(pix / (uint)OW);
  pixmap m = pixel_map(theta + t_off + 6 * b, H, W, OH, OW);
  float ix = m.a * (float)j + m.b * (float)i + m.c;
  float iy = m.d * (float)j + m.e * (float)i + m.f;
  float dix = 0.0f, diy = 0.0f;
  if (ix > -1.0f && ix < (float)W && iy > -1.0f && iy < (float)H) {
    float fx = floor(ix), fy = floor(iy);
    float wx1 = ix - fx, wy1 = iy - fy, wx0 = 1.0f - wx1, wy0 = 1.0f - wy1;
    int x0 = (int)fx, y0 = (int)fy;
    int in_x0 = x0 >= 0, in_x1 = x0 + 1 < W, in_y0 = y0 >= 0, in_y1 = y0 + 1 < H;
    for (int c = 0; c < C; c++) {
      uint plane = b * (uint)C + (uint)c;
      __global const float *p = x + x_off + (size_t)plane * (uint)H * (uint)W;
      float gv = go[go_off + (size_t)plane * P + pix];
      float v00 = in_y0 && in_x0 ? p[y0 * W + x0] : 0.0f;
      float v01 = in_y0 && in_x1 ? p[y0 * W + x0 + 1] : 0.0f;
      float v10 = in_y1 && in_x0 ? p[(y0 + 1) * W + x0] : 0.0f;
      float v11 = in_y1 && in_x1 ? p[(y0 + 1) * W + x0 + 1] : 0.0f;
      dix += gv * ((v01 - v00) * wy0 + (v11 - v10) * wy1);
      diy += gv * ((v10 - v00) * wx0 + (v11 - v01) * wx1);
    }
  }
  float xn = (float)(2 * j + 1) / (float)OW - 1.0f, yn = (float)(2 * i + 1) / (float)OH - 1.0f;
  float sx = 0.5f * (float)W * dix, sy = 0.5f * (float)H * diy;
  __global float *o = out + o_off + (size_t)b * 6 * P + pix;
  o[0] = sx * xn;
  o[P] = sx * yn;
  o[2 * P] = sx;
  o[3 * P] = sy * xn;
  o[4 * P] = sy * yn;
  o[5 * P] = sy;
}

__kernel void rotation_theta(__global float *out, uint o_off, __global const float *angle, uint a_off, uint count) {
  uint b = get_global_id(0);
  if (b >= count) return;
  float cs, sn = sincos(angle[a_off + b], &cs);
  __global float *o = out + o_off + 6 * b;
  o[0] = cs;
  o[1] = -sn;
  o[2] = 0.0f;
  o[3] = sn;
  o[4] = cs;
  o[5] = 0.0f;
}
