/* The data set file (round trip, every validation a corrupt file must fail, atomic writes),
 * splits, the batch loader (order, determinism, resume by seek) and sample grids. Host only:
 * no OpenCL device is opened. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_support.h"
#include "untangle_data.h"

/* Image i's byte at (y, x, c) of an h x w x ch image: distinct per image and position. */
static uint8_t pixel_of(int i, int y, int x, int c) { return (uint8_t)(i * 37 + y * 11 + x * 5 + c * 3 + 1); }

typedef struct {
  int n, h, w, ch, n_classes, n_contents;
} set_shape;

static int class_of(int i, int k) { return (i * 7 + 3) % k; }

/* Writes a data set of the given shape whose bytes and labels follow pixel_of/class_of. */
static void write_set(const char *path, set_shape s, const char *const *names, const char *source) {
  ut_dataset_desc d = { .height = s.h, .width = s.w, .channels = s.ch, .n_classes = s.n_classes,
                        .class_names = names, .n_contents = s.n_contents, .source_json = source };
  ut_dataset_writer *w = ut_dataset_writer_open(path, &d);
  ck_assert_ut_ptr(w);
  uint8_t *img = malloc((size_t)s.h * s.w * s.ch);
  for (int i = 0; i < s.n; i++) {
    for (int y = 0; y < s.h; y++)
      for (int x = 0; x < s.w; x++)
        for (int c = 0; c < s.ch; c++) img[(y * s.w + x) * s.ch + c] = pixel_of(i, y, x, c);
    ck_assert_ut_ok(ut_dataset_writer_add(w, img, class_of(i, s.n_classes), s.n_contents ? i % s.n_contents : -1));
  }
  free(img);
  ck_assert_int_eq(ut_dataset_writer_count(w), s.n);
  ck_assert_ut_ok(ut_dataset_writer_finish(w));
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc(*len + 1);
  ck_assert_int_eq(fread(b, 1, *len, f), *len);
  fclose(f);
  return b;
}

static void spit(const char *path, const char *b, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fwrite(b, 1, len, f), len);
  fclose(f);
}

/* No "<name>.tmp-*" is left next to `path`. */
static void assert_no_temp_files(const char *path) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  const char *base = slash ? slash + 1 : path;
  char prefix[4096];
  snprintf(prefix, sizeof prefix, "%s.tmp-", base);
  if (slash) *slash = '\0';
  DIR *d = opendir(slash ? dir : ".");
  ck_assert_ptr_nonnull(d);
  for (struct dirent *e; (e = readdir(d));)
    ck_assert_msg(strncmp(e->d_name, prefix, strlen(prefix)) != 0, "temporary file %s left behind", e->d_name);
  closedir(d);
}

START_TEST(test_roundtrip) {
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("roundtrip.dat"));
  const set_shape s = { .n = 7, .h = 5, .w = 3, .ch = 3, .n_classes = 3, .n_contents = 4 };
  const char *names[] = { "cat", "dog", "caf\xc3\xa9" };
  write_set(path, s, names, "{\"kind\": \"test\", \"seed\": 9}");
  assert_no_temp_files(path);
  ut_dataset *ds = ut_dataset_open(path);
  ck_assert_ut_ptr(ds);
  ck_assert_int_eq(ut_dataset_count(ds), 7);
  ck_assert_int_eq(ut_dataset_height(ds), 5);
  ck_assert_int_eq(ut_dataset_width(ds), 3);
  ck_assert_int_eq(ut_dataset_channels(ds), 3);
  ck_assert_int_eq(ut_dataset_n_classes(ds), 3);
  ck_assert_int_eq(ut_dataset_n_contents(ds), 4);
  ck_assert_str_eq(ut_dataset_class_name(ds, 2), "caf\xc3\xa9");
  ck_assert_ptr_null(ut_dataset_class_name(ds, 3));
  ck_assert_ptr_null(ut_dataset_class_name(ds, -1));
  ck_assert_str_eq(ut_dataset_source_json(ds), "{\"kind\":\"test\",\"seed\":9}");
  ck_assert_str_eq(ut_dataset_path(ds), path);
  for (int i = 0; i < 7; i++) {
    const uint8_t *img = ut_dataset_image(ds, i);
    /* Sections are 64-byte aligned in the file, and the map starts on a page. */
    if (i == 0) ck_assert_uint_eq((uintptr_t)img % 64, 0);
    for (int y = 0; y < 5; y++)
      for (int x = 0; x < 3; x++)
        for (int c = 0; c < 3; c++) ck_assert_uint_eq(img[(y * 3 + x) * 3 + c], pixel_of(i, y, x, c));
    ck_assert_int_eq(ut_dataset_class(ds, i), class_of(i, 3));
    ck_assert_int_eq(ut_dataset_content(ds, i), i % 4);
  }
  ut_dataset_close(ds);

  /* Defaults: generated class names, no content labels (-1), empty source. Gray, 1 x 1. */
  const set_shape g = { .n = 3, .h = 1, .w = 1, .ch = 1, .n_classes = 2, .n_contents = 0 };
  write_set(path, g, NULL, NULL);
  ck_assert_ut_ptr(ds = ut_dataset_open(path));
  ck_assert_str_eq(ut_dataset_class_name(ds, 1), "class-1");
  ck_assert_str_eq(ut_dataset_source_json(ds), "{}");
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(ut_dataset_content(ds, i), -1);
    ck_assert_uint_eq(ut_dataset_image(ds, i)[0], pixel_of(i, 0, 0, 0));
  }
  ut_dataset_close(ds);
  unlink(path);
}
END_TEST

START_TEST(test_writer_rejects) {
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("rejects.dat"));
  spit(path, "old contents", 12);
  ut_dataset_desc d = { .height = 2, .width = 2, .channels = 3, .n_classes = 2, .n_contents = 0 };
  uint8_t img[12] = { 0 };

  ut_dataset_desc bad = d;
  bad.channels = 2;
  ck_assert_ptr_null(ut_dataset_writer_open(path, &bad));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "2 channels"));
  bad = d;
  bad.height = 0;
  ck_assert_ptr_null(ut_dataset_writer_open(path, &bad));
  bad = d;
  bad.source_json = "[1, 2]";
  ck_assert_ptr_null(ut_dataset_writer_open(path, &bad));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "source"));
  bad = d;
  bad.class_names = (const char *const[]){ "ok", "bad\xff" };
  ck_assert_ptr_null(ut_dataset_writer_open(path, &bad));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "UTF-8"));
  ck_assert_ptr_null(ut_dataset_writer_open("/nonexistent-folder/x.dat", &d));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "/nonexistent-folder/x.dat"));

  /* Bad ids fail and leave the writer usable; zero images are refused and nothing appears. */
  ut_dataset_writer *w = ut_dataset_writer_open(path, &d);
  ck_assert_ut_ptr(w);
  ck_assert_int_eq(ut_dataset_writer_add(w, img, 2, -1), UT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(ut_dataset_writer_add(w, img, -1, -1), UT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(ut_dataset_writer_add(w, img, 0, 0), UT_ERR_INVALID_ARGUMENT); /* no contents: -1 only */
  ck_assert_int_eq(ut_dataset_writer_count(w), 0);
  ck_assert_int_eq(ut_dataset_writer_finish(w), UT_ERR_INVALID_ARGUMENT);
  size_t len;
  char *now = slurp(path, &len);
  ck_assert_int_eq(len, 12);
  ck_assert_mem_eq(now, "old contents", 12);
  free(now);
  assert_no_temp_files(path);

  /* An aborted writer leaves the destination as it was, too. */
  ck_assert_ut_ptr(w = ut_dataset_writer_open(path, &d));
  ck_assert_ut_ok(ut_dataset_writer_add(w, img, 1, -1));
  ut_dataset_writer_abort(w);
  now = slurp(path, &len);
  ck_assert_mem_eq(now, "old contents", 12);
  free(now);
  assert_no_temp_files(path);
  unlink(path);
}
END_TEST

/* Replaces the first `from` in the header with `to` (same length), as a corrupt file would. */
static void patch(char *buf, size_t len, const char *from, const char *to) {
  ck_assert_uint_eq(strlen(from), strlen(to));
  for (size_t i = 0; i + strlen(from) <= len; i++)
    if (memcmp(buf + i, from, strlen(from)) == 0) {
      memcpy(buf + i, to, strlen(to));
      return;
    }
  ck_abort_msg("'%s' not found in the file", from);
}

START_TEST(test_open_rejects) {
  char good[4096], bad[4096];
  snprintf(good, sizeof good, "%s", test_tmp_path("good.dat"));
  snprintf(bad, sizeof bad, "%s", test_tmp_path("bad.dat"));
  const set_shape s = { .n = 5, .h = 3, .w = 4, .ch = 3, .n_classes = 3, .n_contents = 2 };
  write_set(good, s, NULL, NULL);
  size_t len;
  char *orig = slurp(good, &len);
  /* images start at 16 + header, each 36 bytes; classes at the next multiple of 64. */
  uint32_t hlen = (uint8_t)orig[12] | (uint8_t)orig[13] << 8;
  size_t classes_at = ((16 + hlen + 5 * 36) + 63) / 64 * 64;
  size_t contents_at = (classes_at + 20 + 63) / 64 * 64;
  ck_assert_uint_eq(contents_at + 20, len);

  static const struct {
    const char *what, *from, *to, *says;
    long cut; /* > 0: keep this many bytes; < 0: drop that many from the end */
    int extra, class_id, content_id;
  } cases[] = {
    { "empty", NULL, NULL, "too short", 0, 0, 0, 0 },
    { "10 bytes", NULL, NULL, "too short", 10, 0, 0, 0 },
    { "magic", "UTDATAST", "UTDATAXX", "not an untangle data set", 0, 0, 0, 0 },
    { "json", "{\"format\"", "[\"format\"", "not valid JSON", 0, 0, 0, 0 },
    { "format", "untangle-dataset", "untangle-datasex", "'format'", 0, 0, 0, 0 },
    { "json version", "\"version\":1", "\"version\":7", "'version'", 0, 0, 0, 0 },
    { "count", "\"count\":5", "\"count\":6", "6 images", 0, 0, 0, 0 },
    { "count 0", "\"count\":5", "\"count\":0", "'count'", 0, 0, 0, 0 },
    { "no count", "\"count\":5", "\"coun_\":5", "'count'", 0, 0, 0, 0 },
    { "channels", "\"channels\":3", "\"channels\":2", "'channels'", 0, 0, 0, 0 },
    { "height", "\"height\":3", "\"height\":9", "9 x 4 x 3", 0, 0, 0, 0 },
    { "classes", "\"n_classes\":3", "\"n_classes\":4", "'class_names'", 0, 0, 0, 0 },
    { "contents flag", "\"has_contents\":true", "\"has_contents\":1234", "'has_contents'", 0, 0, 0, 0 },
    { "source", "\"source\":{}", "\"source\":[]", "'source'", 0, 0, 0, 0 },
    { "offset", "\"images_offset\":", "\"images_offseX\":", "'images_offset'", 0, 0, 0, 0 },
    { "truncated", NULL, NULL, "truncated", -1, 0, 0, 0 },
    { "extra byte", NULL, NULL, "expected", 0, 1, 0, 0 },
    { "class id", NULL, NULL, "class id 3", 0, 0, 3, 0 },
    { "negative class", NULL, NULL, "class id -1", 0, 0, -1, 0 },
    { "content id", NULL, NULL, "content id 2", 0, 0, 0, 2 },
  };
  char *buf = malloc(len + 1);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    memcpy(buf, orig, len);
    size_t n = len;
    if (cases[k].from) patch(buf, n, cases[k].from, cases[k].to);
    if (cases[k].cut > 0) n = (size_t)cases[k].cut;
    if (cases[k].cut < 0) n -= (size_t)-cases[k].cut;
    if (!cases[k].from && cases[k].cut == 0 && !cases[k].extra && !cases[k].class_id && !cases[k].content_id) n = 0;
    if (cases[k].extra) buf[n++] = 0;
    if (cases[k].class_id) memcpy(buf + classes_at + 8, &(int32_t){ cases[k].class_id }, 4);
    if (cases[k].content_id) memcpy(buf + contents_at + 4, &(int32_t){ cases[k].content_id }, 4);
    spit(bad, buf, n);
    ut_dataset *d = ut_dataset_open(bad);
    ck_assert_msg(d == NULL, "case '%s' opened", cases[k].what);
    ck_assert_msg(strstr(ut_last_error(), bad) && strstr(ut_last_error(), cases[k].says),
                  "case '%s': expected the file and \"%s\" in: %s", cases[k].what, cases[k].says, ut_last_error());
  }
  /* The preamble's version and header length. */
  memcpy(buf, orig, len);
  buf[8] = 4;
  spit(bad, buf, len);
  ck_assert_ptr_null(ut_dataset_open(bad));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "version 4"));
  memcpy(buf, orig, len);
  buf[12] = (char)(buf[12] + 1);
  spit(bad, buf, len);
  ck_assert_ptr_null(ut_dataset_open(bad));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "header length"));
  ck_assert_ptr_null(ut_dataset_open("/nonexistent/x.dat"));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "/nonexistent/x.dat: cannot open"));
  free(buf);
  free(orig);
  unlink(good);
  unlink(bad);
}
END_TEST

START_TEST(test_split) {
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("split.dat"));
  const set_shape s = { .n = 60, .h = 1, .w = 1, .ch = 1, .n_classes = 10, .n_contents = 0 };
  write_set(path, s, NULL, NULL);
  ut_dataset *ds = ut_dataset_open(path);
  ck_assert_ut_ptr(ds);
  ut_dataset_split a, b;
  ck_assert_ut_ok(ut_dataset_split_compute(ds, 3, 0.25, 5, &a));
  ck_assert_int_eq(a.n_test_classes, 3);
  int held[10] = { 0 };
  for (int i = 0; i < 3; i++) {
    if (i) ck_assert_int_lt(a.test_classes[i - 1], a.test_classes[i]);
    held[a.test_classes[i]] = 1;
  }
  ck_assert_int_eq(a.n_test_class, 18); /* class_of gives 6 images per class */
  ck_assert_int_eq(a.n_test_sample, 10); /* int(42 * 0.25) */
  ck_assert_int_eq(a.n_train, 32);
  int seen[60] = { 0 };
  const int32_t *lists[3] = { a.train, a.test_class, a.test_sample };
  const int32_t sizes[3] = { a.n_train, a.n_test_class, a.n_test_sample };
  for (int l = 0; l < 3; l++)
    for (int32_t i = 0; i < sizes[l]; i++) {
      if (i) ck_assert_int_lt(lists[l][i - 1], lists[l][i]);
      seen[lists[l][i]]++;
      ck_assert_int_eq(held[ut_dataset_class(ds, lists[l][i])], l == 1);
    }
  for (int i = 0; i < 60; i++) ck_assert_int_eq(seen[i], 1);

  ck_assert_ut_ok(ut_dataset_split_compute(ds, 3, 0.25, 5, &b));
  ck_assert_mem_eq(a.train, b.train, (size_t)a.n_train * sizeof *a.train);
  ck_assert_mem_eq(a.test_sample, b.test_sample, (size_t)a.n_test_sample * sizeof *a.test_sample);
  ck_assert_mem_eq(a.test_classes, b.test_classes, 3 * sizeof *a.test_classes);
  ut_dataset_split_free(&b);
  /* Over many seeds every class is held out sometimes: the choice is not stuck. */
  int ever[10] = { 0 }, differ = 0;
  for (uint64_t seed = 0; seed < 100; seed++) {
    ck_assert_ut_ok(ut_dataset_split_compute(ds, 3, 0.0, seed, &b));
    ck_assert_int_eq(b.n_test_sample, 0);
    for (int i = 0; i < 3; i++) ever[b.test_classes[i]]++;
    differ += memcmp(a.test_classes, b.test_classes, 3 * sizeof *a.test_classes) != 0;
    ut_dataset_split_free(&b);
  }
  for (int c = 0; c < 10; c++) ck_assert_msg(ever[c] > 10, "class %d held out %d times in 100 seeds", c, ever[c]);
  ck_assert_int_gt(differ, 50);
  ut_dataset_split_free(&a);

  ck_assert_int_eq(ut_dataset_split_compute(ds, 10, 0.1, 1, &b), UT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(ut_dataset_split_compute(ds, -1, 0.1, 1, &b), UT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(ut_dataset_split_compute(ds, 1, 1.0, 1, &b), UT_ERR_INVALID_ARGUMENT);
  ck_assert_ut_ok(ut_dataset_split_compute(ds, 0, 0.5, 1, &b));
  ck_assert_int_eq(b.n_test_class, 0);
  ck_assert_int_eq(b.n_test_sample, 30);
  ut_dataset_split_free(&b);
  ut_dataset_close(ds);
  unlink(path);
}
END_TEST

typedef struct {
  int32_t idx[8];
  int n;
  int64_t epoch, batch;
} seen_batch;

/* Checks a batch's floats, classes and contents against the data set and records its order. */
static void check_batch(const ut_dataset *ds, const ut_batch *b, seen_batch *rec) {
  int h = ut_dataset_height(ds), w = ut_dataset_width(ds), ch = ut_dataset_channels(ds);
  for (int i = 0; i < b->n; i++) {
    int32_t id = b->indices[i];
    ck_assert_int_eq(b->classes[i], ut_dataset_class(ds, id));
    ck_assert_int_eq(b->contents[i], ut_dataset_content(ds, id));
    for (int c = 0; c < ch; c++)
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
          float want = pixel_of(id, y, x, c) / 255.0f;
          ck_assert_float_eq_tol(b->images[((size_t)(i * ch + c) * h + y) * w + x], want, 1e-6f);
        }
    rec->idx[i] = id;
  }
  rec->n = b->n;
  rec->epoch = b->epoch;
  rec->batch = b->batch;
}

START_TEST(test_loader) {
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("loader.dat"));
  const set_shape s = { .n = 23, .h = 2, .w = 3, .ch = 3, .n_classes = 4, .n_contents = 5 };
  write_set(path, s, NULL, NULL);
  ut_dataset *ds = ut_dataset_open(path);
  ck_assert_ut_ptr(ds);
  ut_loader_cfg cfg = { .batch = 5, .seed = 11 };
  ut_loader *l = ut_loader_new(ds, &cfg);
  ck_assert_ut_ptr(l);
  ck_assert_int_eq(ut_loader_batches_per_epoch(l), 5);
  seen_batch rec[3][5];
  memset(rec, 0, sizeof rec);
  for (int e = 0; e < 3; e++) {
    int count[23] = { 0 };
    for (int b = 0; b < 5; b++) {
      const ut_batch *bt;
      ck_assert_ut_ok(ut_loader_next(l, &bt));
      ck_assert_int_eq(bt->epoch, e);
      ck_assert_int_eq(bt->batch, b);
      ck_assert_int_eq(bt->n, b == 4 ? 3 : 5);
      check_batch(ds, bt, &rec[e][b]);
      for (int i = 0; i < bt->n; i++) count[bt->indices[i]]++;
    }
    for (int i = 0; i < 23; i++) ck_assert_int_eq(count[i], 1);
  }
  ck_assert_msg(memcmp(rec[0][0].idx, rec[1][0].idx, 5 * sizeof(int32_t)) != 0, "epochs 0 and 1 start alike");
  ck_assert_msg(memcmp(rec[1][0].idx, rec[2][0].idx, 5 * sizeof(int32_t)) != 0, "epochs 1 and 2 start alike");
  ut_loader_free(l);

  /* A new loader with the same seed, resumed at epoch 1 batch 2, sees the same batches; seeks
   * back and forth while the worker is busy change nothing either. */
  ck_assert_ut_ptr(l = ut_loader_new(ds, &cfg));
  ck_assert_ut_ok(ut_loader_seek(l, 1, 2));
  for (int k = 0; k < 8; k++) {
    int e = 1 + (2 + k) / 5, b = (2 + k) % 5;
    const ut_batch *bt;
    ck_assert_ut_ok(ut_loader_next(l, &bt));
    seen_batch r;
    check_batch(ds, bt, &r);
    ck_assert_int_eq(r.epoch, e);
    ck_assert_int_eq(r.batch, b);
    ck_assert_int_eq(r.n, rec[e][b].n);
    ck_assert_mem_eq(r.idx, rec[e][b].idx, (size_t)r.n * sizeof *r.idx);
  }
  for (int k = 0; k < 20; k++) {
    int e = k % 3, b = (k * 3) % 5;
    ck_assert_ut_ok(ut_loader_seek(l, e, b));
    const ut_batch *bt;
    ck_assert_ut_ok(ut_loader_next(l, &bt));
    ck_assert_mem_eq(bt->indices, rec[e][b].idx, (size_t)rec[e][b].n * sizeof(int32_t));
  }
  ck_assert_int_eq(ut_loader_seek(l, 0, 5), UT_ERR_INVALID_ARGUMENT);
  ut_loader_free(l);

  /* A subset in order, with drop_last. */
  const int32_t subset[7] = { 22, 3, 5, 7, 11, 13, 17 };
  cfg = (ut_loader_cfg){ .indices = subset, .n_indices = 7, .batch = 3, .seed = 1, .drop_last = 1, .in_order = 1 };
  ck_assert_ut_ptr(l = ut_loader_new(ds, &cfg));
  ck_assert_int_eq(ut_loader_batches_per_epoch(l), 2);
  for (int k = 0; k < 4; k++) {
    const ut_batch *bt;
    ck_assert_ut_ok(ut_loader_next(l, &bt));
    ck_assert_int_eq(bt->n, 3);
    seen_batch r;
    check_batch(ds, bt, &r);
    ck_assert_mem_eq(r.idx, subset + 3 * (k % 2), 3 * sizeof(int32_t));
  }
  ut_loader_free(l);
  /* Free straight after creation, with the worker mid-batch. */
  ck_assert_ut_ptr(l = ut_loader_new(ds, &cfg));
  ut_loader_free(l);

  cfg = (ut_loader_cfg){ .batch = 0 };
  ck_assert_ptr_null(ut_loader_new(ds, &cfg));
  cfg = (ut_loader_cfg){ .batch = 24, .drop_last = 1 };
  ck_assert_ptr_null(ut_loader_new(ds, &cfg));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "no full batch"));
  const int32_t out_of_range[2] = { 0, 23 };
  cfg = (ut_loader_cfg){ .indices = out_of_range, .n_indices = 2, .batch = 1 };
  ck_assert_ptr_null(ut_loader_new(ds, &cfg));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "is 23"));
  ut_dataset_close(ds);
  unlink(path);
}
END_TEST

START_TEST(test_grid) {
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("grid.jpg"));
  /* Five solid tiles of 4 x 6 in three columns: 2 rows; 2-pixel gaps around. */
  const int n = 5, C = 3, H = 4, W = 6;
  float *imgs = malloc(sizeof(float) * n * C * H * W);
  for (int i = 0; i < n; i++)
    for (int c = 0; c < C; c++)
      for (int p = 0; p < H * W; p++) imgs[(i * C + c) * H * W + p] = (float)((i + c) % 3) * 0.4f + (c == 0 ? 0.05f : 0);
  imgs[0] = -3; /* clamped to 0, does not wrap */
  ck_assert_ut_ok(ut_grid_write_jpeg(path, imgs, n, C, H, W, 3, 100));
  size_t len;
  char *data = slurp(path, &len);
  ut_image img;
  ck_assert_ut_ok(ut_jpeg_decode((const uint8_t *)data, len, path, 3, &img));
  ck_assert_int_eq(img.width, 3 * (W + 2) + 2);
  ck_assert_int_eq(img.height, 2 * (H + 2) + 2);
  /* Tile centres (away from JPEG's edge ringing) and the middle of gaps. */
  for (int i = 0; i < n; i++) {
    int y = 2 + (i / 3) * (H + 2) + H / 2, x = 2 + (i % 3) * (W + 2) + W / 2;
    for (int c = 0; c < C; c++) {
      int want = (int)(((float)((i + c) % 3) * 0.4f + (c == 0 ? 0.05f : 0)) * 255 + 0.5f);
      int got = img.pixels[(y * img.width + x) * 3 + c];
      ck_assert_msg(abs(got - want) <= 12, "tile %d channel %d: %d, expected about %d", i, c, got, want);
    }
  }
  /* The slot of the missing sixth tile is white. */
  int y = 2 + (H + 2) + H / 2, x = 2 + 2 * (W + 2) + W / 2;
  for (int c = 0; c < 3; c++) ck_assert_int_ge(img.pixels[(y * img.width + x) * 3 + c], 245);
  ut_image_free(&img);
  free(data);

  /* Gray, one column. */
  ck_assert_ut_ok(ut_grid_write_jpeg(path, imgs, 2, 1, H, W, 1, 90));
  data = slurp(path, &len);
  ck_assert_ut_ok(ut_jpeg_decode((const uint8_t *)data, len, path, 1, &img));
  ck_assert_int_eq(img.width, W + 4);
  ck_assert_int_eq(img.height, 2 * (H + 2) + 2);
  ut_image_free(&img);
  free(data);
  ck_assert_int_eq(ut_grid_write_jpeg(path, imgs, 5, 2, H, W, 3, 90), UT_ERR_INVALID_ARGUMENT);
  ck_assert_int_ne(ut_grid_write_jpeg("/nonexistent/grid.jpg", imgs, 5, 3, H, W, 3, 90), UT_OK);
  free(imgs);
  unlink(path);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Attributes and masks (format version 3).
 */
static float attribute_of(int i, int a) { return a == 0 ? (float)i * 7.25f - 3.0f : (float)(i % 3); }
static uint8_t mask_of(int i, int y, int x) { return (uint8_t)(i * 13 + y * 29 + x * 3); }

/* A set of n h x w RGB images with `n_attr` attributes ("hue", "style") and masks as asked,
 * following pixel_of, class_of, attribute_of and mask_of; domains when n_domains > 0. */
static void write_labelled(const char *path, int n, int h, int w, int n_attr, int masks, int n_domains) {
  static const char *const attr_names[2] = { "hue", "style" };
  ut_dataset_desc d = { .height = h, .width = w, .channels = 3, .n_classes = 3, .n_domains = n_domains,
                        .n_attributes = n_attr, .attribute_names = attr_names, .has_masks = masks };
  ut_dataset_writer *wr = ut_dataset_writer_open(path, &d);
  ck_assert_ut_ptr(wr);
  uint8_t *img = malloc((size_t)h * w * 3), *mask = malloc((size_t)h * w);
  for (int i = 0; i < n; i++) {
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        mask[y * w + x] = mask_of(i, y, x);
        for (int c = 0; c < 3; c++) img[(y * w + x) * 3 + c] = pixel_of(i, y, x, c);
      }
    float attrs[2] = { attribute_of(i, 0), attribute_of(i, 1) };
    ut_image_labels lb = { .class_id = class_of(i, 3), .content_id = -1, .domain_id = n_domains ? i % n_domains : -1,
                           .attributes = n_attr ? attrs : NULL, .mask = masks ? mask : NULL };
    ck_assert_ut_ok(ut_dataset_writer_add_labels(wr, img, &lb));
  }
  free(img);
  free(mask);
  ck_assert_ut_ok(ut_dataset_writer_finish(wr));
}

START_TEST(test_attributes_masks) {
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("attrs.dat"));
  /* Every combination of attributes, masks and domains reads back exactly, as version 3. */
  for (int combo = 0; combo < 6; combo++) {
    int n_attr = combo % 3, masks = combo / 3, n_domains = combo % 2 ? 2 : 0;
    if (!n_attr && !masks) continue;
    write_labelled(path, 7, 3, 5, n_attr, masks, n_domains);
    size_t len;
    char *raw = slurp(path, &len);
    ck_assert_int_eq(raw[8], 3);
    free(raw);
    ut_dataset *ds = ut_dataset_open(path);
    ck_assert_ut_ptr(ds);
    ck_assert_int_eq(ut_dataset_n_attributes(ds), n_attr);
    ck_assert_int_eq(ut_dataset_has_masks(ds), masks);
    ck_assert_int_eq(ut_dataset_n_domains(ds), n_domains);
    ck_assert_int_eq(ut_dataset_find_attribute(ds, "style"), n_attr == 2 ? 1 : -1);
    ck_assert_int_eq(ut_dataset_find_attribute(ds, "hue"), n_attr ? 0 : -1);
    if (n_attr) ck_assert_str_eq(ut_dataset_attribute_name(ds, 0), "hue");
    ck_assert_ptr_null(ut_dataset_attribute_name(ds, n_attr));
    for (int i = 0; i < 7; i++) {
      ck_assert_int_eq(ut_dataset_class(ds, i), class_of(i, 3));
      ck_assert_int_eq(ut_dataset_domain(ds, i), n_domains ? i % 2 : -1);
      for (int a = 0; a < n_attr; a++) ck_assert_float_eq(ut_dataset_attribute(ds, i, a), attribute_of(i, a));
      const uint8_t *m = ut_dataset_mask(ds, i);
      ck_assert_int_eq(m != NULL, masks);
      for (int p = 0; masks && p < 15; p++) ck_assert_int_eq(m[p], mask_of(i, p / 5, p % 5));
      const uint8_t *im = ut_dataset_image(ds, i);
      for (int p = 0; p < 15; p++) ck_assert_int_eq(im[3 * p + 2], pixel_of(i, p / 5, p % 5, 2));
    }
    ut_dataset_close(ds);
  }

  /* The loader crops and mirrors a mask exactly as its image: the mask here is the image's
   * first channel, so the batch's masks must equal its images' first planes. */
  {
    static const char *const attr_names[1] = { "hue" };
    const int n = 9, h = 6, w = 5;
    ut_dataset_desc d = { .height = h, .width = w, .channels = 3, .n_classes = 2, .n_attributes = 1,
                          .attribute_names = attr_names, .has_masks = 1 };
    ut_dataset_writer *wr = ut_dataset_writer_open(path, &d);
    ck_assert_ut_ptr(wr);
    uint8_t img[6 * 5 * 3], mask[6 * 5];
    for (int i = 0; i < n; i++) {
      for (int p = 0; p < h * w; p++) {
        for (int c = 0; c < 3; c++) img[3 * p + c] = pixel_of(i, p / w, p % w, c);
        mask[p] = img[3 * p];
      }
      float hue = (float)i * 40.0f;
      ck_assert_ut_ok(ut_dataset_writer_add_labels(
          wr, img, &(ut_image_labels){ .class_id = i % 2, .content_id = -1, .domain_id = -1, .attributes = &hue, .mask = mask }));
    }
    ck_assert_ut_ok(ut_dataset_writer_finish(wr));
    ut_dataset *ds = ut_dataset_open(path);
    ck_assert_ut_ptr(ds);
    ut_loader_cfg cfgs[3] = { { .batch = 4, .seed = 3 },
                              { .batch = 4, .seed = 3, .crop = 4, .flip = 1, .signed_range = 1 },
                              { .batch = 4, .seed = 3, .crop = 3, .in_order = 1 } };
    for (int k = 0; k < 3; k++) {
      ut_loader *l = ut_loader_new(ds, &cfgs[k]);
      ck_assert_ut_ptr(l);
      int side_h = cfgs[k].crop ? cfgs[k].crop : h, side_w = cfgs[k].crop ? cfgs[k].crop : w, flipped = 0;
      for (int b = 0; b < 6; b++) {
        const ut_batch *bt;
        ck_assert_ut_ok(ut_loader_next(l, &bt));
        ck_assert_int_eq(bt->n_attributes, 1);
        ck_assert_ptr_nonnull(bt->masks);
        for (int i = 0; i < bt->n; i++) {
          ck_assert_float_eq(bt->attributes[i], (float)bt->indices[i] * 40.0f);
          const float *plane = bt->images + (size_t)i * 3 * side_h * side_w;
          const float *m = bt->masks + (size_t)i * side_h * side_w;
          for (int p = 0; p < side_h * side_w; p++) {
            float want = cfgs[k].signed_range ? (plane[p] + 1.0f) / 2.0f : plane[p];
            ck_assert_msg(fabsf(m[p] - want) < 1e-6f, "loader %d batch %d image %d pixel %d: mask %g, image %g", k, b,
                          i, p, (double)m[p], (double)want);
          }
          /* Mirrored: the first row matches no unmirrored crop position of the file's mask. */
          if (cfgs[k].flip) {
            const uint8_t *raw = ut_dataset_mask(ds, bt->indices[i]);
            int plain = 0;
            for (int y0 = 0; y0 <= h - side_h; y0++)
              for (int x0 = 0; x0 <= w - side_w; x0++) {
                int same = 1;
                for (int x = 0; x < side_w; x++) same &= fabsf(m[x] - (float)raw[y0 * w + x0 + x] / 255.0f) < 1e-6f;
                plain |= same;
              }
            flipped += !plain;
          }
        }
      }
      if (cfgs[k].flip) ck_assert_msg(flipped > 0, "no mask was mirrored in 24 draws");
      ut_loader_free(l);
    }
    ut_dataset_close(ds);
  }
  unlink(path);
}
END_TEST

START_TEST(test_attributes_reject) {
  char path[4096], bad[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("attrs_bad.dat"));
  snprintf(bad, sizeof bad, "%s", test_tmp_path("attrs_bad2.dat"));
  unlink(path);
  static const char *const dup[2] = { "hue", "hue" };
  static const char *const one[1] = { "hue" };
  ut_dataset_desc d = { .height = 2, .width = 2, .channels = 3, .n_classes = 1, .n_attributes = 2,
                        .attribute_names = dup };
  ck_assert_ptr_null(ut_dataset_writer_open(path, &d));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "('hue') is given twice"));
  d.attribute_names = NULL;
  ck_assert_ptr_null(ut_dataset_writer_open(path, &d));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "without names"));

  /* Per image: a missing or unexpected attribute list or mask, and a NaN, are refused and the
   * writer stays usable. */
  d = (ut_dataset_desc){ .height = 2, .width = 2, .channels = 3, .n_classes = 1, .n_attributes = 1,
                         .attribute_names = one, .has_masks = 1 };
  ut_dataset_writer *w = ut_dataset_writer_open(path, &d);
  ck_assert_ut_ptr(w);
  uint8_t img[12] = { 0 }, mask[4] = { 255, 0, 0, 255 };
  float hue = 10.0f, nan_hue = NAN;
  ck_assert_int_eq(ut_dataset_writer_add_labels(w, img, &(ut_image_labels){ .content_id = -1, .domain_id = -1, .mask = mask }),
                   UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "no attributes, expected 1 ('hue')"));
  ck_assert_int_eq(ut_dataset_writer_add_labels(w, img, &(ut_image_labels){ .content_id = -1, .domain_id = -1, .attributes = &hue }),
                   UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "has no mask"));
  ck_assert_int_eq(ut_dataset_writer_add_labels(
                       w, img, &(ut_image_labels){ .content_id = -1, .domain_id = -1, .attributes = &nan_hue, .mask = mask }),
                   UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "attribute 'hue' is nan"));
  ck_assert_int_eq(ut_dataset_writer_add(w, img, 0, -1), UT_ERR_INVALID_ARGUMENT);
  ck_assert_ut_ok(ut_dataset_writer_add_labels(
      w, img, &(ut_image_labels){ .content_id = -1, .domain_id = -1, .attributes = &hue, .mask = mask }));
  ck_assert_ut_ok(ut_dataset_writer_finish(w));
  assert_no_temp_files(path);
  ut_dataset *ds = ut_dataset_open(path);
  ck_assert_ut_ptr(ds);
  ck_assert_int_eq(ut_dataset_count(ds), 1);
  ck_assert_int_eq(ut_dataset_mask(ds, 0)[3], 255);
  ut_dataset_close(ds);

  /* A plain set refuses attributes and masks. */
  d = (ut_dataset_desc){ .height = 2, .width = 2, .channels = 3, .n_classes = 1 };
  ck_assert_ut_ptr(w = ut_dataset_writer_open(bad, &d));
  ck_assert_int_eq(ut_dataset_writer_add_labels(w, img, &(ut_image_labels){ .content_id = -1, .domain_id = -1, .attributes = &hue }),
                   UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "but the set has none"));
  ck_assert_int_eq(ut_dataset_writer_add_labels(w, img, &(ut_image_labels){ .content_id = -1, .domain_id = -1, .mask = mask }),
                   UT_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "has a mask"));
  ut_dataset_writer_abort(w);

  /* A forged file: a NaN in the attribute section, a header without has_masks, a version 3
   * with neither attributes nor masks, a wrong offset, a cut mask section. */
  size_t len;
  char *orig = slurp(path, &len), *buf = malloc(len);
  static const struct {
    const char *what, *from, *to, *says;
  } cases[] = {
    { "has_masks", "\"has_masks\":true", "\"has_masks\":1234", "'has_masks'" },
    { "attribute names", "\"attribute_names\":[\"hue\"]", "\"attribute_names\":[\"\"]   ", "'attribute_names'[0]" },
    { "attributes offset", "\"attributes_offset\":", "\"attributes_offseX\":", "'attributes_offset'" },
    { "n_attributes", "\"n_attributes\":1", "\"n_attributes\":2", "'attribute_names'" },
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    memcpy(buf, orig, len);
    patch(buf, len, cases[k].from, cases[k].to);
    spit(bad, buf, len);
    ck_assert_msg(ut_dataset_open(bad) == NULL, "case '%s' opened", cases[k].what);
    ck_assert_msg(strstr(ut_last_error(), cases[k].says), "case '%s': expected \"%s\" in: %s", cases[k].what,
                  cases[k].says, ut_last_error());
  }
  /* The attribute sits 4 + 64-byte-aligned past the last section before it; find it by value. */
  memcpy(buf, orig, len);
  size_t at = 0;
  for (size_t p = 0; p + 4 <= len; p++) {
    float v;
    memcpy(&v, buf + p, 4);
    if (v == 10.0f && p % 64 == 0) at = p;
  }
  ck_assert_uint_gt(at, 0);
  memcpy(buf + at, &nan_hue, 4);
  spit(bad, buf, len);
  ck_assert_ptr_null(ut_dataset_open(bad));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "attribute 'hue' = nan"));
  spit(bad, orig, len - 1);
  ck_assert_ptr_null(ut_dataset_open(bad));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "truncated"));
  free(buf);
  free(orig);
  unlink(path);
  unlink(bad);
}
END_TEST

static Suite *dataset_suite(void) {
  Suite *s = suite_create("dataset");
  TCase *tc = tcase_create("dataset");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_roundtrip);
  tcase_add_test(tc, test_writer_rejects);
  tcase_add_test(tc, test_open_rejects);
  tcase_add_test(tc, test_split);
  tcase_add_test(tc, test_loader);
  tcase_add_test(tc, test_grid);
  tcase_add_test(tc, test_attributes_masks);
  tcase_add_test(tc, test_attributes_reject);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(dataset_suite()); }
