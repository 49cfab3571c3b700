/* The report's rows, shared by its reader and markdown writer (bench_report.c) and its HTML
 * writer (bench_report_html.c). */
#ifndef UNTANGLE_BENCH_REPORT_INTERNAL_H
#define UNTANGLE_BENCH_REPORT_INTERNAL_H

#include <stdio.h>

typedef struct {
  char *framework, *device, *device_type, *suite, *name, *shape;
  double median, min, max;              /* ms */
  double gflops, gbps, pct_peak, pct_sgemm_peak, images_per_s; /* < 0: none */
  int group;     /* rows of one (suite, case, shape) share a group, numbered by first appearance */
  int reference; /* written by another framework (PyTorch) */
  double ratio;  /* untangle ms / the reference's ms for this case; < 0: no reference */
  int compile_only; /* "timed": "compile" (memory suite): ms is a plan's compile, no step ran */
} report_row;

/* A device's label in tables and charts: "name" or "name (framework)". */
void report_label(const report_row *r, char *buf, size_t size);

/* Writes the HTML page: the table and one SVG bar chart per group. UT_OK or UT_ERR_IO. */
int report_write_html(const char *path, const report_row *rows, int n, int n_groups, const char *const *inputs,
                      int n_inputs);

#endif
