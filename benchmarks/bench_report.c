/* `untangle bench report`: reads JSON lines files of bench_run and of the PyTorch reference
 * scripts, checks every line, matches references to untangle's figures, and writes the
 * markdown table (and the HTML page, bench_report_html.c). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_report_internal.h"

typedef struct {
  report_row *rows;
  int n, cap, groups;
} row_list;

static void free_rows(row_list *l) {
  for (int i = 0; i < l->n; i++) {
    report_row *r = &l->rows[i];
    free(r->framework), free(r->device), free(r->device_type), free(r->suite), free(r->name), free(r->shape);
  }
  free(l->rows);
}

void report_label(const report_row *r, char *buf, size_t size) {
  if (r->reference) snprintf(buf, size, "%s (%s)", r->device, r->framework);
  else snprintf(buf, size, "%s", r->device);
}

/* A required string field; NULL after setting the error. */
static const char *need_string(json_t *o, const char *key, const char *file, long line) {
  json_t *v = json_object_get(o, key);
  if (json_is_string(v)) return json_string_value(v);
  ut_fail(UT_ERR_FORMAT, "%s:%ld: field '%s' must be a string%s", file, line, key, v ? "" : " (it is missing)");
  return NULL;
}

/* An optional number: a number or null (or absent, which reads as null). -1 for null. */
static int optional_number(json_t *o, const char *key, double *out, const char *file, long line) {
  json_t *v = json_object_get(o, key);
  *out = -1;
  if (!v || json_is_null(v)) return 1;
  if (json_is_number(v) && json_number_value(v) >= 0) {
    *out = json_number_value(v);
    return 1;
  }
  ut_fail(UT_ERR_FORMAT, "%s:%ld: field '%s' must be a number of at least 0 or null", file, line, key);
  return 0;
}

static ut_status parse_line(const char *text, const char *file, long line, report_row *r) {
  json_error_t err;
  json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &err);
  if (!o) return ut_fail(UT_ERR_FORMAT, "%s:%ld: not JSON (%s at column %d)", file, line, err.text, err.column);
  ut_status st = UT_ERR_FORMAT;
  const char *schema = json_string_value(json_object_get(o, "schema"));
  if (!json_is_object(o)) {
    ut_fail(UT_ERR_FORMAT, "%s:%ld: a line must be a JSON object", file, line);
    goto done;
  }
  if (!schema || strcmp(schema, BENCH_SCHEMA)) {
    ut_fail(UT_ERR_FORMAT, "%s:%ld: field 'schema' must be \"%s\"", file, line, BENCH_SCHEMA);
    goto done;
  }
  const char *fields[6] = { "framework", "device", "device_type", "suite", "case", "shape" }, *values[6];
  for (int i = 0; i < 6; i++)
    if (!(values[i] = need_string(o, fields[i], file, line))) goto done;
  if (!need_string(o, "driver", file, line) || !need_string(o, "platform", file, line)) goto done;
  int is_untangle = !strcmp(values[0], "untangle");
  if (is_untangle && !need_string(o, "clblast", file, line)) goto done;
  json_t *ms = json_object_get(o, "ms");
  double t[3];
  static const char *const parts[3] = { "median", "min", "max" };
  for (int i = 0; i < 3; i++) {
    json_t *v = json_object_get(ms, parts[i]);
    if (!json_is_number(v) || !((t[i] = json_number_value(v)) > 0)) {
      ut_fail(UT_ERR_FORMAT, "%s:%ld: field 'ms.%s' must be a positive number of milliseconds", file, line, parts[i]);
      goto done;
    }
  }
  if (!(t[1] <= t[0] && t[0] <= t[2])) {
    ut_fail(UT_ERR_FORMAT, "%s:%ld: field 'ms' must have min <= median <= max, got %g, %g, %g", file, line, t[1], t[0],
            t[2]);
    goto done;
  }
  /* Optional: the memory suite's lines say whether ms timed a step or only the compile. */
  const char *timed = json_string_value(json_object_get(o, "timed"));
  double num[5];
  static const char *const numbers[5] = { "gflops", "gbps", "pct_peak", "images_per_s", "pct_sgemm_peak" };
  for (int i = 0; i < 5; i++)
    if (!optional_number(o, numbers[i], &num[i], file, line)) goto done;
  *r = (report_row){ .framework = strdup(values[0]), .device = strdup(values[1]), .device_type = strdup(values[2]),
                     .suite = strdup(values[3]), .name = strdup(values[4]), .shape = strdup(values[5]),
                     .median = t[0], .min = t[1], .max = t[2], .gflops = num[0], .gbps = num[1], .pct_peak = num[2],
                     .images_per_s = num[3], .pct_sgemm_peak = num[4], .reference = !is_untangle, .ratio = -1,
                     .compile_only = !strcmp(timed ? timed : "", "compile") };
  st = UT_OK;
done:
  json_decref(o);
  return st;
}

static ut_status read_file(const char *path, row_list *l) {
  FILE *f = fopen(path, "r");
  if (!f) return ut_fail(UT_ERR_IO, "cannot read %s", path);
  char *buf = NULL;
  size_t cap = 0;
  long line = 0;
  int before = l->n;
  ut_status st = UT_OK;
  for (ssize_t len; st == UT_OK && (len = getline(&buf, &cap, f)) != -1;) {
    line++;
    if (strspn(buf, " \t\r\n") == (size_t)len) continue; /* blank lines are allowed */
    if (l->n == l->cap) {
      int ncap = l->cap ? 2 * l->cap : 64;
      report_row *grown = realloc(l->rows, (size_t)ncap * sizeof *grown);
      if (!grown) {
        st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory reading %s", path);
        break;
      }
      l->rows = grown, l->cap = ncap;
    }
    if ((st = parse_line(buf, path, line, &l->rows[l->n])) == UT_OK) l->n++;
  }
  if (st == UT_OK && ferror(f)) st = ut_fail(UT_ERR_IO, "error reading %s", path);
  if (st == UT_OK && l->n == before) st = ut_fail(UT_ERR_FORMAT, "%s holds no result lines", path);
  free(buf);
  fclose(f);
  return st;
}

static int same_case(const report_row *a, const report_row *b) {
  return !strcmp(a->suite, b->suite) && !strcmp(a->name, b->name) && !strcmp(a->shape, b->shape);
}

/* Numbers the groups and gives every untangle row its ratio to a reference of its case: one
 * on the same kind of device if there is one, else the first. */
static void match(row_list *l) {
  for (int i = 0; i < l->n; i++) {
    l->rows[i].group = -1;
    for (int j = 0; j < i && l->rows[i].group < 0; j++)
      if (same_case(&l->rows[i], &l->rows[j])) l->rows[i].group = l->rows[j].group;
    if (l->rows[i].group < 0) l->rows[i].group = l->groups++;
  }
  for (int i = 0; i < l->n; i++) {
    report_row *r = &l->rows[i];
    if (r->reference) continue;
    const report_row *ref = NULL;
    for (int j = 0; j < l->n; j++) {
      const report_row *c = &l->rows[j];
      if (!c->reference || c->group != r->group) continue;
      if (!ref || (strcmp(ref->device_type, r->device_type) && !strcmp(c->device_type, r->device_type))) ref = c;
    }
    if (ref) r->ratio = r->median / ref->median;
  }
}

static void cell(FILE *f, double v, const char *fmt) {
  if (v < 0) fprintf(f, " |");
  else fprintf(f, fmt, v);
}

static void write_markdown(FILE *f, const report_row *rows, int n) {
  fprintf(f, "| suite | case | shape | device | ms median (min-max) | GFLOP/s | GB/s | %% of peak | %% of SGEMM | "
             "images/s | untangle / PyTorch |\n");
  fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int i = 0; i < n; i++) {
    const report_row *r = &rows[i];
    char label[320];
    report_label(r, label, sizeof label);
    /* A memory line whose plan did not fit timed no step: its ms must not read as a step's. */
    fprintf(f, "| %s | %s | %s | %s | %.3f ", r->suite, r->name, r->shape, label, r->median);
    if (r->compile_only) fprintf(f, "(compile only, no step) |");
    else fprintf(f, "(%.3f-%.3f) |", r->min, r->max);
    cell(f, r->gflops, " %.1f |");
    cell(f, r->gbps, " %.1f |");
    cell(f, r->pct_peak, " %.0f%% |");
    cell(f, r->pct_sgemm_peak, " %.0f%% |");
    cell(f, r->images_per_s, " %.1f |");
    cell(f, r->ratio, " %.2f |");
    fputc('\n', f);
  }
}

ut_status bench_report(const bench_report_cfg *cfg) {
  if (!cfg || cfg->n_inputs < 1) return ut_fail(UT_ERR_INVALID_ARGUMENT, "bench_report: no input files");
  row_list l = { 0 };
  ut_status st = UT_OK;
  for (int i = 0; st == UT_OK && i < cfg->n_inputs; i++) st = read_file(cfg->inputs[i], &l);
  if (st == UT_OK) {
    match(&l);
    /* Rows of a case together, in the order cases first appear; a stable insertion sort keeps
     * the inputs' order within a case (qsort alone would not). */
    for (int i = 1; i < l.n; i++) {
      report_row r = l.rows[i];
      int j = i;
      while (j > 0 && l.rows[j - 1].group > r.group) l.rows[j] = l.rows[j - 1], j--;
      l.rows[j] = r;
    }
    if (cfg->markdown_out) write_markdown(cfg->markdown_out, l.rows, l.n);
    if (cfg->markdown_path) {
      FILE *f = fopen(cfg->markdown_path, "w");
      if (f) write_markdown(f, l.rows, l.n);
      if (!f || fclose(f) != 0) st = ut_fail(UT_ERR_IO, "cannot write %s", cfg->markdown_path);
    }
    if (st == UT_OK && cfg->html_path &&
        report_write_html(cfg->html_path, l.rows, l.n, l.groups, cfg->inputs, cfg->n_inputs) != UT_OK)
      st = UT_ERR_IO;
  }
  free_rows(&l);
  return st;
}
