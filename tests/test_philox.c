/* Philox 4x32-10: the published known-answer vectors, the statistics of the host streams, and
 * the device kernels (through ut_random_uniform / ut_random_normal) against the host. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "philox.h"
#include "runtime_internal.h"
#include "test_support.h"

/* ---- the generator itself ------------------------------------------------------------------ */

/* The known-answer vectors shipped with Random123 (kat_vectors, philox4x32 with 10 rounds). */
START_TEST(known_answers) {
  static const struct {
    uint32_t ctr[4], key[2], out[4];
  } kat[] = {
    { { 0, 0, 0, 0 }, { 0, 0 }, { 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 } },
    { { 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff },
      { 0xffffffff, 0xffffffff },
      { 0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd } },
    { { 0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344 },
      { 0xa4093822, 0x299f31d0 },
      { 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1 } },
  };
  for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
    uint32_t out[4];
    ut_philox4x32_10(kat[i].ctr, kat[i].key, out);
    for (int k = 0; k < 4; k++)
      ck_assert_msg(out[k] == kat[i].out[k], "vector %zu word %d: 0x%08x, expected 0x%08x", i, k, out[k],
                    kat[i].out[k]);
  }
}
END_TEST

/* The conversion gives odd multiples of 2^-24: strictly inside (0, 1), even at the extremes. */
START_TEST(uniform_conversion_is_exact) {
  ck_assert_float_eq(ut_philox_u01(0), 0x1p-24f);
  ck_assert_float_eq(ut_philox_u01(0xffffffffu), 1.0f - 0x1p-24f);
  ck_assert(ut_philox_u01(0xffffffffu) < 1.0f);
  for (uint32_t w = 0; w < 4000000000u; w += 999983u) {
    float u = ut_philox_u01(w);
    double scaled = (double)u * 16777216.0;
    ck_assert(scaled == floor(scaled) && fmod(scaled, 2.0) == 1.0);
    ck_assert_uint_eq((uint32_t)scaled, (w >> 8) | 1u);
  }
}
END_TEST

/* Element i of a stream is element i whatever window it is computed in, and block b holds
 * philox(b, run) lane by lane (the mapping documented in philox.h). */
START_TEST(counter_mapping) {
  enum { N = 103 };
  const uint64_t key = 0x0123456789abcdefull, run = 0x100000002ull;
  float all[N], part[N];
  ut_philox_fill_uniform(key, run, 0, all, N);
  for (int start = 0; start < 9; start++) {
    ut_philox_fill_uniform(key, run, (uint64_t)start, part, N - 9);
    ck_assert_mem_eq(part, all + start, (N - 9) * sizeof(float));
  }
  const uint32_t ctr[4] = { 7, 0, (uint32_t)run, (uint32_t)(run >> 32) };
  const uint32_t k[2] = { (uint32_t)key, (uint32_t)(key >> 32) };
  uint32_t w[4];
  ut_philox4x32_10(ctr, k, w);
  for (int l = 0; l < 4; l++) ck_assert_float_eq(all[28 + l], ut_philox_u01(w[l]));

  float nall[N], npart[N];
  ut_philox_fill_normal(key, run, 0, nall, N);
  ut_philox_fill_normal(key, run, 5, npart, N - 5);
  ck_assert_mem_eq(npart, nall + 5, (N - 5) * sizeof(float));
  /* Box-Muller on lanes (0, 1) of block 7. */
  double r = sqrt(-2.0 * log((double)ut_philox_u01(w[0])));
  double theta = 2.0 * 3.14159265358979323846 * (double)ut_philox_u01(w[1]);
  ck_assert_float_eq(nall[28], (float)(r * cos(theta)));
  ck_assert_float_eq(nall[29], (float)(r * sin(theta)));

  /* The 64-bit block index reaches the counter's second word. */
  float hi[4];
  ut_philox_fill_uniform(key, run, (uint64_t)4 << 32, hi, 4);
  const uint32_t ctr_hi[4] = { 0, 1, (uint32_t)run, (uint32_t)(run >> 32) };
  ut_philox4x32_10(ctr_hi, k, w);
  for (int l = 0; l < 4; l++) ck_assert_float_eq(hi[l], ut_philox_u01(w[l]));
}
END_TEST

static void moments(const float *x, size_t n, double *mean, double *var) {
  double s = 0, s2 = 0;
  for (size_t i = 0; i < n; i++) s += x[i];
  *mean = s / (double)n;
  for (size_t i = 0; i < n; i++) s2 += (x[i] - *mean) * (x[i] - *mean);
  *var = s2 / (double)(n - 1);
}

/* Bounds of five standard errors: a correct generator fails this about once in two million. */
START_TEST(uniform_statistics) {
  const size_t n = 1 << 20;
  float *x = malloc(n * sizeof *x);
  ut_philox_fill_uniform(42, 1, 0, x, n);
  double mean, var;
  moments(x, n, &mean, &var);
  size_t below_quarter = 0;
  for (size_t i = 0; i < n; i++) {
    ck_assert(x[i] > 0.0f && x[i] < 1.0f);
    below_quarter += x[i] < 0.25f;
  }
  ck_assert_msg(fabs(mean - 0.5) < 5 * sqrt(1.0 / 12 / n), "mean %g", mean);
  ck_assert_msg(fabs(var - 1.0 / 12) < 5 * sqrt(1.0 / 180 / n), "variance %g", var); /* Var(U^2-ish) = 1/180 */
  ck_assert_msg(fabs((double)below_quarter / n - 0.25) < 5 * sqrt(0.25 * 0.75 / n), "P(u < 1/4) = %g",
                (double)below_quarter / n);
  free(x);
}
END_TEST

START_TEST(normal_statistics) {
  const size_t n = 1 << 20;
  float *x = malloc(n * sizeof *x);
  ut_philox_fill_normal(42, 1, 0, x, n);
  double mean, var, s3 = 0, s4 = 0;
  moments(x, n, &mean, &var);
  size_t within1 = 0;
  for (size_t i = 0; i < n; i++) {
    ck_assert(isfinite(x[i]));
    within1 += fabsf(x[i]) < 1.0f;
    s3 += pow(x[i], 3);
    s4 += pow(x[i], 4);
  }
  ck_assert_msg(fabs(mean) < 5 / sqrt((double)n), "mean %g", mean);
  ck_assert_msg(fabs(var - 1) < 5 * sqrt(2.0 / n), "variance %g", var);
  ck_assert_msg(fabs(s3 / n) < 5 * sqrt(15.0 / n), "third moment %g", s3 / n);
  ck_assert_msg(fabs(s4 / n - 3) < 5 * sqrt(96.0 / n), "fourth moment %g", s4 / n);
  ck_assert_msg(fabs((double)within1 / n - 0.682689492) < 5 * sqrt(0.6827 * 0.3173 / n), "P(|z| < 1) = %g",
                (double)within1 / n);
  /* The pairs of one block are independent: lag-1 correlation near 0. */
  double c = 0;
  for (size_t i = 0; i + 1 < n; i++) c += (double)x[i] * x[i + 1];
  ck_assert_msg(fabs(c / n) < 5 / sqrt((double)n), "lag-1 correlation %g", c / n);
  free(x);
}
END_TEST

START_TEST(streams_differ) {
  float a[64], b[64], c[64];
  ut_philox_fill_uniform(1, 1, 0, a, 64);
  ut_philox_fill_uniform(1, 2, 0, b, 64);
  ut_philox_fill_uniform(2, 1, 0, c, 64);
  int same_ab = 0, same_ac = 0;
  for (int i = 0; i < 64; i++) {
    same_ab += a[i] == b[i];
    same_ac += a[i] == c[i];
  }
  ck_assert_int_le(same_ab, 1);
  ck_assert_int_le(same_ac, 1);
}
END_TEST

/* ---- the device kernels ---------------------------------------------------------------------- */

/* OpenCL bounds log, sqrt, cospi and sinpi to 3-4 ulp (cl/random.cl): normals may differ from
 * the host by a few ulp of |z|; uniforms must not differ at all. */
#define NORMAL_ABS_TOL 1e-6
#define NORMAL_REL_TOL 2e-6

typedef struct {
  ut_store *st;
  ut_graph *g;
  ut_tensor *u, *z;
  ut_plan *p;
} rng_graph;

static void rng_graph_open(rng_graph *r, ut_store *st) {
  r->st = st;
  ck_assert_ut_ptr(r->g = ut_graph_new(test_runtime(), st));
  /* Odd sizes, so the last Philox block is partial. */
  ck_assert_ut_ptr(r->u = ut_random_uniform(r->g, "noise.u", UT_SHAPE(3, 5, 7)));
  ck_assert_ut_ptr(r->z = ut_random_normal(r->g, "noise.z", UT_SHAPE(4099)));
  ut_tensor *outs[] = { r->u, r->z };
  ck_assert_ut_ptr(r->p = ut_plan_compile(r->g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = 2 }));
}

static void rng_graph_close(rng_graph *r) {
  ut_plan_free(r->p);
  ut_graph_free(r->g);
}

static uint64_t stream_key(const ut_store *st, const char *name) {
  return ut_hash64(name, strlen(name), ut_store_seed(st));
}

/* Runs once and checks both tensors against the host streams at run `expect_run`. */
static void run_and_check(rng_graph *r, int64_t expect_run, float *u_out, float *z_out) {
  float u_host[105], z_host[4099];
  ck_assert_ut_ok(ut_plan_run(r->p));
  ck_assert_int_eq(*ut_store_counter(r->st, "rng.noise.u"), expect_run);
  ck_assert_int_eq(*ut_store_counter(r->st, "rng.noise.z"), expect_run);
  ck_assert_ut_ok(ut_read(r->p, r->u, u_out));
  ck_assert_ut_ok(ut_read(r->p, r->z, z_out));
  ut_philox_fill_uniform(stream_key(r->st, "noise.u"), (uint64_t)expect_run, 0, u_host, 105);
  ut_philox_fill_normal(stream_key(r->st, "noise.z"), (uint64_t)expect_run, 0, z_host, 4099);
  for (int i = 0; i < 105; i++)
    ck_assert_msg(memcmp(&u_out[i], &u_host[i], sizeof(float)) == 0, "uniform %d: device %.9g, host %.9g", i,
                  u_out[i], u_host[i]);
  int64_t worst;
  double ratio = test_compare(z_out, z_host, 4099, NORMAL_ABS_TOL, NORMAL_REL_TOL, &worst);
  ck_assert_msg(ratio <= 1, "normal %lld: device %.9g, host %.9g", (long long)worst, z_out[worst], z_host[worst]);
}

START_TEST(device_matches_host) {
  ut_store *st = ut_store_new(test_runtime(), 77);
  ck_assert_ut_ptr(st);
  rng_graph r;
  rng_graph_open(&r, st);
  float u1[105], z1[4099], u2[105], z2[4099];
  run_and_check(&r, 1, u1, z1);
  run_and_check(&r, 2, u2, z2); /* the run counter moves: new numbers */
  ck_assert(memcmp(u1, u2, sizeof u1) != 0);
  ck_assert(memcmp(z1, z2, sizeof z1) != 0);
  rng_graph_close(&r);
  ut_store_free(st);
}
END_TEST

/* A restored checkpoint restores the run counters, so the numbers after it repeat. */
START_TEST(checkpoint_reproduces_noise) {
  const char *path = test_tmp_path("philox-ckpt.safetensors");
  ut_store *st = ut_store_new(test_runtime(), 5);
  ck_assert_ut_ptr(st);
  rng_graph r;
  rng_graph_open(&r, st);
  float u[105], z[4099], u_again[105], z_again[4099];
  run_and_check(&r, 1, u, z);
  ck_assert_ut_ok(ut_store_save(st, path));
  run_and_check(&r, 2, u, z);
  run_and_check(&r, 3, u_again, z_again);
  ck_assert_ut_ok(ut_store_load(st, path));
  ck_assert_int_eq(*ut_store_counter(st, "rng.noise.u"), 1);
  run_and_check(&r, 2, u_again, z_again);
  ck_assert_mem_eq(u, u_again, sizeof u);
  ck_assert_mem_eq(z, z_again, sizeof z);
  rng_graph_close(&r);
  ut_store_free(st);

  /* A fresh store of the same seed that loads the checkpoint continues the same stream. */
  ut_store *st2 = ut_store_new(test_runtime(), 5);
  ck_assert_ut_ptr(st2);
  ck_assert_ut_ok(ut_store_load(st2, path));
  rng_graph_open(&r, st2);
  run_and_check(&r, 2, u_again, z_again);
  ck_assert_mem_eq(u, u_again, sizeof u);
  rng_graph_close(&r);
  ut_store_free(st2);
  remove(path);
}
END_TEST

START_TEST(bad_random_shapes_fail) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(ut_random_uniform(g, "big", UT_SHAPE(1 << 20, 1 << 20)));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "big"));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ut_graph_free(g);
  g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_null(ut_random_normal(g, NULL, UT_SHAPE(4)));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_INVALID_ARGUMENT);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

static Suite *philox_suite(void) {
  Suite *s = suite_create("philox");
  TCase *host = tcase_create("host");
  tcase_add_test(host, known_answers);
  tcase_add_test(host, uniform_conversion_is_exact);
  tcase_add_test(host, counter_mapping);
  tcase_add_test(host, uniform_statistics);
  tcase_add_test(host, normal_statistics);
  tcase_add_test(host, streams_differ);
  suite_add_tcase(s, host);
  TCase *dev = tcase_create("device");
  tcase_set_timeout(dev, 300);
  tcase_add_test(dev, device_matches_host);
  tcase_add_test(dev, checkpoint_reproduces_noise);
  tcase_add_test(dev, bad_random_shapes_fail);
  suite_add_tcase(s, dev);
  return s;
}

int main(void) { return test_run_suite(philox_suite()); }
