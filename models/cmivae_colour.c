/* The colour feature (cmivae_colour.h). */
#include <math.h>

#include "cmivae_colour.h"

#define PI 3.14159265358979323846
#define SOFT_HUE_EPS 1e-4f

void cmivae_hue_colour(double hue_deg, double rgb[3]) {
  double h = hue_deg * PI / 180.0;
  for (int k = 0; k < 3; k++) rgb[k] = 0.5 * (1.0 + cos(h - 2.0 * PI * k / 3.0));
}

void cmivae_paint(const uint8_t *grey, int64_t pixels, double hue_deg, uint8_t *rgb) {
  double c[3];
  cmivae_hue_colour(hue_deg, c);
  for (int64_t p = 0; p < pixels; p++)
    for (int k = 0; k < 3; k++) rgb[3 * p + k] = (uint8_t)lround((double)grey[p] * c[k]);
}

double cmivae_image_hue(const float *chw, int64_t pixels) {
  const float *r = chw, *g = chw + pixels, *b = chw + 2 * pixels;
  double sa = 0, sb = 0;
  for (int64_t p = 0; p < pixels; p++) {
    sa += (double)r[p] - 0.5 * ((double)g[p] + (double)b[p]);
    sb += 0.5 * sqrt(3.0) * ((double)g[p] - (double)b[p]);
  }
  if (sa == 0 && sb == 0) return NAN;
  double h = atan2(sb, sa) * 180.0 / PI;
  return h < 0 ? h + 360.0 : h;
}

void cmivae_grey(const float *chw, int64_t pixels, float *grey) {
  const float *r = chw, *g = chw + pixels, *b = chw + 2 * pixels;
  for (int64_t p = 0; p < pixels; p++) {
    double v = sqrt(((double)r[p] * r[p] + (double)g[p] * g[p] + (double)b[p] * b[p]) / 1.125);
    grey[p] = v < 1.0 ? (float)v : 1.0f;
  }
}

double cmivae_hue_distance(double a_deg, double b_deg) {
  double d = fmod(fabs(a_deg - b_deg), 360.0);
  return d > 180.0 ? 360.0 - d : d;
}

ut_tensor *cmivae_soft_hue(ut_graph *g, ut_tensor *x) {
  if (!x) return NULL;
  ut_shape s = ut_tensor_shape(x);
  int64_t B = s.d[0];
  /* The opponent axes as a 1x1 convolution from RGB to (a, b). */
  const float w[6] = { 1.0f, -0.5f, -0.5f, 0.0f, 0.8660254037844386f, -0.8660254037844386f };
  ut_tensor *chroma = ut_conv2d(g, x, ut_constant(g, UT_SHAPE(2, 3, 1, 1), w), NULL, (ut_conv_cfg){ .stride = 1 });
  ut_tensor *m = ut_reshape(g, ut_mean(g, chroma, 0xcu), UT_SHAPE(B, 2));
  ut_tensor *len = ut_sqrt(g, ut_shift(g, ut_sum(g, ut_square(g, m), 0x2u), SOFT_HUE_EPS));
  return ut_div(g, m, ut_broadcast(g, len, UT_SHAPE(B, 2)));
}
