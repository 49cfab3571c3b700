/* The convolution benchmark: forward and both backward passes of ut_conv2d at the shapes of the
 * LORD generator and encoder and of VGG16 up to relu3_3, at 64x64, next to CLBlast's own SGEMM
 * at the equivalent GEMM size on the same device in the same run. im2col + GEMM can at best
 * reach that SGEMM rate, so the ratio says how much the convolution loses around its GEMM.
 *
 * Every figure is device time from OpenCL profiling events, summed over the launches of one
 * pass, the median of the timed repetitions after warm-up (min and max beside it):
 *   fwd          the launches of y = conv2d(x, w, b)
 *   bwd_data     the launches ut_backward adds for dL/dx, where L = sum(y * G)
 *   bwd_weight   the launches ut_backward adds for dL/dw and dL/db
 * The backward plans also hold the forward pass and the seed gradient of L (G itself, one
 * elementwise pass over y); only nodes made by ut_backward count, and the broadcast and multiply
 * that form the seed are left out (--verbose lists what each figure sums).
 *
 *   untangle-bench-conv [--device D] [--batch 32,128] [--set lord,vgg] [--repeats N]
 *                       [--warmup N] [--json FILE] [--verbose]
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "untangle.h"

typedef struct {
  const char *set, *name;
  int c, o, hw, k, stride, pad;
} conv_case;

/* LORD at 64x64 (MODELS.md 1a): the generator's four 3x3 blocks after each upsampling, its two
 * output convolutions, and the encoders' stem and strided convolutions. VGG16 to relu3_3. */
static const conv_case cases[] = {
  { "lord", "gen.up8.conv3", 256, 256, 8, 3, 1, 1 },
  { "lord", "gen.up16.conv3", 256, 256, 16, 3, 1, 1 },
  { "lord", "gen.up32.conv3", 256, 256, 32, 3, 1, 1 },
  { "lord", "gen.up64.conv3", 256, 256, 64, 3, 1, 1 },
  { "lord", "gen.c1.conv5", 256, 64, 64, 5, 1, 2 },
  { "lord", "gen.c2.conv7", 64, 3, 64, 7, 1, 3 },
  { "lord", "enc.stem.conv7", 3, 64, 64, 7, 1, 3 },
  { "lord", "enc.down1.conv4s2", 64, 128, 64, 4, 2, 1 },
  { "lord", "enc.down2.conv4s2", 128, 256, 32, 4, 2, 1 },
  { "lord", "enc.down3.conv4s2", 256, 256, 16, 4, 2, 1 },
  { "vgg", "vgg.conv1_1", 3, 64, 64, 3, 1, 1 },
  { "vgg", "vgg.conv1_2", 64, 64, 64, 3, 1, 1 },
  { "vgg", "vgg.conv2_1", 64, 128, 32, 3, 1, 1 },
  { "vgg", "vgg.conv2_2", 128, 128, 32, 3, 1, 1 },
  { "vgg", "vgg.conv3_1", 128, 256, 16, 3, 1, 1 },
  { "vgg", "vgg.conv3_2", 256, 256, 16, 3, 1, 1 },
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

enum { PASS_FWD, PASS_BWD_DATA, PASS_BWD_WEIGHT, N_PASSES };
static const char *pass_name[N_PASSES] = { "fwd", "bwd_data", "bwd_weight" };

typedef struct {
  double med, min, max; /* ms */
  double relayout_ms;   /* im2col / col2im, at the median run */
  int ok;
} timing;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int verbose; /* --verbose: list the launches each figure sums */

static int is_im2col(const char *kernel) { return !strcmp(kernel, "im2col") || !strcmp(kernel, "col2im"); }

/* The seed gradient of L = sum(y * G) with respect to y: the broadcast one times G. */
static int is_seed_op(const char *op) { return !strcmp(op, "broadcast") || !strcmp(op, "mul"); }

/* Runs the plan warmup + repeats times and times the launches of nodes with index >= first
 * (skipping the seed gradient when skip_seed is set). */
static timing time_plan(ut_plan *p, int first, int skip_seed, int warmup, int repeats) {
  timing t = { 0 };
  double *ms = calloc((size_t)repeats, sizeof *ms), *rel = calloc((size_t)repeats, sizeof *rel);
  double *sorted = calloc((size_t)repeats, sizeof *sorted);
  if (!ms || !rel || !sorted) goto done;
  for (int i = 0; i < warmup; i++)
    if (ut_plan_run(p) != UT_OK) goto done;
  for (int r = 0; r < repeats; r++) {
    ut_plan_profile_reset(p);
    if (ut_plan_run(p) != UT_OK) goto done;
    ut_profile_entry *e;
    int n;
    if (ut_plan_profile(p, &e, &n) != UT_OK) goto done;
    for (int i = 0; i < n; i++) {
      if (e[i].node_index < first || (skip_seed && is_seed_op(e[i].op))) continue;
      ms[r] += e[i].ms;
      if (is_im2col(e[i].kernel)) rel[r] += e[i].ms;
      if (verbose && r == 0) fprintf(stderr, "    %-24s %-14s %-16s %.4f ms\n", e[i].node, e[i].op, e[i].kernel, e[i].ms);
    }
    free(e);
  }
  memcpy(sorted, ms, (size_t)repeats * sizeof *ms);
  qsort(sorted, (size_t)repeats, sizeof *sorted, cmp_double);
  t.med = sorted[repeats / 2];
  t.min = sorted[0];
  t.max = sorted[repeats - 1];
  for (int r = 0; r < repeats; r++)
    if (ms[r] == t.med) t.relayout_ms = rel[r];
  t.ok = 1;
done:
  free(ms);
  free(rel);
  free(sorted);
  return t;
}

static float *random_values(int64_t n, uint64_t seed) {
  float *v = malloc((size_t)n * sizeof *v);
  if (!v) return NULL;
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int64_t i = 0; i < n; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    v[i] = (float)((s >> 40) * (1.0 / 16777216.0)) - 0.5f;
  }
  return v;
}

/* One pass of one case: builds its graph and plan, times it, frees it. */
static timing time_conv_pass(ut_runtime *rt, const conv_case *c, int batch, int pass, int warmup, int repeats) {
  timing fail = { 0 };
  ut_store *st = ut_store_new(rt, 7);
  ut_graph *g = ut_graph_new(rt, st);
  ut_shape xs = UT_SHAPE(batch, c->c, c->hw, c->hw);
  ut_tensor *x = pass == PASS_BWD_DATA ? ut_param(g, "x", xs, (ut_init){ UT_INIT_UNIFORM, -1, 1 })
                                       : ut_input(g, "x", UT_F32, xs);
  ut_tensor *w = ut_param(g, "w", UT_SHAPE(c->o, c->c, c->k, c->k), (ut_init){ UT_INIT_FAN_IN_UNIFORM, 0, 0 });
  ut_tensor *b = ut_param(g, "b", UT_SHAPE(c->o), (ut_init){ UT_INIT_FAN_IN_UNIFORM, (float)(c->c * c->k * c->k), 0 });
  ut_tensor *y = ut_conv2d(g, x, w, b, UT_CONV(c->stride, c->pad));
  ut_tensor *gy = NULL, *out = y; /* the loss, in the backward passes */
  int first = 0;
  if (pass != PASS_FWD) {
    gy = ut_input(g, "G", UT_F32, ut_tensor_shape(y));
    out = ut_sum_all(g, ut_mul(g, y, gy));
    first = ut_graph_node_count(g);
    ut_tensor *wb[2] = { w, b };
    ut_tensor_list wrt = pass == PASS_BWD_DATA ? (ut_tensor_list){ 1, &x } : (ut_tensor_list){ 2, wb };
    if (ut_backward(g, out, wrt) != UT_OK) goto out;
  }
  /* The backward plans' outputs are the gradients, so the planner keeps just what they need. */
  ut_tensor *outs[2] = { out, NULL };
  int n_outs = 1;
  if (pass == PASS_BWD_DATA) outs[0] = ut_grad(g, x);
  if (pass == PASS_BWD_WEIGHT) outs[0] = ut_grad(g, w), outs[1] = ut_grad(g, b), n_outs = 2;
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = n_outs });
  if (!p) goto out;
  float *xv = pass == PASS_BWD_DATA ? NULL : random_values(ut_shape_numel(xs), 1);
  float *gv = gy ? random_values(ut_shape_numel(ut_tensor_shape(gy)), 2) : NULL;
  if ((xv && ut_upload(p, x, xv) == UT_OK) || !xv)
    if (!gy || ut_upload(p, gy, gv) == UT_OK) fail = time_plan(p, first, pass != PASS_FWD, warmup, repeats);
  free(xv);
  free(gv);
  ut_plan_free(p);
out:
  if (!fail.ok) fprintf(stderr, "  %s %s batch %d: %s\n", c->name, pass_name[pass], batch, ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
  return fail;
}

/* CLBlast SGEMM through ut_matmul: [M, K] x [K, N]. */
static timing time_gemm(ut_runtime *rt, int64_t m, int64_t n, int64_t k, int warmup, int repeats) {
  timing t = { 0 };
  ut_store *st = ut_store_new(rt, 7);
  ut_graph *g = ut_graph_new(rt, st);
  ut_tensor *a = ut_input(g, "a", UT_F32, UT_SHAPE(m, k)), *b = ut_input(g, "b", UT_F32, UT_SHAPE(k, n));
  ut_tensor *c = ut_matmul(g, a, b, 0, 0);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &c, .n_outputs = 1 });
  if (p) {
    float *av = random_values(m * k, 3), *bv = random_values(k * n, 4);
    if (av && bv && ut_upload(p, a, av) == UT_OK && ut_upload(p, b, bv) == UT_OK) t = time_plan(p, 0, 0, warmup, repeats);
    free(av);
    free(bv);
    ut_plan_free(p);
  }
  if (!t.ok) fprintf(stderr, "  sgemm %lldx%lldx%lld: %s\n", (long long)m, (long long)n, (long long)k, ut_last_error());
  ut_graph_free(g);
  ut_store_free(st);
  return t;
}

static int parse_batches(const char *s, int *out, int cap) {
  int n = 0;
  for (const char *p = s; *p && n < cap;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > 4096) return -1;
    out[n++] = (int)v;
    p = *end == ',' ? end + 1 : end;
    if (*end && *end != ',') return -1;
  }
  return n;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: untangle-bench-conv [--device D] [--batch 32,128] [--set lord,vgg] [--repeats N]\n"
          "                           [--warmup N] [--json FILE] [--verbose]\n"
          "Times ut_conv2d forward, backward-data and backward-weight at LORD's and VGG16's shapes\n"
          "(64x64) against CLBlast SGEMM at the equivalent GEMM size, on one device.\n"
          "  --device D    best (default), gpu, cpu, an index or a name substring\n"
          "  --batch LIST  batch sizes, comma-separated (default 32,128)\n"
          "  --set LIST    lord, vgg or both (default lord,vgg)\n"
          "  --repeats N   timed runs per figure, the median is reported (default 5)\n"
          "  --warmup N    untimed runs first (default 2)\n"
          "  --json FILE   also write one JSON object per figure to FILE\n"
          "  --verbose     list on stderr the launches each figure sums\n");
}

int main(int argc, char **argv) {
  const char *device = "best", *sets = "lord,vgg", *json_path = NULL;
  int batches[8] = { 32, 128 }, n_batches = 2, repeats = 5, warmup = 2;
  static const struct option opts[] = { { "device", required_argument, 0, 'd' }, { "batch", required_argument, 0, 'b' },
                                        { "set", required_argument, 0, 's' },    { "repeats", required_argument, 0, 'r' },
                                        { "warmup", required_argument, 0, 'w' }, { "json", required_argument, 0, 'j' },
                                        { "help", no_argument, 0, 'h' },         { "verbose", no_argument, 0, 'v' },
                                        { 0, 0, 0, 0 } };
  for (int ch; (ch = getopt_long(argc, argv, "d:b:s:r:w:j:hv", opts, NULL)) != -1;) {
    switch (ch) {
    case 'd': device = optarg; break;
    case 'b':
      if ((n_batches = parse_batches(optarg, batches, 8)) < 1) {
        fprintf(stderr, "untangle-bench-conv: --batch wants sizes like 32,128, got '%s'\n", optarg);
        return 2;
      }
      break;
    case 's': sets = optarg; break;
    case 'r': repeats = atoi(optarg); break;
    case 'w': warmup = atoi(optarg); break;
    case 'j': json_path = optarg; break;
    case 'h': usage(stdout); return 0;
    case 'v': verbose = 1; break;
    default: usage(stderr); return 2;
    }
  }
  if (repeats < 1 || warmup < 0) {
    fprintf(stderr, "untangle-bench-conv: --repeats must be at least 1 and --warmup at least 0\n");
    return 2;
  }
  ut_runtime *rt = ut_runtime_open(&(ut_device_query){ .select = device, .profiling = 1 });
  if (!rt) {
    fprintf(stderr, "untangle-bench-conv: %s\n", ut_last_error());
    return 1;
  }
  const ut_device_info *dev = ut_runtime_device(rt);
  FILE *json = json_path ? fopen(json_path, "w") : NULL;
  if (json_path && !json) {
    fprintf(stderr, "untangle-bench-conv: cannot write %s\n", json_path);
    ut_runtime_close(rt);
    return 1;
  }
  printf("device: %s (%s, driver %s)\n\n", dev->name, dev->platform, dev->driver_version);
  printf("| case | batch | pass | GEMM MxNxK | ms (min-max) | GFLOP/s | SGEMM GFLOP/s | conv/SGEMM | im2col share |\n");
  printf("|---|---|---|---|---|---|---|---|---|\n");
  for (int bi = 0; bi < n_batches; bi++) {
    for (int ci = 0; ci < N_CASES; ci++) {
      const conv_case *c = &cases[ci];
      if (!strstr(sets, c->set)) continue;
      int64_t oh = (c->hw + 2 * c->pad - c->k) / c->stride + 1, pixels = (int64_t)batches[bi] * oh * oh;
      int64_t ckk = (int64_t)c->c * c->k * c->k;
      /* The GEMM each pass runs: fwd W[O,CKK] x col; bwd_data W^T x dY; bwd_weight dY x col^T. */
      int64_t gm[N_PASSES][3] = { { c->o, pixels, ckk }, { ckk, pixels, c->o }, { c->o, ckk, pixels } };
      double flops = 2.0 * (double)c->o * (double)pixels * (double)ckk;
      for (int pass = 0; pass < N_PASSES; pass++) {
        timing t = time_conv_pass(rt, c, batches[bi], pass, warmup, repeats);
        timing s = time_gemm(rt, gm[pass][0], gm[pass][1], gm[pass][2], warmup, repeats);
        if (!t.ok) continue;
        double gflops = flops / (t.med * 1e6), sgemm = s.ok ? flops / (s.med * 1e6) : NAN;
        printf("| %s | %d | %s | %lldx%lldx%lld | %.3f (%.3f-%.3f) | %.1f | %.1f | %.0f%% | %.0f%% |\n", c->name,
               batches[bi], pass_name[pass], (long long)gm[pass][0], (long long)gm[pass][1], (long long)gm[pass][2],
               t.med, t.min, t.max, gflops, sgemm, 100.0 * gflops / sgemm, 100.0 * t.relayout_ms / t.med);
        fflush(stdout);
        if (json)
          fprintf(json,
                  "{\"suite\":\"conv\",\"device\":\"%s\",\"driver\":\"%s\",\"case\":\"%s\",\"batch\":%d,\"pass\":\"%s\","
                  "\"gemm_mnk\":[%lld,%lld,%lld],\"ms\":%.6f,\"ms_min\":%.6f,\"ms_max\":%.6f,\"gflops\":%.3f,"
                  "\"sgemm_gflops\":%.3f,\"im2col_share\":%.4f}\n",
                  dev->name, dev->driver_version, c->name, batches[bi], pass_name[pass], (long long)gm[pass][0],
                  (long long)gm[pass][1], (long long)gm[pass][2], t.med, t.min, t.max, gflops, s.ok ? sgemm : -1.0,
                  t.relayout_ms / t.med);
      }
    }
  }
  if (json) fclose(json);
  ut_runtime_close(rt);
  return 0;
}
