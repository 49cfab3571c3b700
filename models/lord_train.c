/* The LORD training loop over a data set file (lord_train.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kit_trainer.h"
#include "lord_train.h"

#define GRID_SIDE 6

ut_status lord_run_split(const ut_dataset *ds, const lord_cfg *cfg, int test_classes, double test_ratio,
                         ut_dataset_split *split) {
  return ut_dataset_split_compute(ds, test_classes, test_ratio, cfg->seed, split);
}

static int64_t gcd64(int64_t a, int64_t b) { return b ? gcd64(b, a % b) : a; }

/* Whether image id shares what `pass` compares with one of out[0 .. got): pass 0 its class
 * or its content label, pass 1 its class, pass 2 the image itself. */
static int clashes(const ut_dataset *ds, const int32_t *out, int got, int32_t id, int pass) {
  for (int k = 0; k < got; k++) {
    if (out[k] == id) return 1;
    if (pass < 2 && ut_dataset_class(ds, out[k]) == ut_dataset_class(ds, id)) return 1;
    if (pass == 0 && ut_dataset_content(ds, id) >= 0 && ut_dataset_content(ds, out[k]) == ut_dataset_content(ds, id))
      return 1;
  }
  return 0;
}

/* Up to n grid sources: images of different classes and, where the data has content labels,
 * different contents, so both the rows and the columns of a grid vary. The list is visited with
 * a stride coprime to its length: taking the first image of each class would give the same
 * pose everywhere in a data set stored class by class, and a grid of identical columns. */
static int pick_sources(const ut_dataset *ds, const int32_t *ids, int32_t n_ids, int n, int32_t *out) {
  if (n_ids < 1) return 0;
  int64_t step = n_ids / n + 1;
  while (gcd64(step, n_ids) != 1) step++;
  int got = 0;
  for (int pass = 0; pass < 3; pass++)
    for (int64_t i = 0; i < n_ids && got < n; i++) {
      int32_t id = ids[(i * step) % n_ids];
      if (!clashes(ds, out, got, id, pass)) out[got++] = id;
    }
  return got;
}

ut_status lord_grid_write(lord_model *m, const float *images, const float *content, const float *klass, int n,
                          const char *path) {
  const lord_cfg *c = lord_config(m);
  int64_t per = (int64_t)c->channels * c->size * c->size;
  int side = n + 1;
  if (n < 1) return ut_fail(UT_ERR_INVALID_ARGUMENT, "no images to draw a grid from");
  float *tiles = calloc((size_t)(side * side * per), sizeof *tiles);
  float *pair_content = malloc((size_t)n * n * c->content_dim * sizeof *pair_content);
  float *pair_class = malloc((size_t)n * n * c->class_dim * sizeof *pair_class);
  float *out = malloc((size_t)(n * n * per) * sizeof *out);
  ut_status st = tiles && pair_content && pair_class && out ? UT_OK
                                                            : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the grid");
  /* Row r: class of source r; column k: content of source k. */
  for (int r = 0; st == UT_OK && r < n; r++)
    for (int k = 0; k < n; k++) {
      memcpy(pair_content + ((int64_t)r * n + k) * c->content_dim, content + (int64_t)k * c->content_dim,
             (size_t)c->content_dim * sizeof(float));
      memcpy(pair_class + ((int64_t)r * n + k) * c->class_dim, klass + (int64_t)r * c->class_dim,
             (size_t)c->class_dim * sizeof(float));
    }
  if (st == UT_OK) st = lord_generate(m, pair_content, pair_class, (int64_t)n * n, out);
  if (st == UT_OK) {
    for (int64_t i = 0; i < per; i++) tiles[i] = 1.0f; /* the corner stays white */
    for (int k = 0; k < n; k++) memcpy(tiles + (1 + k) * per, images + k * per, (size_t)per * sizeof(float));
    for (int r = 0; r < n; r++) {
      memcpy(tiles + (int64_t)(1 + r) * side * per, images + r * per, (size_t)per * sizeof(float));
      for (int k = 0; k < n; k++)
        memcpy(tiles + ((int64_t)(1 + r) * side + 1 + k) * per, out + ((int64_t)r * n + k) * per,
               (size_t)per * sizeof(float));
    }
    st = ut_grid_write_jpeg(path, tiles, side * side, c->channels, c->size, c->size, side, 92);
  }
  free(tiles);
  free(pair_content);
  free(pair_class);
  free(out);
  return st;
}

ut_status lord_write_grid(lord_model *m, const ut_dataset *ds, const int32_t *ids, int32_t n_ids, int n, int stage,
                          const char *path) {
  const lord_cfg *c = lord_config(m);
  int64_t per = (int64_t)c->channels * c->size * c->size;
  int32_t src[GRID_SIDE * 2], classes[GRID_SIDE * 2];
  if (n > GRID_SIDE * 2) n = GRID_SIDE * 2;
  n = pick_sources(ds, ids, n_ids, n, src);
  if (n < 1) return ut_fail(UT_ERR_INVALID_ARGUMENT, "no images to draw a grid from");
  float *images = malloc((size_t)(n * per) * sizeof *images);
  float *content = malloc((size_t)n * c->content_dim * sizeof *content);
  float *klass = malloc((size_t)n * c->class_dim * sizeof *klass);
  ut_status st = images && content && klass ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the grid");
  for (int i = 0; st == UT_OK && i < n; i++) {
    ut_dataset_image_chw(ds, src[i], images + i * per);
    classes[i] = ut_dataset_class(ds, src[i]);
  }
  if (st == UT_OK)
    st = stage == 1 ? lord_embedded_codes(m, src, classes, n, content, klass) : lord_encode(m, images, n, content, klass);
  if (st == UT_OK) st = lord_grid_write(m, images, content, klass, n, path);
  free(images);
  free(content);
  free(klass);
  return st;
}

static int64_t meta_int(ut_store *st, const char *key) {
  const char *v = ut_store_get_meta(st, key);
  return v ? strtoll(v, NULL, 10) : 0;
}

static ut_status set_meta_int(ut_store *st, const char *key, int64_t value) {
  char v[24];
  snprintf(v, sizeof v, "%lld", (long long)value);
  return ut_store_set_meta(st, key, v);
}

lord_model *lord_open_run(ut_runtime *rt, const char *run_dir, int min_stage, int *stage) {
  char *path = kit_path(run_dir, LORD_CHECKPOINT);
  if (!path) return NULL;
  lord_cfg cfg;
  lord_model *m = NULL;
  int reached = 0, ok = lord_read_config(rt, path, &cfg) == UT_OK;
  if (ok) {
    cfg.recon = LORD_RECON_L1;
    ok = (m = lord_new(rt, &cfg, NULL)) && lord_load(m, path) == UT_OK;
  }
  if (ok && (reached = (int)meta_int(lord_store(m), "lord.stage")) < min_stage) {
    ut_fail(UT_ERR_STATE, "%s has %s; train stage %d first (untangle train lord --resume)", path,
            reached ? "only stage 1 trained" : "no trained stage", min_stage);
    ok = 0;
  }
  if (!ok) {
    lord_free(m);
    m = NULL;
  }
  if (stage) *stage = reached;
  free(path);
  return m;
}

/* One stage as the kit trains it: its own step count ("lord.stage<S>.step"), its lines in
 * losses.tsv (first column the stage) and its sample grids (samples/stage<S>-epochNNNN.jpg).
 * "lord.stage" and "lord.epoch" keep saying what the checkpoint holds, as before the kit. */
typedef struct {
  lord_model *m;
  const ut_dataset *ds;
  const lord_train_opts *o;
  const ut_dataset_split *sp;
  int stage;
  int64_t per_epoch;
  int64_t steps_done;
} stage_ctx;

static ut_status stage_step(void *user, const ut_batch *const *batches, int64_t step, int64_t steps, float *losses) {
  stage_ctx *s = user;
  const ut_batch *b = batches[0];
  double progress = (double)step / (double)steps;
  s->steps_done = step + 1;
  return s->stage == 1 ? lord_stage1_step(s->m, b->images, b->indices, b->classes, progress, losses)
                       : lord_stage2_step(s->m, b->images, b->indices, b->classes, progress, losses);
}

static ut_status stage_save(void *user, const char *path) {
  stage_ctx *s = user;
  ut_store *store = lord_store(s->m);
  ut_status st = set_meta_int(store, "lord.stage", s->stage);
  if (st == UT_OK) st = set_meta_int(store, "lord.epoch", s->steps_done / s->per_epoch);
  return st == UT_OK ? lord_save(s->m, path) : st;
}

static ut_status stage_grid(void *user, const char *path) {
  stage_ctx *s = user;
  return lord_write_grid(s->m, s->ds, s->sp->train, s->sp->n_train, GRID_SIDE, s->stage, path);
}

static void stage_on_step(void *user, const kit_progress *p) {
  stage_ctx *s = user;
  lord_progress pr = { .stage = s->stage, .epoch = p->epoch, .epochs = p->epochs, .step = p->step, .steps = p->steps,
                       .loss = p->losses[0], .images_per_second = p->images_per_second,
                       .comm_share = p->comm_share };
  s->o->on_step(s->o->user, &pr);
}

static void stage_on_epoch(void *user, const kit_progress *p, const char *grid) {
  stage_ctx *s = user;
  lord_progress pr = { .stage = s->stage, .epoch = p->epoch + 1, .epochs = p->epochs, .step = p->step,
                       .steps = p->steps, .loss = p->losses[0], .images_per_second = p->images_per_second };
  s->o->on_epoch(s->o->user, &pr, grid);
}

static const char *const loss_names[] = { "loss" };

static ut_status train_stage(lord_model *m, const ut_dataset *ds, const lord_train_opts *o, const ut_dataset_split *sp,
                             int stage) {
  const lord_cfg *c = lord_config(m);
  char key[32], phase[8], prefix[16], name[16];
  snprintf(key, sizeof key, "lord.stage%d.step", stage);
  snprintf(phase, sizeof phase, "%d", stage);
  snprintf(prefix, sizeof prefix, "stage%d-", stage);
  snprintf(name, sizeof name, "LORD stage %d", stage);
  stage_ctx ctx = { .m = m, .ds = ds, .o = o, .sp = sp, .stage = stage,
                    .per_epoch = sp->n_train / c->batch, .steps_done = kit_steps_done(lord_store(m), key) };
  kit_model km = { .name = name, .model = &ctx, .store = lord_store(m), .n_losses = 1, .loss_names = loss_names,
                   .step = stage_step, .save = stage_save, .write_grid = stage_grid };
  kit_train_opts to = { .run_dir = o->run_dir, .ds = ds, .n_streams = 1, .epochs = stage == 1 ? c->epochs1 : c->epochs2,
                        .save_every = o->save_every, .step_key = key, .phase_column = "stage", .phase = phase, .sample_prefix = prefix,
                        .on_step = o->on_step ? stage_on_step : NULL, .on_epoch = o->on_epoch ? stage_on_epoch : NULL,
                        .user = &ctx, .team = o->team };
  to.streams[0] = (ut_loader_cfg){ .indices = sp->train, .n_indices = sp->n_train, .batch = c->batch,
                                   .seed = c->seed + (uint64_t)stage, .drop_last = 1 };
  return kit_train(&km, &to);
}

ut_status lord_train(lord_model *m, const ut_dataset *ds, const lord_train_opts *o) {
  const lord_cfg *c = lord_config(m);
  if (ut_dataset_channels(ds) != c->channels || ut_dataset_height(ds) != c->size || ut_dataset_width(ds) != c->size)
    return ut_fail(UT_ERR_MISMATCH, "%s holds %dx%d images with %d channels; the model wants %dx%d with %d",
                   ut_dataset_path(ds), ut_dataset_width(ds), ut_dataset_height(ds), ut_dataset_channels(ds), c->size,
                   c->size, c->channels);
  if (ut_dataset_count(ds) != c->n_images || ut_dataset_n_classes(ds) != c->n_classes)
    return ut_fail(UT_ERR_MISMATCH, "%s has %d images of %d classes; the model was made for %lld of %lld",
                   ut_dataset_path(ds), ut_dataset_count(ds), ut_dataset_n_classes(ds), (long long)c->n_images,
                   (long long)c->n_classes);
  ut_dataset_split sp;
  ut_status st = lord_run_split(ds, c, o->test_classes, o->test_ratio, &sp);
  if (st != UT_OK) return st;
  if (sp.n_train < c->batch)
    st = ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %d training images are fewer than one batch of %d; use a smaller --batch",
                 ut_dataset_path(ds), sp.n_train, c->batch);
  ut_store *store = lord_store(m);
  char split_desc[64];
  snprintf(split_desc, sizeof split_desc, "%d %.17g", o->test_classes, o->test_ratio);
  if (st == UT_OK) st = ut_store_set_meta(store, "lord.split", split_desc);
  /* A checkpoint from before the kit has no per-stage step counts: its stages before
   * "lord.stage" are complete, and that stage has "lord.epoch" epochs done. */
  int64_t done_stage = meta_int(store, "lord.stage"), done_epoch = meta_int(store, "lord.epoch");
  int64_t per_epoch = sp.n_train / (c->batch > 0 ? c->batch : 1);
  for (int stage = 1; st == UT_OK && stage <= 2; stage++) {
    char key[32];
    snprintf(key, sizeof key, "lord.stage%d.step", stage);
    if (ut_store_get_meta(store, key) || stage > done_stage) continue;
    int64_t epochs = stage == 1 ? c->epochs1 : c->epochs2;
    st = kit_set_steps_done(store, key, (stage < done_stage ? epochs : done_epoch) * per_epoch);
  }
  for (int stage = o->first_stage; st == UT_OK && stage <= o->last_stage; stage++) {
    if (stage < done_stage) continue;
    st = train_stage(m, ds, o, &sp, stage);
  }
  ut_dataset_split_free(&sp);
  return st;
}
