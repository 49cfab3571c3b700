/* The models suite: one whole training step of each model, as `untangle train` runs it.
 *
 * LORD: a step of each stage at the small preset (32x32, batch 32) and, in full runs, at the
 * official widths at 64x64 with batch 32 and 128 (the official batch; skipped with a note when
 * its plan does not fit the device). The loss is LORD's: pixel L1 plus VGG16 features, VGG
 * frozen, here with untrained VGG weights (vgg-random: the same computation and cost as the
 * pretrained ones). The small preset is also timed with the pixel-L1 loss alone (cases
 * "lord.stageN.small.l1"), because that is what the main job trains; the VGG cases keep their
 * names without a suffix so older result files still pair with new ones.
 *
 * UNIT: one iteration (the discriminator's update, then the generator's, as cocogan_train.py
 * runs them) at the small preset (32x32, width 16, batch 8 per domain: "unit.small") and, in
 * full runs, at the official sizes (128x128, width 64) with the official batch of 1 per domain
 * ("unit.default") and with 8 ("unit.default.b8", skipped with a note where it does not fit).
 * Its two plans are summed: launches, arena bytes (both arenas live at once), device time and
 * op shares.
 *
 * ms is the wall clock of a whole step (upload the batches, run the plans, read the losses),
 * the median over the timed steps after warm-up; device_ms_mean is the sum of its launches'
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
#include <unistd.h>

#include "bench_internal.h"
#include "lord.h"
#include "unit.h"

typedef enum { MODEL_LORD, MODEL_UNIT } model_kind;

typedef struct {
  model_kind kind;
  int preset;       /* lord_preset_kind or unit_preset_kind */
  int batch;        /* LORD: images per step; UNIT: images per domain */
  lord_recon recon; /* LORD: LORD_RECON_VGG_RANDOM or LORD_RECON_L1 */
  int stage;        /* LORD: 1 or 2 */
  const char *suffix; /* UNIT: after "unit.<preset>" ("" or ".b8") */
  int optional;     /* a plan too large for the device is a note, not a failure */
} model_case;

enum { N_IMAGES = 10000, N_CLASSES = 100, TOP_OPS = 8, MAX_CASES = 12, MAX_PLANS = 2 };

static int cases(bench_size size, model_case *out) {
  int tiny = size == BENCH_SIZE_TINY, full = size == BENCH_SIZE_FULL, small_batch = tiny ? 4 : 32, n = 0;
  /* LORD first, in the order of older result files: each configuration's stage 1, then 2. */
  model_case lord[4] = { { .preset = LORD_PRESET_SMALL, .batch = small_batch, .recon = LORD_RECON_VGG_RANDOM },
                         { .preset = LORD_PRESET_SMALL, .batch = small_batch, .recon = LORD_RECON_L1 },
                         { .preset = LORD_PRESET_DEFAULT, .batch = 32, .recon = LORD_RECON_VGG_RANDOM },
                         { .preset = LORD_PRESET_DEFAULT, .batch = 128, .recon = LORD_RECON_VGG_RANDOM, .optional = 1 } };
  for (int i = 0; i < (full ? 4 : 2); i++)
    for (int stage = 1; stage <= 2; stage++) {
      out[n] = lord[i];
      out[n].kind = MODEL_LORD;
      out[n++].stage = stage;
    }
  /* UNIT's small preset at its own batch of 8 per domain (2 in the smoke test, same name). */
  out[n++] = (model_case){ .kind = MODEL_UNIT, .preset = UNIT_PRESET_SMALL, .batch = tiny ? 2 : 8, .suffix = "" };
  if (!full) return n;
  out[n++] = (model_case){ .kind = MODEL_UNIT, .preset = UNIT_PRESET_DEFAULT, .batch = 1, .suffix = "" };
  out[n++] = (model_case){ .kind = MODEL_UNIT, .preset = UNIT_PRESET_DEFAULT, .batch = 8, .suffix = ".b8", .optional = 1 };
  return n;
}

int bench_models_count(const bench_ctx *c) {
  model_case mc[MAX_CASES];
  return cases(c->cfg->size, mc);
}

/* One case's configuration and the batch its every step uses. */
typedef struct {
  model_case mc;
  lord_cfg lord;
  unit_cfg unit;
  float *images;                   /* LORD: [batch, C, S, S] in [0, 1]; UNIT: domain A's batch, then B's, in [-1, 1] */
  int32_t *image_ids, *class_ids;  /* LORD */
  int64_t image_floats;            /* floats of one batch (one domain's for UNIT) */
} case_data;

/* A built model of either kind. */
typedef struct {
  lord_model *lord;
  unit_model *unit;
} model;

static int make_data(bench_size size, const model_case *mc, case_data *d) {
  d->mc = *mc;
  int channels, img, batch = mc->batch;
  if (mc->kind == MODEL_LORD) {
    d->lord = lord_preset(mc->preset, 3, N_IMAGES, N_CLASSES);
    d->lord.batch = batch;
    d->lord.recon = mc->recon;
    if (size == BENCH_SIZE_TINY) d->lord.n_images = 16, d->lord.n_classes = 4;
    channels = d->lord.channels, img = d->lord.size;
  } else {
    d->unit = unit_preset(mc->preset, 3);
    d->unit.batch = batch;
    channels = d->unit.channels, img = d->unit.size;
  }
  d->image_floats = (int64_t)batch * channels * img * img;
  int domains = mc->kind == MODEL_UNIT ? 2 : 1;
  d->images = bench_random(domains * d->image_floats, 5);
  if (!d->images) return 0;
  /* [-0.5, 0.5) to LORD's [0, 1) or UNIT's [-1, 1) */
  for (int64_t i = 0; i < domains * d->image_floats; i++) d->images[i] = mc->kind == MODEL_LORD ? d->images[i] + 0.5f : 2 * d->images[i];
  if (mc->kind == MODEL_UNIT) return 1;
  d->image_ids = malloc((size_t)batch * sizeof *d->image_ids);
  d->class_ids = malloc((size_t)batch * sizeof *d->class_ids);
  if (!d->image_ids || !d->class_ids) return 0;
  for (int i = 0; i < batch; i++) {
    d->image_ids[i] = (int32_t)((i * 7919) % d->lord.n_images);
    d->class_ids[i] = (int32_t)(i % d->lord.n_classes);
  }
  return 1;
}

static void free_data(case_data *d) {
  free(d->images);
  free(d->image_ids);
  free(d->class_ids);
}

static ut_status model_new(ut_runtime *rt, const case_data *d, model *m) {
  *m = (model){ 0 };
  if (d->mc.kind == MODEL_LORD) m->lord = lord_new(rt, &d->lord, NULL);
  else m->unit = unit_new(rt, &d->unit);
  return m->lord || m->unit ? UT_OK : UT_ERR_STATE;
}

static void model_free(model *m) {
  lord_free(m->lord);
  unit_free(m->unit);
  *m = (model){ 0 };
}

/* One whole step: LORD's step of the case's stage, or UNIT's D and G updates. */
static ut_status model_step(model *m, const case_data *d) {
  if (d->mc.kind == MODEL_UNIT) return unit_train_step(m->unit, d->images, d->images + d->image_floats, NULL);
  return d->mc.stage == 1 ? lord_stage1_step(m->lord, d->images, d->image_ids, d->class_ids, 0.5, NULL)
                          : lord_stage2_step(m->lord, d->images, d->image_ids, d->class_ids, 0.5, NULL);
}

/* The plans one step runs (built by then): their count, 0 when one is missing. */
static int model_plans(model *m, const case_data *d, ut_plan **plans) {
  if (d->mc.kind == MODEL_LORD) return (plans[0] = lord_step_plan(m->lord, d->mc.stage)) != NULL;
  plans[0] = unit_step_plan(m->unit, 0);
  plans[1] = unit_step_plan(m->unit, 1);
  return plans[0] && plans[1] ? 2 : 0;
}

/* Opens the device with the given program cache, builds the model and runs one step. */
static ut_status first_step(int index, const char *cache, const case_data *d, ut_runtime **rt, model *m,
                            double *seconds) {
  char select[16];
  snprintf(select, sizeof select, "%d", index);
  double t0 = ut_seconds();
  *rt = ut_runtime_open(&(ut_device_query){ .select = select, .cache_dir = cache, .profiling = 1 });
  ut_status st = *rt ? model_new(*rt, d, m) : UT_ERR_STATE;
  if (st == UT_OK) st = model_step(m, d);
  *seconds = ut_seconds() - t0;
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

/* Sums the plans' profiles by op kind: {"conv2d": 0.41, ...}, the largest TOP_OPS and "other".
 * plan_ms[i] gets plan i's sum (-1 without a profile), *device_ms the total (-1: none). */
static json_t *op_shares(ut_plan **plans, int n_plans, double *plan_ms, double *device_ms) {
  ut_profile_entry *e[MAX_PLANS] = { NULL };
  int n[MAX_PLANS] = { 0 }, all = 0;
  *device_ms = -1;
  for (int p = 0; p < n_plans; p++) {
    plan_ms[p] = -1;
    if (ut_plan_profile(plans[p], &e[p], &n[p]) != UT_OK) n[p] = 0, e[p] = NULL;
    all += n[p];
  }
  const char **names = calloc((size_t)all + 1, sizeof *names);
  double(*sums)[2] = calloc((size_t)all + 1, sizeof *sums); /* [name index, ms] */
  int kinds = 0;
  double total = 0;
  for (int p = 0; p < n_plans && names && sums; p++) {
    if (e[p]) plan_ms[p] = 0;
    for (int i = 0; i < n[p]; i++) {
      int k = 0;
      while (k < kinds && strcmp(names[k], e[p][i].op)) k++;
      if (k == kinds) names[kinds] = e[p][i].op, sums[kinds][0] = kinds, kinds++;
      sums[k][1] += e[p][i].ms;
      plan_ms[p] += e[p][i].ms;
      total += e[p][i].ms;
    }
  }
  json_t *o = all ? json_object() : json_null();
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
  for (int p = 0; p < n_plans; p++) free(e[p]);
  return o;
}

/* Each plan's per-node table (ms per timed step and share), headed by the case and device. */
static void print_profiles(FILE *f, const char *name, const char *device, ut_plan **plans, int n_plans) {
  for (int p = 0; p < n_plans; p++) {
    char *table = NULL;
    fprintf(f, "== %s on %s, plan %d of %d\n", name, device, p + 1, n_plans);
    if (ut_plan_profile_table(plans[p], &table) == UT_OK) fputs(table, f);
    else fprintf(f, "(no profile: %s)\n", ut_last_error());
    free(table);
  }
  fflush(f);
}

static json_t *ms_or_null(double ms) { return ms >= 0 ? json_real(ms) : json_null(); }

/* The case's name, shape, and the fields only its model has. */
static void describe(const case_data *d, char *name, size_t name_size, char *shape, size_t shape_size) {
  const model_case *mc = &d->mc;
  if (mc->kind == MODEL_LORD) {
    snprintf(name, name_size, "lord.stage%d.%s%s", mc->stage, lord_preset_name(mc->preset),
             mc->recon == LORD_RECON_L1 ? ".l1" : "");
    snprintf(shape, shape_size, "%dx%dx%dx%d", d->lord.batch, d->lord.channels, d->lord.size, d->lord.size);
  } else {
    snprintf(name, name_size, "unit.%s%s", unit_preset_name(mc->preset), mc->suffix);
    snprintf(shape, shape_size, "%dx%dx%dx%d", d->unit.batch, d->unit.channels, d->unit.size, d->unit.size);
  }
}

static json_t *model_fields(const case_data *d, const ut_plan_stats *ps, int n_plans, const double *plan_ms) {
  if (d->mc.kind == MODEL_LORD)
    return json_pack("{s:s,s:s,s:I,s:I}", "preset", lord_preset_name(d->mc.preset), "recon", lord_recon_name(d->lord.recon),
                     "n_images", (json_int_t)d->lord.n_images, "n_classes", (json_int_t)d->lord.n_classes);
  /* The halves of the iteration: each plan's device time and arena. */
  static const char *const halves[2] = { "dis", "gen" };
  json_t *half_ms = json_object(), *half_arena = json_object();
  for (int p = 0; p < n_plans; p++) {
    json_object_set_new(half_ms, halves[p], ms_or_null(plan_ms[p]));
    json_object_set_new(half_arena, halves[p], json_integer((json_int_t)ps[p].arena_peak_bytes));
  }
  return json_pack("{s:s,s:s,s:i,s:i,s:o,s:o}", "preset", unit_preset_name(d->mc.preset), "model", "unit", "domains", 2,
                   "width", d->unit.ch, "plan_device_ms", half_ms, "plan_arena_peak_bytes", half_arena);
}

/* Times one case: a cold and a warm start (fresh runtimes), warm-up steps, then the timed
 * steps with the plans' launches profiled. */
static void run_case(bench_ctx *c, const model_case *mc) {
  case_data d = { 0 };
  int data_ok = make_data(c->cfg->size, mc, &d);
  char name[64], shape[64], what[160];
  describe(&d, name, sizeof name, shape, sizeof shape);
  snprintf(what, sizeof what, "models %s %s", name, shape);
  bench_step(c, what);
  const char *tmp = getenv("TMPDIR");
  char cache[4096];
  snprintf(cache, sizeof cache, "%s/untangle-bench-cache-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  ut_runtime *rt = NULL;
  model m = { 0 };
  double cold = 0, warm = 0;
  double *ms = calloc((size_t)c->repeats, sizeof *ms);
  ut_status st = ms && data_ok ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  if (st == UT_OK && !mkdtemp(cache)) st = ut_fail(UT_ERR_IO, "cannot make a temporary cache folder %s", cache);
  int made_dir = st == UT_OK;
  if (st == UT_OK) st = first_step(c->dev->index, cache, &d, &rt, &m, &cold);
  ut_runtime_stats cold_stats = rt ? ut_runtime_get_stats(rt) : (ut_runtime_stats){ 0 };
  model_free(&m);
  ut_runtime_close(rt);
  rt = NULL;
  if (st == UT_OK) st = first_step(c->dev->index, cache, &d, &rt, &m, &warm);
  ut_runtime_stats warm_stats = rt ? ut_runtime_get_stats(rt) : (ut_runtime_stats){ 0 };
  for (int i = 0; st == UT_OK && i < c->warmup; i++) st = model_step(&m, &d);
  ut_plan *plans[MAX_PLANS] = { NULL };
  int n_plans = st == UT_OK ? model_plans(&m, &d, plans) : 0;
  for (int p = 0; p < n_plans; p++) ut_plan_profile_reset(plans[p]);
  for (int r = 0; st == UT_OK && r < c->repeats; r++) {
    double t0 = ut_seconds();
    st = model_step(&m, &d);
    ms[r] = (ut_seconds() - t0) * 1e3;
  }
  if (st == UT_OK && n_plans && c->cfg->profile) print_profiles(c->cfg->profile, name, c->dev->name, plans, n_plans);
  if (st == UT_OK && n_plans) {
    double device_ms, plan_ms[MAX_PLANS];
    json_t *shares = op_shares(plans, n_plans, plan_ms, &device_ms);
    ut_plan_stats ps[MAX_PLANS], sum = { 0 };
    for (int p = 0; p < n_plans; p++) {
      ps[p] = ut_plan_get_stats(plans[p]);
      sum.arena_peak_bytes += ps[p].arena_peak_bytes;
      sum.intermediate_bytes += ps[p].intermediate_bytes;
      sum.launches += ps[p].launches;
      sum.gemm_copy_bytes += ps[p].gemm_copy_bytes;
      sum.gemm_copy_bytes_as_given += ps[p].gemm_copy_bytes_as_given;
    }
    bench_ms t = bench_summarize(ms, c->repeats);
    t.wall = 1;
    /* images_per_s counts every image a step takes: both domains' for UNIT. */
    int images = mc->batch * (mc->kind == MODEL_UNIT ? 2 : 1);
    json_t *extra = json_pack("{s:i,s:f,s:I,s:I,s:i,s:o,s:f,s:f,s:i,s:i}", "batch", mc->batch, "images_per_s",
                              images / (t.median * 1e-3), "arena_peak_bytes", (json_int_t)sum.arena_peak_bytes,
                              "intermediate_bytes", (json_int_t)sum.intermediate_bytes, "launches", sum.launches,
                              "op_share", shares, "cold_start_s", cold, "warm_start_s", warm, "programs_built_cold",
                              (int)cold_stats.programs_built, "programs_cached_warm", (int)warm_stats.programs_cached);
    /* CLBlast's operand copies per step (0 where GEMMs run on the host): as called, and as the
     * plain row-major call at buffer offsets would have made them (clblast_gemm.h). */
    json_object_set_new(extra, "gemm_copy_bytes", json_integer((json_int_t)sum.gemm_copy_bytes));
    json_object_set_new(extra, "gemm_copy_bytes_as_given", json_integer((json_int_t)sum.gemm_copy_bytes_as_given));
    json_t *own = model_fields(&d, ps, n_plans, plan_ms);
    json_object_update(extra, own);
    json_decref(own);
    json_object_set_new(extra, "device_ms_mean", ms_or_null(device_ms));
    bench_record r = { .suite = "models", .name = name, .shape = shape, .ms = t, .repeats = c->repeats,
                       .gflops = -1, .gbps = -1, .extra = extra };
    bench_emit(c, &r);
  } else if (mc->optional) {
    fprintf(stderr, "\nbench: %s skipped on %s: %s\n", what, c->dev->name, ut_last_error());
  } else {
    if (st == UT_OK) ut_fail(UT_ERR_STATE, "no step plan");
    bench_failed(c, what);
  }
  model_free(&m);
  ut_runtime_close(rt);
  if (made_dir) nftw(cache, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
  free(ms);
  free_data(&d);
}

ut_status bench_models_run(bench_ctx *c) {
  model_case mc[MAX_CASES];
  int n = cases(c->cfg->size, mc);
  for (int i = 0; i < n; i++) run_case(c, &mc[i]);
  return UT_OK;
}
