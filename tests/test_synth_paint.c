/* The rendered set's correlated factor (paint) and its masks: paint 0 is today's rendering,
 * a paint changes the body's pixels and nothing else, the class-specific distribution and its
 * draws agree, the body mask marks the painted region, and the data set file carries all three
 * factors (class, paint attribute, view) and the masks exactly as the renderer gives them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_support.h"
#include "untangle_data.h"

enum { S = 32, PAINTS = 5 };
static const ut_synth_cfg base = { .classes = 6, .views = 24, .size = S, .seed = 3 };

START_TEST(paint_changes_the_body_only) {
  static uint8_t plain[S * S * 3], painted[S * S * 3], mask[S * S], again[S * S * 3];
  int changed_inside = 0;
  for (int c = 0; c < base.classes; c++)
    for (int v = 0; v < base.views; v += 5) {
      ut_synth_cfg p = base;
      ck_assert_ut_ok(ut_synth_render(&base, c, v, plain));
      p.paint = 0;
      ck_assert_ut_ok(ut_synth_render(&p, c, v, again));
      ck_assert_mem_eq(plain, again, sizeof plain); /* the zero field is the original rendering */
      p.paint = 1 + (c + v) % PAINTS;
      ck_assert_ut_ok(ut_synth_render(&p, c, v, painted));
      ck_assert_ut_ok(ut_synth_body_mask(&p, c, v, mask));
      int body = 0;
      for (int i = 0; i < S * S; i++) {
        if (mask[i] == 0) ck_assert_msg(!memcmp(plain + 3 * i, painted + 3 * i, 3), "class %d view %d pixel %d off the body changed", c, v, i);
        else changed_inside += memcmp(plain + 3 * i, painted + 3 * i, 3) != 0;
        body += mask[i] == 255;
      }
      ck_assert_msg(body > 5, "class %d view %d: only %d body pixels", c, v, body);
    }
  ck_assert_int_gt(changed_inside, 1000);
}
END_TEST

START_TEST(paint_distribution_and_draws) {
  for (int c = 0; c < base.classes; c++) {
    double total = 0;
    int support = 0, counts[PAINTS + 1] = { 0 };
    for (int p = 1; p <= PAINTS; p++) {
      double q = ut_synth_paint_probability(&base, PAINTS, c, p);
      total += q;
      support += q > 0;
    }
    ck_assert_msg(total > 0.999999 && total < 1.000001, "class %d: probabilities sum to %g", c, total);
    ck_assert_int_eq(support, 3);
    enum { DRAWS = 3000 };
    for (int v = 0; v < DRAWS; v++) {
      int p = ut_synth_paint_of(&base, PAINTS, c, v);
      ck_assert(p >= 1 && p <= PAINTS);
      ck_assert_int_eq(p, ut_synth_paint_of(&base, PAINTS, c, v));
      counts[p]++;
    }
    for (int p = 1; p <= PAINTS; p++) {
      double q = ut_synth_paint_probability(&base, PAINTS, c, p), f = (double)counts[p] / DRAWS;
      ck_assert_msg(f > q - 0.04 && f < q + 0.04, "class %d paint %d: drawn %.3f of the time, probability %.3f", c, p, f, q);
    }
  }
  ck_assert_int_eq(ut_synth_paint_of(&base, 0, 0, 0), 0);
  ck_assert_int_eq(ut_synth_paint_of(&base, 1, 3, 7), 1);
  /* Classes differ in the schemes they prefer. */
  int favourite[6];
  for (int c = 0; c < 6; c++) {
    favourite[c] = 1;
    for (int p = 2; p <= PAINTS; p++)
      if (ut_synth_paint_probability(&base, PAINTS, c, p) > ut_synth_paint_probability(&base, PAINTS, c, favourite[c])) favourite[c] = p;
  }
  int distinct = 0;
  for (int c = 0; c < 6; c++) {
    int seen = 0;
    for (int k = 0; k < c; k++) seen |= favourite[k] == favourite[c];
    distinct += !seen;
  }
  ck_assert_int_ge(distinct, 3);
}
END_TEST

START_TEST(data_set_holds_three_factors_and_masks) {
  char path[1024];
  snprintf(path, sizeof path, "%s", test_tmp_path("paints.dat"));
  ck_assert_ut_ok(ut_synth_write_paints(&base, PAINTS, 1, path, NULL, NULL));
  ut_dataset *ds = ut_dataset_open(path);
  ck_assert_ut_ptr(ds);
  ck_assert_int_eq(ut_dataset_count(ds), base.classes * base.views);
  ck_assert_int_eq(ut_dataset_n_attributes(ds), 1);
  int a = ut_dataset_find_attribute(ds, "paint");
  ck_assert_int_eq(a, 0);
  ck_assert(ut_dataset_has_masks(ds));
  static uint8_t rgb[S * S * 3], mask[S * S];
  static float chw[3 * S * S], ref[3 * S * S];
  for (int i = 0; i < ut_dataset_count(ds); i += 7) {
    int c = ut_dataset_class(ds, i), v = ut_dataset_content(ds, i);
    ck_assert_int_eq(c, i / base.views);
    ck_assert_int_eq(v, i % base.views);
    ut_synth_cfg p = base;
    p.paint = ut_synth_paint_of(&base, PAINTS, c, v);
    ck_assert_float_eq(ut_dataset_attribute(ds, i, a), (float)p.paint);
    ck_assert_ut_ok(ut_synth_render(&p, c, v, rgb));
    ut_image_bytes_to_chw(rgb, S * S, 3, ref);
    ut_dataset_image_chw(ds, i, chw);
    ck_assert_mem_eq(chw, ref, sizeof chw);
    ck_assert_ut_ok(ut_synth_body_mask(&p, c, v, mask));
    ck_assert_mem_eq(ut_dataset_mask(ds, i), mask, sizeof mask);
  }
  ut_dataset_close(ds);
  ck_assert_int_eq(ut_synth_write_paints(&base, 0, 0, path, NULL, NULL), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "0 paints") != NULL, "%s", ut_last_error());
  unlink(path);
}
END_TEST

/* data import with --masks: each image's mask is the file of the same name in the mask folder. */
START_TEST(import_folder_with_masks) {
  char dir[1024], masks[1024], out[1024], path[1200];
  snprintf(dir, sizeof dir, "%s", test_tmp_path("import-images"));
  snprintf(masks, sizeof masks, "%s", test_tmp_path("import-masks"));
  snprintf(out, sizeof out, "%s", test_tmp_path("import-masks.dat"));
  static uint8_t rgb[S * S * 3], gray[S * S];
  const char *classes[2] = { "a", "b" };
  for (int c = 0; c < 2; c++) {
    snprintf(path, sizeof path, "%s", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s", dir, classes[c]);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s", masks);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s", masks, classes[c]);
    mkdir(path, 0755);
    for (int k = 0; k < 2; k++) {
      ck_assert_ut_ok(ut_synth_render(&base, c, k, rgb));
      snprintf(path, sizeof path, "%s/%s/%d.jpg", dir, classes[c], k);
      ck_assert_ut_ok(ut_jpeg_write(path, rgb, S, S, 3, 95));
      for (int i = 0; i < S * S; i++) gray[i] = (uint8_t)((i % S) < S / 2 + 4 * k ? 255 : 0); /* left part white */
      snprintf(path, sizeof path, "%s/%s/%d.jpg", masks, classes[c], k);
      ck_assert_ut_ok(ut_jpeg_write(path, gray, S, S, 1, 95));
    }
  }
  ut_import_cfg cfg = { .size = S, .channels = 3, .mask_dir = masks };
  ck_assert_ut_ok(ut_import_folder(dir, out, &cfg, NULL));
  ut_dataset *ds = ut_dataset_open(out);
  ck_assert_ut_ptr(ds);
  ck_assert(ut_dataset_has_masks(ds));
  ck_assert_int_eq(ut_dataset_count(ds), 4);
  for (int i = 0; i < 4; i++) {
    const uint8_t *m = ut_dataset_mask(ds, i);
    int k = i % 2; /* files in name order within a class */
    for (int p = 0; p < S * S; p++) {
      int x = p % S, inside = x < S / 2 + 4 * k;
      if (x == S / 2 + 4 * k - 1 || x == S / 2 + 4 * k) continue; /* JPEG rings at the edge */
      ck_assert_msg(inside ? m[p] > 200 : m[p] < 55, "image %d pixel %d: mask %d", i, p, m[p]);
    }
  }
  ut_dataset_close(ds);
  /* A missing mask fails, naming it, and writes nothing. */
  unlink(out);
  snprintf(path, sizeof path, "%s/b/1.jpg", masks);
  unlink(path);
  ck_assert_int_ne(ut_import_folder(dir, out, &cfg, NULL), UT_OK);
  ck_assert_msg(strstr(ut_last_error(), "b/1.jpg") != NULL, "%s", ut_last_error());
  ck_assert(access(out, F_OK) != 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("synth_paint");
  TCase *t = tcase_create("synth_paint");
  tcase_set_timeout(t, 120);
  tcase_add_test(t, paint_changes_the_body_only);
  tcase_add_test(t, paint_distribution_and_draws);
  tcase_add_test(t, data_set_holds_three_factors_and_masks);
  tcase_add_test(t, import_folder_with_masks);
  suite_add_tcase(s, t);
  return test_run_suite(s);
}
