/* The built-in rendered data set (engine/data/synth.c): determinism down to the byte, the view
 * index to angle mapping, that identities and poses change the image noticeably, that objects
 * are visible on an exact background, and that bad arguments are refused with a message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"
#include "untangle_data.h"

/* The default set's 100 x 96 at 32x32 pixels (the 64x64 suites use fewer images). */
#define CLASSES 100
#define VIEWS 96

static uint8_t *render_new(const ut_synth_cfg *cfg, int class_id, int view) {
  size_t n = (size_t)cfg->size * (size_t)cfg->size * 3;
  uint8_t *img = malloc(n);
  ck_assert_ptr_nonnull(img);
  ck_assert_ut_ok(ut_synth_render(cfg, class_id, view, img));
  return img;
}

/* Mean absolute difference per byte, in 0..255 levels. */
static double mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i++) s += (uint64_t)abs((int)a[i] - (int)b[i]);
  return (double)s / (double)n;
}

static int is_background(const uint8_t *px) { return px[0] == 200 && px[1] == 200 && px[2] == 200; }

static uint64_t fnv1a(const uint8_t *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

/* ---- determinism --------------------------------------------------------------------------- */

/* The same arguments give the same bytes, whatever was rendered in between (no hidden state),
 * and every byte of the buffer is written (it starts out different each time). */
START_TEST(same_arguments_same_bytes) {
  const int sizes[] = { 64, 32, 17, 1 };
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    ut_synth_cfg cfg = { .classes = 20, .views = 96, .size = sizes[s], .seed = 7 };
    size_t n = (size_t)cfg.size * (size_t)cfg.size * 3;
    uint8_t *a = malloc(n), *b = malloc(n), *other = malloc(n);
    memset(a, 0x00, n);
    memset(b, 0xff, n);
    ck_assert_ut_ok(ut_synth_render(&cfg, 11, 37, a));
    ck_assert_ut_ok(ut_synth_render(&cfg, 3, 5, other));
    ck_assert_ut_ok(ut_synth_render(&cfg, 11, 37, b));
    ck_assert_msg(memcmp(a, b, n) == 0, "size %d: two renders of class 11 view 37 differ", cfg.size);
    free(a);
    free(b);
    free(other);
  }
}
END_TEST

/* Pinned checksums: the promise is the same bytes on every machine, so a compiler, platform or
 * flag that changes one bit fails here. A deliberate change to the renderer must update these
 * (and makes data sets rendered before it differ from re-renders). */
START_TEST(pinned_checksums) {
  static const struct {
    int size, classes, views, class_id, view;
    uint64_t seed, hash;
  } pin[] = {
    { 64, 100, 96, 0, 0, 1, 0x9fdb5ae79975d914ull },
    { 64, 100, 96, 42, 61, 1, 0xdda2d18612db03f1ull },
    { 32, 12, 24, 7, 13, 3, 0x4575d2630aadb246ull },
  };
  for (size_t i = 0; i < sizeof pin / sizeof pin[0]; i++) {
    ut_synth_cfg cfg = { .classes = pin[i].classes, .views = pin[i].views, .size = pin[i].size, .seed = pin[i].seed };
    uint8_t *img = render_new(&cfg, pin[i].class_id, pin[i].view);
    uint64_t h = fnv1a(img, (size_t)cfg.size * (size_t)cfg.size * 3);
    ck_assert_msg(h == pin[i].hash, "pin %zu: checksum 0x%016llxull, expected 0x%016llxull", i, (unsigned long long)h,
                  (unsigned long long)pin[i].hash);
    free(img);
  }
}
END_TEST

/* The seed selects the identities: class 0 of two seeds differs, and class c does not depend on
 * how many classes the set has. */
START_TEST(seed_selects_identities) {
  ut_synth_cfg a = { .classes = 10, .views = 24, .size = 32, .seed = 1 };
  ut_synth_cfg b = a, c = a;
  b.seed = 2;
  c.classes = 500;
  uint8_t *ia = render_new(&a, 4, 3), *ib = render_new(&b, 4, 3), *ic = render_new(&c, 4, 3);
  ck_assert_msg(mean_abs_diff(ia, ib, 32 * 32 * 3) > 2.0, "seeds 1 and 2 give nearly the same class 4");
  ck_assert_mem_eq(ia, ic, 32 * 32 * 3);
  free(ia);
  free(ib);
  free(ic);
}
END_TEST

/* ---- views --------------------------------------------------------------------------------- */

START_TEST(view_angle_mapping) {
  float az, el;
  /* 96 views: 24 azimuths (15 degrees apart, fastest) x 4 elevations 10, 20, 30, 40. */
  ut_synth_view_angles(96, 0, &az, &el);
  ck_assert_float_eq(az, 0.0f);
  ck_assert_float_eq(el, 10.0f);
  ut_synth_view_angles(96, 25, &az, &el);
  ck_assert_float_eq(az, 15.0f);
  ck_assert_float_eq(el, 20.0f);
  ut_synth_view_angles(96, 95, &az, &el);
  ck_assert_float_eq(az, 345.0f);
  ck_assert_float_eq(el, 40.0f);
  ut_synth_view_angles(96, 54, &az, &el);
  ck_assert_float_eq(az, 90.0f);
  ck_assert_float_eq(el, 30.0f);
  /* 24 views: one elevation, 20 degrees. */
  ut_synth_view_angles(24, 6, &az, &el);
  ck_assert_float_eq(az, 90.0f);
  ck_assert_float_eq(el, 20.0f);
  /* 48 views: elevations 10 and 40. */
  ut_synth_view_angles(48, 47, &az, &el);
  ck_assert_float_eq(az, 345.0f);
  ck_assert_float_eq(el, 40.0f);
  /* Not a multiple of 24: that many azimuths over the full turn at 20 degrees. */
  ut_synth_view_angles(10, 3, &az, &el);
  ck_assert_float_eq(az, 108.0f);
  ck_assert_float_eq(el, 20.0f);
  ut_synth_view_angles(1, 0, &az, &el);
  ck_assert_float_eq(az, 0.0f);
  ck_assert_float_eq(el, 20.0f);
  /* Out of range gives 0, 0 (and NULL outputs are allowed). */
  az = el = 5.0f;
  ut_synth_view_angles(96, 96, &az, &el);
  ck_assert_float_eq(az, 0.0f);
  ck_assert_float_eq(el, 0.0f);
  ut_synth_view_angles(0, 0, NULL, NULL);
}
END_TEST

/* Every pair of views of a class differs: neighbouring azimuths (15 degrees), neighbouring
 * elevations (10 degrees) and half turns (the nose, the cabin's offset and the fin make front
 * and back differ). Thresholds are mean absolute differences over the whole image including
 * the background, so about 10 levels where the object is. */
START_TEST(views_differ) {
  ut_synth_cfg cfg = { .classes = CLASSES, .views = VIEWS, .size = 32, .seed = 1 };
  const size_t n = 32 * 32 * 3;
  uint8_t *img = malloc(VIEWS * n);
  ck_assert_ptr_nonnull(img);
  const int classes[] = { 0, 13, 41, 69, 99 };
  for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
    for (int v = 0; v < VIEWS; v++) ck_assert_ut_ok(ut_synth_render(&cfg, classes[c], v, img + (size_t)v * n));
    for (int a = 0; a < VIEWS; a++)
      for (int b = a + 1; b < VIEWS; b++) {
        double d = mean_abs_diff(img + (size_t)a * n, img + (size_t)b * n, n);
        ck_assert_msg(d > 1.0, "class %d: views %d and %d differ by only %.2f levels", classes[c], a, b, d);
      }
    /* a half turn changes the image clearly */
    for (int v = 0; v < 12; v++) {
      double d = mean_abs_diff(img + (size_t)(24 + v) * n, img + (size_t)(24 + v + 12) * n, n);
      ck_assert_msg(d > 2.0, "class %d: views %d and %d (a half turn) differ by only %.2f", classes[c], 24 + v, 36 + v, d);
    }
  }
  free(img);
}
END_TEST

/* ---- identities ---------------------------------------------------------------------------- */

/* Every pair of the default set's 100 classes differs in every one of four views, and their
 * mean colours differ too (not only the silhouettes). */
START_TEST(classes_differ) {
  ut_synth_cfg cfg = { .classes = CLASSES, .views = VIEWS, .size = 32, .seed = 1 };
  const size_t n = 32 * 32 * 3;
  const int views[] = { 0, 27, 54, 81 };
  uint8_t *img = malloc(CLASSES * n);
  ck_assert_ptr_nonnull(img);
  double min_mean = 1e9;
  double (*mean_rgb)[3] = calloc(CLASSES, sizeof *mean_rgb);
  for (size_t v = 0; v < sizeof views / sizeof views[0]; v++) {
    for (int c = 0; c < CLASSES; c++) ck_assert_ut_ok(ut_synth_render(&cfg, c, views[v], img + (size_t)c * n));
    for (int a = 0; a < CLASSES; a++)
      for (int b = a + 1; b < CLASSES; b++) {
        double d = mean_abs_diff(img + (size_t)a * n, img + (size_t)b * n, n);
        ck_assert_msg(d > 2.5, "view %d: classes %d and %d differ by only %.2f levels", views[v], a, b, d);
      }
    if (v == 2) { /* side view: mean colour of the object's pixels */
      for (int c = 0; c < CLASSES; c++) {
        const uint8_t *p = img + (size_t)c * n;
        int fg = 0;
        for (int i = 0; i < 32 * 32; i++)
          if (!is_background(p + 3 * i)) {
            fg++;
            for (int k = 0; k < 3; k++) mean_rgb[c][k] += p[3 * i + k];
          }
        for (int k = 0; k < 3; k++) mean_rgb[c][k] /= fg;
      }
      for (int a = 0; a < CLASSES; a++)
        for (int b = a + 1; b < CLASSES; b++) {
          double d = 0.0;
          for (int k = 0; k < 3; k++) d += fabs(mean_rgb[a][k] - mean_rgb[b][k]);
          if (d < min_mean) min_mean = d;
        }
    }
  }
  /* Mean colours: most pairs far apart; the closest pair still not identical. */
  ck_assert_msg(min_mean > 1.0, "two classes have the same mean colour (%.2f)", min_mean);
  free(mean_rgb);
  free(img);
}
END_TEST

/* ---- framing ------------------------------------------------------------------------------- */

/* The corners are exactly the background colour, and every class is visible in every view:
 * its share of non-background pixels stays in a sane range (never a speck, never filling the
 * frame), and no object touches the image border (the camera frames the unit sphere). */
START_TEST(framing_and_visibility) {
  const int sizes[] = { 32, 64, 23 };
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    const int size = sizes[s], classes = size == 32 ? CLASSES : 12, step = size == 32 ? 1 : 5;
    ut_synth_cfg cfg = { .classes = classes, .views = VIEWS, .size = size, .seed = 1 };
    uint8_t *img = malloc((size_t)size * size * 3);
    ck_assert_ptr_nonnull(img);
    double lo = 1.0, hi = 0.0;
    for (int c = 0; c < classes; c++)
      for (int v = 0; v < VIEWS; v += step) {
        ck_assert_ut_ok(ut_synth_render(&cfg, c, v, img));
        for (int y = 0; y < size; y += size - 1)
          for (int x = 0; x < size; x += size - 1)
            ck_assert_msg(is_background(img + ((size_t)y * size + x) * 3), "size %d class %d view %d: corner (%d, %d) is %d %d %d",
                          size, c, v, x, y, img[(y * size + x) * 3], img[(y * size + x) * 3 + 1], img[(y * size + x) * 3 + 2]);
        int fg = 0, border = 0;
        for (int y = 0; y < size; y++)
          for (int x = 0; x < size; x++) {
            int f = !is_background(img + ((size_t)y * size + x) * 3);
            fg += f;
            border += f && (x == 0 || y == 0 || x == size - 1 || y == size - 1);
          }
        double share = (double)fg / (size * size);
        ck_assert_msg(share > 0.04 && share < 0.6, "size %d class %d view %d: object covers %.3f of the image", size, c, v,
                      share);
        ck_assert_msg(border == 0, "size %d class %d view %d: the object touches the border", size, c, v);
        if (share < lo) lo = share;
        if (share > hi) hi = share;
      }
    ck_assert_msg(hi - lo > 0.1, "size %d: coverage barely varies (%.3f..%.3f)", size, lo, hi);
    free(img);
  }
}
END_TEST

/* The 32x32 rendering is the same scene at half the resolution: close to the 2x2 box average
 * of the 64x64 one (sampling positions differ, so not equal). Catches a size-dependent
 * camera or a shifted pixel grid. */
START_TEST(resolutions_agree) {
  ut_synth_cfg c64 = { .classes = 10, .views = 96, .size = 64, .seed = 1 }, c32 = c64;
  c32.size = 32;
  uint8_t half[32 * 32 * 3];
  for (int cls = 0; cls < 10; cls += 3)
    for (int v = 0; v < 96; v += 19) {
      uint8_t *big = render_new(&c64, cls, v), *small = render_new(&c32, cls, v);
      for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++)
          for (int k = 0; k < 3; k++) {
            int s = 0;
            for (int j = 0; j < 2; j++)
              for (int i = 0; i < 2; i++) s += big[((2 * y + j) * 64 + 2 * x + i) * 3 + k];
            half[(y * 32 + x) * 3 + k] = (uint8_t)((s + 2) / 4);
          }
      double d = mean_abs_diff(half, small, sizeof half);
      ck_assert_msg(d < 4.0, "class %d view %d: 32x32 differs from the halved 64x64 by %.2f levels", cls, v, d);
      free(big);
      free(small);
    }
}
END_TEST

/* ---- arguments ----------------------------------------------------------------------------- */

static void expect_invalid(const ut_synth_cfg *cfg, int class_id, int view, uint8_t *rgb, const char *what) {
  ut_status s = ut_synth_render(cfg, class_id, view, rgb);
  ck_assert_msg(s == UT_ERR_INVALID_ARGUMENT, "%s: got %s", what, ut_status_name(s));
  ck_assert_msg(strstr(ut_last_error(), "ut_synth_render") != NULL, "%s: message '%s'", what, ut_last_error());
}

/* The object's coverage marks exactly the pixels the render leaves as plain background (coverage
 * 0), in the day and the night look alike, and almost every covered pixel differs from it. */
START_TEST(coverage_matches_render) {
  static const uint8_t night_bg[3] = { 16, 20, 38 };
  for (int view = 0; view < 24; view += 5) {
    ut_synth_cfg day = { .classes = 6, .views = 24, .size = 32, .seed = 7 }, night = day;
    night.domain = UT_SYNTH_NIGHT;
    uint8_t *d = render_new(&day, 4, view), *n = render_new(&night, 4, view), cov[32 * 32];
    ck_assert_ut_ok(ut_synth_coverage(&night, 4, view, cov));
    int covered = 0, covered_not_bg = 0;
    for (int p = 0; p < 32 * 32; p++) {
      ck_assert_int_le(cov[p], 4);
      if (cov[p] == 0) {
        ck_assert_msg(is_background(d + 3 * p), "view %d pixel %d: coverage 0 but not background", view, p);
        ck_assert_msg(memcmp(n + 3 * p, night_bg, 3) == 0, "view %d pixel %d: night not background", view, p);
      } else {
        covered++;
        covered_not_bg += !is_background(d + 3 * p);
      }
    }
    ck_assert_msg(covered > 32 && covered < 32 * 32, "view %d: %d covered pixels", view, covered);
    ck_assert_msg(covered_not_bg >= covered * 99 / 100, "view %d: %d of %d covered pixels look like background", view,
                  covered - covered_not_bg, covered);
    free(d);
    free(n);
  }
  uint8_t cov[4];
  ck_assert_int_eq(ut_synth_coverage(&(ut_synth_cfg){ .classes = 2, .views = 2, .size = 2 }, 2, 0, cov),
                   UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "class 2") != NULL, "error: %s", ut_last_error());
}
END_TEST

START_TEST(invalid_arguments) {
  uint8_t img[8 * 8 * 3];
  const ut_synth_cfg ok = { .classes = 4, .views = 24, .size = 8, .seed = 0 };
  ut_synth_cfg c = ok;
  expect_invalid(&ok, 4, 0, img, "class == classes");
  expect_invalid(&ok, -1, 0, img, "class -1");
  expect_invalid(&ok, 0, 24, img, "view == views");
  expect_invalid(&ok, 0, -1, img, "view -1");
  c.size = 0;
  expect_invalid(&c, 0, 0, img, "size 0");
  ck_assert_msg(strstr(ut_last_error(), "size 0") != NULL, "message '%s' does not name the size", ut_last_error());
  c = ok;
  c.size = -3;
  expect_invalid(&c, 0, 0, img, "size -3");
  c = ok;
  c.views = 0;
  expect_invalid(&c, 0, 0, img, "views 0");
  c = ok;
  c.classes = 0;
  expect_invalid(&c, 0, 0, img, "classes 0");
  expect_invalid(NULL, 0, 0, img, "NULL cfg");
  expect_invalid(&ok, 0, 0, NULL, "NULL image");
  ck_assert_ut_ok(ut_synth_render(&ok, 3, 23, img));
}
END_TEST

static Suite *synth_suite(void) {
  Suite *s = suite_create("synth");
  TCase *tc = tcase_create("synth");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, same_arguments_same_bytes);
  tcase_add_test(tc, pinned_checksums);
  tcase_add_test(tc, seed_selects_identities);
  tcase_add_test(tc, view_angle_mapping);
  tcase_add_test(tc, views_differ);
  tcase_add_test(tc, classes_differ);
  tcase_add_test(tc, framing_and_visibility);
  tcase_add_test(tc, resolutions_agree);
  tcase_add_test(tc, coverage_matches_render);
  tcase_add_test(tc, invalid_arguments);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(synth_suite()); }
