/* Shared by the suites of the harness: the run context, timing of plans, and the writer of
 * one JSON line per figure (bench_harness.c). */
#ifndef UNTANGLE_BENCH_INTERNAL_H
#define UNTANGLE_BENCH_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "bench.h"

typedef struct {
  double median, min, max; /* ms */
  int ok;
  int wall; /* 1: the launches left no profiling events, so the wall clock was used */
} bench_ms;

typedef struct {
  const bench_cfg *cfg;
  ut_runtime *rt;
  const ut_device_info *dev;
  int repeats, warmup;
  double peak_gflops, peak_gbps; /* measured by the peak suite on this device; 0: not measured */
  double sgemm_gflops;           /* the gemm suite's fastest square SGEMM on this device; 0: not measured */
  int done, total;               /* figures, for the progress line */
  int failures;
  ut_status write_status; /* the first failure to write a line: it ends the run */
} bench_ctx;

/* One figure. Negative gflops / gbps mean "does not apply" (null in JSON). */
typedef struct {
  const char *suite, *name, *shape;
  bench_ms ms;
  int repeats;
  double gflops, gbps;
  json_t *extra; /* more fields, merged into the line; the writer takes the reference */
} bench_record;

/* Writes the figure as one JSON line; a failure to write is kept in c->write_status. */
ut_status bench_emit(bench_ctx *c, bench_record *r);
/* Counts a failed figure and says why on stderr (with ut_last_error()). */
void bench_failed(bench_ctx *c, const char *what);
/* The progress callback: `what` is about to be measured. */
void bench_step(bench_ctx *c, const char *what);

/* Median, min and max of n values (n >= 1); reorders ms. */
bench_ms bench_summarize(double *ms, int n);

/* Which launches of a plan a figure sums: every launch except those of the nodes with index in
 * [skip_from, skip_to) (the graph's creation order) and those `skip` (when set) says no to.
 * { 0 } sums them all. */
typedef int (*bench_skip_fn)(const ut_profile_entry *e);
typedef struct {
  int skip_from, skip_to;
  bench_skip_fn skip;
} bench_launches;
/* Runs the plan c->warmup times, then c->repeats times with the launches timed. */
bench_ms bench_time_plan(bench_ctx *c, ut_plan *p, bench_launches which);

/* Uniform values in [-0.5, 0.5) from a fixed seed (xorshift), malloc'd; NULL when out of memory. */
float *bench_random(int64_t n, uint64_t seed);

/* The convolutions the models run, for the gemm and ops suites: the LORD generator's and
 * encoders' layers at the size's preset (with every channel width from lord_preset) and VGG16's
 * first layers at the same resolution. */
typedef struct {
  char name[40];
  int c, o, hw, k, stride, pad;
  int batch;
} bench_conv;
/* Fills up to cap cases and returns how many. */
int bench_conv_cases(bench_size size, bench_conv *out, int cap);
enum { BENCH_CONV_PASSES = 3 };
extern const char bench_conv_pass_name[BENCH_CONV_PASSES][12]; /* fwd, bwd_data, bwd_weight */
/* The GEMM a pass of an im2col convolution runs, as M, N, K. */
void bench_conv_gemm(const bench_conv *cv, int pass, int64_t mnk[3]);

/* The suites: how many figures each will write, and the run. */
int bench_peak_count(const bench_ctx *c);
ut_status bench_peak_run(bench_ctx *c);
int bench_gemm_count(const bench_ctx *c);
ut_status bench_gemm_run(bench_ctx *c);
int bench_ops_count(const bench_ctx *c);
ut_status bench_ops_run(bench_ctx *c);
int bench_models_count(const bench_ctx *c);
ut_status bench_models_run(bench_ctx *c);
int bench_memory_count(const bench_ctx *c);
ut_status bench_memory_run(bench_ctx *c);

#endif
