/* The models suite: one whole LORD training step of each stage, as `untangle train lord` runs
 * it, at the small preset (32x32, batch 32) and, in full runs, at the official widths at 64x64
 * with batch 32 and 128 (the official batch; skipped with a note when its plan does not fit the
 * device). The loss is LORD's: pixel L1 plus VGG16 features, VGG frozen, here with untrained
 * VGG weights (vgg-random: the same computation and cost as the pretrained ones). The small
 * preset is also timed with the pixel-L1 loss alone (cases "lord.stageN.small.l1"), because
 * that is what the main job trains; the VGG cases keep their names without a suffix so older
 * result files still pair with new ones.
 *
 * ms is the wall clock of a whole step (upload the batch, run the plan, read the loss), the
 * median over the timed steps after warm-up; device_ms_mean is the sum of its launches'
 * profiling times, and op_share splits that sum by op kind. cold_start_s is the time from
 * opening the device to the end of the first step with an empty program cache (a fresh
 * folder), warm_start_s the same with the cache that run filled: what a user waits for before
 * the first step of a first and of a later run. CLBlast compiles its own kernels in every
 * process either way, so both include that.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_internal.h"
#include "lord.h"

typedef struct {
  lord_preset_kind preset;
  int batch;
  lord_recon recon; /* LORD_RECON_VGG_RANDOM or LORD_RECON_L1 */
  int optional;     /* a plan too large for the device is a note, not a failure */
} model_case;

enum { N_IMAGES = 10000, N_CLASSES = 100, TOP_OPS = 8, MAX_CASES = 4 };

static int cases(bench_size size, model_case *out) {
  int small_batch = size == BENCH_SIZE_TINY ? 4 : 32;
  out[0] = (model_case){ LORD_PRESET_SMALL, small_batch, LORD_RECON_VGG_RANDOM, 0 };
  out[1] = (model_case){ LORD_PRESET_SMALL, small_batch, LORD_RECON_L1, 0 };
  if (size != BENCH_SIZE_FULL) return 2;
  out[2] = (model_case){ LORD_PRESET_DEFAULT, 32, LORD_RECON_VGG_RANDOM, 0 };
  out[3] = (model_case){ LORD_PRESET_DEFAULT, 128, LORD_RECON_VGG_RANDOM, 1 };
  return 4;
}

int bench_models_count(const bench_ctx *c) {
  model_case mc[MAX_CASES];
  return 2 * cases(c->cfg->size, mc);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
  lord_cfg cfg;
  float *images;
  int32_t *image_ids, *class_ids;
} batch_data;

static int make_batch(const lord_cfg *cfg, batch_data *d) {
  int64_t n = (int64_t)cfg->batch * cfg->channels * cfg->size * cfg->size;
  d->images = bench_random(n, 5);
  d->image_ids = malloc((size_t)cfg->batch * sizeof *d->image_ids);
  d->class_ids = malloc((size_t)cfg->batch * sizeof *d->class_ids);
  if (!d->images || !d->image_ids || !d->class_ids) return 0;
  for (int64_t i = 0; i < n; i++) d->images[i] += 0.5f; /* images live in [0, 1] */
  for (int i = 0; i < cfg->batch; i++) {
    d->image_ids[i] = (int32_t)((i * 7919) % cfg->n_images);
    d->class_ids[i] = (int32_t)(i % cfg->n_classes);
  }
  return 1;
}

static ut_status step(lord_model *m, int stage, const batch_data *d) {
  return stage == 1 ? lord_stage1_step(m, d->images, d->image_ids, d->class_ids, 0.5, NULL)
                    : lord_stage2_step(m, d->images, d->image_ids, d->class_ids, 0.5, NULL);
}

/* Opens the device with the given program cache, builds the model and runs one step. */
static ut_status first_step(int index, const char *cache, const batch_data *d, int stage, ut_runtime **rt,
                            lord_model **m, double *seconds) {
  char select[16];
  snprintf(select, sizeof select, "%d", index);
  double t0 = now_s();
  *rt = ut_runtime_open(&(ut_device_query){ .select = select, .cache_dir = cache, .profiling = 1 });
  *m = *rt ? lord_new(*rt, &d->cfg, NULL) : NULL;
  if (!*m) return UT_ERR_STATE;
  ut_status st = step(*m, stage, d);
  *seconds = now_s() - t0;
  return st;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static int cmp_share(const void *a, const void *b) {
  double x = ((const double *)a)[1], y = ((const double *)b)[1];
  return (x < y) - (x > y);
}

/* Sums the profile by op kind: {"conv2d": 0.41, ...}, the largest TOP_OPS and "other". */
static json_t *op_shares(ut_plan *p, double *device_ms) {
  ut_profile_entry *e = NULL;
  int n = 0;
  *device_ms = -1;
  if (ut_plan_profile(p, &e, &n) != UT_OK) return json_null();
  const char **names = calloc((size_t)n + 1, sizeof *names);
  double(*sums)[2] = calloc((size_t)n + 1, sizeof *sums); /* [name index, ms] */
  int kinds = 0;
  double total = 0;
  for (int i = 0; names && sums && i < n; i++) {
    int k = 0;
    while (k < kinds && strcmp(names[k], e[i].op)) k++;
    if (k == kinds) names[kinds] = e[i].op, sums[kinds][0] = kinds, kinds++;
    sums[k][1] += e[i].ms;
    total += e[i].ms;
  }
  json_t *o = json_object();
  if (names && sums && total > 0) {
    qsort(sums, (size_t)kinds, sizeof *sums, cmp_share);
    double other = 0;
    for (int k = 0; k < kinds; k++) {
      if (k < TOP_OPS) json_object_set_new(o, names[(int)sums[k][0]], json_real(sums[k][1] / total));
      else other += sums[k][1];
    }
    if (other > 0) json_object_set_new(o, "other", json_real(other / total));
    *device_ms = total;
  }
  free(names);
  free(sums);
  free(e);
  return o;
}

static void run_case(bench_ctx *c, const model_case *mc, int stage) {
  batch_data d = { .cfg = lord_preset(mc->preset, 3, N_IMAGES, N_CLASSES) };
  d.cfg.batch = mc->batch;
  d.cfg.recon = mc->recon;
  if (c->cfg->size == BENCH_SIZE_TINY) d.cfg.n_images = 16, d.cfg.n_classes = 4;
  char name[64], shape[64], what[160];
  snprintf(name, sizeof name, "lord.stage%d.%s%s", stage, lord_preset_name(mc->preset),
           mc->recon == LORD_RECON_L1 ? ".l1" : "");
  snprintf(shape, sizeof shape, "%dx%dx%dx%d", d.cfg.batch, d.cfg.channels, d.cfg.size, d.cfg.size);
  snprintf(what, sizeof what, "models %s %s", name, shape);
  bench_step(c, what);
  const char *tmp = getenv("TMPDIR");
  char cache[4096];
  snprintf(cache, sizeof cache, "%s/untangle-bench-cache-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  ut_runtime *rt = NULL;
  lord_model *m = NULL;
  double cold = 0, warm = 0;
  double *ms = calloc((size_t)c->repeats, sizeof *ms);
  ut_status st = ms && make_batch(&d.cfg, &d) ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  if (st == UT_OK && !mkdtemp(cache)) st = ut_fail(UT_ERR_IO, "cannot make a temporary cache folder %s", cache);
  int made_dir = st == UT_OK;
  if (st == UT_OK) st = first_step(c->dev->index, cache, &d, stage, &rt, &m, &cold);
  ut_runtime_stats cold_stats = rt ? ut_runtime_get_stats(rt) : (ut_runtime_stats){ 0 };
  lord_free(m);
  ut_runtime_close(rt);
  m = NULL, rt = NULL;
  if (st == UT_OK) st = first_step(c->dev->index, cache, &d, stage, &rt, &m, &warm);
  ut_runtime_stats warm_stats = rt ? ut_runtime_get_stats(rt) : (ut_runtime_stats){ 0 };
  for (int i = 0; st == UT_OK && i < c->warmup; i++) st = step(m, stage, &d);
  ut_plan *p = st == UT_OK ? lord_step_plan(m, stage) : NULL;
  if (p) ut_plan_profile_reset(p);
  for (int r = 0; st == UT_OK && r < c->repeats; r++) {
    double t0 = now_s();
    st = step(m, stage, &d);
    ms[r] = (now_s() - t0) * 1e3;
  }
  if (st == UT_OK && p) {
    double device_ms;
    json_t *shares = op_shares(p, &device_ms);
    ut_plan_stats ps = ut_plan_get_stats(p);
    bench_ms t = bench_summarize(ms, c->repeats);
    t.wall = 1;
    json_t *extra = json_pack("{s:s,s:s,s:i,s:f,s:I,s:I,s:i,s:o,s:f,s:f,s:i,s:i,s:I,s:I}", "preset",
                              lord_preset_name(mc->preset), "recon", lord_recon_name(d.cfg.recon), "batch", d.cfg.batch,
                              "images_per_s", d.cfg.batch / (t.median * 1e-3), "arena_peak_bytes",
                              (json_int_t)ps.arena_peak_bytes, "intermediate_bytes", (json_int_t)ps.intermediate_bytes,
                              "launches", ps.launches, "op_share", shares, "cold_start_s", cold, "warm_start_s", warm,
                              "programs_built_cold", (int)cold_stats.programs_built, "programs_cached_warm",
                              (int)warm_stats.programs_cached, "n_images", (json_int_t)d.cfg.n_images, "n_classes",
                              (json_int_t)d.cfg.n_classes);
    json_object_set_new(extra, "device_ms_mean", device_ms >= 0 ? json_real(device_ms) : json_null());
    bench_record r = { .suite = "models", .name = name, .shape = shape, .ms = t, .repeats = c->repeats,
                       .gflops = -1, .gbps = -1, .extra = extra };
    bench_emit(c, &r);
  } else if (mc->optional) {
    fprintf(stderr, "\nbench: %s skipped on %s: %s\n", what, c->dev->name, ut_last_error());
  } else {
    if (st == UT_OK) ut_fail(UT_ERR_STATE, "no step plan");
    bench_failed(c, what);
  }
  lord_free(m);
  ut_runtime_close(rt);
  if (made_dir) nftw(cache, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  free(ms);
  free(d.images);
  free(d.image_ids);
  free(d.class_ids);
}

ut_status bench_models_run(bench_ctx *c) {
  model_case mc[MAX_CASES];
  int n = cases(c->cfg->size, mc);
  for (int i = 0; i < n; i++)
    for (int stage = 1; stage <= 2; stage++) run_case(c, &mc[i], stage);
  return UT_OK;
}
