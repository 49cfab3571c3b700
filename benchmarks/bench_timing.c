/* Timing of plans (median of device-timed runs after warm-up) and the convolution shapes the
 * models run, shared by the suites. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"
#include "lord.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

bench_ms bench_summarize(double *ms, int n) {
  qsort(ms, (size_t)n, sizeof *ms, cmp_double);
  /* The lower median for an even count: a real run's time, not an average of two. */
  return (bench_ms){ .median = ms[(n - 1) / 2], .min = ms[0], .max = ms[n - 1], .ok = 1 };
}

bench_ms bench_time_plan(bench_ctx *c, ut_plan *p, bench_launches which) {
  bench_ms fail = { 0 };
  double *dev = calloc((size_t)c->repeats, sizeof *dev), *wall = calloc((size_t)c->repeats, sizeof *wall);
  int have_events = 1;
  if (!dev || !wall) {
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
    goto done;
  }
  for (int i = 0; i < c->warmup; i++)
    if (ut_plan_run(p) != UT_OK) goto done;
  for (int r = 0; r < c->repeats; r++) {
    ut_plan_profile_reset(p);
    double t0 = (1e3 * ut_seconds());
    if (ut_plan_run(p) != UT_OK) goto done;
    wall[r] = (1e3 * ut_seconds()) - t0;
    ut_profile_entry *e = NULL;
    int n = 0;
    /* Work done without an OpenCL launch (a host fast path) leaves no event; then only the
     * wall clock around the run can tell its cost. */
    if (ut_plan_profile(p, &e, &n) != UT_OK) {
      have_events = 0;
      continue;
    }
    for (int i = 0; i < n; i++) {
      int left_out = e[i].node_index >= which.skip_from && e[i].node_index < which.skip_to;
      if (!left_out && !(which.skip && which.skip(&e[i]))) dev[r] += e[i].ms;
    }
    if (dev[r] <= 0) have_events = 0;
    free(e);
  }
  fail = bench_summarize(have_events ? dev : wall, c->repeats);
  fail.wall = !have_events;
done:
  free(dev);
  free(wall);
  return fail;
}

float *bench_random(int64_t n, uint64_t seed) {
  float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  if (!v) {
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for %lld values", (long long)n);
    return NULL;
  }
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int64_t i = 0; i < n; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    v[i] = (float)((s >> 40) * (1.0 / 16777216.0)) - 0.5f;
  }
  return v;
}

const char bench_conv_pass_name[BENCH_CONV_PASSES][12] = { "fwd", "bwd_data", "bwd_weight" };

void bench_conv_gemm(const bench_conv *cv, int pass, int64_t mnk[3]) {
  int64_t oh = (cv->hw + 2 * cv->pad - cv->k) / cv->stride + 1, pixels = (int64_t)cv->batch * oh * oh;
  int64_t ckk = (int64_t)cv->c * cv->k * cv->k;
  /* fwd: W [O, CKK] x col [CKK, P]; bwd_data: W^T x dY; bwd_weight: dY x col^T. */
  int64_t all[BENCH_CONV_PASSES][3] = { { cv->o, pixels, ckk }, { ckk, pixels, cv->o }, { cv->o, ckk, pixels } };
  memcpy(mnk, all[pass], sizeof all[pass]);
}

static int add(bench_conv *out, int n, int cap, const char *name, int c, int o, int hw, int k, int stride, int pad,
               int batch) {
  if (n >= cap) return n;
  bench_conv *cv = &out[n];
  snprintf(cv->name, sizeof cv->name, "%s", name);
  cv->c = c, cv->o = o, cv->hw = hw, cv->k = k, cv->stride = stride, cv->pad = pad, cv->batch = batch;
  return n + 1;
}

int bench_conv_cases(bench_size size, bench_conv *out, int cap) {
  /* The official preset for full runs; the small one (32x32, an eighth of the width) otherwise,
   * so that a quick run measures what a CPU actually trains. Widths follow lord_preset. */
  lord_cfg m = lord_preset(size == BENCH_SIZE_FULL ? LORD_PRESET_DEFAULT : LORD_PRESET_SMALL, 3, 1, 1);
  int b = size == BENCH_SIZE_TINY ? 2 : m.batch, s = m.size, n = 0;
  char name[40];
  if (size == BENCH_SIZE_TINY) {
    n = add(out, n, cap, "lord.gen.up4.conv3", m.gen_channels, m.gen_channels, 4, 3, 1, 1, b);
    return add(out, n, cap, "lord.enc.down0.conv4s2", m.enc_channels, 2 * m.enc_channels, s, 4, 2, 1, b);
  }
  for (int hw = s / 8; hw <= s; hw *= 2) {
    snprintf(name, sizeof name, "lord.gen.up%d.conv3", hw);
    n = add(out, n, cap, name, m.gen_channels, m.gen_channels, hw, 3, 1, 1, b);
  }
  n = add(out, n, cap, "lord.gen.c1.conv5", m.gen_channels, m.head_channels, s, 5, 1, 2, b);
  n = add(out, n, cap, "lord.gen.c2.conv7", m.head_channels, 3, s, 7, 1, 3, b);
  n = add(out, n, cap, "lord.enc.stem.conv7", 3, m.enc_channels, s, 7, 1, 3, b);
  static const int in_w[4] = { 1, 2, 4, 4 }, out_w[4] = { 2, 4, 4, 4 };
  for (int i = 0; i < 4; i++) {
    snprintf(name, sizeof name, "lord.enc.down%d.conv4s2", i);
    n = add(out, n, cap, name, m.enc_channels * in_w[i], m.enc_channels * out_w[i], s >> i, 4, 2, 1, b);
  }
  /* VGG16 to conv3_2 (the loss's taps relu1_2, relu2_2, relu3_2 and the layers before them). */
  n = add(out, n, cap, "vgg.conv1_1", 3, 64, s, 3, 1, 1, b);
  n = add(out, n, cap, "vgg.conv1_2", 64, 64, s, 3, 1, 1, b);
  n = add(out, n, cap, "vgg.conv2_1", 64, 128, s / 2, 3, 1, 1, b);
  n = add(out, n, cap, "vgg.conv2_2", 128, 128, s / 2, 3, 1, 1, b);
  n = add(out, n, cap, "vgg.conv3_1", 128, 256, s / 4, 3, 1, 1, b);
  return add(out, n, cap, "vgg.conv3_2", 256, 256, s / 4, 3, 1, 1, b);
}
