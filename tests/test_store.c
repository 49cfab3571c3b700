/* The store: tensors and their initialisation, counters, metadata, and safetensors checkpoints
 * (round trip, atomic save, and every kind of bad file leaving the store as it was). */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph_internal.h"
#include "philox.h"
#include "runtime_internal.h"
#include "test_support.h"

static const ut_init ZERO = { UT_INIT_ZERO, 0, 0 };

static ut_store *new_store(uint64_t seed) {
  ut_store *st = ut_store_new(test_runtime(), seed);
  ck_assert_ut_ptr(st);
  return st;
}

static float *read_all(ut_store *st, const char *name, size_t n) {
  ut_store_tensor *t = ut_store_find(st, name);
  ck_assert_msg(t != NULL, "tensor '%s' is missing", name);
  float *v = malloc((n ? n : 1) * sizeof *v);
  ck_assert_ut_ok(ut_store_tensor_read(st, t, v));
  return v;
}

/* ---- tensors, counters, metadata ----------------------------------------------------------- */

START_TEST(tensor_get_and_shapes) {
  ut_store *st = new_store(1);
  ut_store_tensor *a = ut_store_tensor_get(st, "a", UT_SHAPE(2, 3), ZERO);
  ck_assert_ut_ptr(a);
  ck_assert_ptr_eq(ut_store_tensor_get(st, "a", UT_SHAPE(2, 3), (ut_init){ UT_INIT_CONST, 5, 0 }), a);
  ck_assert_ptr_null(ut_store_tensor_get(st, "a", UT_SHAPE(3, 2), ZERO));
  ck_assert_msg(strstr(ut_last_error(), "'a'") && strstr(ut_last_error(), "[2, 3]") && strstr(ut_last_error(), "[3, 2]"),
                "message: %s", ut_last_error());
  ck_assert_ptr_null(ut_store_tensor_get(st, "neg", UT_SHAPE(2, -1), ZERO));
  ck_assert_ptr_null(ut_store_tensor_get(st, "huge", UT_SHAPE(INT64_MAX / 2, 16), ZERO));
  ck_assert_int_eq(ut_store_count(st), 1);
  ck_assert_ptr_eq(ut_store_at(st, 0), a);
  ck_assert_ptr_null(ut_store_at(st, 1));
  ck_assert_ptr_eq(ut_store_find(st, "a"), a);
  ck_assert_ptr_null(ut_store_find(st, "b"));
  ck_assert_str_eq(ut_store_tensor_name(a), "a");
  ck_assert(ut_shape_equal(ut_store_tensor_shape(a), UT_SHAPE(2, 3)));
  ck_assert_ptr_nonnull(ut_store_tensor_buffer(a));

  const float w[6] = { 1, -2, 3.5f, 1e-30f, -0.0f, 7 };
  float r[6];
  ck_assert_ut_ok(ut_store_tensor_write(st, a, w));
  ck_assert_ut_ok(ut_store_tensor_read(st, a, r));
  ck_assert_mem_eq(r, w, sizeof w);
  ut_store_free(st);
}
END_TEST

START_TEST(counters_and_meta) {
  ut_store *st = new_store(1);
  int64_t *c = ut_store_counter(st, "adam.step");
  ck_assert_ut_ptr(c);
  ck_assert_int_eq(*c, 0);
  *c = 41;
  char name[32];
  for (int i = 0; i < 200; i++) { /* forces the counter table to grow */
    snprintf(name, sizeof name, "c%d", i);
    ck_assert_ut_ptr(ut_store_counter(st, name));
  }
  ck_assert_ptr_eq(ut_store_counter(st, "adam.step"), c);
  ck_assert_int_eq(*c, 41);

  ck_assert_ptr_null(ut_store_get_meta(st, "model"));
  ck_assert_ut_ok(ut_store_set_meta(st, "model", "lord"));
  ck_assert_ut_ok(ut_store_set_meta(st, "epoch", "3"));
  ck_assert_ut_ok(ut_store_set_meta(st, "model", "unit"));
  ck_assert_str_eq(ut_store_get_meta(st, "model"), "unit");
  ck_assert_ut_ok(ut_store_set_meta(st, "model", NULL));
  ck_assert_ptr_null(ut_store_get_meta(st, "model"));
  ck_assert_str_eq(ut_store_get_meta(st, "epoch"), "3");
  ck_assert_int_eq(ut_store_set_meta(st, "untangle.format", "2"), UT_ERR_INVALID_ARGUMENT);
  ut_store_free(st);
}
END_TEST

/* ---- initialisation -------------------------------------------------------------------------- */

static void stats(const float *x, size_t n, double *mean, double *var, double *lo, double *hi) {
  double s = 0, s2 = 0;
  *lo = INFINITY;
  *hi = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    s += x[i];
    *lo = fmin(*lo, x[i]);
    *hi = fmax(*hi, x[i]);
  }
  *mean = s / (double)n;
  for (size_t i = 0; i < n; i++) s2 += (x[i] - *mean) * (x[i] - *mean);
  *var = s2 / (double)(n - 1);
}

START_TEST(init_kinds) {
  enum { N = 1 << 16 };
  ut_store *st = new_store(1234);
  double mean, var, lo, hi;

  ck_assert_ut_ptr(ut_store_tensor_get(st, "zero", UT_SHAPE(N), ZERO));
  ck_assert_ut_ptr(ut_store_tensor_get(st, "const", UT_SHAPE(N), (ut_init){ UT_INIT_CONST, -2.5f, 0 }));
  ck_assert_ut_ptr(ut_store_tensor_get(st, "unif", UT_SHAPE(N), (ut_init){ UT_INIT_UNIFORM, -2, 3 }));
  ck_assert_ut_ptr(ut_store_tensor_get(st, "norm", UT_SHAPE(N), (ut_init){ UT_INIT_NORMAL, 1, 0.5f }));
  ck_assert_ut_ptr(ut_store_tensor_get(st, "conv.w", UT_SHAPE(64, 32, 3, 3), (ut_init){ UT_INIT_FAN_IN_UNIFORM, 0, 0 }));
  ck_assert_ut_ptr(ut_store_tensor_get(st, "conv.b", UT_SHAPE(N), (ut_init){ UT_INIT_FAN_IN_UNIFORM, 16, 0 }));

  float *x = read_all(st, "zero", N);
  for (int i = 0; i < N; i++) ck_assert(x[i] == 0.0f);
  free(x);
  x = read_all(st, "const", N);
  for (int i = 0; i < N; i++) ck_assert(x[i] == -2.5f);
  free(x);

  /* U(-2, 3): exactly -2 + 5 u for the documented stream (hash(name, seed), run 0). */
  x = read_all(st, "unif", N);
  float u[N];
  ut_philox_fill_uniform(ut_hash64("unif", 4, 1234), 0, 0, u, N);
  for (int i = 0; i < N; i++) ck_assert(x[i] == (float)(-2.0 + 5.0 * u[i]));
  stats(x, N, &mean, &var, &lo, &hi);
  ck_assert(lo > -2 && hi < 3);
  ck_assert_msg(fabs(mean - 0.5) < 5 * 5 * sqrt(1.0 / 12 / N), "mean %g", mean);
  ck_assert_msg(fabs(var - 25.0 / 12) < 0.05 * 25.0 / 12, "variance %g", var);
  free(x);

  x = read_all(st, "norm", N);
  float z[N];
  ut_philox_fill_normal(ut_hash64("norm", 4, 1234), 0, 0, z, N);
  for (int i = 0; i < N; i++) ck_assert(x[i] == (float)(1.0 + 0.5 * z[i]));
  stats(x, N, &mean, &var, &lo, &hi);
  ck_assert_msg(fabs(mean - 1) < 5 * 0.5 / sqrt(N), "mean %g", mean);
  ck_assert_msg(fabs(var - 0.25) < 5 * 0.25 * sqrt(2.0 / N), "variance %g", var);
  free(x);

  /* PyTorch's default: fan_in = 32 * 3 * 3 = 288, bound 1/sqrt(288). */
  size_t nw = 64 * 32 * 3 * 3;
  x = read_all(st, "conv.w", nw);
  double bound = 1 / sqrt(288.0);
  stats(x, nw, &mean, &var, &lo, &hi);
  ck_assert(lo > -bound && hi < bound);
  ck_assert(lo < -0.99 * bound && hi > 0.99 * bound);
  ck_assert_msg(fabs(var - bound * bound / 3) < 0.05 * bound * bound / 3, "variance %g", var);
  free(x);
  x = read_all(st, "conv.b", N); /* a = 16: bound 1/4 */
  stats(x, N, &mean, &var, &lo, &hi);
  ck_assert(lo > -0.25 && hi < 0.25 && lo < -0.249 && hi > 0.249);
  free(x);

  ck_assert_ptr_null(ut_store_tensor_get(st, "bad", UT_SHAPE(4), (ut_init){ (ut_init_kind)99, 0, 0 }));
  ck_assert_ptr_null(ut_store_find(st, "bad"));
  ut_store_free(st);
}
END_TEST

/* A seed gives the same values; another seed or another name gives others. */
START_TEST(init_is_reproducible) {
  enum { N = 1000 };
  const ut_init in = { UT_INIT_NORMAL, 0, 1 };
  ut_store *a = new_store(99), *b = new_store(99), *c = new_store(100);
  ck_assert_ut_ptr(ut_store_tensor_get(a, "w", UT_SHAPE(N), in));
  ck_assert_ut_ptr(ut_store_tensor_get(a, "v", UT_SHAPE(N), in));
  ck_assert_ut_ptr(ut_store_tensor_get(b, "w", UT_SHAPE(N), in));
  ck_assert_ut_ptr(ut_store_tensor_get(c, "w", UT_SHAPE(N), in));
  float *aw = read_all(a, "w", N), *av = read_all(a, "v", N), *bw = read_all(b, "w", N), *cw = read_all(c, "w", N);
  ck_assert_mem_eq(aw, bw, N * sizeof(float));
  ck_assert(memcmp(aw, cw, N * sizeof(float)) != 0);
  ck_assert(memcmp(aw, av, N * sizeof(float)) != 0);
  free(aw);
  free(av);
  free(bw);
  free(cw);
  ut_store_free(a);
  ut_store_free(b);
  ut_store_free(c);
}
END_TEST

/* ---- checkpoints --------------------------------------------------------------------------- */

/* A model-like store: shapes of every rank, an empty tensor, counters and metadata. */
static ut_store *model_store(uint64_t seed) {
  ut_store *st = new_store(seed);
  ck_assert_ut_ptr(ut_store_tensor_get(st, "gen.fc1.w", UT_SHAPE(64, 2), (ut_init){ UT_INIT_FAN_IN_UNIFORM, 0, 0 }));
  ck_assert_ut_ptr(ut_store_tensor_get(st, "gen.fc1.b", UT_SHAPE(64), (ut_init){ UT_INIT_NORMAL, 0, 1 }));
  ck_assert_ut_ptr(ut_store_tensor_get(st, "gen.conv.w", UT_SHAPE(4, 3, 3, 3), (ut_init){ UT_INIT_UNIFORM, -1, 1 }));
  ck_assert_ut_ptr(ut_store_tensor_get(st, "scalar", (ut_shape){ .rank = 0 }, (ut_init){ UT_INIT_CONST, 3.25f, 0 }));
  ck_assert_ut_ptr(ut_store_tensor_get(st, "empty", UT_SHAPE(0, 5), ZERO));
  ck_assert_ut_ptr(ut_store_tensor_get(st, "emb", UT_SHAPE(7, 5, 3), (ut_init){ UT_INIT_NORMAL, 0, 0.01f }));
  *ut_store_counter(st, "adam.step") = (int64_t)seed * 1000 + 17;
  *ut_store_counter(st, "rng.noise") = ((int64_t)1 << 40) + (int64_t)seed;
  *ut_store_counter(st, "neg") = -(int64_t)seed;
  ck_assert_ut_ok(ut_store_set_meta(st, "model", seed == 1 ? "lord" : "unit"));
  ck_assert_ut_ok(ut_store_set_meta(st, "config", "{\"lr\": 1e-4, \"name\": \"ünïcode\"}"));
  return st;
}

/* Everything a store holds, for comparing before and after. */
typedef struct {
  int n;
  char names[16][32];
  float *values[16];
  size_t numel[16];
  int64_t counters[3];
  char model[16];
} snapshot;

static const char *const counter_names[3] = { "adam.step", "rng.noise", "neg" };

static void snap(ut_store *st, snapshot *s) {
  memset(s, 0, sizeof *s);
  s->n = ut_store_count(st);
  ck_assert_int_le(s->n, 16);
  for (int i = 0; i < s->n; i++) {
    ut_store_tensor *t = ut_store_at(st, i);
    snprintf(s->names[i], sizeof s->names[i], "%s", ut_store_tensor_name(t));
    ut_shape sh = ut_store_tensor_shape(t);
    s->numel[i] = 1;
    for (int k = 0; k < sh.rank; k++) s->numel[i] *= (size_t)sh.d[k];
    s->values[i] = read_all(st, s->names[i], s->numel[i]);
  }
  for (int i = 0; i < 3; i++) s->counters[i] = *ut_store_counter(st, counter_names[i]);
  const char *m = ut_store_get_meta(st, "model");
  snprintf(s->model, sizeof s->model, "%s", m ? m : "");
}

static void snap_free(snapshot *s) {
  for (int i = 0; i < s->n; i++) free(s->values[i]);
}

/* Same tensors (names, order, bits), counters and metadata. */
static void assert_same(ut_store *st, const snapshot *want) {
  snapshot now;
  snap(st, &now);
  ck_assert_int_eq(now.n, want->n);
  for (int i = 0; i < now.n; i++) {
    ck_assert_str_eq(now.names[i], want->names[i]);
    ck_assert_uint_eq(now.numel[i], want->numel[i]);
    ck_assert_msg(memcmp(now.values[i], want->values[i], now.numel[i] * sizeof(float)) == 0, "tensor '%s' changed",
                  now.names[i]);
  }
  for (int i = 0; i < 3; i++) ck_assert_int_eq(now.counters[i], want->counters[i]);
  ck_assert_str_eq(now.model, want->model);
  snap_free(&now);
}

/* No "<base>.tmp-*" is left next to path. */
static void assert_no_temp_files(const char *path) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  ck_assert_ptr_nonnull(slash);
  *slash = '\0';
  char prefix[512];
  snprintf(prefix, sizeof prefix, "%s.tmp-", slash + 1);
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  for (struct dirent *e; (e = readdir(d));)
    ck_assert_msg(strncmp(e->d_name, prefix, strlen(prefix)) != 0, "temporary file left: %s", e->d_name);
  closedir(d);
}

START_TEST(round_trip) {
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("round.safetensors"));
  ut_store *a = model_store(1);
  snapshot sa;
  snap(a, &sa);
  ck_assert_ut_ok(ut_store_save(a, path));
  ck_assert_ut_ok(ut_store_save(a, path)); /* over an existing file */
  assert_no_temp_files(path);

  /* Into an empty store of another seed: everything is added. */
  ut_store *b = new_store(555);
  ck_assert_ut_ok(ut_store_load(b, path));
  assert_same(b, &sa);
  ck_assert_str_eq(ut_store_get_meta(b, "config"), "{\"lr\": 1e-4, \"name\": \"ünïcode\"}");
  ck_assert(ut_shape_equal(ut_store_tensor_shape(ut_store_find(b, "scalar")), (ut_shape){ .rank = 0 }));
  ck_assert(ut_shape_equal(ut_store_tensor_shape(ut_store_find(b, "empty")), UT_SHAPE(0, 5)));

  /* Into a store with the same tensors and other values: they are overwritten. */
  ut_store *c = model_store(2);
  ck_assert_ut_ok(ut_store_load(c, path));
  assert_same(c, &sa);

  /* The header follows the format: length, JSON padded to 8 bytes, our reserved keys. */
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  unsigned char len8[8];
  ck_assert_uint_eq(fread(len8, 1, 8, f), 8);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
  ck_assert_uint_eq(hlen % 8, 0);
  char *header = calloc(1, hlen + 1);
  ck_assert_uint_eq(fread(header, 1, hlen, f), hlen);
  fclose(f);
  ck_assert_ptr_nonnull(strstr(header, "\"untangle.format\":\"1\""));
  ck_assert_ptr_nonnull(strstr(header, "\"untangle.counter.adam.step\":\"1017\""));
  ck_assert_ptr_nonnull(strstr(header, "\"gen.fc1.w\":{\"dtype\":\"F32\",\"shape\":[64,2],\"data_offsets\":[0,512]}"));
  free(header);

  snap_free(&sa);
  ut_store_free(a);
  ut_store_free(b);
  ut_store_free(c);
  remove(path);
}
END_TEST

START_TEST(save_failures_leave_nothing) {
  ut_store *a = model_store(1);
  /* A folder where the file should go: the rename fails after the data is written. */
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("is-a-dir.safetensors"));
  ck_assert_int_eq(mkdir(path, 0755), 0);
  ut_status s = ut_store_save(a, path);
  ck_assert_int_eq(s, UT_ERR_IO);
  ck_assert_msg(strstr(ut_last_error(), path) != NULL, "message: %s", ut_last_error());
  assert_no_temp_files(path);
  struct stat sb;
  ck_assert(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));
  rmdir(path);

  snprintf(path, sizeof path, "%s", test_tmp_path("no-such-dir/x.safetensors"));
  ck_assert_int_eq(ut_store_save(a, path), UT_ERR_IO);
  ck_assert_msg(strstr(ut_last_error(), path) != NULL, "message: %s", ut_last_error());
  ut_store_free(a);
}
END_TEST

/* Writes a file from a header text and raw data, as a hostile or broken writer would. */
static void write_raw(const char *path, const char *header, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  size_t hl = strlen(header);
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hl >> (8 * i));
  ck_assert_uint_eq(fwrite(len8, 1, 8, f), 8);
  ck_assert_uint_eq(fwrite(header, 1, hl, f), hl);
  if (n) ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  fclose(f);
}

/* Loads `path` into a model store, expects status `want` and a message holding the path and
 * `needle` (a tensor's name), and checks that nothing in the store changed. */
static void expect_load_failure(const char *path, ut_status want, const char *needle, const char *needle2) {
  ut_store *st = model_store(2);
  snapshot before;
  snap(st, &before);
  ut_status s = ut_store_load(st, path);
  ck_assert_msg(s == want, "%s: %s instead of %s: %s", path, ut_status_name(s), ut_status_name(want), ut_last_error());
  const char *msg = ut_last_error();
  ck_assert_msg(strstr(msg, path) != NULL, "message lacks the path: %s", msg);
  ck_assert_msg(!needle || strstr(msg, needle) != NULL, "message lacks '%s': %s", needle, msg);
  ck_assert_msg(!needle2 || strstr(msg, needle2) != NULL, "message lacks '%s': %s", needle2, msg);
  assert_same(st, &before);
  ck_assert_ptr_null(ut_store_find(st, "extra"));
  snap_free(&before);
  ut_store_free(st);
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  rewind(f);
  unsigned char *b = malloc(*n);
  ck_assert_uint_eq(fread(b, 1, *n, f), *n);
  fclose(f);
  return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(b, 1, n, f), n);
  fclose(f);
}

START_TEST(damaged_saved_files) {
  char good[4096], bad[4096];
  snprintf(good, sizeof good, "%s", test_tmp_path("good.safetensors"));
  snprintf(bad, sizeof bad, "%s", test_tmp_path("bad.safetensors"));
  ut_store *a = model_store(1);
  ck_assert_ut_ok(ut_store_save(a, good));
  ut_store_free(a);
  size_t n;
  unsigned char *b = slurp(good, &n);

  /* Truncated inside the last tensor's data ("emb", created last). */
  spit(bad, b, n - 6);
  expect_load_failure(bad, UT_ERR_FORMAT, "'emb'", "truncated");
  /* Truncated inside the header. */
  spit(bad, b, 20);
  expect_load_failure(bad, UT_ERR_FORMAT, "header length", NULL);
  spit(bad, b, 5);
  expect_load_failure(bad, UT_ERR_FORMAT, "too short", NULL);
  /* A broken byte in the JSON. */
  unsigned char *c = malloc(n);
  memcpy(c, b, n);
  c[8 + 1] = '#';
  spit(bad, c, n);
  expect_load_failure(bad, UT_ERR_FORMAT, "JSON", NULL);
  /* A header length beyond the file. */
  memcpy(c, b, n);
  c[6] = 0x40;
  spit(bad, c, n);
  expect_load_failure(bad, UT_ERR_FORMAT, "header length", NULL);
  /* Trailing bytes after the last tensor. */
  unsigned char *longer = malloc(n + 4);
  memcpy(longer, b, n);
  memset(longer + n, 0, 4);
  spit(bad, longer, n + 4);
  expect_load_failure(bad, UT_ERR_FORMAT, "after the last tensor", NULL);
  free(longer);
  free(c);
  free(b);
  expect_load_failure(test_tmp_path("does-not-exist.safetensors"), UT_ERR_NOT_FOUND, NULL, NULL);
  remove(good);
  remove(bad);
}
END_TEST

/* Files whose header is valid JSON but wrong for the model or for the format. The model store
 * holds six tensors; these headers describe small variations of it. */
START_TEST(mismatched_files) {
  char path[4096];
  snprintf(path, sizeof path, "%s", test_tmp_path("crafted.safetensors"));
  static float data[1024];
  /* Byte offsets of the model's tensors laid out in order: fc1.w 512, fc1.b 256, conv.w 432,
   * scalar 4, empty 0, emb 420. */
  const char *rest = "\"gen.fc1.b\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[512,768]},"
                     "\"gen.conv.w\":{\"dtype\":\"F32\",\"shape\":[4,3,3,3],\"data_offsets\":[768,1200]},"
                     "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[1200,1204]},"
                     "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[1204,1204]},"
                     "\"emb\":{\"dtype\":\"F32\",\"shape\":[7,5,3],\"data_offsets\":[1204,1624]}";
  char h[2048];

  /* A well-formed control file loads (and adds "extra"), so the failures below are the edits. */
  snprintf(h, sizeof h, "{\"gen.fc1.w\":{\"dtype\":\"F32\",\"shape\":[64,2],\"data_offsets\":[0,512]},%s,"
           "\"extra\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1624,1632]}}", rest);
  write_raw(path, h, data, 1632);
  ut_store *st = model_store(2);
  ck_assert_ut_ok(ut_store_load(st, path));
  ck_assert_ptr_nonnull(ut_store_find(st, "extra"));
  ut_store_free(st);

  /* Shape mismatch (same element count, so only the shape check can catch it). */
  snprintf(h, sizeof h, "{\"gen.fc1.w\":{\"dtype\":\"F32\",\"shape\":[2,64],\"data_offsets\":[0,512]},%s,"
           "\"extra\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1624,1632]}}", rest);
  write_raw(path, h, data, 1632);
  expect_load_failure(path, UT_ERR_MISMATCH, "tensor 'gen.fc1.w': shape [2, 64] in the file, the model expects [64, 2]",
                      NULL);

  /* Wrong dtype. */
  snprintf(h, sizeof h, "{\"gen.fc1.w\":{\"dtype\":\"F16\",\"shape\":[64,2],\"data_offsets\":[0,256]},%s}", rest);
  write_raw(path, h, data, 1624);
  expect_load_failure(path, UT_ERR_MISMATCH, "'gen.fc1.w'", "F16");

  /* A tensor of the model missing from the file (the extra one must not be added either). */
  snprintf(h, sizeof h, "{\"extra\":{\"dtype\":\"F32\",\"shape\":[128],\"data_offsets\":[0,512]},%s}", rest);
  write_raw(path, h, data, 1624);
  expect_load_failure(path, UT_ERR_MISMATCH, "'gen.fc1.w'", "missing");

  /* Huge dimensions: refused from the header alone, before any allocation. */
  snprintf(h, sizeof h, "{\"gen.fc1.w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],"
           "\"data_offsets\":[0,512]},%s}", rest);
  write_raw(path, h, data, 1624);
  expect_load_failure(path, UT_ERR_FORMAT, "'gen.fc1.w'", "[4611686018427387904, 4611686018427387904]");
  snprintf(h, sizeof h, "{\"gen.fc1.w\":{\"dtype\":\"F32\",\"shape\":[64,-2],\"data_offsets\":[0,512]},%s}", rest);
  write_raw(path, h, data, 1624);
  expect_load_failure(path, UT_ERR_FORMAT, "'gen.fc1.w'", NULL);
  snprintf(h, sizeof h, "{\"gen.fc1.w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,64,2],\"data_offsets\":[0,512]},%s}", rest);
  write_raw(path, h, data, 1624);
  expect_load_failure(path, UT_ERR_MISMATCH, "'gen.fc1.w'", "rank 5");

  /* Offsets that disagree with the shape, overlap, or leave a gap. */
  snprintf(h, sizeof h, "{\"gen.fc1.w\":{\"dtype\":\"F32\",\"shape\":[64,2],\"data_offsets\":[0,508]},%s}", rest);
  write_raw(path, h, data, 1624);
  expect_load_failure(path, UT_ERR_FORMAT, "'gen.fc1.w'", "needs 512");
  snprintf(h, sizeof h, "{\"gen.fc1.w\":{\"dtype\":\"F32\",\"shape\":[64,2],\"data_offsets\":[0,512]},%s,"
           "\"extra\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[508,512]}}", rest);
  write_raw(path, h, data, 1624);
  expect_load_failure(path, UT_ERR_FORMAT, "overlap", NULL);
  snprintf(h, sizeof h, "{\"gen.fc1.w\":{\"dtype\":\"F32\",\"shape\":[64,2],\"data_offsets\":[1624,2136]},"
           "\"pad\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},%s}", rest);
  write_raw(path, h, data, 2136);
  expect_load_failure(path, UT_ERR_FORMAT, "'gen.fc1.b'", "gap");

  /* Bad metadata: a counter that is not a number, a format from the future, a non-string. */
  snprintf(h, sizeof h, "{\"gen.fc1.w\":{\"dtype\":\"F32\",\"shape\":[64,2],\"data_offsets\":[0,512]},%s,"
           "\"__metadata__\":{\"untangle.counter.adam.step\":\"12x\"}}", rest);
  write_raw(path, h, data, 1624);
  expect_load_failure(path, UT_ERR_FORMAT, "adam.step", "12x");
  snprintf(h, sizeof h, "{\"gen.fc1.w\":{\"dtype\":\"F32\",\"shape\":[64,2],\"data_offsets\":[0,512]},%s,"
           "\"__metadata__\":{\"untangle.format\":\"2\"}}", rest);
  write_raw(path, h, data, 1624);
  expect_load_failure(path, UT_ERR_MISMATCH, "format", NULL);
  snprintf(h, sizeof h, "{\"gen.fc1.w\":{\"dtype\":\"F32\",\"shape\":[64,2],\"data_offsets\":[0,512]},%s,"
           "\"__metadata__\":{\"epoch\":3}}", rest);
  write_raw(path, h, data, 1624);
  expect_load_failure(path, UT_ERR_FORMAT, "epoch", NULL);
  /* Duplicate keys, and a header that is JSON but not an object. */
  snprintf(h, sizeof h, "{\"gen.fc1.w\":{\"dtype\":\"F32\",\"shape\":[64,2],\"data_offsets\":[0,512]},%s,"
           "\"emb\":{\"dtype\":\"F32\",\"shape\":[7,5,3],\"data_offsets\":[1204,1624]}}", rest);
  write_raw(path, h, data, 1624);
  expect_load_failure(path, UT_ERR_FORMAT, "JSON", NULL);
  write_raw(path, "[1, 2, 3]", data, 0);
  expect_load_failure(path, UT_ERR_FORMAT, "not a JSON object", NULL);
  remove(path);
}
END_TEST

/* Pretrained weights come in with a name prefix and stay out of checkpoints. */
START_TEST(import_and_external) {
  const float wv[6] = { 1, 2, 3, 4, 5, 6 }, bv[2] = { -1, 0.5f };
  ut_store *src = new_store(1);
  ck_assert_ut_ok(ut_store_tensor_write(src, ut_store_tensor_get(src, "features.0.weight", UT_SHAPE(2, 3), ZERO), wv));
  ck_assert_ut_ok(ut_store_tensor_write(src, ut_store_tensor_get(src, "features.0.bias", UT_SHAPE(2), ZERO), bv));
  char weights[256];
  snprintf(weights, sizeof weights, "%s", test_tmp_path("import-weights.safetensors"));
  ck_assert_ut_ok(ut_store_save(src, weights));

  ut_store *st = new_store(2);
  ut_store_tensor_get(st, "model.w", UT_SHAPE(4), (ut_init){ UT_INIT_CONST, 3, 0 });
  ck_assert_ut_ok(ut_store_import(st, weights, "vgg."));
  float *w = read_all(st, "vgg.features.0.weight", 6), *b = read_all(st, "vgg.features.0.bias", 2);
  ck_assert_mem_eq(w, wv, sizeof wv);
  ck_assert_mem_eq(b, bv, sizeof bv);
  free(w);
  free(b);
  ck_assert_ptr_null(ut_store_find(st, "features.0.weight"));

  /* A checkpoint leaves the external tensors out and loads back without them. */
  ck_assert_ut_ok(ut_store_set_external(st, "vgg."));
  char ckpt[256];
  snprintf(ckpt, sizeof ckpt, "%s", test_tmp_path("external-ckpt.safetensors"));
  ck_assert_ut_ok(ut_store_save(st, ckpt));
  ut_store *check = new_store(3);
  ck_assert_ut_ok(ut_store_load(check, ckpt));
  ck_assert_int_eq(ut_store_count(check), 1);
  ck_assert_ptr_nonnull(ut_store_find(check, "model.w"));
  ck_assert_ut_ok(ut_store_load(st, ckpt));
  ck_assert_ptr_nonnull(ut_store_find(st, "vgg.features.0.bias"));

  /* A shape that disagrees is refused by name, and nothing is created. */
  ut_store *other = new_store(4);
  ut_store_tensor_get(other, "vgg.features.0.bias", UT_SHAPE(3), ZERO);
  ck_assert_int_eq(ut_store_import(other, weights, "vgg."), UT_ERR_MISMATCH);
  ck_assert_msg(strstr(ut_last_error(), "features.0.bias") != NULL, "%s", ut_last_error());
  ck_assert_int_eq(ut_store_count(other), 1);
  ck_assert_int_eq(ut_store_import(other, "/nonexistent/weights.safetensors", "vgg."), UT_ERR_NOT_FOUND);

  unlink(weights);
  unlink(ckpt);
  ut_store_free(other);
  ut_store_free(check);
  ut_store_free(st);
  ut_store_free(src);
}
END_TEST

static Suite *store_suite(void) {
  Suite *s = suite_create("store");
  TCase *t = tcase_create("store");
  tcase_set_timeout(t, 300);
  tcase_add_test(t, tensor_get_and_shapes);
  tcase_add_test(t, counters_and_meta);
  tcase_add_test(t, init_kinds);
  tcase_add_test(t, init_is_reproducible);
  tcase_add_test(t, round_trip);
  tcase_add_test(t, save_failures_leave_nothing);
  tcase_add_test(t, damaged_saved_files);
  tcase_add_test(t, mismatched_files);
  tcase_add_test(t, import_and_external);
  suite_add_tcase(s, t);
  return s;
}

int main(void) { return test_run_suite(store_suite()); }
