/* The memory suite: does LORD's official training step fit a device? Stage 1 at the official
 * widths (the default preset), 64x64, batch 128, with the VGG loss on untrained weights
 * (vgg-random), as lord-pytorch trains it. The plan is compiled and its arena measured; when
 * the arena fits both the device's memory and MEMORY_LIMIT, ONE step runs and is timed.
 *
 * The outcome is the figure, so a plan the engine refuses is written as a line like any other
 * (compiled false, the engine's message in "error", the size it asked for in "needed_bytes"
 * when the message states one) and the run goes on: a refusal is a measurement here, not a
 * failure of the harness. Only a step that fails after its plan fitted counts as a failure.
 *
 * One step and no warm-up, because on a CPU the official step takes tens of minutes: the time
 * includes what a first run pays once (CLBlast builds its kernels on first use), and "ms" is
 * that step's wall clock, or the compile's when no step ran ("timed" says which).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"
#include "lord.h"

/* The largest arena the suite will run a step in: the official run targets a device with 8 GiB
 * free for intermediates, and kernels index the arena with 32-bit element offsets (8 GiB). */
#define MEMORY_LIMIT (8ull << 30)

typedef struct {
  lord_preset_kind preset;
  int stage, batch;
} memory_case;

enum { N_IMAGES = 10000, N_CLASSES = 100, MAX_CASES = 2 };

static int cases(bench_size size, memory_case *out) {
  if (size == BENCH_SIZE_TINY) {
    /* The smoke test's sizes: one plan that fits and runs its step, and one so large (about
     * 17 GiB of VGG activations alone) that it can never fit, to exercise the refusal path in
     * seconds. The official case would run a step of tens of minutes on a CPU once it fits. */
    out[0] = (memory_case){ LORD_PRESET_SMALL, 1, 4 };
    out[1] = (memory_case){ LORD_PRESET_SMALL, 1, 65536 };
    return 2;
  }
  out[0] = (memory_case){ LORD_PRESET_DEFAULT, 1, 128 };
  return 1;
}

int bench_memory_count(const bench_ctx *c) {
  memory_case mc[MAX_CASES];
  return cases(c->cfg->size, mc);
}

/* The size an error message says was needed ("needs 27.93 GiB", "needs 512.0 MiB"), in bytes
 * rounded as the message rounds it; -1 when the message names none. The engine's status has
 * no field for it, so the words are the only source. */
static double needed_from_message(const char *msg) {
  for (const char *p = msg ? strstr(msg, "needs ") : NULL; p; p = strstr(p + 1, "needs ")) {
    char *end;
    double v = strtod(p + 6, &end);
    if (end == p + 6) continue;
    if (!strncmp(end, " GiB", 4)) return v * 1073741824.0;
    if (!strncmp(end, " MiB", 4)) return v * 1048576.0;
  }
  return -1;
}

/* One step's inputs: images in [0, 1], indices spread over the embeddings. */
static int step_once(lord_model *m, const lord_cfg *cfg, int stage, double *ms) {
  int64_t n = (int64_t)cfg->batch * cfg->channels * cfg->size * cfg->size;
  float *images = bench_random(n, 7);
  int32_t *image_ids = malloc((size_t)cfg->batch * sizeof *image_ids);
  int32_t *class_ids = malloc((size_t)cfg->batch * sizeof *class_ids);
  ut_status st = images && image_ids && class_ids ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for a batch");
  if (st == UT_OK) {
    for (int64_t i = 0; i < n; i++) images[i] += 0.5f;
    for (int i = 0; i < cfg->batch; i++) {
      image_ids[i] = (int32_t)((i * 7919) % cfg->n_images);
      class_ids[i] = (int32_t)(i % cfg->n_classes);
    }
    double t0 = ut_seconds();
    st = stage == 1 ? lord_stage1_step(m, images, image_ids, class_ids, 0.5, NULL)
                    : lord_stage2_step(m, images, image_ids, class_ids, 0.5, NULL);
    *ms = (ut_seconds() - t0) * 1e3;
  }
  free(images);
  free(image_ids);
  free(class_ids);
  return st == UT_OK;
}

static json_t *bytes_or_null(double v) { return v >= 0 ? json_integer((json_int_t)v) : json_null(); }

static void run_case(bench_ctx *c, const memory_case *mc) {
  lord_cfg cfg = lord_preset(mc->preset, 3, N_IMAGES, N_CLASSES);
  cfg.batch = mc->batch;
  cfg.recon = LORD_RECON_VGG_RANDOM;
  if (c->cfg->size == BENCH_SIZE_TINY) cfg.n_images = 16, cfg.n_classes = 4;
  char name[64], shape[64], what[160];
  snprintf(name, sizeof name, "lord.stage%d.%s", mc->stage, lord_preset_name(mc->preset));
  snprintf(shape, sizeof shape, "%dx%dx%dx%d", cfg.batch, cfg.channels, cfg.size, cfg.size);
  snprintf(what, sizeof what, "memory %s %s", name, shape);
  bench_step(c, what);

  uint64_t limit = c->dev->global_mem_bytes && c->dev->global_mem_bytes < MEMORY_LIMIT ? c->dev->global_mem_bytes
                                                                                      : MEMORY_LIMIT;
  double t0 = ut_seconds();
  lord_model *m = lord_new(c->rt, &cfg, NULL);
  ut_plan *p = m ? lord_step_plan(m, mc->stage) : NULL;
  double compile_s = ut_seconds() - t0;
  /* Copied at once: every later engine call may replace the message. */
  char *error = p ? NULL : strdup(ut_last_error());
  ut_plan_stats ps = p ? ut_plan_get_stats(p) : (ut_plan_stats){ 0 };
  int fits = p && ps.arena_peak_bytes <= limit;
  double step_ms = 0;
  int stepped = 0, step_failed = 0;
  char note[256] = "";
  if (!m) {
    snprintf(note, sizeof note, "the model could not be made, so no plan was compiled");
  } else if (!p) {
    snprintf(note, sizeof note, "the engine refused the plan; no step ran");
  } else if (!fits) {
    snprintf(note, sizeof note, "the arena (%.2f GiB) is larger than %.2f GiB (the device's memory or 8 GiB); no step ran",
             (double)ps.arena_peak_bytes / (1u << 30), (double)limit / (1u << 30));
  } else if (step_once(m, &cfg, mc->stage, &step_ms)) {
    stepped = 1;
  } else {
    step_failed = 1;
    error = strdup(ut_last_error());
    snprintf(note, sizeof note, "the plan fitted but its step failed");
  }
  /* Faults are said by bench_failed below; a refusal or a skipped step is a note. */
  if (*note && m && !step_failed)
    fprintf(stderr, "\nbench: %s on %s: %s%s%s\n", what, c->dev->name, note, error ? ": " : "", error ? error : "");

  double ms = stepped ? step_ms : compile_s * 1e3;
  if (!(ms > 0)) ms = 1e-3; /* the report needs a positive time; a clock this coarse is a microsecond */
  bench_ms t = { .median = ms, .min = ms, .max = ms, .ok = 1, .wall = 1 };
  json_t *extra = json_pack("{s:s,s:s,s:i,s:i,s:b,s:b,s:s,s:f,s:I,s:I,s:I}", "preset", lord_preset_name(mc->preset),
                            "recon", lord_recon_name(cfg.recon), "batch", cfg.batch, "stage", mc->stage, "compiled",
                            p != NULL, "fits", fits, "timed", stepped ? "step" : "compile", "compile_s", compile_s,
                            "limit_bytes", (json_int_t)limit, "device_global_mem_bytes",
                            (json_int_t)c->dev->global_mem_bytes, "device_max_alloc_bytes",
                            (json_int_t)c->dev->max_alloc_bytes);
  if (extra) {
    json_object_set_new(extra, "arena_peak_bytes", bytes_or_null(p ? (double)ps.arena_peak_bytes : -1));
    json_object_set_new(extra, "intermediate_bytes", bytes_or_null(p ? (double)ps.intermediate_bytes : -1));
    json_object_set_new(extra, "launches", p ? json_integer(ps.launches) : json_null());
    json_object_set_new(extra, "needed_bytes", bytes_or_null(p ? -1 : needed_from_message(error)));
    json_object_set_new(extra, "images_per_s", stepped ? json_real(cfg.batch / (step_ms * 1e-3)) : json_null());
    json_object_set_new(extra, "error", error ? json_string(error) : json_null());
    json_object_set_new(extra, "note", *note ? json_string(note) : json_null());
  }
  bench_record r = { .suite = "memory", .name = name, .shape = shape, .ms = t, .repeats = stepped ? 1 : 0,
                     .gflops = -1, .gbps = -1, .extra = extra };
  bench_emit(c, &r);
  /* A refused plan is the measurement; a model that cannot be made or a step that breaks after
   * its plan fitted is a fault worth the exit status. */
  if (!m || step_failed) {
    if (error) ut_fail(UT_ERR_STATE, "%s", error);
    bench_failed(c, what);
  }
  free(error);
  lord_free(m);
}

ut_status bench_memory_run(bench_ctx *c) {
  memory_case mc[MAX_CASES];
  int n = cases(c->cfg->size, mc);
  for (int i = 0; i < n; i++) run_case(c, &mc[i]);
  return UT_OK;
}
