/* Two-domain data for unpaired translation: the data set file's domain section (round trip,
 * version 1 files still open, corrupt domain sections named), per-domain index lists, the
 * loader's crop, mirroring and [-1, 1] range (and that a seek rebuilds a batch bit for bit), the
 * renderer's looks (same geometry, day unchanged), `data synth --domains` and
 * `data import --domains` with its errors. Host only; tiny images. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_runner.h"
#include "untangle_data.h"

static uint8_t pixel_of(int i, int y, int x, int c) { return (uint8_t)(i * 29 + y * 13 + x * 7 + c * 3 + 2); }

/* n images of h x w x 3, class i % 2, content -1, domain `domain_of[i]` (NULL: no domains). */
static void write_set(const char *path, int n, int h, int w, int n_domains, const char *const *names,
                      const int *domain_of) {
  ut_dataset_desc d = { .height = h, .width = w, .channels = 3, .n_classes = 2, .n_domains = n_domains,
                        .domain_names = names, .source_json = "{\"kind\":\"test\"}" };
  ut_dataset_writer *wr = ut_dataset_writer_open(path, &d);
  ck_assert_ut_ptr(wr);
  uint8_t *img = malloc((size_t)h * w * 3);
  for (int i = 0; i < n; i++) {
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++)
        for (int c = 0; c < 3; c++) img[(y * w + x) * 3 + c] = pixel_of(i, y, x, c);
    ck_assert_ut_ok(ut_dataset_writer_add_domain(wr, img, i % 2, -1, domain_of ? domain_of[i] : -1));
  }
  free(img);
  ck_assert_ut_ok(ut_dataset_writer_finish(wr));
}

static char *slurp(const char *path, size_t *len) { return cli_slurp(path, len); }

static void spit(const char *path, const void *b, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fwrite(b, 1, len, f), len);
  fclose(f);
}

static void patch(char *buf, size_t len, const char *from, const char *to) {
  ck_assert_uint_eq(strlen(from), strlen(to));
  for (size_t i = 0; i + strlen(from) <= len; i++)
    if (memcmp(buf + i, from, strlen(from)) == 0) {
      memcpy(buf + i, to, strlen(to));
      return;
    }
  ck_abort_msg("'%s' not found in the file", from);
}

START_TEST(roundtrip_with_domains) {
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("domains.dat"));
  const char *names[] = { "photo", "painting" };
  const int dom[6] = { 1, 0, 1, 1, 0, 1 };
  write_set(path, 6, 3, 2, 2, names, dom);
  size_t len;
  char *raw = slurp(path, &len);
  ck_assert_uint_eq((uint8_t)raw[8], 2); /* version 2 */
  free(raw);
  ut_dataset *ds = ut_dataset_open(path);
  ck_assert_ut_ptr(ds);
  ck_assert_int_eq(ut_dataset_n_domains(ds), 2);
  ck_assert_str_eq(ut_dataset_domain_name(ds, 1), "painting");
  ck_assert_ptr_null(ut_dataset_domain_name(ds, 2));
  ck_assert_ptr_null(ut_dataset_domain_name(ds, -1));
  ck_assert_int_eq(ut_dataset_find_domain(ds, "photo"), 0);
  ck_assert_int_eq(ut_dataset_find_domain(ds, "painting"), 1);
  ck_assert_int_eq(ut_dataset_find_domain(ds, "Photo"), -1);
  ck_assert_int_eq(ut_dataset_find_domain(ds, NULL), -1);
  for (int i = 0; i < 6; i++) {
    ck_assert_int_eq(ut_dataset_domain(ds, i), dom[i]);
    ck_assert_int_eq(ut_dataset_class(ds, i), i % 2);
    ck_assert_int_eq(ut_dataset_content(ds, i), -1);
    ck_assert_uint_eq(ut_dataset_image(ds, i)[5], pixel_of(i, 0, 1, 2));
  }
  int32_t *idx, n;
  ck_assert_ut_ok(ut_dataset_domain_indices(ds, 1, &idx, &n));
  ck_assert_int_eq(n, 4);
  const int32_t want[4] = { 0, 2, 3, 5 };
  ck_assert_mem_eq(idx, want, sizeof want);
  free(idx);
  ck_assert_int_eq(ut_dataset_domain_indices(ds, 2, &idx, &n), UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_null(idx);
  ck_assert_int_eq(n, 0);
  ut_dataset_close(ds);

  /* Default names; a set without domains is version 1 with ids -1 and no index lists. */
  write_set(path, 2, 1, 1, 2, NULL, (const int[]){ 1, 0 });
  ck_assert_ut_ptr(ds = ut_dataset_open(path));
  ck_assert_str_eq(ut_dataset_domain_name(ds, 1), "domain-1");
  ut_dataset_close(ds);
  write_set(path, 2, 1, 1, 0, NULL, NULL);
  raw = slurp(path, &len);
  ck_assert_uint_eq((uint8_t)raw[8], 1);
  ck_assert_ptr_null(strstr(raw + 16, "domain"));
  free(raw);
  ck_assert_ut_ptr(ds = ut_dataset_open(path));
  ck_assert_int_eq(ut_dataset_n_domains(ds), 0);
  ck_assert_int_eq(ut_dataset_domain(ds, 1), -1);
  ck_assert_int_eq(ut_dataset_domain_indices(ds, 0, &idx, &n), UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "no domain labels"));
  ut_dataset_close(ds);
  unlink(path);
}
END_TEST

/* A version 1 file as the code before domains wrote it, built byte by byte here so that it does
 * not depend on today's writer: 2 gray 1 x 2 images, classes 1 and 0, no contents. */
START_TEST(version1_file_opens) {
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("v1.dat"));
  const char *json = "{\"format\":\"untangle-dataset\",\"version\":1,\"count\":2,\"height\":1,\"width\":2,"
                     "\"channels\":1,\"n_classes\":2,\"class_names\":[\"a\",\"b\"],\"has_contents\":false,"
                     "\"n_contents\":0,\"source\":{},\"images_offset\":256,\"classes_offset\":320,"
                     "\"contents_offset\":384}";
  uint8_t file[392];
  memset(file, ' ', 256);
  memcpy(file, "UTDATAST\1\0\0\0\xf0\0\0\0", 16); /* version 1, header 240 bytes */
  ck_assert_uint_le(strlen(json), 240);
  memcpy(file + 16, json, strlen(json));
  memset(file + 256, 0, sizeof file - 256);
  const uint8_t px[4] = { 10, 20, 30, 40 };
  memcpy(file + 256, px, 4);
  const int32_t labels[4] = { 1, 0, -1, -1 }; /* little-endian hosts only, as the files are */
  memcpy(file + 320, labels, 8);
  memcpy(file + 384, labels + 2, 8);
  spit(path, file, sizeof file);
  ut_dataset *ds = ut_dataset_open(path);
  ck_assert_ut_ptr(ds);
  ck_assert_int_eq(ut_dataset_count(ds), 2);
  ck_assert_int_eq(ut_dataset_n_domains(ds), 0);
  ck_assert_int_eq(ut_dataset_domain(ds, 0), -1);
  ck_assert_int_eq(ut_dataset_class(ds, 0), 1);
  ck_assert_uint_eq(ut_dataset_image(ds, 1)[1], 40);
  ck_assert_ptr_null(ut_dataset_domain_name(ds, 0));
  ut_dataset_close(ds);
  unlink(path);
}
END_TEST

START_TEST(corrupt_domains_rejected) {
  char good[4096], bad[4096];
  snprintf(good, sizeof good, "%s", test_tmp_path("dgood.dat"));
  snprintf(bad, sizeof bad, "%s", test_tmp_path("dbad.dat"));
  write_set(good, 4, 2, 2, 2, (const char *const[]){ "A", "B" }, (const int[]){ 0, 1, 0, 1 });
  size_t len;
  char *orig = slurp(good, &len);
  size_t domains_at = len - 16; /* the last section: 4 int32 */
  static const struct {
    const char *what, *from, *to, *says;
    int32_t id; /* != 0: image 1's domain id becomes this */
  } cases[] = {
    { "domain id", NULL, NULL, "image 1 has domain id 2, expected 0 .. 1", 2 },
    { "negative domain", NULL, NULL, "domain id -1", -1 },
    { "empty domain", NULL, NULL, "domain 1 ('B') has no image", 100 },
    { "n_domains", "\"n_domains\":2", "\"n_domains\":3", "'domain_names': expected an array of 3", 0 },
    { "n_domains 0", "\"n_domains\":2", "\"n_domains\":0", "'n_domains' is 0", 0 },
    { "no n_domains", "\"n_domains\":2", "\"n_domainz\":2", "'n_domains'", 0 },
    { "same names", "[\"A\",\"B\"]", "[\"A\",\"A\"]", "'A' is also domain 0", 0 },
    { "offset", "\"domains_offset\":", "\"domains_offseX\":", "'domains_offset'", 0 },
    { "version", "\"version\":2", "\"version\":1", "'version' is 1, expected 2", 0 },
  };
  char *buf = malloc(len);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    memcpy(buf, orig, len);
    if (cases[k].from) patch(buf, len, cases[k].from, cases[k].to);
    if (cases[k].id == 100) /* every image in domain 0 */
      memset(buf + domains_at, 0, 16);
    else if (cases[k].id)
      memcpy(buf + domains_at + 4, &cases[k].id, 4);
    spit(bad, buf, len);
    ck_assert_msg(ut_dataset_open(bad) == NULL, "case '%s' opened", cases[k].what);
    ck_assert_msg(strstr(ut_last_error(), bad) && strstr(ut_last_error(), cases[k].says),
                  "case '%s': expected the file and \"%s\" in: %s", cases[k].what, cases[k].says, ut_last_error());
  }
  /* Without its domain section a version 2 file is too short. */
  spit(bad, orig, len - 64);
  ck_assert_ptr_null(ut_dataset_open(bad));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "truncated"));
  free(buf);
  free(orig);

  /* The writer: ids out of range, names given twice or empty, a domain without images. */
  ut_dataset_desc d = { .height = 1, .width = 1, .channels = 1, .n_classes = 1, .n_domains = 2 };
  uint8_t px = 0;
  ut_dataset_writer *w = ut_dataset_writer_open(bad, &d);
  ck_assert_ut_ptr(w);
  ck_assert_int_eq(ut_dataset_writer_add_domain(w, &px, 0, -1, 2), UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "domain id 2, expected 0 .. 1"));
  ck_assert_int_eq(ut_dataset_writer_add(w, &px, 0, -1), UT_ERR_INVALID_ARGUMENT); /* -1 needs a set without domains */
  ck_assert_ut_ok(ut_dataset_writer_add_domain(w, &px, 0, -1, 0));
  ck_assert_int_eq(ut_dataset_writer_finish(w), UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "domain 1 ('domain-1') has no image"));
  ck_assert_int_eq(access(bad, F_OK), 0); /* the old file is still there, unchanged */
  d.domain_names = (const char *const[]){ "x", "x" };
  ck_assert_ptr_null(ut_dataset_writer_open(bad, &d));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "given twice"));
  d.domain_names = (const char *const[]){ "x", "" };
  ck_assert_ptr_null(ut_dataset_writer_open(bad, &d));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "empty"));
  d = (ut_dataset_desc){ .height = 1, .width = 1, .channels = 1, .n_classes = 1 };
  ck_assert_ut_ptr(w = ut_dataset_writer_open(bad, &d));
  ck_assert_int_eq(ut_dataset_writer_add_domain(w, &px, 0, -1, 0), UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "no domains"));
  ut_dataset_writer_abort(w);
  unlink(good);
  unlink(bad);
}
END_TEST

/* ---- loader ---------------------------------------------------------------------------------- */

static void copy_batch(const ut_batch *b, int side, float *images, int32_t *idx) {
  memcpy(images, b->images, sizeof(float) * (size_t)b->n * 3 * side * side);
  memcpy(idx, b->indices, sizeof(int32_t) * (size_t)b->n);
}

START_TEST(loader_crop_flip_range) {
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("crop.dat"));
  enum { N = 10, H = 6, W = 7, S = 4, B = 3 };
  int dom[N];
  for (int i = 0; i < N; i++) dom[i] = i % 2;
  write_set(path, N, H, W, 2, NULL, dom);
  ut_dataset *ds = ut_dataset_open(path);
  ck_assert_ut_ptr(ds);
  ut_loader_cfg cfg = { .batch = B, .seed = 4, .crop = S, .flip = 1, .signed_range = 1 };
  ut_loader *l = ut_loader_new(ds, &cfg);
  ck_assert_ut_ptr(l);
  ck_assert_int_eq(ut_loader_image_side(l), S);
  /* Every image is a crop of its source at some offset, maybe mirrored; values 2 v - 1. Over
   * three epochs both mirrorings and several offsets turn up. */
  enum { STEPS = 12 };
  static float saved[STEPS][B * 3 * S * S];
  int32_t saved_idx[STEPS][B];
  int flips[2] = { 0 }, offsets[H][W] = { { 0 } };
  for (int step = 0; step < STEPS; step++) {
    const ut_batch *b;
    ck_assert_ut_ok(ut_loader_next(l, &b));
    copy_batch(b, S, saved[step], saved_idx[step]);
    for (int i = 0; i < b->n; i++) {
      int id = b->indices[i], found = 0;
      ck_assert_int_eq(b->domains[i], id % 2);
      const float *img = b->images + (size_t)i * 3 * S * S;
      for (int y0 = 0; y0 + S <= H && !found; y0++)
        for (int x0 = 0; x0 + S <= W && !found; x0++)
          for (int f = 0; f < 2 && !found; f++) {
            int same = 1;
            for (int c = 0; c < 3 && same; c++)
              for (int y = 0; y < S && same; y++)
                for (int x = 0; x < S && same; x++) {
                  float v = pixel_of(id, y0 + y, x0 + (f ? S - 1 - x : x), c) * (1.0f / 255.0f);
                  same = img[(c * S + y) * S + x] == 2.0f * v - 1.0f;
                }
            if (same) found = 1, flips[f]++, offsets[y0][x0]++;
          }
      ck_assert_msg(found, "step %d image %d (set image %d) is no crop of its source", step, i, id);
    }
  }
  ck_assert_int_gt(flips[0], 0);
  ck_assert_int_gt(flips[1], 0);
  int distinct = 0;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) distinct += offsets[y][x] > 0;
  ck_assert_int_ge(distinct, 4);
  ut_loader_free(l);

  /* A new loader sought to any position rebuilds those batches bit for bit. */
  ck_assert_ut_ptr(l = ut_loader_new(ds, &cfg));
  int64_t per = ut_loader_batches_per_epoch(l);
  for (int k = 0; k < 8; k++) {
    int step = (k * 5 + 3) % STEPS;
    ck_assert_ut_ok(ut_loader_seek(l, step / per, step % per));
    const ut_batch *b;
    ck_assert_ut_ok(ut_loader_next(l, &b));
    ck_assert_mem_eq(b->indices, saved_idx[step], sizeof(int32_t) * (size_t)b->n);
    ck_assert_mem_eq(b->images, saved[step], sizeof(float) * (size_t)b->n * 3 * S * S);
  }
  ut_loader_free(l);

  /* In order: the centred crop, never mirrored, [0, 1]. */
  cfg = (ut_loader_cfg){ .batch = 2, .in_order = 1, .crop = S, .flip = 1 };
  ck_assert_ut_ptr(l = ut_loader_new(ds, &cfg));
  const ut_batch *b;
  ck_assert_ut_ok(ut_loader_next(l, &b));
  for (int i = 0; i < 2; i++)
    for (int c = 0; c < 3; c++)
      for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
          ck_assert_float_eq(b->images[((i * 3 + c) * S + y) * S + x],
                             pixel_of(i, (H - S) / 2 + y, (W - S) / 2 + x, c) * (1.0f / 255.0f));
  ut_loader_free(l);

  /* No crop, signed: whole images in [-1, 1]; the side of non-square images is 0. */
  cfg = (ut_loader_cfg){ .batch = 1, .in_order = 1, .signed_range = 1 };
  ck_assert_ut_ptr(l = ut_loader_new(ds, &cfg));
  ck_assert_int_eq(ut_loader_image_side(l), 0);
  ck_assert_ut_ok(ut_loader_next(l, &b));
  ck_assert_float_eq(b->images[W + 2], 2.0f * (pixel_of(0, 1, 2, 0) * (1.0f / 255.0f)) - 1.0f);
  ut_loader_free(l);

  cfg = (ut_loader_cfg){ .batch = 1, .crop = 7 };
  ck_assert_ptr_null(ut_loader_new(ds, &cfg));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "crop 7 x 7 is larger than the images (6 x 7)"));
  cfg.crop = -1;
  ck_assert_ptr_null(ut_loader_new(ds, &cfg));
  ut_dataset_close(ds);
  unlink(path);
}
END_TEST

/* ---- rendered looks -------------------------------------------------------------------------- */

static int is_bg(const uint8_t *p, const uint8_t bg[3]) { return p[0] == bg[0] && p[1] == bg[1] && p[2] == bg[2]; }

START_TEST(synth_looks_share_geometry) {
  ck_assert_int_eq(ut_synth_domain_count(), UT_SYNTH_DOMAIN_COUNT);
  ck_assert_str_eq(ut_synth_domain_name(UT_SYNTH_NIGHT), "night");
  ck_assert_ptr_null(ut_synth_domain_name(UT_SYNTH_DOMAIN_COUNT));
  ck_assert_int_eq(ut_synth_domain_from_name("sketch"), UT_SYNTH_SKETCH);
  ck_assert_int_eq(ut_synth_domain_from_name("dawn"), -1);
  enum { S = 24 };
  static const uint8_t bgs[UT_SYNTH_DOMAIN_COUNT][3] = { { 200, 200, 200 }, { 16, 20, 38 }, { 246, 246, 246 },
                                                        { 190, 128, 122 } };
  uint8_t img[UT_SYNTH_DOMAIN_COUNT][S * S * 3];
  for (int c = 0; c < 6; c++)
    for (int v = 0; v < 24; v += 7) {
      for (int d = 0; d < UT_SYNTH_DOMAIN_COUNT; d++) {
        ut_synth_cfg cfg = { .classes = 6, .views = 24, .size = S, .seed = 2, .domain = d };
        ck_assert_ut_ok(ut_synth_render(&cfg, c, v, img[d]));
      }
      /* Day, night and dusk: background exactly where day has it; sketch: ink only inside the
       * day silhouette, and no colour anywhere. */
      int ink = 0;
      for (int p = 0; p < S * S; p++) {
        int day_bg = is_bg(img[0] + 3 * p, bgs[0]);
        ck_assert_int_eq(is_bg(img[UT_SYNTH_NIGHT] + 3 * p, bgs[UT_SYNTH_NIGHT]), day_bg);
        ck_assert_int_eq(is_bg(img[UT_SYNTH_DUSK] + 3 * p, bgs[UT_SYNTH_DUSK]), day_bg);
        const uint8_t *k = img[UT_SYNTH_SKETCH] + 3 * p;
        ck_assert(k[0] == k[1] && k[1] == k[2]);
        if (day_bg) ck_assert_uint_eq(k[0], 246);
        ink += k[0] < 128;
      }
      ck_assert_msg(ink > 10, "class %d view %d: the sketch has only %d inked pixels", c, v, ink);
      /* Night is dark and blue-ish, dusk red-ish, where the object is too. */
      double mean[UT_SYNTH_DOMAIN_COUNT][3] = { { 0 } };
      for (int d = 0; d < UT_SYNTH_DOMAIN_COUNT; d++)
        for (int p = 0; p < S * S; p++)
          for (int k = 0; k < 3; k++) mean[d][k] += img[d][3 * p + k] / (double)(S * S);
      ck_assert(mean[UT_SYNTH_NIGHT][0] + mean[UT_SYNTH_NIGHT][1] + mean[UT_SYNTH_NIGHT][2] <
                0.4 * (mean[0][0] + mean[0][1] + mean[0][2]));
      ck_assert(mean[UT_SYNTH_NIGHT][2] > mean[UT_SYNTH_NIGHT][0]);
      ck_assert(mean[UT_SYNTH_DUSK][0] > mean[UT_SYNTH_DUSK][2]);
    }
  ut_synth_cfg bad = { .classes = 1, .views = 1, .size = 4, .domain = UT_SYNTH_DOMAIN_COUNT };
  ck_assert_int_eq(ut_synth_render(&bad, 0, 0, img[0]), UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "domain 4"));
}
END_TEST

/* ---- the command line ------------------------------------------------------------------------ */

START_TEST(synth_domains_cli) {
  char out[4096], plain[4096], args[8192];
  snprintf(out, sizeof out, "%s", test_tmp_path("cli-pairs.dat"));
  snprintf(plain, sizeof plain, "%s", test_tmp_path("cli-plain.dat"));
  snprintf(args, sizeof args, "data synth --domains night,day --classes 2 --views 3 --size 8 --seed 4 -o '%s'", out);
  cli_result r = cli_run(args);
  ck_assert_msg(r.status == 0, "synth exited %d:\n%s%s", r.status, r.out, r.err);
  assert_contains(r.out, "12 images of 8 x 8 RGB, 2 classes x 3 views x 2 domains (night, day)");
  cli_result_free(&r);
  snprintf(args, sizeof args, "data synth --classes 2 --views 3 --size 8 --seed 4 -o '%s'", plain);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 0);
  cli_result_free(&r);
  ut_dataset *ds = ut_dataset_open(out), *pl = ut_dataset_open(plain);
  ck_assert_ut_ptr(ds);
  ck_assert_ut_ptr(pl);
  ck_assert_int_eq(ut_dataset_n_domains(ds), 2);
  ck_assert_str_eq(ut_dataset_domain_name(ds, 0), "night");
  ck_assert_int_eq(ut_dataset_n_domains(pl), 0);
  ck_assert_ptr_null(strstr(ut_dataset_source_json(pl), "domain"));
  ck_assert_ptr_nonnull(strstr(ut_dataset_source_json(ds), "\"domains\":[\"night\",\"day\"]"));
  uint8_t want[8 * 8 * 3];
  for (int i = 0; i < 12; i++) {
    ck_assert_int_eq(ut_dataset_domain(ds, i), i / 6);
    ck_assert_int_eq(ut_dataset_class(ds, i), (i % 6) / 3);
    ck_assert_int_eq(ut_dataset_content(ds, i), i % 3);
    ut_synth_cfg cfg = { .classes = 2, .views = 3, .size = 8, .seed = 4, .domain = i < 6 ? UT_SYNTH_NIGHT : 0 };
    ck_assert_ut_ok(ut_synth_render(&cfg, (i % 6) / 3, i % 3, want));
    ck_assert_mem_eq(ut_dataset_image(ds, i), want, sizeof want);
    /* the day half is the plain set, byte for byte */
    if (i >= 6) ck_assert_mem_eq(ut_dataset_image(ds, i), ut_dataset_image(pl, i - 6), sizeof want);
  }
  ut_dataset_close(ds);
  ut_dataset_close(pl);

  snprintf(args, sizeof args, "data info '%s'", out);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 0);
  assert_contains(r.out, "domains   2: night (6), day (6)");
  cli_result_free(&r);
  snprintf(args, sizeof args, "data info --json '%s'", out);
  r = cli_run(args);
  json_t *j = json_loads(r.out, 0, NULL);
  ck_assert_ptr_nonnull(j);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "n_domains")), 2);
  ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "domain_names"), 1)), "day");
  ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(j, "domain_counts"), 1)), 6);
  json_decref(j);
  cli_result_free(&r);
  snprintf(args, sizeof args, "data info '%s'", plain);
  r = cli_run(args);
  assert_contains(r.out, "domains   none");
  cli_result_free(&r);

  static const struct {
    const char *args, *says;
  } bad[] = { { "data synth --domains day,dawn -o x.dat", "unknown look 'dawn'" },
              { "data synth --domains day,day -o x.dat", "'day' is listed twice" },
              { "data import somewhere --subset test -o x.dat", "--subset goes with --domains" },
              { "data import somewhere --domains --subset val -o x.dat", "train or test, not 'val'" } };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    r = cli_run(bad[k].args);
    ck_assert_msg(r.status == 2, "'%s' exited %d", bad[k].args, r.status);
    assert_contains(r.err, bad[k].says);
    cli_result_free(&r);
  }
  r = cli_run("data --help");
  assert_contains(r.out, "--domains [--subset train|test]");
  assert_contains(r.out, "--domains L");
  cli_result_free(&r);
  unlink(out);
  unlink(plain);
}
END_TEST

static void make_dir(const char *root, const char *sub) {
  char p[8192];
  snprintf(p, sizeof p, "%s/%s", root, sub);
  mkdir(p, 0755);
}

static void jpeg_in(const char *root, const char *file, int shade) {
  char p[8192];
  snprintf(p, sizeof p, "%s/%s", root, file);
  uint8_t px[6 * 5 * 3];
  memset(px, shade, sizeof px);
  ck_assert_ut_ok(ut_jpeg_write(p, px, 6, 5, 3, 90));
}

/* `data import DIR --domains ...` must fail with `says` and leave nothing at the output. */
static void import_fails(const char *root, const char *extra, const char *out, const char *says) {
  char args[16384];
  snprintf(args, sizeof args, "data import '%s' --domains %s --size 4 -o '%s'", root, extra, out);
  cli_result r = cli_run(args);
  ck_assert_msg(r.status == 1, "'%s' exited %d:\n%s%s", args, r.status, r.out, r.err);
  assert_contains(r.err, says);
  ck_assert_msg(access(out, F_OK) != 0, "'%s' wrote %s", args, out);
  cli_result_free(&r);
}

START_TEST(import_domains_cli) {
  char root[4096], out[4096], args[16384], p[8192];
  snprintf(root, sizeof root, "%s", test_tmp_path("unit-layout"));
  snprintf(out, sizeof out, "%s", test_tmp_path("unit-layout.dat"));
  snprintf(args, sizeof args, "rm -rf '%s' '%s'", root, out);
  ck_assert_int_eq(system(args), 0);
  mkdir(root, 0755);
  const char *dirs[] = { "trainA", "trainB", "testA", "testB", "other" };
  for (int i = 0; i < 5; i++) make_dir(root, dirs[i]);
  jpeg_in(root, "trainA/1.jpg", 30);
  jpeg_in(root, "trainA/2.jpg", 60);
  jpeg_in(root, "trainB/1.jpg", 200);
  jpeg_in(root, "testA/1.jpg", 90);
  jpeg_in(root, "other/1.jpg", 90);

  /* testB is empty: train works, test names the empty folder; nothing is written. */
  snprintf(args, sizeof args, "data import '%s' --domains --size 4 -o '%s'", root, out);
  cli_result r = cli_run(args);
  ck_assert_msg(r.status == 0, "import exited %d:\n%s%s", r.status, r.out, r.err);
  assert_contains(r.out, "3 images of 4 x 4 RGB, 2 domains: A (2), B (1)");
  cli_result_free(&r);
  ut_dataset *ds = ut_dataset_open(out);
  ck_assert_ut_ptr(ds);
  ck_assert_int_eq(ut_dataset_n_classes(ds), 1);
  ck_assert_str_eq(ut_dataset_class_name(ds, 0), "all");
  ck_assert_int_eq(ut_dataset_n_domains(ds), 2);
  ck_assert_str_eq(ut_dataset_domain_name(ds, 1), "B");
  const int32_t want_dom[3] = { 0, 0, 1 };
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(ut_dataset_domain(ds, i), want_dom[i]);
    ck_assert_int_eq(ut_dataset_class(ds, i), 0);
    ck_assert_int_eq(ut_dataset_content(ds, i), -1);
  }
  ck_assert_ptr_nonnull(strstr(ut_dataset_source_json(ds), "\"subset\":\"train\""));
  ut_dataset_close(ds);
  unlink(out);
  import_fails(root, "--subset test", out, "testB: the domain folder is empty");

  /* A testC without trainC; a trainB that holds nothing readable. */
  make_dir(root, "testC");
  jpeg_in(root, "testC/1.jpg", 10);
  import_fails(root, "", out, "trainC: missing: domain C has a testC folder but no trainC partner");
  snprintf(p, sizeof p, "%s/testC/1.jpg", root);
  unlink(p);
  snprintf(p, sizeof p, "%s/testC", root);
  rmdir(p);
  snprintf(p, sizeof p, "%s/trainB/1.jpg", root);
  unlink(p);
  spit(p, "no jpeg", 7);
  import_fails(root, "", out, "trainB: domain 'B' has no readable image");

  /* One folder per domain, named after it; a lone domain is refused. */
  snprintf(args, sizeof args, "rm -rf '%s'", root);
  ck_assert_int_eq(system(args), 0);
  mkdir(root, 0755);
  make_dir(root, "photos");
  jpeg_in(root, "photos/a.jpg", 50);
  import_fails(root, "", out, "1 domain folder (photos), expected at least two");
  make_dir(root, "monet");
  import_fails(root, "", out, "monet: the domain folder is empty");
  jpeg_in(root, "monet/a.jpg", 150);
  jpeg_in(root, "monet/b.jpg", 160);
  snprintf(args, sizeof args, "data import '%s' --domains --gray --size 4 -o '%s'", root, out);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "import exited %d:\n%s%s", r.status, r.out, r.err);
  assert_contains(r.out, "3 images of 4 x 4 gray, 2 domains: monet (2), photos (1)");
  cli_result_free(&r);
  ck_assert_ut_ptr(ds = ut_dataset_open(out));
  ck_assert_int_eq(ut_dataset_find_domain(ds, "photos"), 1);
  ck_assert_int_eq(ut_dataset_domain(ds, 2), 1);
  ut_dataset_close(ds);
  snprintf(args, sizeof args, "rm -rf '%s' '%s'", root, out);
  ck_assert_int_eq(system(args), 0);
}
END_TEST

static Suite *domains_suite(void) {
  Suite *s = suite_create("domains");
  TCase *tc = tcase_create("domains");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, roundtrip_with_domains);
  tcase_add_test(tc, version1_file_opens);
  tcase_add_test(tc, corrupt_domains_rejected);
  tcase_add_test(tc, loader_crop_flip_range);
  tcase_add_test(tc, synth_looks_share_geometry);
  tcase_add_test(tc, synth_domains_cli);
  tcase_add_test(tc, import_domains_cli);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(domains_suite()); }
