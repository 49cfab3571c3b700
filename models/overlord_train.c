/* The OverLORD training loop over a data set file and its translation grids (overlord_train.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kit_trainer.h"
#include "overlord_train.h"

#define GRID_ROWS 6
#define GRID_LABELS 6

ut_status overlord_run_split(const ut_dataset *ds, const overlord_cfg *cfg, double test_ratio, ut_dataset_split *split) {
  return ut_dataset_split_compute(ds, 0, test_ratio, cfg->seed, split);
}

ut_status overlord_check_data(const overlord_model *m, const ut_dataset *ds) {
  const overlord_cfg *c = overlord_config(m);
  const char *path = ut_dataset_path(ds);
  if (ut_dataset_channels(ds) != c->channels || ut_dataset_height(ds) != c->size || ut_dataset_width(ds) != c->size)
    return ut_fail(UT_ERR_MISMATCH, "%s holds %dx%d images with %d channels; the model wants %dx%d with %d", path,
                   ut_dataset_width(ds), ut_dataset_height(ds), ut_dataset_channels(ds), c->size, c->size, c->channels);
  if (ut_dataset_count(ds) != c->n_images || ut_dataset_n_classes(ds) != c->n_classes)
    return ut_fail(UT_ERR_MISMATCH, "%s has %d images of %d classes; the model was made for %lld of %lld", path,
                   ut_dataset_count(ds), ut_dataset_n_classes(ds), (long long)c->n_images, (long long)c->n_classes);
  if (c->correlation == OVERLORD_LOCALIZED && !ut_dataset_has_masks(ds))
    return ut_fail(UT_ERR_MISMATCH, "%s has no masks; the localized correlation multiplies each image by its mask "
                   "('untangle data synth --masks' or 'data import --masks DIR')", path);
  return UT_OK;
}

/* ---- grids ------------------------------------------------------------------------------------ */

static void copy_tile(float *tiles, int64_t per, int cols, int row, int col, const float *src) {
  float *dst = tiles + ((int64_t)row * cols + col) * per;
  if (src) memcpy(dst, src, (size_t)per * sizeof(float));
  else
    for (int64_t i = 0; i < per; i++) dst[i] = 1.0f;
}

/* The n x n_labels translations of `stage` into out (input-major). */
static ut_status translate_all(overlord_model *m, int stage, const float *images, const float *masks,
                               const int32_t *image_ids, int n, const int32_t *labels, int n_labels, float *out) {
  const overlord_cfg *c = overlord_config(m);
  int64_t pairs = (int64_t)n * n_labels;
  float *u = malloc((size_t)n * c->uncorr_dim * sizeof *u), *corr = malloc((size_t)n * c->corr_dim * sizeof *corr);
  float *lab = malloc((size_t)n_labels * c->label_dim * sizeof *lab);
  float *pu = malloc((size_t)pairs * c->uncorr_dim * sizeof *pu), *pc = malloc((size_t)pairs * c->corr_dim * sizeof *pc);
  float *pl = malloc((size_t)pairs * c->label_dim * sizeof *pl);
  ut_status st = u && corr && lab && pu && pc && pl ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for a grid");
  if (st == UT_OK && stage == 1) {
    st = overlord_embedded_codes(m, image_ids, labels, n, u, NULL);
    if (st == UT_OK) st = overlord_encode(m, 1, images, masks, n, NULL, NULL, corr);
  } else if (st == UT_OK) {
    st = overlord_encode(m, stage, images, masks, n, u, NULL, corr);
  }
  if (st == UT_OK) st = overlord_embedded_codes(m, NULL, labels, n_labels, NULL, lab);
  for (int r = 0; st == UT_OK && r < n; r++)
    for (int k = 0; k < n_labels; k++) {
      int64_t p = (int64_t)r * n_labels + k;
      memcpy(pu + p * c->uncorr_dim, u + (int64_t)r * c->uncorr_dim, (size_t)c->uncorr_dim * sizeof(float));
      memcpy(pc + p * c->corr_dim, corr + (int64_t)r * c->corr_dim, (size_t)c->corr_dim * sizeof(float));
      memcpy(pl + p * c->label_dim, lab + (int64_t)k * c->label_dim, (size_t)c->label_dim * sizeof(float));
    }
  if (st == UT_OK) st = overlord_generate(m, stage, pu, pl, pc, pairs, out);
  /* The generator has no output activation; OverLORD clamps at inference. */
  int64_t per = (int64_t)c->channels * c->size * c->size;
  for (int64_t i = 0; st == UT_OK && i < pairs * per; i++) out[i] = out[i] < 0 ? 0 : out[i] > 1 ? 1 : out[i];
  free(u);
  free(corr);
  free(lab);
  free(pu);
  free(pc);
  free(pl);
  return st;
}

ut_status overlord_grid_write(overlord_model *m, const float *images, const float *masks, const int32_t *image_ids, int n,
                              const int32_t *labels, const float *label_images, int n_labels, const int *stages,
                              int n_stages, const char *path) {
  const overlord_cfg *c = overlord_config(m);
  if (n < 1 || n_labels < 1 || n_stages < 1) return ut_fail(UT_ERR_INVALID_ARGUMENT, "a grid needs inputs, labels and a stage");
  int64_t per = (int64_t)c->channels * c->size * c->size;
  int cols = 1 + n_stages * (n_labels + 1) - 1, rows = n + 1;
  float *tiles = malloc((size_t)(rows * cols * per) * sizeof *tiles);
  float *out = malloc((size_t)((int64_t)n * n_labels * per) * sizeof *out);
  ut_status st = tiles && out ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for a grid");
  for (int i = 0; st == UT_OK && i < rows * cols; i++) copy_tile(tiles, per, cols, i / cols, i % cols, NULL);
  for (int r = 0; st == UT_OK && r < n; r++) copy_tile(tiles, per, cols, r + 1, 0, images + r * per);
  for (int s = 0; st == UT_OK && s < n_stages; s++) {
    int col0 = 1 + s * (n_labels + 1);
    st = translate_all(m, stages[s], images, masks, image_ids, n, labels, n_labels, out);
    for (int k = 0; st == UT_OK && k < n_labels; k++) {
      copy_tile(tiles, per, cols, 0, col0 + k, label_images ? label_images + k * per : NULL);
      for (int r = 0; r < n; r++) copy_tile(tiles, per, cols, r + 1, col0 + k, out + ((int64_t)r * n_labels + k) * per);
    }
  }
  if (st == UT_OK) st = ut_grid_write_jpeg(path, tiles, rows * cols, c->channels, c->size, c->size, cols, 92);
  free(tiles);
  free(out);
  return st;
}

/* Up to n images of different classes from ids, visited with a stride coprime to the list's
 * length so that poses vary too (a set stored class by class would otherwise give the same pose
 * in every row); then any images to fill up. */
static int64_t gcd64(int64_t a, int64_t b) { return b ? gcd64(b, a % b) : a; }

static int pick_rows(const ut_dataset *ds, const int32_t *ids, int32_t n_ids, int n, int32_t *out) {
  if (n_ids < 1) return 0;
  int64_t step = n_ids / n + 1;
  while (gcd64(step, n_ids) != 1) step++;
  int got = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int64_t i = 0; i < n_ids && got < n; i++) {
      int32_t id = ids[(i * step) % n_ids];
      int clash = 0;
      for (int k = 0; k < got; k++) clash |= out[k] == id || (pass == 0 && ut_dataset_class(ds, out[k]) == ut_dataset_class(ds, id));
      if (!clash) out[got++] = id;
    }
  return got;
}

/* Masks of images ids as [n, 1, S, S] floats in [0, 1]. */
static void masks_of(const ut_dataset *ds, const int32_t *ids, int n, int64_t pixels, float *out) {
  for (int i = 0; i < n; i++) {
    const uint8_t *mk = ut_dataset_mask(ds, ids[i]);
    for (int64_t p = 0; p < pixels; p++) out[i * pixels + p] = mk ? (float)mk[p] / 255.0f : 1.0f;
  }
}

/* The per-epoch grid: training images for stage 1 (whose codes are embeddings), held-out ones
 * afterwards; the labels across are the rows' own classes, so the diagonal is a reconstruction. */
static ut_status epoch_grid(overlord_model *m, const ut_dataset *ds, const ut_dataset_split *sp, int stage, const char *path) {
  const overlord_cfg *c = overlord_config(m);
  int64_t per = (int64_t)c->channels * c->size * c->size, pixels = (int64_t)c->size * c->size;
  int32_t rows[GRID_ROWS], labels[GRID_ROWS];
  int use_test = stage > 1 && sp->n_test_sample > 0;
  int n = pick_rows(ds, use_test ? sp->test_sample : sp->train, use_test ? sp->n_test_sample : sp->n_train, GRID_ROWS, rows);
  if (n < 1) return ut_fail(UT_ERR_INVALID_ARGUMENT, "no images to draw a grid from");
  float *images = malloc((size_t)(n * per) * sizeof *images), *masks = malloc((size_t)(n * pixels) * sizeof *masks);
  ut_status st = images && masks ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for a grid");
  for (int i = 0; st == UT_OK && i < n; i++) {
    ut_dataset_image_chw(ds, rows[i], images + i * per);
    labels[i] = ut_dataset_class(ds, rows[i]);
  }
  if (st == UT_OK) masks_of(ds, rows, n, pixels, masks);
  int stages[1] = { stage };
  if (st == UT_OK)
    st = overlord_grid_write(m, images, c->correlation == OVERLORD_LOCALIZED ? masks : NULL, rows, n, labels, images, n,
                             stages, 1, path);
  free(images);
  free(masks);
  return st;
}

/* ---- training --------------------------------------------------------------------------------- */

static int64_t meta_int(ut_store *st, const char *key) {
  const char *v = ut_store_get_meta(st, key);
  return v ? strtoll(v, NULL, 10) : 0;
}

static ut_status set_meta_int(ut_store *st, const char *key, int64_t value) {
  char v[24];
  snprintf(v, sizeof v, "%lld", (long long)value);
  return ut_store_set_meta(st, key, v);
}

typedef struct {
  overlord_model *m;
  const ut_dataset *ds;
  const overlord_train_opts *o;
  const ut_dataset_split *sp;
  int stage;
} stage_ctx;

static ut_status stage_step(void *user, const ut_batch *const *batches, int64_t step, int64_t steps, float *losses) {
  stage_ctx *s = user;
  const ut_batch *b = batches[0];
  overlord_batch ob = { .images = b->images, .image_ids = b->indices, .labels = b->classes, .masks = b->masks };
  return overlord_step(s->m, s->stage, &ob, (double)step / (double)steps, losses);
}

static ut_status stage_save(void *user, const char *path) {
  stage_ctx *s = user;
  ut_status st = set_meta_int(overlord_store(s->m), OVERLORD_STAGE_KEY, s->stage);
  return st == UT_OK ? overlord_save(s->m, path) : st;
}

static ut_status stage_grid(void *user, const char *path) {
  stage_ctx *s = user;
  return epoch_grid(s->m, s->ds, s->sp, s->stage, path);
}

static void stage_on_step(void *user, const kit_progress *p) {
  stage_ctx *s = user;
  overlord_progress pr = { .stage = s->stage, .epoch = p->epoch, .epochs = p->epochs, .step = p->step, .steps = p->steps,
                           .losses = p->losses, .images_per_second = p->images_per_second,
                           .comm_share = p->comm_share };
  s->o->on_step(s->o->user, &pr);
}

static void stage_on_epoch(void *user, const kit_progress *p, const char *grid) {
  stage_ctx *s = user;
  overlord_progress pr = { .stage = s->stage, .epoch = p->epoch + 1, .epochs = p->epochs, .step = p->step,
                           .steps = p->steps, .losses = p->losses, .images_per_second = p->images_per_second };
  s->o->on_epoch(s->o->user, &pr, grid);
}

/* losses.tsv: one set of columns for every stage (overlord.h); the optional terms' columns
 * (adv_swap, swap_label, swap_corr, swap_class) last, up to the last one the run has, so that runs without
 * them keep the columns they had before them (an earlier optional column of a term the run
 * does not have reads 0). */
static const char *const loss_names[OVERLORD_N_LOSSES] = { "total", "recon", "decay", "regression", "adv", "dis",
                                                           "adv_swap", "swap_label", "swap_corr", "swap_class" };

static void step_key(char *key, size_t size, int stage) { snprintf(key, size, "overlord.stage%d.step", stage); }

static ut_status train_stage(overlord_model *m, const ut_dataset *ds, const overlord_train_opts *o, const ut_dataset_split *sp,
                             int stage) {
  const overlord_cfg *c = overlord_config(m);
  char key[32], phase[8], prefix[16], name[24];
  step_key(key, sizeof key, stage);
  snprintf(phase, sizeof phase, "%d", stage);
  snprintf(prefix, sizeof prefix, "stage%d-", stage);
  snprintf(name, sizeof name, "OverLORD stage %d", stage);
  int64_t epochs = stage == 1 ? c->epochs1 : stage == 2 ? c->epochs2 : c->epochs3;
  /* A stage that has not begun starts from copies of the networks before it; one that has
   * keeps its own from the checkpoint. */
  ut_status st = kit_steps_done(overlord_store(m), key) == 0 && epochs > 0 ? overlord_begin_stage(m, stage) : UT_OK;
  if (st != UT_OK) return st;
  stage_ctx ctx = { .m = m, .ds = ds, .o = o, .sp = sp, .stage = stage };
  int n_losses = c->w_swap_class > 0   ? OVERLORD_LOSS_SWAP_CLASS + 1
                 : c->w_swap_corr > 0  ? OVERLORD_LOSS_SWAP_CORR + 1
                 : c->w_swap_label > 0 ? OVERLORD_LOSS_SWAP_LABEL + 1
                 : c->w_adv_swap > 0   ? OVERLORD_LOSS_ADV_SWAP + 1
                                       : OVERLORD_LOSS_ADV_SWAP;
  kit_model km = { .name = name, .model = &ctx, .store = overlord_store(m), .n_losses = n_losses,
                   .loss_names = loss_names, .step = stage_step, .save = stage_save, .write_grid = stage_grid };
  kit_train_opts to = { .run_dir = o->run_dir, .ds = ds, .n_streams = 1, .epochs = epochs, .save_every = o->save_every,
                        .step_key = key, .phase_column = "stage", .phase = phase, .sample_prefix = prefix,
                        .on_step = o->on_step ? stage_on_step : NULL, .on_epoch = o->on_epoch ? stage_on_epoch : NULL,
                        .user = &ctx, .team = o->team };
  to.streams[0] = (ut_loader_cfg){ .indices = sp->train, .n_indices = sp->n_train, .batch = c->batch,
                                   .seed = c->seed + (uint64_t)stage, .drop_last = 1 };
  return kit_train(&km, &to);
}

/* The data set's class names, one a line, so translate can take a label by name. */
static ut_status store_class_names(ut_store *store, const ut_dataset *ds) {
  size_t len = 1;
  for (int k = 0; k < ut_dataset_n_classes(ds); k++) len += strlen(ut_dataset_class_name(ds, k)) + 1;
  char *names = malloc(len), *p = names;
  if (!names) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the class names");
  for (int k = 0; k < ut_dataset_n_classes(ds); k++) p += sprintf(p, "%s%s", k ? "\n" : "", ut_dataset_class_name(ds, k));
  *p = 0;
  ut_status st = ut_store_set_meta(store, OVERLORD_CLASSES_KEY, names);
  free(names);
  return st;
}

ut_status overlord_train(overlord_model *m, const ut_dataset *ds, const overlord_train_opts *o) {
  const overlord_cfg *c = overlord_config(m);
  ut_status st = overlord_check_data(m, ds);
  if (st != UT_OK) return st;
  ut_dataset_split sp;
  if ((st = overlord_run_split(ds, c, o->test_ratio, &sp)) != UT_OK) return st;
  if (sp.n_train < c->batch)
    st = ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %d training images are fewer than one batch of %d; use a smaller --batch",
                 ut_dataset_path(ds), sp.n_train, c->batch);
  ut_store *store = overlord_store(m);
  char split_desc[32];
  snprintf(split_desc, sizeof split_desc, "%.17g", o->test_ratio);
  if (st == UT_OK) st = ut_store_set_meta(store, "overlord.split", split_desc);
  if (st == UT_OK) st = store_class_names(store, ds);
  for (int stage = 1; st == UT_OK && stage <= 3; stage++) {
    /* Stages before the checkpoint's are done: a resumed run goes on where it stopped. */
    if (stage < meta_int(store, OVERLORD_STAGE_KEY)) continue;
    st = train_stage(m, ds, o, &sp, stage);
  }
  ut_dataset_split_free(&sp);
  return st;
}

overlord_model *overlord_open_run(ut_runtime *rt, const char *run_dir, int min_stage, int *stage) {
  char *path = kit_path(run_dir, OVERLORD_CHECKPOINT);
  if (!path) return NULL;
  overlord_cfg cfg;
  overlord_model *m = NULL;
  int reached = 0, ok = overlord_read_config(rt, path, &cfg) == UT_OK;
  if (ok) {
    cfg.recon = OVERLORD_RECON_L1;
    ok = (m = overlord_new(rt, &cfg, NULL)) && overlord_load(m, path) == UT_OK;
  }
  if (ok) {
    char key[32];
    reached = (int)meta_int(overlord_store(m), OVERLORD_STAGE_KEY);
    step_key(key, sizeof key, reached);
    /* A stage counts once it has a step; a checkpoint written before any has none. */
    if (reached > 0 && kit_steps_done(overlord_store(m), key) == 0) reached--;
    if (reached < min_stage) {
      ut_fail(UT_ERR_STATE, "%s has %s; train stage %d first (untangle train overlord --resume)", path,
              reached ? (reached == 1 ? "only stage 1 trained" : "only stages 1 and 2 trained") : "no trained stage", min_stage);
      ok = 0;
    }
  }
  if (!ok) {
    overlord_free(m);
    m = NULL;
  }
  if (stage) *stage = reached;
  free(path);
  return m;
}
