/* `untangle bench` as a user meets it: help, command-line errors with exit status 2, then a
 * smoke run of every suite at the tiny sizes whose every JSON line is checked (fields, types,
 * min <= median <= max, GFLOP/s consistent with the GEMM shape and the time, the model
 * figures present for both of LORD's losses and for UNIT's iteration, the memory suite's plan
 * that fits and steps and its plan that cannot fit and is recorded, not fatal), the report's
 * HTML and markdown, a bad line named by file and line, and the ratio to a PyTorch reference
 * line for every model case.
 *
 * The device is $UNTANGLE_TEST_DEVICE when it is cpu, gpu or an index, else the CPU. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_runner.h"

START_TEST(test_help) {
  static const char *const asks[] = { "bench --help", "help bench" };
  for (int i = 0; i < 2; i++) {
    cli_result r = cli_run(asks[i]);
    ck_assert_msg(r.status == 0, "'%s' exited %d", asks[i], r.status);
    assert_contains(r.out, "untangle bench [--devices D]");
    assert_contains(r.out, "untangle bench report RESULTS.jsonl");
    assert_contains(r.out, "--quick");
    assert_contains(r.out, "memory  whether the official stage-1 step");
    cli_result_free(&r);
  }
}
END_TEST

START_TEST(test_usage_errors) {
  static const struct {
    const char *args, *says;
    int status;
  } cases[] = {
    { "bench --suite peak,frob", "unknown suite 'frob'", 2 },
    { "bench --repeats 0", "--repeats expects a whole number from 1", 2 },
    { "bench --frob", "unknown option '--frob'", 2 },
    { "bench extra", "takes no arguments", 2 },
    { "bench --devices x1 --suite peak", "'x1' is not all, gpu, cpu or a device index", 2 },
    { "bench --devices 999 --suite peak", "no device 999", 1 },
    { "bench --suite peak --profile /nonexistent/nodes.txt", "cannot write /nonexistent/nodes.txt", 1 },
    { "bench report", "expects one or more RESULTS.jsonl files", 2 },
    { "bench report /nonexistent/r.jsonl", "cannot read /nonexistent/r.jsonl", 1 },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_result r = cli_run(cases[i].args);
    ck_assert_msg(r.status == cases[i].status, "'%s' exited %d, expected %d; stderr:\n%s", cases[i].args, r.status,
                  cases[i].status, r.err);
    assert_contains(r.err, cases[i].says);
    cli_result_free(&r);
  }
}
END_TEST

static const char *device_choice(void) {
  const char *d = getenv("UNTANGLE_TEST_DEVICE");
  if (d && (!strcmp(d, "cpu") || !strcmp(d, "gpu") || (*d && strspn(d, "0123456789") == strlen(d)))) return d;
  return "cpu";
}

static double num(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  ck_assert_msg(json_is_number(v), "field '%s' is not a number", key);
  return json_number_value(v);
}

/* A memory line: the tiny sizes' batch of 4 fits and runs its step; the batch of 65536 can
 * never fit (about 17 GiB of VGG activations alone), so it is recorded as refused or too large,
 * with the reason, and no step. */
static unsigned check_memory_line(json_t *o, const char *text) {
  json_t *compiled = json_object_get(o, "compiled"), *fits = json_object_get(o, "fits");
  ck_assert_msg(json_is_boolean(compiled) && json_is_boolean(fits), "memory: no booleans compiled, fits in %s", text);
  static const char *const sizes[] = { "arena_peak_bytes", "intermediate_bytes", "needed_bytes" };
  for (int i = 0; i < 3; i++) {
    json_t *v = json_object_get(o, sizes[i]);
    ck_assert_msg(v && (json_is_null(v) || json_integer_value(v) > 0), "memory: bad '%s' in %s", sizes[i], text);
  }
  ck_assert_msg(num(o, "compile_s") >= 0 && num(o, "limit_bytes") > 0, "memory: no compile time or limit in %s", text);
  const char *timed = json_string_value(json_object_get(o, "timed"));
  ck_assert_msg(timed != NULL, "memory: no 'timed' in %s", text);
  int batch = (int)num(o, "batch");
  if (batch == 4) {
    ck_assert_msg(json_is_true(compiled) && json_is_true(fits) && !strcmp(timed, "step"), "memory: batch 4: %s", text);
    double arena = num(o, "arena_peak_bytes");
    ck_assert_msg(arena > 0 && arena <= num(o, "intermediate_bytes"), "memory: arena above intermediates in %s", text);
    ck_assert_msg(num(o, "images_per_s") > 0 && json_integer_value(json_object_get(o, "repeats")) == 1,
                  "memory: batch 4 not timed in %s", text);
  } else {
    ck_assert_int_eq(batch, 65536);
    ck_assert_msg(json_is_false(fits) && !strcmp(timed, "compile"), "memory: batch 65536 fitted: %s", text);
    ck_assert_msg(json_is_string(json_object_get(o, "note")), "memory: no note in %s", text);
    if (json_is_false(compiled))
      ck_assert_msg(json_string_length(json_object_get(o, "error")) > 0, "memory: refused without a reason: %s", text);
  }
  return 16;
}

/* Checks one line and returns its suite's bit. */
static unsigned check_line(json_t *o, const char *text) {
  static const char *const strings[] = { "schema", "framework", "device", "device_type", "driver", "platform",
                                         "clblast", "suite", "case", "shape", "timing" };
  for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
    ck_assert_msg(json_is_string(json_object_get(o, strings[i])), "no string '%s' in %s", strings[i], text);
  ck_assert_str_eq(json_string_value(json_object_get(o, "schema")), "untangle-bench/1");
  json_t *ms = json_object_get(o, "ms");
  double med = num(ms, "median"), lo = num(ms, "min"), hi = num(ms, "max");
  ck_assert_msg(lo > 0 && lo <= med && med <= hi, "ms not ordered in %s", text);
  static const char *const nullable[] = { "gflops", "gbps", "pct_peak" };
  for (size_t i = 0; i < 3; i++) {
    json_t *v = json_object_get(o, nullable[i]);
    ck_assert_msg(v && (json_is_null(v) || (json_is_number(v) && json_number_value(v) >= 0)), "bad '%s' in %s",
                  nullable[i], text);
  }
  const char *suite = json_string_value(json_object_get(o, "suite")), *name = json_string_value(json_object_get(o, "case"));
  const char *shape = json_string_value(json_object_get(o, "shape"));
  if (!strcmp(suite, "gemm")) {
    long long m, n, k;
    ck_assert_msg(sscanf(shape, "%lldx%lldx%lld", &m, &n, &k) == 3, "gemm shape '%s'", shape);
    double expect = 2.0 * m * n * k / (med * 1e6), got = num(o, "gflops");
    ck_assert_msg(fabs(got - expect) <= 1e-3 * expect, "%s: %g GFLOP/s, the shape and time give %g", name, got, expect);
    ck_assert_msg(json_is_number(json_object_get(o, "pct_peak")), "%s: no pct_peak though peak ran first", name);
    return 2;
  }
  if (!strcmp(suite, "peak")) {
    ck_assert_msg(num(o, !strncmp(name, "fma", 3) ? "gflops" : "gbps") > 0, "%s has no throughput", name);
    return 1;
  }
  if (!strcmp(suite, "ops")) {
    if (strncmp(name, "conv.", 5)) {
      /* A normalisation or leaky ReLU: GB/s is the least traffic of its passes (x and y
       * forward; x, dL/dy and dL/dx more with the backward pass) over the median time. */
      long long b, ch, h, w;
      ck_assert_msg(sscanf(shape, "%lldx%lldx%lldx%lld", &b, &ch, &h, &w) == 4, "%s: shape '%s'", name, shape);
      size_t len = strlen(name);
      int fwd_bwd = len > 8 && !strcmp(name + len - 8, ".fwd_bwd");
      double expect = (fwd_bwd ? 5.0 : 2.0) * 4.0 * (double)(b * ch * h * w) / (med * 1e6);
      ck_assert_msg(fabs(num(o, "gbps") - expect) <= 1e-3 * expect, "%s: %g GB/s, the shape and time give %g", name,
                    num(o, "gbps"), expect);
    }
    return 4;
  }
  if (!strcmp(suite, "memory")) return check_memory_line(o, text);
  ck_assert_str_eq(suite, "models");
  if (!strncmp(name, "unit.", 5)) {
    /* A UNIT iteration: both plans' halves, two domains of `batch` images each. */
    ck_assert_str_eq(name, "unit.small");
    ck_assert_str_eq(json_string_value(json_object_get(o, "model")), "unit");
    ck_assert_msg(num(o, "domains") == 2 && num(o, "batch") >= 1, "%s: no domains or batch", name);
    json_t *half = json_object_get(o, "plan_arena_peak_bytes");
    ck_assert_msg(json_integer_value(json_object_get(half, "dis")) > 0 &&
                      json_integer_value(json_object_get(half, "gen")) > 0 &&
                      num(o, "arena_peak_bytes") == (double)(json_integer_value(json_object_get(half, "dis")) +
                                                             json_integer_value(json_object_get(half, "gen"))),
                  "%s: the arena is not the sum of the halves' in %s", name, text);
  } else {
    /* The pixel-L1 step is named after its loss; the VGG cases keep their old names. */
    int l1 = strlen(name) > 3 && !strcmp(name + strlen(name) - 3, ".l1");
    ck_assert_str_eq(json_string_value(json_object_get(o, "recon")), l1 ? "l1" : "vgg-random");
  }
  ck_assert_msg(num(o, "images_per_s") > 0 && num(o, "arena_peak_bytes") > 0, "%s: no images/s or arena", name);
  ck_assert_msg(num(o, "cold_start_s") > 0 && num(o, "warm_start_s") > 0, "%s: no start times", name);
  json_t *share = json_object_get(o, "op_share");
  double sum = 0;
  const char *k;
  json_t *v;
  json_object_foreach(share, k, v) sum += json_number_value(v);
  ck_assert_msg(fabs(sum - 1) < 1e-3, "%s: op shares sum to %g", name, sum);
  return 8;
}

/* Writes `text` to a fresh file under the test folder and returns its path (malloc'd). */
static char *write_file(const char *name, const char *text) {
  char *path = strdup(test_tmp_path(name));
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  return path;
}

START_TEST(test_smoke_and_report) {
  char *results = strdup(test_tmp_path("bench.jsonl")), *html = strdup(test_tmp_path("bench.html"));
  char *md = strdup(test_tmp_path("bench.md")), *nodes = strdup(test_tmp_path("nodes.txt")), args[8192];
  snprintf(args, sizeof args, "bench --devices %s --suite peak,gemm,ops,models,memory --tiny --profile '%s' -o '%s'",
           device_choice(), nodes, results);
  cli_result r = cli_run(args);
  ck_assert_msg(r.status == 0, "'%s' exited %d:\n%s", args, r.status, r.err);
  assert_contains(r.err, "bench step");         /* the progress line */
  assert_contains(r.out, "| gemm | sgemm.square |"); /* the table printed after the run */
  cli_result_free(&r);

  /* --profile: every plan of every models case, its nodes and its total. */
  char *profile = cli_slurp(nodes, NULL);
  assert_contains(profile, "== lord.stage1.small on ");
  assert_contains(profile, "== lord.stage2.small.l1 on ");
  assert_contains(profile, ", plan 2 of 2\n"); /* UNIT's generator half */
  assert_contains(profile, "host_conv_forward");
  int totals = 0;
  for (const char *p = strstr(profile, "\ntotal "); p; p = strstr(p + 1, "\ntotal ")) totals++;
  ck_assert_msg(totals == 6, "%d profile tables, expected 6 (four LORD plans, UNIT's two):\n%s", totals, profile);
  free(profile);

  char *text = cli_slurp(results, NULL), *save = NULL;
  /* PyTorch lines twice as slow as each of untangle's model figures, built on the way. */
  char *refs = calloc(1, 1);
  unsigned seen = 0;
  int lines = 0, models = 0, memory = 0, shares = 0, pointwise = 0;
  double sgemm_best = 0; /* the fastest square SGEMM so far: the gemm suite runs before the ops suite */
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
    json_error_t err;
    json_t *o = json_loads(line, 0, &err);
    ck_assert_msg(o != NULL, "line %d is not JSON (%s): %s", lines + 1, err.text, line);
    unsigned bit = check_line(o, line);
    const char *name = json_string_value(json_object_get(o, "case"));
    json_t *share = json_object_get(o, "pct_sgemm_peak");
    if (bit == 2 && !strcmp(name, "sgemm.square") && num(o, "gflops") > sgemm_best) sgemm_best = num(o, "gflops");
    if (bit == 4 && json_is_number(json_object_get(o, "gflops"))) {
      double expect = 100.0 * num(o, "gflops") / sgemm_best;
      ck_assert_msg(json_is_number(share) && fabs(json_number_value(share) - expect) <= 1e-4 * expect,
                    "%s: pct_sgemm_peak %g, its GFLOP/s against the fastest square SGEMM give %g", name,
                    json_is_number(share) ? json_number_value(share) : -1.0, expect);
      shares++;
    } else {
      ck_assert_msg(!share, "%s (suite bit %u) has a pct_sgemm_peak", name, bit);
    }
    if (bit == 8) {
      models++;
      json_object_set_new(o, "framework", json_string("pytorch 1.13"));
      json_t *ms = json_object_get(o, "ms");
      const char *parts[3] = { "median", "min", "max" };
      for (int i = 0; i < 3; i++) json_object_set_new(ms, parts[i], json_real(2 * num(ms, parts[i])));
      char *ref = json_dumps(o, JSON_COMPACT);
      refs = realloc(refs, strlen(refs) + strlen(ref) + 2);
      strcat(strcat(refs, ref), "\n");
      free(ref);
    }
    memory += bit == 16;
    pointwise += bit == 4 && strncmp(name, "conv.", 5) != 0;
    seen |= bit;
    json_decref(o);
  }
  ck_assert_msg(seen == 31, "suites seen: mask %u of 31", seen);
  ck_assert_int_eq(models, 5); /* LORD's stage 1 and 2, VGG and L1; UNIT's small iteration */
  ck_assert_int_eq(memory, 2);
  ck_assert_int_eq(pointwise, 6); /* AdaIN, instance norm, leaky ReLU: forward, and with backward */
  ck_assert_msg(sgemm_best > 0 && shares > 0, "SGEMM peak %g, %d ops figures with a share of it", sgemm_best, shares);
  free(text);

  snprintf(args, sizeof args, "bench report '%s' -o '%s' --markdown '%s'", results, html, md);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "'%s' exited %d:\n%s", args, r.status, r.err);
  assert_contains(r.out, "| models | lord.stage1.small |");
  assert_contains(r.out, "| models | lord.stage1.small.l1 |");
  assert_contains(r.out, "| models | lord.stage2.small.l1 |");
  assert_contains(r.out, "| models | unit.small | 2x3x32x32 |");
  assert_contains(r.out, "| memory | lord.stage1.small | 4x3x32x32 |");
  assert_contains(r.out, "| memory | lord.stage1.small | 65536x3x32x32 |");
  assert_contains(r.out, "(compile only, no step) |");
  cli_result_free(&r);
  char *page = cli_slurp(html, NULL), *table = cli_slurp(md, NULL);
  assert_contains(page, "<svg");
  assert_contains(page, "sgemm.square");
  assert_contains(page, "lord.stage2.small");
  ck_assert_msg(!strstr(page, "<script") && !strstr(page, "<link") && !strstr(page, "src=") && !strstr(page, "href="),
                "the page must be self-contained");
  assert_contains(table, "| ops | conv.lord.gen.up4.conv3.bwd_weight |");
  assert_contains(table, "| peak | triad |");
  free(page);
  free(table);

  /* PyTorch lines twice as slow as untangle's model figures give the ratio 0.50 on each of
   * the five model rows (a case the report failed to pair would have none). */
  char *ref_path = write_file("ref.jsonl", refs);
  snprintf(args, sizeof args, "bench report '%s' '%s'", results, ref_path);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "'%s' exited %d:\n%s", args, r.status, r.err);
  assert_contains(r.out, "(pytorch 1.13)");
  int ratios = 0;
  for (const char *p = strstr(r.out, "| 0.50 |\n"); p; p = strstr(p + 1, "| 0.50 |\n")) ratios++; /* the last column */
  ck_assert_msg(ratios == 5, "%d model rows have the ratio 0.50, expected 5:\n%s", ratios, r.out);
  cli_result_free(&r);
  char *ref_line = strdup(strtok_r(refs, "\n", &save));
  free(refs);

  /* A bad second line is named by file, line and field. */
  char bad[16384];
  snprintf(bad, sizeof bad, "%s\n{\"schema\":\"untangle-bench/1\",\"ms\":\"fast\"}\n", ref_line);
  char *bad_path = write_file("bad.jsonl", bad);
  snprintf(args, sizeof args, "bench report '%s' -o '%s'", bad_path, html);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  snprintf(bad, sizeof bad, "%s:2: field 'framework'", bad_path);
  assert_contains(r.err, bad);
  cli_result_free(&r);

  unlink(results), unlink(html), unlink(md), unlink(ref_path), unlink(bad_path), unlink(nodes);
  free(results), free(html), free(md), free(ref_path), free(bad_path), free(ref_line), free(nodes);
}
END_TEST

int main(void) {
  Suite *s = suite_create("bench");
  TCase *cli = tcase_create("cli");
  tcase_add_test(cli, test_help);
  tcase_add_test(cli, test_usage_errors);
  suite_add_tcase(s, cli);
  TCase *smoke = tcase_create("smoke");
  tcase_set_timeout(smoke, 600);
  tcase_add_test(smoke, test_smoke_and_report);
  suite_add_tcase(s, smoke);
  return test_run_suite(s);
}
