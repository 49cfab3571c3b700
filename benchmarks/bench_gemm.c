/* The gemm suite: SGEMM through ut_matmul (CLBlast, or whatever GEMM path the engine picks for
 * the device) at square sizes and at the GEMM shapes of the models' convolutions, so the ops
 * suite's convolutions can be read against the GEMM they contain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"

enum { MAX_CONV = 24 };

static int squares(bench_size size, const int **list) {
  static const int full[] = { 256, 512, 1024, 2048, 4096 }, quick[] = { 256, 512 }, tiny[] = { 64 };
  switch (size) {
  case BENCH_SIZE_FULL: *list = full; return 5;
  case BENCH_SIZE_QUICK: *list = quick; return 2;
  default: *list = tiny; return 1;
  }
}

int bench_gemm_count(const bench_ctx *c) {
  const int *sq;
  bench_conv cv[MAX_CONV];
  return squares(c->cfg->size, &sq) + BENCH_CONV_PASSES * bench_conv_cases(c->cfg->size, cv, MAX_CONV);
}

/* [M, K] x [K, N] in one plan; the figure is the GEMM's launches. */
static void time_gemm(bench_ctx *c, const char *name, int64_t m, int64_t n, int64_t k, json_t *extra) {
  char shape[64], what[128];
  snprintf(shape, sizeof shape, "%lldx%lldx%lld", (long long)m, (long long)n, (long long)k);
  snprintf(what, sizeof what, "gemm %s %s", name, shape);
  bench_step(c, what);
  ut_store *st = ut_store_new(c->rt, 7);
  ut_graph *g = ut_graph_new(c->rt, st);
  ut_tensor *a = ut_input(g, "a", UT_F32, UT_SHAPE(m, k)), *b = ut_input(g, "b", UT_F32, UT_SHAPE(k, n));
  ut_tensor *y = ut_matmul(g, a, b, 0, 0);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 });
  float *av = p ? bench_random(m * k, 3) : NULL, *bv = av ? bench_random(k * n, 4) : NULL;
  bench_ms t = { 0 };
  if (bv && ut_upload(p, a, av) == UT_OK && ut_upload(p, b, bv) == UT_OK)
    t = bench_time_plan(c, p, (bench_launches){ 0 });
  if (t.ok) {
    double flops = 2.0 * (double)m * (double)n * (double)k;
    bench_record r = { .suite = "gemm", .name = name, .shape = shape, .ms = t, .repeats = c->repeats,
                       .gflops = flops / (t.median * 1e6), .gbps = -1, .extra = json_incref(extra) };
    bench_emit(c, &r);
    if (!strcmp(name, "sgemm.square") && r.gflops > c->sgemm_gflops) c->sgemm_gflops = r.gflops;
  } else {
    bench_failed(c, what);
  }
  json_decref(extra);
  free(av);
  free(bv);
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}

ut_status bench_gemm_run(bench_ctx *c) {
  const int *sq;
  int n_sq = squares(c->cfg->size, &sq);
  for (int i = 0; i < n_sq; i++) time_gemm(c, "sgemm.square", sq[i], sq[i], sq[i], NULL);
  bench_conv cv[MAX_CONV];
  int n_cv = bench_conv_cases(c->cfg->size, cv, MAX_CONV);
  for (int i = 0; i < n_cv; i++)
    for (int pass = 0; pass < BENCH_CONV_PASSES; pass++) {
      int64_t mnk[3];
      bench_conv_gemm(&cv[i], pass, mnk);
      char name[96];
      snprintf(name, sizeof name, "sgemm.%.39s.%s", cv[i].name, bench_conv_pass_name[pass]);
      time_gemm(c, name, mnk[0], mnk[1], mnk[2], json_pack("{s:i}", "batch", cv[i].batch));
    }
  return UT_OK;
}
