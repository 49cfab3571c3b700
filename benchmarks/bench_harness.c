/* The harness: picks the devices, runs the chosen suites on each, and writes one JSON line per
 * figure (bench.h). */
#include <clblast_c.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"

/* The version of the CLBlast headers the harness was built with; CLBlast 1.5 has no call that
 * reports the library's own, and Debian ships headers and library in one version. */
#define STR_(x) #x
#define STR(x) STR_(x)
#define CLBLAST_VERSION_TEXT STR(CLBLAST_VERSION_MAJOR) "." STR(CLBLAST_VERSION_MINOR) "." STR(CLBLAST_VERSION_PATCH)

static const char *const suite_names[] = { "peak", "gemm", "ops", "models", "memory" };
enum { N_SUITES = 5 };

ut_status bench_parse_suites(const char *text, unsigned *suites) {
  *suites = 0;
  if (!text || !*text) return ut_fail(UT_ERR_INVALID_ARGUMENT, "--suite expects peak, gemm, ops, models, memory or all");
  const char *p = text;
  while (*p) {
    size_t n = strcspn(p, ",");
    int found = 0;
    if (n == 3 && !strncmp(p, "all", 3)) *suites |= BENCH_ALL, found = 1;
    for (int i = 0; i < N_SUITES && !found; i++)
      if (strlen(suite_names[i]) == n && !strncmp(p, suite_names[i], n)) *suites |= 1u << i, found = 1;
    if (!found)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "--suite: unknown suite '%.*s' (expected peak, gemm, ops, models, memory or all)",
                     (int)n, p);
    p += n;
    if (*p == ',') p++;
  }
  return UT_OK;
}

/* Marks in `chosen` (one flag per device) the devices a list such as "gpu", "0,2" or "all" names. */
static ut_status select_devices(const char *text, const ut_device_info *devs, int n, char *chosen) {
  if (!text || !*text) text = "all";
  for (const char *p = text; *p;) {
    size_t len = strcspn(p, ",");
    char word[32];
    if (len == 0 || len >= sizeof word)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "--devices: '%s' is not all, gpu, cpu or a list of indices like 0,2", text);
    memcpy(word, p, len);
    word[len] = '\0';
    char *end;
    long index = strtol(word, &end, 10);
    if (!strcmp(word, "all") || !strcmp(word, "gpu") || !strcmp(word, "cpu")) {
      for (int i = 0; i < n; i++)
        if (word[0] == 'a' || (word[0] == 'g' && devs[i].type == UT_DEVICE_GPU) ||
            (word[0] == 'c' && devs[i].type == UT_DEVICE_CPU))
          chosen[i] = 1;
    } else if (*end == '\0' && index >= 0 && index < n) {
      chosen[index] = 1;
    } else if (*end == '\0') {
      return ut_fail(UT_ERR_NO_DEVICE, "--devices: there is no device %s; 'untangle devices' lists %d", word, n);
    } else {
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "--devices: '%s' is not all, gpu, cpu or a device index", word);
    }
    p += len;
    if (*p == ',') p++;
  }
  return UT_OK;
}

static const char *size_name(bench_size s) { return s == BENCH_SIZE_TINY ? "tiny" : s == BENCH_SIZE_QUICK ? "quick" : "full"; }

static json_t *number_or_null(double v) { return v >= 0 ? json_real(v) : json_null(); }

ut_status bench_emit(bench_ctx *c, bench_record *r) {
  const ut_device_info *d = c->dev;
  double pct = -1;
  if (r->gflops >= 0 && c->peak_gflops > 0) pct = 100.0 * r->gflops / c->peak_gflops;
  else if (r->gflops < 0 && r->gbps >= 0 && c->peak_gbps > 0) pct = 100.0 * r->gbps / c->peak_gbps;
  json_t *o = json_object();
  json_object_set_new(o, "schema", json_string(BENCH_SCHEMA));
  json_object_set_new(o, "framework", json_string("untangle"));
  json_object_set_new(o, "device", json_string(d->name));
  json_object_set_new(o, "device_index", json_integer(d->index));
  json_object_set_new(o, "device_type", json_string(ut_device_type_name(d->type)));
  json_object_set_new(o, "driver", json_string(d->driver_version));
  json_object_set_new(o, "platform", json_string(d->platform));
  json_object_set_new(o, "clblast", json_string(CLBLAST_VERSION_TEXT " (clblast_c.h at build time)"));
  /* A CPU device's products run on OpenBLAS, whose kernels for the processor decide them, and
   * its narrow convolutions on direct loops of a vector width chosen for the processor. */
  if (d->type == UT_DEVICE_CPU) {
    json_object_set_new(o, "host_blas_kernels", json_string(ut_blas_kernels()));
    json_object_set_new(o, "host_conv_lanes", json_integer(ut_host_conv_lanes()));
  }
  json_object_set_new(o, "suite", json_string(r->suite));
  json_object_set_new(o, "case", json_string(r->name));
  json_object_set_new(o, "shape", json_string(r->shape));
  json_object_set_new(o, "size", json_string(size_name(c->cfg->size)));
  json_object_set_new(o, "ms", json_pack("{s:f,s:f,s:f}", "median", r->ms.median, "min", r->ms.min, "max", r->ms.max));
  json_object_set_new(o, "timing", json_string(r->ms.wall ? "wall" : "device"));
  json_object_set_new(o, "repeats", json_integer(r->repeats));
  json_object_set_new(o, "gflops", number_or_null(r->gflops));
  json_object_set_new(o, "gbps", number_or_null(r->gbps));
  json_object_set_new(o, "pct_peak", number_or_null(pct));
  /* What a product-shaped kernel reaches against what the device's GEMM itself does (the FMA
   * peak above is out of any real kernel's reach): for every figure with GFLOP/s outside the
   * gemm and peak suites, which today means the ops suite's (no models figure carries any). */
  if (r->gflops >= 0 && c->sgemm_gflops > 0 && strcmp(r->suite, "gemm") && strcmp(r->suite, "peak"))
    json_object_set_new(o, "pct_sgemm_peak", json_real(100.0 * r->gflops / c->sgemm_gflops));
  if (r->extra) {
    json_object_update(o, r->extra);
    json_decref(r->extra);
    r->extra = NULL;
  }
  char *line = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(7));
  json_decref(o);
  if (!line) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory writing a result line");
  int bad = fprintf(c->cfg->out, "%s\n", line) < 0 || fflush(c->cfg->out) != 0;
  free(line);
  if (bad && c->write_status == UT_OK) c->write_status = ut_fail(UT_ERR_IO, "cannot write the results (disk full?)");
  return bad ? UT_ERR_IO : UT_OK;
}

void bench_failed(bench_ctx *c, const char *what) {
  c->failures++;
  fprintf(stderr, "\nbench: %s on %s failed: %s\n", what, c->dev->name, ut_last_error());
}

void bench_step(bench_ctx *c, const char *what) {
  if (c->cfg->on_progress) c->cfg->on_progress(c->cfg->user, c->done, c->total, what);
  c->done++;
}

typedef struct {
  int (*count)(const bench_ctx *);
  ut_status (*run)(bench_ctx *);
} suite;
static const suite suites[N_SUITES] = { { bench_peak_count, bench_peak_run },
                                        { bench_gemm_count, bench_gemm_run },
                                        { bench_ops_count, bench_ops_run },
                                        { bench_models_count, bench_models_run },
                                        { bench_memory_count, bench_memory_run } };

ut_status bench_run(const bench_cfg *cfg) {
  if (!cfg || !cfg->out || !(cfg->suites & BENCH_ALL))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "bench_run: no output or no suite chosen");
  ut_device_info *devs = NULL;
  int n = 0;
  ut_status st = ut_devices_list(&devs, &n);
  if (st != UT_OK) return st;
  char *chosen = calloc((size_t)n + 1, 1);
  if (!chosen) {
    free(devs);
    return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  }
  st = select_devices(cfg->devices, devs, n, chosen);
  int n_chosen = 0;
  for (int i = 0; i < n; i++) n_chosen += chosen[i];
  if (st == UT_OK && n_chosen == 0)
    st = ut_fail(UT_ERR_NO_DEVICE, "--devices %s: no such device here ('untangle devices' lists %d)",
                 cfg->devices ? cfg->devices : "all", n);
  /* Repeats and warm-up runs for full, quick and tiny; tiny only checks that everything runs. */
  int defaults[3][2] = { { 5, 2 }, { 3, 1 }, { 1, 0 } };
  bench_ctx c = { .cfg = cfg, .repeats = cfg->repeats >= 1 ? cfg->repeats : defaults[cfg->size][0],
                  .warmup = cfg->warmup >= 0 ? cfg->warmup : defaults[cfg->size][1] };
  /* The total is known before anything runs, so the progress line can say how far it is. */
  for (int i = 0; st == UT_OK && i < N_SUITES; i++)
    if (cfg->suites & (1u << i)) c.total += n_chosen * suites[i].count(&c);
  int failures = 0;
  for (int d = 0; st == UT_OK && d < n; d++) {
    if (!chosen[d]) continue;
    char index[16];
    snprintf(index, sizeof index, "%d", devs[d].index);
    c.rt = ut_runtime_open(&(ut_device_query){ .select = index, .profiling = 1 });
    if (!c.rt) {
      ut_error_prefix("device %d (%s)", devs[d].index, devs[d].name);
      st = UT_ERR_NO_DEVICE;
      break;
    }
    c.dev = ut_runtime_device(c.rt);
    c.peak_gflops = c.peak_gbps = c.sgemm_gflops = 0;
    for (int i = 0; st == UT_OK && i < N_SUITES; i++)
      if (cfg->suites & (1u << i)) {
        st = suites[i].run(&c);
        if (st == UT_OK) st = c.write_status;
      }
    failures += c.failures;
    c.failures = 0;
    ut_runtime_close(c.rt);
    c.rt = NULL;
  }
  if (st == UT_OK && failures) st = ut_fail(UT_ERR_STATE, "%d figure%s failed (the reasons are above)", failures, failures == 1 ? "" : "s");
  free(chosen);
  free(devs);
  return st;
}
