/* The rendered data set's styles within a look (DMIT's data): style 0 is the plain look, a
 * style k > 0 tints the picture but keeps the geometry, and ut_synth_write_styles stores every
 * (domain, class, view, style) with its attribute "style", as ut_synth_render draws it. */
#include <stdlib.h>
#include <string.h>

#include "test_support.h"
#include "untangle_data.h"

enum { SIZE = 24 };

START_TEST(styles_tint_but_keep_the_geometry) {
  uint8_t plain[SIZE * SIZE * 3], tinted[SIZE * SIZE * 3], other[SIZE * SIZE * 3];
  for (int look = 0; look < UT_SYNTH_DOMAIN_COUNT; look++) {
    ut_synth_cfg c = { .classes = 3, .views = 6, .size = SIZE, .domain = look };
    ck_assert_ut_ok(ut_synth_render(&c, 2, 4, plain));
    c.style = 1;
    ck_assert_ut_ok(ut_synth_render(&c, 2, 4, tinted));
    c.style = 2;
    ck_assert_ut_ok(ut_synth_render(&c, 2, 4, other));
    /* Every background pixel changes, and styles differ from each other. */
    uint8_t cover[SIZE * SIZE];
    ck_assert_ut_ok(ut_synth_coverage(&c, 2, 4, cover));
    int bg = 0, bg_changed = 0, apart = 0;
    for (int i = 0; i < SIZE * SIZE; i++) {
      int diff = 0, diff2 = 0;
      for (int k = 0; k < 3; k++) {
        diff += abs(plain[3 * i + k] - tinted[3 * i + k]);
        diff2 += abs(other[3 * i + k] - tinted[3 * i + k]);
      }
      if (!cover[i]) {
        bg++;
        bg_changed += diff > 12;
        /* The background stays one flat colour: the tint is of the light, not a pattern. */
        ck_assert_int_eq(memcmp(tinted + 3 * i, tinted, 3), 0);
      }
      apart += diff2 > 12;
    }
    ck_assert_msg(bg > 0 && bg_changed == bg, "look %d: %d of %d background pixels changed", look, bg_changed, bg);
    ck_assert_msg(apart > SIZE * SIZE / 2, "look %d: styles 1 and 2 differ at only %d pixels", look, apart);
  }
  ut_synth_cfg bad = { .classes = 1, .views = 1, .size = SIZE, .style = -1 };
  ck_assert_int_eq(ut_synth_render(&bad, 0, 0, plain), UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "style -1"));
}
END_TEST

START_TEST(writer_stores_every_style_with_its_attribute) {
  const char *path = test_tmp_path("synth-styles.dat");
  ut_synth_cfg cfg = { .classes = 2, .views = 3, .size = SIZE, .seed = 4 };
  int looks[2] = { UT_SYNTH_NIGHT, UT_SYNTH_DUSK };
  ck_assert_ut_ok(ut_synth_write_styles(&cfg, looks, NULL, 2, 3, path, NULL, NULL));
  ut_dataset *ds = ut_dataset_open(path);
  ck_assert_ut_ptr(ds);
  ck_assert_int_eq(ut_dataset_count(ds), 2 * 2 * 3 * 3);
  ck_assert_int_eq(ut_dataset_n_domains(ds), 2);
  ck_assert_str_eq(ut_dataset_domain_name(ds, 1), "dusk");
  int a = ut_dataset_find_attribute(ds, "style");
  ck_assert_int_ge(a, 0);
  uint8_t want[SIZE * SIZE * 3];
  for (int32_t i = 0; i < ut_dataset_count(ds); i++) {
    int style = i % 3, view = (i / 3) % 3, klass = (i / 9) % 2, domain = i / 18;
    ck_assert_int_eq(ut_dataset_domain(ds, i), domain);
    ck_assert_int_eq(ut_dataset_class(ds, i), klass);
    ck_assert_int_eq(ut_dataset_content(ds, i), view);
    ck_assert(ut_dataset_attribute(ds, i, a) == (float)style);
    ut_synth_cfg one = cfg;
    one.domain = looks[domain];
    one.style = style;
    ck_assert_ut_ok(ut_synth_render(&one, klass, view, want));
    ck_assert_msg(!memcmp(ut_dataset_image(ds, i), want, sizeof want), "image %d is not its render", i);
  }
  ck_assert_ptr_nonnull(strstr(ut_dataset_source_json(ds), "\"styles\":3"));
  ut_dataset_close(ds);
  ck_assert_int_eq(ut_synth_write_styles(&cfg, looks, NULL, 2, 0, path, NULL, NULL), UT_ERR_INVALID_ARGUMENT);
}
END_TEST

int main(void) {
  Suite *s = suite_create("synth_styles");
  TCase *tc = tcase_create("synth_styles");
  tcase_add_test(tc, styles_tint_but_keep_the_geometry);
  tcase_add_test(tc, writer_stores_every_style_with_its_attribute);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
