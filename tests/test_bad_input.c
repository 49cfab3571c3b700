/* Bad input from outside, through the public API, each with the message a user gets (the
 * table in docs/robustness.md points here): forged huge dimensions in a checkpoint, a data
 * set and an IDX file; IDX files of the wrong kind; and image folders that are empty or hold
 * everything a real folder does: images of mixed sizes, gray and CMYK JPEGs, truncated files,
 * folders and dangling links posing as images, unreadable files and names that are not
 * UTF-8. Inputs the fuzz targets (tests/fuzz) once crashed on belong here too. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>

#include "test_support.h"
#include "untangle_data.h"

static char *path_of(const char *name) { return strdup(test_tmp_path(name)); }

static void spit(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

static void assert_error_has(const char *a, const char *b) {
  const char *msg = ut_last_error();
  ck_assert_msg(strstr(msg, a) != NULL, "expected \"%s\" in: %s", a, msg);
  ck_assert_msg(!b || strstr(msg, b) != NULL, "expected \"%s\" in: %s", b, msg);
}

/* A safetensors file: the 8-byte length, the header as given, then n zero bytes of data. */
static void write_safetensors(const char *path, const char *header, size_t n) {
  size_t hl = strlen(header);
  unsigned char *buf = calloc(1, 8 + hl + n);
  for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
  memcpy(buf + 8, header, hl);
  spit(path, buf, 8 + hl + n);
  free(buf);
}

START_TEST(test_checkpoint_huge_and_forged) {
  char *path = path_of("forged.safetensors");
  ut_store *st = ut_store_new(test_runtime(), 1);
  ck_assert_ut_ptr(st);
  /* 2^40 x 2^40 floats in a file of 16 data bytes: refused before anything is allocated. */
  write_safetensors(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,16]}}", 16);
  ck_assert_int_eq(ut_store_load(st, path), UT_ERR_FORMAT);
  assert_error_has(path, "tensor 'w': shape [1099511627776, 1099511627776] needs more than the 16 bytes");
  /* A header length of 2^63: the file would be exabytes long. */
  unsigned char big[16] = { 0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}' };
  spit(path, big, sizeof big);
  ck_assert_int_eq(ut_store_load(st, path), UT_ERR_FORMAT);
  assert_error_has(path, "header length 9223372036854775808 does not fit a file of 16 bytes");
  /* An offset pair that wraps: begin > end. */
  write_safetensors(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4);
  ck_assert_int_eq(ut_store_load(st, path), UT_ERR_FORMAT);
  assert_error_has(path, "\"data_offsets\" is not [begin, end]");
  ut_store_free(st);
  unlink(path);
  free(path);
}
END_TEST

/* A valid one-image data set with header fields replaced (the header keeps its length: the
 * writer pads it with spaces, and the new JSON must fit in them). */
static void write_dataset_with(const char *path, const char *key, json_int_t value) {
  ut_dataset_desc d = { .height = 2, .width = 2, .channels = 1, .n_classes = 1 };
  ut_dataset_writer *w = ut_dataset_writer_open(path, &d);
  ck_assert_ut_ptr(w);
  const uint8_t img[4] = { 1, 2, 3, 4 };
  ck_assert_ut_ok(ut_dataset_writer_add(w, img, 0, -1));
  ck_assert_ut_ok(ut_dataset_writer_finish(w));
  FILE *f = fopen(path, "r+b");
  ck_assert_ptr_nonnull(f);
  unsigned char pre[16];
  ck_assert_uint_eq(fread(pre, 1, 16, f), 16);
  size_t hlen = (size_t)pre[12] | (size_t)pre[13] << 8 | (size_t)pre[14] << 16;
  char *text = calloc(1, hlen + 1);
  ck_assert_uint_eq(fread(text, 1, hlen, f), hlen);
  json_t *h = json_loads(text, 0, NULL);
  ck_assert_ptr_nonnull(h);
  json_object_set_new(h, key, json_integer(value));
  char *out = json_dumps(h, JSON_COMPACT);
  ck_assert_uint_le(strlen(out), hlen);
  memset(text, ' ', hlen);
  memcpy(text, out, strlen(out));
  fseek(f, 16, SEEK_SET);
  ck_assert_uint_eq(fwrite(text, 1, hlen, f), hlen);
  fclose(f);
  free(out);
  json_decref(h);
  free(text);
}

START_TEST(test_dataset_huge_dimensions) {
  char *path = path_of("huge.dat");
  write_dataset_with(path, "count", 2147483647);
  ck_assert_ptr_null(ut_dataset_open(path));
  assert_error_has(path, "2147483647 images of 2 x 2 x 1 need more than the file's");
  write_dataset_with(path, "height", 65536);
  ck_assert_ptr_null(ut_dataset_open(path));
  assert_error_has(path, "1 images of 65536 x 2 x 1 need more than the file's");
  write_dataset_with(path, "width", 65537);
  ck_assert_ptr_null(ut_dataset_open(path));
  assert_error_has(path, "header field 'width' is 65537, expected 1 .. 65536");
  unlink(path);
  free(path);
}
END_TEST

/* Imports images + labels as IDX files and expects failure with a message holding `says`. */
static void expect_idx_failure(const uint8_t *images, size_t ilen, const char *says) {
  char *ip = path_of("bad-images.idx"), *lp = path_of("bad-labels.idx"), *out = path_of("bad-idx.dat");
  static const uint8_t labels[] = { 0, 0, 8, 1, 0, 0, 0, 1, 0 };
  spit(ip, images, ilen);
  spit(lp, labels, sizeof labels);
  ut_import_cfg cfg = { .size = 4, .channels = 1 };
  ck_assert_int_ne(ut_import_idx(ip, lp, out, NULL, &cfg, NULL), UT_OK);
  assert_error_has(ip, says);
  ck_assert_int_ne(access(out, F_OK), 0);
  unlink(ip);
  unlink(lp);
  free(ip);
  free(lp);
  free(out);
}

START_TEST(test_idx_bad_files) {
  const uint8_t huge[] = { 0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2 };
  expect_idx_failure(huge, sizeof huge, "IDX dimension 0 is 4294967295: the values would need more than the file's 18 bytes");
  const uint8_t floats[] = { 0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0 };
  expect_idx_failure(floats, sizeof floats, "IDX value type 0x0d, this reader takes unsigned bytes (0x08)");
  const uint8_t magic[] = { 'P', 'K', 3, 4, 0, 0, 0, 0 };
  expect_idx_failure(magic, sizeof magic, "not an IDX file");
  const uint8_t truncated[] = { 0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 7, 7, 7 };
  expect_idx_failure(truncated, sizeof truncated, "the IDX dimensions give 4 values but the file holds 3 bytes of them (truncated?)");
}
END_TEST

static void write_cmyk_jpeg(const char *path, int side) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  jpeg_stdio_dest(&c, f);
  c.image_width = c.image_height = (JDIMENSION)side;
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_start_compress(&c, TRUE);
  uint8_t *row = calloc((size_t)side, 4);
  while (c.next_scanline < c.image_height) jpeg_write_scanlines(&c, &row, 1);
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  fclose(f);
  free(row);
}

static void jpeg_file(const char *dir, const char *name, int w, int h, int channels) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  uint8_t *px = calloc((size_t)w * h, (size_t)channels);
  for (size_t i = 0; i < (size_t)w * h * channels; i++) px[i] = (uint8_t)(i * 13);
  ck_assert_ut_ok(ut_jpeg_write(path, px, w, h, channels, 90));
  free(px);
}

static void skipped(void *user, const char *file, const char *reason) {
  char *log = user;
  size_t n = strlen(log);
  snprintf(log + n, 8192 - n, "%s: %s\n", strrchr(file, '/') + 1, reason);
}

static char *mkdir_in(const char *parent, const char *name) {
  char *p = malloc(4096);
  snprintf(p, 4096, "%s/%s", parent, name);
  ck_assert_msg(mkdir(p, 0755) == 0 || errno == EEXIST, "mkdir %s", p);
  return p;
}

static void remove_tree(const char *path) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  ck_assert_int_eq(system(cmd), 0);
}

START_TEST(test_import_folder_bad_and_odd_files) {
  char *root = path_of("folder"), *out = path_of("folder.dat");
  remove_tree(root);
  ck_assert_int_eq(mkdir(root, 0755), 0);
  ut_import_cfg cfg = { .size = 8, .channels = 3 };
  ck_assert_int_eq(ut_import_folder(root, out, &cfg, NULL), UT_ERR_FORMAT);
  assert_error_has(root, "no class folders (expected one sub-folder per class, holding JPEG files)");

  char *a = mkdir_in(root, "a"), *b = mkdir_in(root, "b"), *latin1 = mkdir_in(root, "caf\xe9");
  jpeg_file(a, "wide.jpg", 40, 16, 3); /* mixed sizes: each is centre-cropped and resized */
  jpeg_file(a, "small.jpg", 5, 5, 3);
  jpeg_file(a, "gray.jpg", 12, 20, 1);
  char p[4096];
  snprintf(p, sizeof p, "%s/cmyk.jpg", b);
  write_cmyk_jpeg(p, 16);
  jpeg_file(b, "name-\xff\xfe.jpg", 9, 9, 3);
  jpeg_file(latin1, "x.jpg", 8, 8, 3);
  snprintf(p, sizeof p, "%s/truncated.jpg", b);
  jpeg_file(b, "truncated.jpg", 32, 32, 3);
  ck_assert_int_eq(truncate(p, 200), 0);
  snprintf(p, sizeof p, "%s/empty.jpg", b);
  spit(p, "", 0);
  free(mkdir_in(b, "folder.jpg"));
  snprintf(p, sizeof p, "%s/dangling.jpg", b);
  ck_assert_int_eq(symlink("/nonexistent/untangle", p), 0);
  /* Permissions stop nobody as root, so the unreadable file exists only for other users. */
  int as_root = geteuid() == 0;
  if (!as_root) {
    jpeg_file(b, "locked.jpg", 8, 8, 3);
    snprintf(p, sizeof p, "%s/locked.jpg", b);
    ck_assert_int_eq(chmod(p, 0), 0);
  }

  char log[8192] = "";
  cfg.skipped = skipped;
  cfg.user = log;
  ut_import_stats st;
  ck_assert_ut_ok(ut_import_folder(root, out, &cfg, &st));
  ck_assert_int_eq(st.imported, 6);
  ck_assert_int_eq(st.skipped, as_root ? 4 : 5);
  ck_assert_int_eq(st.n_classes, 3);
  ck_assert_msg(strstr(log, "truncated.jpg: corrupt JPEG: Premature end of JPEG file"), "%s", log);
  ck_assert_msg(strstr(log, "empty.jpg: not a JPEG file"), "%s", log);
  ck_assert_msg(strstr(log, "folder.jpg: not a regular file"), "%s", log);
  ck_assert_msg(strstr(log, "dangling.jpg: not a regular file"), "%s", log);
  ck_assert_msg(as_root || strstr(log, "locked.jpg: cannot open: Permission denied"), "%s", log);
  ut_dataset *ds = ut_dataset_open(out);
  ck_assert_ut_ptr(ds);
  ck_assert_int_eq(ut_dataset_count(ds), 6);
  ck_assert_str_eq(ut_dataset_class_name(ds, 2), "caf?"); /* not UTF-8: the byte becomes '?' */
  ut_dataset_close(ds);
  unlink(out);
  remove_tree(root);
  free(a);
  free(b);
  free(latin1);
  free(root);
  free(out);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("bad_input");
  TCase *tc = tcase_create("bad_input");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_checkpoint_huge_and_forged);
  tcase_add_test(tc, test_dataset_huge_dimensions);
  tcase_add_test(tc, test_idx_bad_files);
  tcase_add_test(tc, test_import_folder_bad_and_odd_files);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(suite()); }
