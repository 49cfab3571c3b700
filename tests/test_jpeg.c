/* JPEG decoding (RGB, grayscale, CMYK; corrupt and non-JPEG input), the square crop and
 * resize against a plain reference, encoding, folder import (skipped files counted and named)
 * and IDX import (plain and gzip). JPEGs are written here with libjpeg directly, so the
 * decoder is checked against files it did not make. Host only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>

#include "test_support.h"
#include "untangle_data.h"

/* Encodes w x h pixels of `comps` components in colour space `cs` with libjpeg. */
static void write_jpeg(const char *path, const uint8_t *px, int w, int h, int comps, J_COLOR_SPACE cs, int quality) {
  struct jpeg_compress_struct ci;
  struct jpeg_error_mgr err;
  ci.err = jpeg_std_error(&err);
  jpeg_create_compress(&ci);
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  jpeg_stdio_dest(&ci, f);
  ci.image_width = (JDIMENSION)w;
  ci.image_height = (JDIMENSION)h;
  ci.input_components = comps;
  ci.in_color_space = cs;
  jpeg_set_defaults(&ci);
  jpeg_set_quality(&ci, quality, TRUE);
  /* No chroma subsampling, so colours of small patches survive. */
  for (int c = 0; c < ci.num_components; c++) ci.comp_info[c].h_samp_factor = ci.comp_info[c].v_samp_factor = 1;
  jpeg_start_compress(&ci, TRUE);
  while (ci.next_scanline < ci.image_height) {
    JSAMPROW row = (JSAMPROW)(px + (size_t)ci.next_scanline * w * comps);
    jpeg_write_scanlines(&ci, &row, 1);
  }
  jpeg_finish_compress(&ci);
  jpeg_destroy_compress(&ci);
  fclose(f);
}

static uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc(*len + 1);
  ck_assert_int_eq(fread(b, 1, *len, f), *len);
  fclose(f);
  return b;
}

static void spit(const char *path, const void *b, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fwrite(b, 1, len, f), len);
  fclose(f);
}

/* A smooth colour gradient: JPEG at quality 100 keeps it within a few levels. */
static uint8_t *gradient(int w, int h, int comps) {
  uint8_t *p = malloc((size_t)w * h * comps);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < comps; c++) p[(y * w + x) * comps + c] = (uint8_t)(40 + (x * 150 / w) + c * 20 + y * 30 / h);
  return p;
}

static int max_diff(const uint8_t *a, const uint8_t *b, size_t n) {
  int m = 0;
  for (size_t i = 0; i < n; i++) m = abs(a[i] - b[i]) > m ? abs(a[i] - b[i]) : m;
  return m;
}

static ut_image decode_file(const char *path, int channels) {
  size_t len;
  uint8_t *data = slurp(path, &len);
  ut_image img;
  ck_assert_ut_ok(ut_jpeg_decode(data, len, path, channels, &img));
  free(data);
  return img;
}

START_TEST(test_decode_colour_spaces) {
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("dec.jpg"));
  const int w = 37, h = 23;
  uint8_t *rgb = gradient(w, h, 3);
  write_jpeg(path, rgb, w, h, 3, JCS_RGB, 100);
  ut_image img = decode_file(path, 3);
  ck_assert_int_eq(img.width, w);
  ck_assert_int_eq(img.height, h);
  ck_assert_int_eq(img.channels, 3);
  ck_assert_int_le(max_diff(img.pixels, rgb, (size_t)w * h * 3), 4);
  ut_image_free(&img);
  /* RGB to gray: ITU-R 601 luma of the source. */
  img = decode_file(path, 1);
  ck_assert_int_eq(img.channels, 1);
  for (int i = 0; i < w * h; i++) {
    double luma = 0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2];
    ck_assert_msg(fabs(img.pixels[i] - luma) <= 4, "pixel %d: gray %d, luma %.1f", i, img.pixels[i], luma);
  }
  ut_image_free(&img);

  /* Grayscale file: one channel as is, or three equal ones. */
  uint8_t *gray = gradient(w, h, 1);
  write_jpeg(path, gray, w, h, 1, JCS_GRAYSCALE, 100);
  img = decode_file(path, 1);
  ck_assert_int_le(max_diff(img.pixels, gray, (size_t)w * h), 3);
  ut_image_free(&img);
  img = decode_file(path, 3);
  for (int i = 0; i < w * h; i++) {
    ck_assert_int_eq(img.pixels[3 * i], img.pixels[3 * i + 1]);
    ck_assert_int_eq(img.pixels[3 * i], img.pixels[3 * i + 2]);
    ck_assert_int_le(abs(img.pixels[3 * i] - gray[i]), 3);
  }
  ut_image_free(&img);

  /* CMYK with libjpeg's Adobe marker, stored inverted as Photoshop does: four solid patches. */
  static const uint8_t inks[4][4] = { { 0, 0, 0, 0 }, { 255, 0, 0, 0 }, { 0, 128, 255, 0 }, { 0, 0, 0, 100 } };
  const int cw = 16, chh = 16;
  uint8_t *cmyk = malloc((size_t)cw * chh * 4);
  for (int y = 0; y < chh; y++)
    for (int x = 0; x < cw; x++)
      for (int c = 0; c < 4; c++) cmyk[(y * cw + x) * 4 + c] = (uint8_t)(255 - inks[(y / 8) * 2 + x / 8][c]);
  write_jpeg(path, cmyk, cw, chh, 4, JCS_CMYK, 100);
  img = decode_file(path, 3);
  for (int p = 0; p < 4; p++) {
    int y = (p / 2) * 8 + 4, x = (p % 2) * 8 + 4;
    for (int c = 0; c < 3; c++) {
      double want = (255.0 - inks[p][c]) * (255.0 - inks[p][3]) / 255.0;
      ck_assert_msg(fabs(img.pixels[(y * cw + x) * 3 + c] - want) <= 4, "CMYK patch %d channel %d: %d, expected %.1f", p,
                    c, img.pixels[(y * cw + x) * 3 + c], want);
    }
  }
  ut_image_free(&img);
  img = decode_file(path, 1);
  ck_assert_int_ge(img.pixels[4 * cw + 4], 250); /* white patch */
  ut_image_free(&img);
  free(cmyk);
  free(rgb);
  free(gray);
  unlink(path);
}
END_TEST

START_TEST(test_decode_rejects) {
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("bad.jpg"));
  ut_image img;
  const uint8_t text[] = "hello, this is not an image\n";
  ck_assert_int_eq(ut_jpeg_decode(text, sizeof text, "notes.txt", 3, &img), UT_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "notes.txt: not a JPEG"));
  ck_assert_int_eq(ut_jpeg_decode(text, 0, "empty.jpg", 3, &img), UT_ERR_FORMAT);
  const uint8_t soi_only[] = { 0xFF, 0xD8, 0xFF, 0xE0, 0, 0 };
  ck_assert_int_eq(ut_jpeg_decode(soi_only, sizeof soi_only, "soi.jpg", 3, &img), UT_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "soi.jpg: corrupt JPEG"));

  uint8_t *rgb = gradient(40, 40, 3);
  write_jpeg(path, rgb, 40, 40, 3, JCS_RGB, 90);
  size_t len;
  uint8_t *data = slurp(path, &len);
  /* Truncated: libjpeg only warns ("premature end"); we fail it rather than return grey. */
  ck_assert_int_eq(ut_jpeg_decode(data, len / 2, "half.jpg", 3, &img), UT_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "half.jpg: corrupt JPEG"));
  ck_assert_int_eq(ut_jpeg_decode(data, len, "whole.jpg", 2, &img), UT_ERR_INVALID_ARGUMENT);
  /* Flipped bytes anywhere: decoded or refused, never a crash (ASan builds check the rest). */
  uint64_t state = 7;
  for (int k = 0; k < 200; k++) {
    uint8_t *mut = malloc(len);
    memcpy(mut, data, len);
    float r[3];
    test_fill_uniform(&state, r, 3, 0, 1);
    size_t at = 2 + (size_t)(r[0] * (float)(len - 2));
    mut[at < len ? at : len - 1] ^= (uint8_t)(1 + r[1] * 254);
    ut_status s = ut_jpeg_decode(mut, len, "flipped.jpg", r[2] < 0.5f ? 1 : 3, &img);
    ck_assert_msg(s == UT_OK || s == UT_ERR_FORMAT, "mutation %d gave %s", k, ut_status_name(s));
    if (s == UT_OK) ut_image_free(&img);
    free(mut);
  }
  free(data);
  free(rgb);
  unlink(path);
}
END_TEST

/* The reference resize, straight from the definitions in double: area average of the source
 * square under each output pixel when shrinking, bilinear with half-pixel centres when
 * enlarging. */
static double ref_weight(int in, int out, int o, int j) {
  double r = (double)in / out;
  if (in >= out) {
    double lo = fmax(o * r, j), hi = fmin((o + 1) * r, j + 1);
    return hi > lo ? (hi - lo) / r : 0;
  }
  double c = fmax((o + 0.5) * r - 0.5, 0);
  int j0 = (int)c;
  double f = c - j0;
  if (j0 >= in - 1) return j == in - 1 ? 1 : 0;
  return j == j0 ? 1 - f : j == j0 + 1 ? f : 0;
}

static void ref_square_resize(const ut_image *im, int size, uint8_t *out) {
  int side = im->width < im->height ? im->width : im->height;
  int x0 = (im->width - side) / 2, y0 = (im->height - side) / 2, C = im->channels;
  for (int oy = 0; oy < size; oy++)
    for (int ox = 0; ox < size; ox++)
      for (int c = 0; c < C; c++) {
        double acc = 0;
        for (int y = 0; y < side; y++) {
          double wy = ref_weight(side, size, oy, y);
          if (wy == 0) continue;
          for (int x = 0; x < side; x++)
            acc += wy * ref_weight(side, size, ox, x) * im->pixels[((y0 + y) * im->width + x0 + x) * C + c];
        }
        out[(oy * size + ox) * C + c] = (uint8_t)fmin(255, floor(acc + 0.5));
      }
}

START_TEST(test_square_resize) {
  static const struct {
    int w, h, c, size;
  } cases[] = { { 10, 10, 3, 4 }, { 12, 7, 3, 3 }, { 7, 12, 1, 5 }, { 5, 5, 3, 5 }, { 3, 3, 1, 7 },
                { 1, 1, 3, 4 },   { 9, 9, 1, 1 },  { 28, 28, 1, 32 }, { 640, 480, 3, 64 }, { 13, 11, 3, 13 } };
  uint64_t state = 3;
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int w = cases[k].w, h = cases[k].h, C = cases[k].c, S = cases[k].size;
    size_t n = (size_t)w * h * C;
    float *f = malloc(n * sizeof *f);
    test_fill_uniform(&state, f, (int64_t)n, 0, 256);
    ut_image im = { .width = w, .height = h, .channels = C, .pixels = malloc(n) };
    for (size_t i = 0; i < n; i++) im.pixels[i] = (uint8_t)f[i];
    uint8_t *got = malloc((size_t)S * S * C), *want = malloc((size_t)S * S * C);
    ck_assert_ut_ok(ut_image_square_resize(&im, S, got));
    ref_square_resize(&im, S, want);
    /* float accumulation against double: at most one level apart after rounding */
    ck_assert_msg(max_diff(got, want, (size_t)S * S * C) <= 1, "%dx%dx%d -> %d: off by %d", w, h, C, S,
                  max_diff(got, want, (size_t)S * S * C));
    if (w == h && w == S) ck_assert_mem_eq(got, im.pixels, n); /* same size: unchanged */
    free(f);
    free(im.pixels);
    free(got);
    free(want);
  }
}
END_TEST

START_TEST(test_write_and_read_back) {
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("rw.jpg"));
  const int w = 30, h = 18;
  uint8_t *rgb = gradient(w, h, 3);
  ck_assert_ut_ok(ut_jpeg_write(path, rgb, w, h, 3, 100));
  ut_image img = decode_file(path, 3);
  ck_assert_int_le(max_diff(img.pixels, rgb, (size_t)w * h * 3), 6);
  /* read_float: the centred 18 x 18 square resized to 9, as floats in [0, 1], CHW. */
  float chw[3 * 9 * 9];
  ck_assert_ut_ok(ut_jpeg_read_float(path, 3, 9, chw));
  uint8_t ref[9 * 9 * 3];
  ck_assert_ut_ok(ut_image_square_resize(&img, 9, ref));
  for (int c = 0; c < 3; c++)
    for (int p = 0; p < 81; p++) ck_assert_float_eq_tol(chw[c * 81 + p], ref[p * 3 + c] / 255.0f, 1e-6f);
  ut_image_free(&img);

  /* Failures leave the destination alone. */
  ck_assert_int_eq(ut_jpeg_write(path, rgb, w, h, 3, 0), UT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(ut_jpeg_write(path, rgb, w, h, 2, 90), UT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(ut_jpeg_write("/nonexistent/x.jpg", rgb, w, h, 3, 90), UT_ERR_IO);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "/nonexistent/x.jpg"));
  img = decode_file(path, 3);
  ck_assert_int_eq(img.width, w);
  ut_image_free(&img);
  ck_assert_int_eq(ut_jpeg_read_float("/nonexistent/x.jpg", 3, 9, chw), UT_ERR_IO);
  free(rgb);
  unlink(path);
}
END_TEST

typedef struct {
  int64_t last_done, last_total, calls;
  char skipped[8][256];
  int n_skipped;
} import_log;

static void on_progress(void *user, int64_t done, int64_t total) {
  import_log *l = user;
  ck_assert_int_eq(done, l->last_done + 1);
  l->last_done = done;
  l->last_total = total;
  l->calls++;
}

static void on_skipped(void *user, const char *file, const char *reason) {
  import_log *l = user;
  ck_assert_int_lt(l->n_skipped, 8);
  ck_assert_msg(*reason, "no reason for %s", file);
  const char *slash = strrchr(file, '/');
  snprintf(l->skipped[l->n_skipped++], sizeof l->skipped[0], "%s", slash ? slash + 1 : file);
}

static int was_skipped(const import_log *l, const char *name) {
  for (int i = 0; i < l->n_skipped; i++)
    if (strcmp(l->skipped[i], name) == 0) return 1;
  return 0;
}

static void path_join(char *out, size_t size, const char *a, const char *b) { snprintf(out, size, "%s/%s", a, b); }

START_TEST(test_import_folder) {
  char root[4096], p[8192], out[4096];
  snprintf(root, sizeof root, "%s", test_tmp_path("import"));
  snprintf(out, sizeof out, "%s", test_tmp_path("import.dat"));
  mkdir(root, 0755);
  path_join(p, sizeof p, root, "cat");
  mkdir(p, 0755);
  path_join(p, sizeof p, root, "dog");
  mkdir(p, 0755);
  uint8_t *rgb = gradient(20, 12, 3), *gray = gradient(9, 9, 1);
  uint8_t cmyk[8 * 8 * 4];
  memset(cmyk, 200, sizeof cmyk);
  path_join(p, sizeof p, root, "cat/a.jpg");
  write_jpeg(p, rgb, 20, 12, 3, JCS_RGB, 95);
  path_join(p, sizeof p, root, "cat/b.jpeg");
  write_jpeg(p, gray, 9, 9, 1, JCS_GRAYSCALE, 95);
  path_join(p, sizeof p, root, "cat/c.JPG");
  write_jpeg(p, cmyk, 8, 8, 4, JCS_CMYK, 95);
  path_join(p, sizeof p, root, "cat/notes.txt");
  spit(p, "not a picture", 13);
  path_join(p, sizeof p, root, "cat/.DS_Store");
  spit(p, "ignored", 7);
  path_join(p, sizeof p, root, "dog/x.jpg");
  write_jpeg(p, rgb, 20, 12, 3, JCS_RGB, 80);
  size_t len;
  uint8_t *whole = slurp(p, &len);
  path_join(p, sizeof p, root, "dog/broken.jpg");
  spit(p, whole, len / 2);
  path_join(p, sizeof p, root, "stray.jpg");
  spit(p, whole, len);
  free(whole);

  import_log log = { 0 };
  ut_import_cfg cfg = { .size = 8, .channels = 3, .progress = on_progress, .skipped = on_skipped, .user = &log };
  ut_import_stats st;
  ck_assert_ut_ok(ut_import_folder(root, out, &cfg, &st));
  ck_assert_int_eq(st.imported, 4);
  ck_assert_int_eq(st.skipped, 3);
  ck_assert_int_eq(st.n_classes, 2);
  ck_assert_int_eq(st.empty_classes, 0);
  ck_assert_int_eq(log.last_done, 6); /* the six files inside class folders */
  ck_assert_int_eq(log.last_total, 6);
  ck_assert(was_skipped(&log, "notes.txt") && was_skipped(&log, "broken.jpg") && was_skipped(&log, "stray.jpg"));

  ut_dataset *ds = ut_dataset_open(out);
  ck_assert_ut_ptr(ds);
  ck_assert_int_eq(ut_dataset_count(ds), 4);
  ck_assert_str_eq(ut_dataset_class_name(ds, 0), "cat");
  ck_assert_str_eq(ut_dataset_class_name(ds, 1), "dog");
  ck_assert_int_eq(ut_dataset_n_contents(ds), 0);
  static const char *const files[4] = { "cat/a.jpg", "cat/b.jpeg", "cat/c.JPG", "dog/x.jpg" };
  for (int i = 0; i < 4; i++) {
    uint8_t want[8 * 8 * 3];
    path_join(p, sizeof p, root, files[i]);
    ck_assert_ut_ok(ut_jpeg_load_square(p, 3, 8, want));
    ck_assert_mem_eq(ut_dataset_image(ds, i), want, sizeof want);
    ck_assert_int_eq(ut_dataset_class(ds, i), i < 3 ? 0 : 1);
    ck_assert_int_eq(ut_dataset_content(ds, i), -1);
  }
  ck_assert_ptr_nonnull(strstr(ut_dataset_source_json(ds), "\"kind\":\"folder\""));
  ut_dataset_close(ds);

  /* Gray import of the same folder. */
  cfg = (ut_import_cfg){ .size = 5, .channels = 1 };
  ck_assert_ut_ok(ut_import_folder(root, out, &cfg, &st));
  ck_assert_ut_ptr(ds = ut_dataset_open(out));
  ck_assert_int_eq(ut_dataset_channels(ds), 1);
  ck_assert_int_eq(ut_dataset_height(ds), 5);
  ut_dataset_close(ds);

  /* No class folder, or no readable image: an error, and the previous output stays. */
  size_t before_len;
  uint8_t *before = slurp(out, &before_len);
  char empty[4096];
  snprintf(empty, sizeof empty, "%s", test_tmp_path("import-empty"));
  mkdir(empty, 0755);
  ck_assert_int_eq(ut_import_folder(empty, out, &cfg, &st), UT_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "no class folders"));
  path_join(p, sizeof p, empty, "only");
  mkdir(p, 0755);
  path_join(p, sizeof p, empty, "only/junk.jpg");
  spit(p, "junk", 4);
  ck_assert_int_eq(ut_import_folder(empty, out, &cfg, &st), UT_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "no image could be read"));
  ck_assert_int_eq(st.skipped, 1);
  ck_assert_int_eq(ut_import_folder("/nonexistent-folder", out, &cfg, &st), UT_ERR_IO);
  size_t after_len;
  uint8_t *after = slurp(out, &after_len);
  ck_assert_uint_eq(before_len, after_len);
  ck_assert_mem_eq(before, after, before_len);
  free(before);
  free(after);
  unlink(p);
  path_join(p, sizeof p, empty, "only");
  rmdir(p);
  rmdir(empty);

  static const char *const all[] = { "cat/a.jpg", "cat/b.jpeg", "cat/c.JPG", "cat/notes.txt", "cat/.DS_Store",
                                     "dog/x.jpg", "dog/broken.jpg", "stray.jpg", "cat", "dog" };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    path_join(p, sizeof p, root, all[i]);
    if (unlink(p) != 0) rmdir(p);
  }
  rmdir(root);
  unlink(out);
  free(rgb);
  free(gray);
}
END_TEST

/* An IDX file of unsigned bytes with the given dimensions. */
static void write_idx(const char *path, const uint32_t *dims, int nd, const uint8_t *data, size_t n) {
  uint8_t head[4 + 16] = { 0, 0, 0x08, (uint8_t)nd };
  for (int i = 0; i < nd; i++)
    for (int b = 0; b < 4; b++) head[4 + 4 * i + b] = (uint8_t)(dims[i] >> (24 - 8 * b));
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  fwrite(head, 1, 4 + 4 * (size_t)nd, f);
  fwrite(data, 1, n, f);
  fclose(f);
}

START_TEST(test_import_idx) {
  char im[4096], lb[4096], out[4096], cmd[16384];
  snprintf(im, sizeof im, "%s", test_tmp_path("images.idx"));
  snprintf(lb, sizeof lb, "%s", test_tmp_path("labels.idx"));
  snprintf(out, sizeof out, "%s", test_tmp_path("idx.dat"));
  /* 5 images of 6 rows x 4 columns (the centred 4 x 4 square is kept), labels 0..2. */
  uint8_t pixels[5 * 24], labels[5] = { 2, 0, 1, 2, 0 };
  for (int i = 0; i < 5 * 24; i++) pixels[i] = (uint8_t)(i * 7);
  write_idx(im, (const uint32_t[]){ 5, 6, 4 }, 3, pixels, sizeof pixels);
  write_idx(lb, (const uint32_t[]){ 5 }, 1, labels, sizeof labels);
  ut_import_cfg cfg = { .size = 2, .channels = 1 };
  ut_import_stats st;
  const char *names[] = { "zero", "one", "two", NULL };
  ck_assert_ut_ok(ut_import_idx(im, lb, out, names, &cfg, &st));
  ck_assert_int_eq(st.imported, 5);
  ut_dataset *ds = ut_dataset_open(out);
  ck_assert_ut_ptr(ds);
  ck_assert_int_eq(ut_dataset_count(ds), 5);
  ck_assert_int_eq(ut_dataset_n_classes(ds), 3);
  ck_assert_str_eq(ut_dataset_class_name(ds, 2), "two");
  for (int i = 0; i < 5; i++) {
    ck_assert_int_eq(ut_dataset_class(ds, i), labels[i]);
    ut_image src = { .width = 4, .height = 6, .channels = 1, .pixels = pixels + i * 24 };
    uint8_t want[4];
    ref_square_resize(&src, 2, want);
    ck_assert_int_le(max_diff(ut_dataset_image(ds, i), want, 4), 1);
  }
  ut_dataset_close(ds);

  /* gzip-compressed, RGB, names from the largest label. */
  snprintf(cmd, sizeof cmd, "gzip -f -k '%s' '%s'", im, lb);
  ck_assert_int_eq(system(cmd), 0);
  char img_gz[4200], lbl_gz[4200];
  snprintf(img_gz, sizeof img_gz, "%s.gz", im);
  snprintf(lbl_gz, sizeof lbl_gz, "%s.gz", lb);
  cfg.channels = 3;
  ck_assert_ut_ok(ut_import_idx(img_gz, lbl_gz, out, NULL, &cfg, &st));
  ck_assert_ut_ptr(ds = ut_dataset_open(out));
  ck_assert_int_eq(ut_dataset_channels(ds), 3);
  ck_assert_str_eq(ut_dataset_class_name(ds, 1), "class-1");
  const uint8_t *px = ut_dataset_image(ds, 3);
  ck_assert(px[0] == px[1] && px[1] == px[2]);
  ut_dataset_close(ds);

  /* Bad inputs fail with the file named and leave the output alone. */
  size_t before_len;
  uint8_t *before = slurp(out, &before_len);
  ck_assert_int_eq(ut_import_idx(im, lb, out, (const char *[]){ "a", "b", NULL }, &cfg, &st), UT_ERR_MISMATCH);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "label 2"));
  ck_assert_int_eq(ut_import_idx(im, im, out, NULL, &cfg, &st), UT_ERR_FORMAT); /* 3-D labels */
  write_idx(lb, (const uint32_t[]){ 4 }, 1, labels, 4);
  ck_assert_int_eq(ut_import_idx(im, lb, out, NULL, &cfg, &st), UT_ERR_MISMATCH);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "5 images"));
  write_idx(lb, (const uint32_t[]){ 5 }, 1, labels, 4); /* one label short */
  ck_assert_int_eq(ut_import_idx(im, lb, out, NULL, &cfg, &st), UT_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "truncated"));
  write_idx(lb, (const uint32_t[]){ 0xFFFFFFFFu }, 1, labels, 5); /* a forged huge size */
  ck_assert_int_eq(ut_import_idx(im, lb, out, NULL, &cfg, &st), UT_ERR_FORMAT);
  uint8_t wrong_type[8] = { 0, 0, 0x0D, 1, 0, 0, 0, 0 };
  spit(lb, wrong_type, sizeof wrong_type);
  ck_assert_int_eq(ut_import_idx(im, lb, out, NULL, &cfg, &st), UT_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "0x0d"));
  uint8_t *gz = slurp(img_gz, &before_len);
  spit(img_gz, gz, before_len - 12); /* truncated gzip stream */
  free(gz);
  ck_assert_int_eq(ut_import_idx(img_gz, lbl_gz, out, NULL, &cfg, &st), UT_ERR_FORMAT);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), img_gz));
  size_t after_len;
  uint8_t *after = slurp(out, &after_len);
  free(before);
  before = NULL;
  ck_assert_ptr_nonnull(ds = ut_dataset_open(out)); /* still the RGB set written above */
  ck_assert_int_eq(ut_dataset_channels(ds), 3);
  ut_dataset_close(ds);
  free(after);
  unlink(im);
  unlink(lb);
  unlink(img_gz);
  unlink(lbl_gz);
  unlink(out);
}
END_TEST

static Suite *jpeg_suite(void) {
  Suite *s = suite_create("jpeg");
  TCase *tc = tcase_create("jpeg");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_decode_colour_spaces);
  tcase_add_test(tc, test_decode_rejects);
  tcase_add_test(tc, test_square_resize);
  tcase_add_test(tc, test_write_and_read_back);
  tcase_add_test(tc, test_import_folder);
  tcase_add_test(tc, test_import_idx);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(jpeg_suite()); }
