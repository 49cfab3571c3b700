/* StyleGAN2 pieces: FIR resampling (upfirdn2d), modulated convolution, equalized-lr layers,
 * the fused leaky ReLU and minibatch standard deviation. Forwards against plain C references
 * on the host (upfirdn2d literally as the reference implementation's steps: zero-stuff, pad or
 * crop, convolve with the flipped kernel, decimate; modulated convolution as a per-sample
 * grouped convolution with explicit per-sample weights), gradients against host adjoints and
 * central finite differences, some gradients of gradients. Shapes include batch 1, 1x1 spatial,
 * odd sizes and channel counts that are no multiple of 4. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "kit_layers.h"
#include "kit_losses.h"

/* ---------------------------------------------------------------------------------------------
 * upfirdn2d.
 */
typedef struct {
  float k[7];
  int taps; /* 0: the default [1, 3, 3, 1] */
  int up, down, pad0, pad1;
  float gain;
} fir_params;

/* out = upfirdn2d(x) per plane, and grad[i] += sum_o wgt[o] d out[o] / d x[i] when wgt is
 * given. The padded, upsampled image is built explicitly with the index of the input pixel
 * each position holds (-1 for a zero). */
static void fir_reference(const float *x, int64_t planes, int h, int w, const fir_params *fp, float *out, int *oh_out,
                          int *ow_out, const float *wgt, float *grad) {
  static const float dflt[4] = { 1, 3, 3, 1 };
  const float *k = fp->taps ? fp->k : dflt;
  int taps = fp->taps ? fp->taps : 4, up = fp->up ? fp->up : 1, down = fp->down ? fp->down : 1;
  double gain = fp->gain != 0 ? fp->gain : 1, sum = 0;
  for (int i = 0; i < taps; i++) sum += k[i];
  double k2[7][7];
  for (int a = 0; a < taps; a++)
    for (int b = 0; b < taps; b++) k2[a][b] = gain * k[taps - 1 - a] * k[taps - 1 - b] / (sum * sum); /* flipped */
  /* 1-D index maps of the upsampled, padded (or cropped) axis */
  int lh = h * up + fp->pad0 + fp->pad1, lw = w * up + fp->pad0 + fp->pad1;
  int *ry = malloc((size_t)lh * sizeof *ry), *rx = malloc((size_t)lw * sizeof *rx);
  for (int j = 0; j < lh; j++) {
    int u = j - fp->pad0; /* position in the zero-stuffed axis */
    ry[j] = (u >= 0 && u < h * up && u % up == 0) ? u / up : -1;
  }
  for (int j = 0; j < lw; j++) {
    int u = j - fp->pad0;
    rx[j] = (u >= 0 && u < w * up && u % up == 0) ? u / up : -1;
  }
  int vh = lh - taps + 1, vw = lw - taps + 1; /* valid convolution */
  int oh = (vh + down - 1) / down, ow = (vw + down - 1) / down;
  *oh_out = oh;
  *ow_out = ow;
  for (int64_t p = 0; p < planes; p++)
    for (int y = 0; y < oh; y++)
      for (int xx = 0; xx < ow; xx++) {
        double acc = 0;
        int64_t o = (p * oh + y) * ow + xx;
        for (int a = 0; a < taps; a++)
          for (int b = 0; b < taps; b++) {
            int sy = ry[y * down + a], sx = rx[xx * down + b];
            if (sy < 0 || sx < 0) continue;
            int64_t i = (p * h + sy) * w + sx;
            acc += k2[a][b] * x[i];
            if (wgt) grad[i] += (float)(k2[a][b] * wgt[o]);
          }
        out[o] = (float)acc;
      }
  free(ry);
  free(rx);
}

typedef struct {
  const char *label;
  ut_shape shape;
  fir_params fp;
  int helper; /* 1: ut_fir_upsample2x, 2: ut_fir_downsample2x */
} fir_case;

static ut_tensor *build_fir(ut_graph *g, ut_tensor **in, void *ctx) {
  const fir_case *c = ctx;
  if (c->helper == 1) return ut_fir_upsample2x(g, in[0]);
  if (c->helper == 2) return ut_fir_downsample2x(g, in[0]);
  const fir_params *f = &c->fp;
  return ut_upfirdn2d(g, in[0], (ut_fir_cfg){ .kernel = f->taps ? f->k : NULL, .taps = f->taps, .up = f->up, .down = f->down,
                                              .pad0 = f->pad0, .pad1 = f->pad1, .gain = f->gain });
}

static const fir_case fir_cases[] = {
  { "blur after transposed conv", UT_SHAPE(2, 3, 7, 5), { .pad0 = 1, .pad1 = 1, .gain = 4 }, 0 },
  { "blur before strided conv", UT_SHAPE(1, 5, 6, 6), { .pad0 = 2, .pad1 = 2 }, 0 },
  { "upsample2x", UT_SHAPE(2, 3, 4, 5), { .up = 2, .pad0 = 2, .pad1 = 1, .gain = 4 }, 1 },
  { "upsample2x 1x1", UT_SHAPE(1, 2, 1, 1), { .up = 2, .pad0 = 2, .pad1 = 1, .gain = 4 }, 1 },
  { "downsample2x", UT_SHAPE(2, 3, 8, 6), { .down = 2, .pad0 = 1, .pad1 = 1 }, 2 },
  { "downsample2x odd", UT_SHAPE(1, 2, 7, 5), { .down = 2, .pad0 = 1, .pad1 = 1 }, 2 },
  { "asymmetric up2 down3 crop", UT_SHAPE(1, 3, 9, 11), { { 1, 2, 4 }, 3, 2, 3, 2, -1, 1.5f }, 0 },
  { "5 taps, many planes", UT_SHAPE(3, 7, 13, 11), { { 1, 4, 6, 4, 1 }, 5, 1, 1, 2, 2, 0 }, 0 },
  { "up 3", UT_SHAPE(2, 1, 3, 2), { { 2, 1, 1 }, 3, 3, 1, 1, 2, 9 }, 0 },
};
#define N_FIR ((int)(sizeof fir_cases / sizeof fir_cases[0]))

START_TEST(test_upfirdn2d) {
  const fir_case *c = &fir_cases[_i];
  ut_shape s = c->shape;
  int64_t n = gc_numel(s), planes = s.d[0] * s.d[1];
  int64_t cap = planes * (s.d[2] * 3 + 8) * (s.d[3] * 3 + 8);
  float *x = gc_random_values(100 + (uint64_t)_i, n, -2, 2), *w = gc_random_values(101 + (uint64_t)_i, cap, 0.1f, 1);
  float *ref = malloc((size_t)cap * sizeof *ref), *grad = calloc((size_t)n, sizeof *grad);
  int oh, ow;
  fir_reference(x, planes, (int)s.d[2], (int)s.d[3], &c->fp, ref, &oh, &ow, w, grad);
  char label[128], sh[64];
  snprintf(label, sizeof label, "upfirdn2d %s %s", c->label, ut_shape_str(s, sh, sizeof sh));
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x },
                                  .build = build_fir, .ctx = (void *)c, .weights = w, .expect = ref,
                                  .expect_shape = UT_SHAPE(s.d[0], s.d[1], oh, ow), .expect_grad = (const float *[]){ grad },
                                  .max_samples = 24 });
  free(x);
  free(w);
  free(ref);
  free(grad);
}
END_TEST

START_TEST(test_upfirdn2d_second_order) {
  for (int i = 0; i < 3; i++) {
    const fir_case *c = &fir_cases[i == 0 ? 2 : i == 1 ? 4 : 6];
    ut_shape s = c->shape;
    float *x = gc_random_values(120 + (uint64_t)i, gc_numel(s), -1, 1);
    gc_second_order so = { build_fir, (void *)c, 1 };
    gc_assert_gradcheck(&(gc_case){ .label = c->label, .n_inputs = 1, .shapes = &s, .values = (const float *[]){ x },
                                    .build = gc_build_grad_of, .ctx = &so, .max_samples = 12 });
    free(x);
  }
}
END_TEST

START_TEST(test_upfirdn2d_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(1, 2, 2, 2));
  ck_assert_ptr_null(ut_upfirdn2d(g, x, (ut_fir_cfg){ .pad0 = 0, .pad1 = 0 })); /* 2 + 0 < 4 taps */
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "[1, 2, 2, 2]") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  x = ut_input(g, "x", UT_F32, UT_SHAPE(1, 2, 8, 8));
  static const float eight[8] = { 1, 1, 1, 1, 1, 1, 1, 1 };
  ck_assert_ptr_null(ut_upfirdn2d(g, x, (ut_fir_cfg){ .kernel = eight, .taps = 8 }));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_INVALID_ARGUMENT);
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(ut_fir_upsample2x(g, ut_input(g, "v", UT_F32, UT_SHAPE(3, 4))));
  ck_assert_msg(strstr(ut_last_error(), "upfirdn2d") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Modulated convolution.
 */
typedef struct {
  int b, c, o, h, w, k;
  int demod, up;
} mc_case;

/* Per-sample weights as rosinality builds them, then a grouped (per-sample) convolution, or
 * a transposed one followed by the blur. out is [B, O, OH, OW]. */
static void modconv_reference(const mc_case *m, const float *x, const float *w, const float *s, float *out, int *oh_out,
                              int *ow_out) {
  int B = m->b, C = m->c, O = m->o, H = m->h, W = m->w, k = m->k, kk = k * k;
  float *wb = malloc((size_t)O * C * kk * sizeof *wb);
  int th = (H - 1) * 2 + k, tw = (W - 1) * 2 + k;
  float *t = malloc((size_t)O * th * tw * sizeof *t);
  int p = 3 - k, pad0 = (int)floor((p + 1) / 2.0) + 1, pad1 = (int)floor(p / 2.0) + 1;
  fir_params blur = { .pad0 = pad0, .pad1 = pad1, .gain = 4 };
  int oh = m->up ? 2 * H : H + 2 * (k / 2) - k + 1, ow = m->up ? 2 * W : W + 2 * (k / 2) - k + 1;
  for (int b = 0; b < B; b++) {
    for (int o = 0; o < O; o++) {
      double energy = 0;
      for (int c = 0; c < C; c++)
        for (int i = 0; i < kk; i++) {
          double v = (double)w[(o * C + c) * kk + i] * s[b * C + c];
          wb[(o * C + c) * kk + i] = (float)v;
          energy += v * v;
        }
      if (m->demod)
        for (int i = 0; i < C * kk; i++) wb[o * C * kk + i] = (float)(wb[o * C * kk + i] / sqrt(energy + 1e-8));
    }
    const float *xb = x + (size_t)b * C * H * W;
    float *ob = out + (size_t)b * O * oh * ow;
    if (!m->up) {
      int pad = k / 2;
      for (int o = 0; o < O; o++)
        for (int y = 0; y < oh; y++)
          for (int xx = 0; xx < ow; xx++) {
            double acc = 0;
            for (int c = 0; c < C; c++)
              for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++) {
                  int sy = y + i - pad, sx = xx + j - pad;
                  if (sy >= 0 && sy < H && sx >= 0 && sx < W) acc += (double)wb[((o * C + c) * k + i) * k + j] * xb[(c * H + sy) * W + sx];
                }
            ob[(o * oh + y) * ow + xx] = (float)acc;
          }
    } else {
      memset(t, 0, (size_t)O * th * tw * sizeof *t);
      for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
          for (int xx = 0; xx < W; xx++)
            for (int o = 0; o < O; o++)
              for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++)
                  t[(o * th + 2 * y + i) * tw + 2 * xx + j] += wb[((o * C + c) * k + i) * k + j] * xb[(c * H + y) * W + xx];
      int fh, fw;
      fir_reference(t, O, th, tw, &blur, ob, &fh, &fw, NULL, NULL);
      ck_assert_int_eq(fh, oh);
      ck_assert_int_eq(fw, ow);
    }
  }
  *oh_out = oh;
  *ow_out = ow;
  free(wb);
  free(t);
}

static ut_tensor *build_modconv(ut_graph *g, ut_tensor **in, void *ctx) {
  const mc_case *m = ctx;
  return ut_modulated_conv2d(g, in[0], in[1], in[2], (ut_modconv_cfg){ .demodulate = m->demod, .up = m->up });
}

static const mc_case mc_cases[] = {
  { 2, 3, 5, 6, 5, 3, 1, 0 }, /* StyledConv */
  { 1, 5, 2, 4, 4, 3, 0, 0 },
  { 3, 6, 3, 5, 7, 1, 0, 0 }, /* ToRGB: 1x1, no demodulation */
  { 2, 3, 4, 3, 4, 3, 1, 1 }, /* StyledConv(upsample) */
  { 1, 2, 3, 1, 1, 3, 1, 1 }, /* 1x1 -> 2x2 */
  { 2, 5, 2, 2, 3, 1, 0, 1 }, /* 1x1 kernel upsampling */
  { 1, 1, 1, 1, 1, 3, 1, 0 },
};
#define N_MC ((int)(sizeof mc_cases / sizeof mc_cases[0]))

START_TEST(test_modulated_conv) {
  const mc_case *m = &mc_cases[_i];
  ut_shape shapes[3] = { UT_SHAPE(m->b, m->c, m->h, m->w), UT_SHAPE(m->o, m->c, m->k, m->k), UT_SHAPE(m->b, m->c) };
  float *x = gc_random_values(200 + (uint64_t)_i, gc_numel(shapes[0]), -1, 1);
  float *w = gc_random_values(201 + (uint64_t)_i, gc_numel(shapes[1]), -1, 1);
  float *s = gc_random_values(202 + (uint64_t)_i, gc_numel(shapes[2]), 0.3f, 1.5f);
  int64_t cap = (int64_t)m->b * m->o * (2 * m->h + 2) * (2 * m->w + 2);
  float *ref = malloc((size_t)cap * sizeof *ref);
  int oh, ow;
  modconv_reference(m, x, w, s, ref, &oh, &ow);
  char label[128];
  snprintf(label, sizeof label, "modulated_conv2d B%d C%d O%d %dx%d k%d%s%s", m->b, m->c, m->o, m->h, m->w, m->k,
           m->demod ? " demod" : "", m->up ? " up" : "");
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 3, .shapes = shapes, .values = (const float *[]){ x, w, s },
                                  .build = build_modconv, .ctx = (void *)m, .expect = ref, .fwd_abs_tol = 2e-5,
                                  .fwd_rel_tol = 1e-4, .expect_shape = UT_SHAPE(m->b, m->o, oh, ow), .max_samples = 16 });
  free(x);
  free(w);
  free(s);
  free(ref);
}
END_TEST

START_TEST(test_modulated_conv_second_order) {
  const mc_case *m = &mc_cases[3]; /* up + demodulation: the longest chain */
  ut_shape shapes[3] = { UT_SHAPE(m->b, m->c, m->h, m->w), UT_SHAPE(m->o, m->c, m->k, m->k), UT_SHAPE(m->b, m->c) };
  float *x = gc_random_values(210, gc_numel(shapes[0]), -1, 1), *w = gc_random_values(211, gc_numel(shapes[1]), -1, 1);
  float *s = gc_random_values(212, gc_numel(shapes[2]), 0.3f, 1.5f);
  gc_second_order so = { build_modconv, (void *)m, 3 };
  gc_assert_gradcheck(&(gc_case){ .label = "modulated_conv2d second order", .n_inputs = 3, .shapes = shapes,
                                  .values = (const float *[]){ x, w, s }, .build = gc_build_grad_of, .ctx = &so,
                                  .max_samples = 8 });
  free(x);
  free(w);
  free(s);
}
END_TEST

/* The layer: its parameters read back from the store drive the host reference. */
START_TEST(test_modulated_conv_layer) {
  enum { B = 2, C = 3, D = 5, O = 4, H = 4, W = 3, K = 3 };
  ut_store *st = ut_store_new(test_runtime(), 77);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *xi = ut_input(g, "x", UT_F32, UT_SHAPE(B, C, H, W)), *li = ut_input(g, "lat", UT_F32, UT_SHAPE(B, D));
  ut_tensor *y = kit_modulated_conv2d_layer(g, xi, li, "g.conv", O, K, (ut_modconv_cfg){ .demodulate = 1, .up = 1 });
  ck_assert_ut_ptr(y);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  float *x = gc_random_values(220, B * C * H * W, -1, 1), *lat = gc_random_values(221, B * D, -1, 1);
  float w[O * C * K * K], mw[C * D], mb[C];
  ck_assert_ut_ok(ut_store_tensor_read(st, ut_store_find(st, "g.conv.w"), w));
  ck_assert_ut_ok(ut_store_tensor_read(st, ut_store_find(st, "g.conv.mod.w"), mw));
  ck_assert_ut_ok(ut_store_tensor_read(st, ut_store_find(st, "g.conv.mod.b"), mb));
  for (int c = 0; c < C; c++) ck_assert_msg(mb[c] == 1.0f, "modulation bias[%d] = %g, want 1", c, mb[c]);
  float s[B * C], ws[O * C * K * K];
  for (int b = 0; b < B; b++)
    for (int c = 0; c < C; c++) {
      double acc = 0;
      for (int d = 0; d < D; d++) acc += (double)lat[b * D + d] * mw[c * D + d];
      s[b * C + c] = (float)(acc / sqrt((double)D) + mb[c]);
    }
  for (int i = 0; i < O * C * K * K; i++) ws[i] = (float)(w[i] / sqrt((double)(C * K * K)));
  mc_case m = { B, C, O, H, W, K, 1, 1 };
  float ref[B * O * 2 * H * 2 * W], out[B * O * 2 * H * 2 * W];
  int oh, ow;
  modconv_reference(&m, x, ws, s, ref, &oh, &ow);
  ck_assert_ut_ok(ut_upload(p, xi, x));
  ck_assert_ut_ok(ut_upload(p, li, lat));
  ck_assert_ut_ok(ut_plan_run(p));
  ck_assert_ut_ok(ut_read(p, y, out));
  int64_t at;
  double r = test_compare(out, ref, B * O * oh * ow, 2e-5, 1e-4, &at);
  ck_assert_msg(r <= 1, "modulated conv layer [%lld] = %g, reference %g", (long long)at, out[at], ref[at]);
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
  free(x);
  free(lat);
}
END_TEST

START_TEST(test_modulated_conv_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *x = ut_input(g, "x", UT_F32, UT_SHAPE(2, 3, 4, 4)), *w = ut_input(g, "w", UT_F32, UT_SHAPE(5, 3, 3, 3));
  ck_assert_ptr_null(ut_modulated_conv2d(g, x, w, ut_input(g, "s", UT_F32, UT_SHAPE(2, 4)), (ut_modconv_cfg){ 0 }));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "[2, 4]") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Equalized-lr layers and the fused leaky ReLU.
 */
static void fused_lrelu_reference(const float *x, const float *bias, int64_t B, int64_t C, int64_t P, float *out) {
  for (int64_t b = 0; b < B; b++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t i = 0; i < P; i++) {
        int64_t e = (b * C + c) * P + i;
        double v = (double)x[e] + (bias ? bias[c] : 0);
        out[e] = (float)((v > 0 ? v : 0.2 * v) * sqrt(2.0));
      }
}

static ut_tensor *build_flrelu(ut_graph *g, ut_tensor **in, void *ctx) {
  return ut_fused_leaky_relu(g, in[0], *(const int *)ctx ? in[1] : NULL);
}

START_TEST(test_fused_leaky_relu) {
  static const ut_shape shapes[] = { UT_SHAPE(2, 3, 4, 5), UT_SHAPE(3, 5), UT_SHAPE(1, 7, 1, 1) };
  ut_shape s = shapes[_i % 3];
  int with_bias = _i < 3;
  int64_t n = gc_numel(s), C = s.d[1], P = n / (s.d[0] * C);
  float *x = gc_random_values(300 + (uint64_t)_i, n, -2, 2), *bias = gc_random_values(301 + (uint64_t)_i, C, -1, 1);
  for (int64_t e = 0; e < n; e++) { /* keep finite differences off the kink */
    double v = x[e] + (with_bias ? bias[(e / P) % C] : 0);
    if (fabs(v) < 0.05) x[e] += 0.1f;
  }
  float *ref = malloc((size_t)n * sizeof *ref);
  fused_lrelu_reference(x, with_bias ? bias : NULL, s.d[0], C, P, ref);
  ut_shape in_shapes[2] = { s, UT_SHAPE(C) };
  char label[96], sh[64];
  snprintf(label, sizeof label, "fused_leaky_relu %s%s", ut_shape_str(s, sh, sizeof sh), with_bias ? " + bias" : "");
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = with_bias ? 2 : 1, .shapes = in_shapes,
                                  .values = (const float *[]){ x, bias }, .build = build_flrelu, .ctx = &with_bias,
                                  .expect = ref, .expect_shape = s, .max_samples = 32 });
  free(x);
  free(bias);
  free(ref);
}
END_TEST

typedef struct {
  int conv; /* 0: equal_linear [B, in]; 1: equal_conv2d */
  int b, in, out, h, w, k, stride, pad;
  kit_equal_cfg cfg;
  const char *prefix;
} eq_case;

static ut_tensor *build_equal(ut_graph *g, ut_tensor **in, void *ctx) {
  const eq_case *e = ctx;
  if (!e->conv) return kit_equal_linear(g, in[0], e->prefix, e->out, e->cfg);
  return kit_equal_conv2d(g, in[0], e->prefix, e->out, e->k, UT_CONV(e->stride, e->pad), e->cfg);
}

static const eq_case eq_cases[] = {
  { 0, 3, 7, 5, 1, 1, 1, 1, 0, { .bias_init = 1.0f }, "eq.lin" },               /* modulation */
  { 0, 2, 9, 4, 1, 1, 1, 1, 0, { .lr_mul = 0.01f, .activate = 1 }, "eq.map" }, /* mapping-network style */
  { 0, 1, 6, 3, 1, 1, 1, 1, 0, { .no_bias = 1 }, "eq.nb" },
  { 1, 2, 3, 5, 5, 6, 3, 1, 1, { .lr_mul = 0 }, "eq.conv" },
  { 1, 1, 5, 3, 6, 7, 3, 2, 0, { .activate = 1 }, "eq.convlayer" }, /* ConvLayer(downsample) after its blur */
  { 1, 3, 4, 2, 3, 3, 1, 1, 0, { .no_bias = 1 }, "eq.skip" },
};
#define N_EQ ((int)(sizeof eq_cases / sizeof eq_cases[0]))

START_TEST(test_equal_layers) {
  const eq_case *e = &eq_cases[_i];
  ut_store *st = ut_store_new(test_runtime(), 31);
  ut_shape xs = e->conv ? UT_SHAPE(e->b, e->in, e->h, e->w) : UT_SHAPE(e->b, e->in);
  /* Create the parameters once to read their initial values. */
  ut_graph *g0 = ut_graph_new(test_runtime(), st);
  ck_assert_ut_ptr(build_equal(g0, (ut_tensor *[]){ ut_input(g0, "x", UT_F32, xs) }, (void *)e));
  ut_graph_free(g0);
  char name[64];
  int64_t kk = e->conv ? (int64_t)e->k * e->k : 1, nw = (int64_t)e->out * e->in * kk;
  float *w = malloc((size_t)nw * sizeof *w), b[8] = { 0 };
  snprintf(name, sizeof name, "%s.w", e->prefix);
  ck_assert_ut_ok(ut_store_tensor_read(st, ut_store_find(st, name), w));
  snprintf(name, sizeof name, "%s.b", e->prefix);
  ck_assert_msg((ut_store_find(st, name) != NULL) == !e->cfg.no_bias, "bias presence");
  if (!e->cfg.no_bias) {
    ck_assert_ut_ok(ut_store_tensor_read(st, ut_store_find(st, name), b));
    for (int o = 0; o < e->out; o++) ck_assert_msg(b[o] == e->cfg.bias_init, "bias[%d] = %g", o, b[o]);
  }
  float lr = e->cfg.lr_mul != 0 ? e->cfg.lr_mul : 1;
  double scale = lr / sqrt((double)(e->in * kk)), sq = 0;
  for (int64_t i = 0; i < nw; i++) sq += (double)w[i] * w[i] * lr * lr;
  ck_assert_msg(sqrt(sq / nw) > 0.4 && sqrt(sq / nw) < 1.8, "weight * lr_mul has rms %g, not about 1", sqrt(sq / nw));

  int oh = e->conv ? (e->h + 2 * e->pad - e->k) / e->stride + 1 : 1, ow = e->conv ? (e->w + 2 * e->pad - e->k) / e->stride + 1 : 1;
  int64_t n = gc_numel(xs), no = (int64_t)e->b * e->out * oh * ow;
  float *x = gc_random_values(400 + (uint64_t)_i, n, -1, 1), *ref = malloc((size_t)no * sizeof *ref);
  for (int bi = 0; bi < e->b; bi++)
    for (int o = 0; o < e->out; o++)
      for (int y = 0; y < oh; y++)
        for (int xx = 0; xx < ow; xx++) {
          double acc = 0;
          for (int c = 0; c < e->in; c++)
            for (int i = 0; i < (e->conv ? e->k : 1); i++)
              for (int j = 0; j < (e->conv ? e->k : 1); j++) {
                int sy = y * e->stride + i - e->pad, sx = xx * e->stride + j - e->pad;
                if (e->conv && (sy < 0 || sy >= e->h || sx < 0 || sx >= e->w)) continue;
                float xv = e->conv ? x[((bi * e->in + c) * e->h + sy) * e->w + sx] : x[bi * e->in + c];
                acc += (double)w[((o * e->in + c) * (e->conv ? e->k : 1) + i) * (e->conv ? e->k : 1) + j] * xv;
              }
          double v = acc * scale + b[o] * lr;
          if (e->cfg.activate) v = (v > 0 ? v : 0.2 * v) * sqrt(2.0);
          ref[((bi * e->out + o) * oh + y) * ow + xx] = (float)v;
        }
  ut_shape os = e->conv ? UT_SHAPE(e->b, e->out, oh, ow) : UT_SHAPE(e->b, e->out);
  char label[96];
  snprintf(label, sizeof label, "%s (%s)", e->conv ? "equal_conv2d" : "equal_linear", e->prefix);
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &xs, .values = (const float *[]){ x },
                                  .build = build_equal, .ctx = (void *)e, .store = st, .check_params = 1, .expect = ref,
                                  .fwd_abs_tol = 1e-5, .fwd_rel_tol = 1e-4, .expect_shape = os, .max_samples = 16 });
  ut_store_free(st);
  free(w);
  free(x);
  free(ref);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Minibatch standard deviation.
 */
typedef struct {
  ut_shape s;
  int group, features;
} mbs_case;

static ut_tensor *build_mbs(ut_graph *g, ut_tensor **in, void *ctx) {
  const mbs_case *m = ctx;
  return kit_minibatch_stddev(g, in[0], m->group, m->features);
}

static void mbs_reference(const mbs_case *m, const float *x, float *out) {
  int64_t B = m->s.d[0], C = m->s.d[1], H = m->s.d[2], W = m->s.d[3], HW = H * W, F = m->features;
  int64_t G = m->group < B ? m->group : B, CF = C / F;
  for (int64_t b = 0; b < B; b++) {
    memcpy(out + b * (C + F) * HW, x + b * C * HW, (size_t)(C * HW) * sizeof *out);
    for (int64_t f = 0; f < F; f++) {
      double acc = 0;
      for (int64_t c = f * CF; c < (f + 1) * CF; c++)
        for (int64_t i = 0; i < HW; i++) {
          double mean = 0, var = 0;
          for (int64_t gi = 0; gi < G; gi++) mean += x[((b / G * G + gi) * C + c) * HW + i];
          mean /= (double)G;
          for (int64_t gi = 0; gi < G; gi++) {
            double d = x[((b / G * G + gi) * C + c) * HW + i] - mean;
            var += d * d;
          }
          acc += sqrt(var / (double)G + 1e-8);
        }
      for (int64_t i = 0; i < HW; i++) out[(b * (C + F) + C + f) * HW + i] = (float)(acc / (double)(CF * HW));
    }
  }
}

static const mbs_case mbs_cases[] = {
  { UT_SHAPE(8, 5, 3, 2), 4, 1 }, /* two groups of four consecutive samples */
  { UT_SHAPE(4, 6, 2, 3), 4, 2 },
  { UT_SHAPE(2, 3, 4, 4), 4, 1 }, /* group shrinks to the batch */
  { UT_SHAPE(1, 3, 1, 1), 4, 1 }, /* one sample: sqrt(1e-8) everywhere, zero gradient */
  { UT_SHAPE(6, 4, 3, 3), 3, 1 },
};
#define N_MBS ((int)(sizeof mbs_cases / sizeof mbs_cases[0]))

START_TEST(test_minibatch_stddev) {
  const mbs_case *m = &mbs_cases[_i];
  int64_t n = gc_numel(m->s), no = n / m->s.d[1] * (m->s.d[1] + m->features);
  float *x = gc_random_values(500 + (uint64_t)_i, n, -1, 1), *ref = malloc((size_t)no * sizeof *ref);
  mbs_reference(m, x, ref);
  char label[96], sh[64];
  snprintf(label, sizeof label, "minibatch_stddev %s group %d features %d", ut_shape_str(m->s, sh, sizeof sh), m->group,
           m->features);
  gc_assert_gradcheck(&(gc_case){ .label = label, .n_inputs = 1, .shapes = &m->s, .values = (const float *[]){ x },
                                  .build = build_mbs, .ctx = (void *)m, .expect = ref, .fwd_rel_tol = 1e-4,
                                  .expect_shape = UT_SHAPE(m->s.d[0], m->s.d[1] + m->features, m->s.d[2], m->s.d[3]),
                                  .max_samples = 24, .h = 1e-3 });
  if (_i == 0) {
    gc_second_order so = { build_mbs, (void *)m, 1 };
    gc_assert_gradcheck(&(gc_case){ .label = "minibatch_stddev second order", .n_inputs = 1, .shapes = &m->s,
                                    .values = (const float *[]){ x }, .build = gc_build_grad_of, .ctx = &so,
                                    .max_samples = 12, .h = 1e-3 });
  }
  free(x);
  free(ref);
}
END_TEST

START_TEST(test_minibatch_stddev_errors) {
  ut_store *st = ut_store_new(test_runtime(), 5);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(kit_minibatch_stddev(g, ut_input(g, "x", UT_F32, UT_SHAPE(6, 4, 2, 2)), 4, 1));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ck_assert_msg(strstr(ut_last_error(), "[6, 4, 2, 2]") != NULL, "%s", ut_last_error());
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(kit_minibatch_stddev(g, ut_input(g, "x", UT_F32, UT_SHAPE(4, 5, 2, 2)), 4, 2));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

static Suite *stylegan_suite(void) {
  Suite *s = suite_create("ops_stylegan");
  TCase *tc = tcase_create("fir");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_upfirdn2d, 0, N_FIR);
  tcase_add_test(tc, test_upfirdn2d_second_order);
  tcase_add_test(tc, test_upfirdn2d_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("modulated_conv");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_modulated_conv, 0, N_MC);
  tcase_add_test(tc, test_modulated_conv_second_order);
  tcase_add_test(tc, test_modulated_conv_layer);
  tcase_add_test(tc, test_modulated_conv_errors);
  suite_add_tcase(s, tc);
  tc = tcase_create("equalized");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_fused_leaky_relu, 0, 6);
  tcase_add_loop_test(tc, test_equal_layers, 0, N_EQ);
  suite_add_tcase(s, tc);
  tc = tcase_create("minibatch_stddev");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_minibatch_stddev, 0, N_MBS);
  tcase_add_test(tc, test_minibatch_stddev_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(stylegan_suite()); }
