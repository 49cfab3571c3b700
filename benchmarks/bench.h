/* The benchmark harness (libuntangle_bench): times suites of work on chosen OpenCL devices and
 * writes one JSON object per figure (a "JSON lines" file), and turns such files into a report.
 *
 *   bench_cfg cfg = { .devices = "cpu", .suites = BENCH_PEAK | BENCH_GEMM, .quick = 1, .out = f };
 *   if (bench_run(&cfg) != UT_OK) fprintf(stderr, "%s\n", ut_last_error());
 *   bench_report_cfg rc = { .inputs = paths, .n_inputs = n, .html_path = "report.html" };
 *   bench_report(&rc);
 *
 * Every figure is the median of repeated runs after warm-up, with min and max beside it. Ops
 * and GEMMs are timed on the device (OpenCL profiling events summed over a plan's launches);
 * training steps by the wall clock around the whole step, as a training loop sees them.
 *
 * A line holds: schema, framework ("untangle"), device, device_type, driver, platform, clblast,
 * suite, case, shape, ms {median, min, max}, repeats, gflops, gbps, pct_peak (percent of this
 * run's measured FMA peak for GFLOP/s figures, of its measured bandwidth for GB/s-only figures,
 * each from the peak suite's fastest run; null when the peak suite did not run) and
 * suite-specific fields (README.md lists them).
 */
#ifndef UNTANGLE_BENCH_H
#define UNTANGLE_BENCH_H

#include <stdio.h>

#include "untangle.h"

enum { BENCH_PEAK = 1, BENCH_GEMM = 2, BENCH_OPS = 4, BENCH_MODELS = 8, BENCH_MEMORY = 16, BENCH_ALL = 31 };

/* The schema tag of every line; the report refuses lines of another schema. */
#define BENCH_SCHEMA "untangle-bench/1"

typedef enum {
  BENCH_SIZE_FULL = 0, /* the models' official sizes, square GEMMs to 4096 */
  BENCH_SIZE_QUICK,    /* the small preset's sizes and few repeats: about a minute for peak,gemm on a CPU */
  BENCH_SIZE_TINY,     /* the smallest sizes that still run every code path (the smoke test) */
} bench_size;

typedef struct {
  const char *devices; /* "all", "gpu", "cpu" or indices "0,2" of `untangle devices`; NULL: all */
  unsigned suites;     /* BENCH_* bits; run in the order peak, gemm, ops, models, memory */
  bench_size size;
  int repeats, warmup; /* timed and untimed runs per figure; < 0: the size's default */
  FILE *out;           /* JSON lines go here, one flushed line per figure */
  FILE *profile;       /* NULL, or where each models case's per-node table goes (its timed steps' mean) */
  /* Called before each figure with the figures done and the total (NULL: silent). */
  void (*on_progress)(void *user, int done, int total, const char *what);
  void *user;
} bench_cfg;

/* Parses "peak,gemm,ops,models,memory" (any subset, any order; "all") into BENCH_* bits. UT_OK, or
 * UT_ERR_INVALID_ARGUMENT naming the word it does not know. */
ut_status bench_parse_suites(const char *text, unsigned *suites);

/* Runs the suites on every selected device. A figure that fails is reported on stderr and the
 * others go on; the status is then UT_ERR_STATE with a count of the failures. No device
 * matching cfg->devices is UT_ERR_NO_DEVICE, a malformed list UT_ERR_INVALID_ARGUMENT. */
ut_status bench_run(const bench_cfg *cfg);

typedef struct {
  const char *const *inputs; /* JSON lines files: results of bench_run and PyTorch references */
  int n_inputs;
  const char *html_path;     /* NULL: no HTML */
  const char *markdown_path; /* NULL: no markdown file */
  FILE *markdown_out;        /* the markdown table is also printed here (NULL: not printed) */
} bench_report_cfg;

/* Reads and validates every line of the inputs (an error names the file, the line and the
 * field), then writes one self-contained HTML page (a table and an SVG bar chart per case
 * comparing devices) and a markdown table. Lines from a reference framework (PyTorch) are
 * matched to untangle's by suite, case and shape, and the table gives untangle / reference. */
ut_status bench_report(const bench_report_cfg *cfg);

#endif
