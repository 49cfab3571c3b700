/* The report's HTML page: self-contained (inline CSS and SVG, no scripts, fonts or images from
 * elsewhere), so it can be mailed or attached to an issue as one file. One horizontal bar chart
 * per case compares the devices (and PyTorch references): the peak suite's throughput (higher
 * is better), elsewhere the median time with a min-max whisker (lower is better). */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "bench_report_internal.h"

static void esc(FILE *f, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '&': fputs("&amp;", f); break;
    case '"': fputs("&quot;", f); break;
    default: fputc(*s, f);
    }
  }
}

static void num_cell(FILE *f, double v, const char *fmt) {
  fputs("<td class=n>", f);
  if (v >= 0) fprintf(f, fmt, v);
  fputs("</td>", f);
}

static void table(FILE *f, const report_row *rows, int n) {
  fputs("<table><tr><th>suite</th><th>case</th><th>shape</th><th>device</th><th>ms median (min-max)</th>"
        "<th>GFLOP/s</th><th>GB/s</th><th>% of peak</th><th>% of SGEMM</th><th>images/s</th><th>untangle / PyTorch</th></tr>\n",
        f);
  for (int i = 0; i < n; i++) {
    const report_row *r = &rows[i];
    char label[320];
    report_label(r, label, sizeof label);
    fputs("<tr><td>", f);
    esc(f, r->suite);
    fputs("</td><td>", f);
    esc(f, r->name);
    fputs("</td><td>", f);
    esc(f, r->shape);
    fputs("</td><td>", f);
    esc(f, label);
    fprintf(f, "</td><td class=n>%.3f (%.3f-%.3f)</td>", r->median, r->min, r->max);
    num_cell(f, r->gflops, "%.1f");
    num_cell(f, r->gbps, "%.1f");
    num_cell(f, r->pct_peak, "%.0f%%");
    num_cell(f, r->pct_sgemm_peak, "%.0f%%");
    num_cell(f, r->images_per_s, "%.1f");
    num_cell(f, r->ratio, "%.2f");
    fputs("</tr>\n", f);
  }
  fputs("</table>\n", f);
}

/* The value a chart shows for a row, and its whisker (lo, hi) in the same unit. */
static double chart_value(const report_row *r, int throughput, double *lo, double *hi) {
  if (!throughput) {
    *lo = r->min, *hi = r->max;
    return r->median;
  }
  double v = r->gflops >= 0 ? r->gflops : r->gbps;
  /* Throughput is work / time: the fastest run gives the highest figure. */
  *lo = v * r->median / r->max, *hi = v * r->median / r->min;
  return v;
}

enum { BAR_H = 22, LABEL_W = 330, PLOT_W = 420, VALUE_W = 110 };

static void chart(FILE *f, const report_row *rows, int n) {
  const report_row *first = &rows[0];
  int throughput = !strcmp(first->suite, "peak") && (first->gflops >= 0 || first->gbps >= 0);
  const char *unit = throughput ? (first->gflops >= 0 ? "GFLOP/s, higher is better" : "GB/s, higher is better")
                                : "ms, lower is better";
  double top = 0, lo, hi;
  for (int i = 0; i < n; i++) {
    chart_value(&rows[i], throughput, &lo, &hi);
    if (hi > top) top = hi;
  }
  if (!(top > 0)) top = 1;
  fputs("<figure><figcaption>", f);
  esc(f, first->suite);
  fputs(" / <b>", f);
  esc(f, first->name);
  fputs("</b> / ", f);
  esc(f, first->shape);
  fprintf(f, " <span class=u>(%s)</span></figcaption>\n", unit);
  int height = n * BAR_H + 8;
  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\">\n",
          LABEL_W + PLOT_W + VALUE_W, height);
  for (int i = 0; i < n; i++) {
    const report_row *r = &rows[i];
    double v = chart_value(r, throughput, &lo, &hi);
    int y = 4 + i * BAR_H;
    double w = PLOT_W * v / top, wl = PLOT_W * lo / top, wh = PLOT_W * hi / top;
    char label[320];
    report_label(r, label, sizeof label);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", LABEL_W - 6, y + 15);
    esc(f, label);
    fprintf(f, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" class=\"%s\"/>\n", LABEL_W, y + 2, w,
            BAR_H - 6, r->reference ? "ref" : "bar");
    fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"wh\"/>\n", LABEL_W + wl, LABEL_W + wh,
            y + BAR_H / 2, y + BAR_H / 2);
    fprintf(f, "<text x=\"%.1f\" y=\"%d\">%.4g</text>\n", LABEL_W + (wh > w ? wh : w) + 6, y + 15, v);
  }
  fputs("</svg></figure>\n", f);
}

int report_write_html(const char *path, const report_row *rows, int n, int n_groups, const char *const *inputs,
                      int n_inputs) {
  FILE *f = fopen(path, "w");
  if (!f) return ut_fail(UT_ERR_IO, "cannot write %s", path);
  fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>untangle bench report</title>\n"
        "<style>body{font:14px sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}td.n{text-align:right}"
        "figure{margin:1.2em 0}figcaption{margin-bottom:4px}.u{color:#666}svg text{font:12px sans-serif}"
        ".bar{fill:#4a7ebb}.ref{fill:#d9822b}.wh{stroke:#222;stroke-width:1.5}</style></head><body>\n"
        "<h1>untangle bench report</h1>\n<p>From ",
        f);
  for (int i = 0; i < n_inputs; i++) {
    fputs(i ? ", " : "", f);
    esc(f, inputs[i]);
  }
  fprintf(f, " (schema %s). Each figure is the median of the timed runs after warm-up; the whiskers span "
             "min to max. Blue: untangle; orange: a reference framework (PyTorch).</p>\n<h2>Table</h2>\n",
          BENCH_SCHEMA);
  table(f, rows, n);
  fputs("<h2>Charts</h2>\n", f);
  /* rows arrive sorted by group, so each group is one run of rows */
  for (int g = 0, i = 0; g < n_groups && i < n; g++) {
    int j = i;
    while (j < n && rows[j].group == rows[i].group) j++;
    chart(f, rows + i, j - i);
    i = j;
  }
  fputs("</body></html>\n", f);
  if (fclose(f) != 0) return ut_fail(UT_ERR_IO, "cannot finish writing %s", path);
  return UT_OK;
}
