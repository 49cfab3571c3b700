/* CMI-VAE's run: the split, the data check, the grid and training with the kit's trainer
 * (cmivae_train.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmivae_data.h"
#include "cmivae_train.h"

#define GRID_SIDE 7
#define SPLIT_SALT 0x636d69766165ull /* "cmivae" */

ut_status cmivae_run_split(const ut_dataset *ds, const cmivae_cfg *cfg, cmivae_split *sp) {
  *sp = (cmivae_split){ 0 };
  ut_dataset_split s;
  ut_status st = ut_dataset_split_compute(ds, 0, cfg->test_ratio, cfg->seed ^ SPLIT_SALT, &s);
  if (st != UT_OK) return st;
  /* The split's lists move into ours; the rest (no held-out classes) is freed with it. */
  *sp = (cmivae_split){ s.train, s.n_train, s.test_sample, s.n_test_sample };
  s.train = s.test_sample = NULL;
  ut_dataset_split_free(&s);
  return UT_OK;
}

void cmivae_split_free(cmivae_split *sp) {
  free(sp->train);
  free(sp->test);
  *sp = (cmivae_split){ 0 };
}

ut_status cmivae_check_data(const ut_dataset *ds, const cmivae_cfg *c) {
  const char *path = ut_dataset_path(ds);
  if (ut_dataset_channels(ds) != c->channels)
    return ut_fail(UT_ERR_MISMATCH, "%s holds images with %d channel%s; the model has %d%s", path, ut_dataset_channels(ds),
                   ut_dataset_channels(ds) == 1 ? "" : "s", c->channels,
                   c->feature == CMIVAE_FEATURE_HUE ? " (make a coloured set with 'untangle data colorize FILE --hue uniform')" : "");
  if (ut_dataset_height(ds) < c->size || ut_dataset_width(ds) != ut_dataset_height(ds))
    return ut_fail(UT_ERR_MISMATCH, "%s holds %dx%d images; the model needs square images of at least %d pixels", path,
                   ut_dataset_width(ds), ut_dataset_height(ds), c->size);
  if (c->feature == CMIVAE_FEATURE_HUE && ut_dataset_find_attribute(ds, CMIVAE_HUE_ATTRIBUTE) < 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s has no per-image attribute '" CMIVAE_HUE_ATTRIBUTE "', which the hue feature "
                   "needs (make one with 'untangle data colorize FILE --hue uniform')", path);
  if (c->feature == CMIVAE_FEATURE_CLASS && ut_dataset_n_classes(ds) != c->n_classes)
    return ut_fail(UT_ERR_MISMATCH, "%s has %d classes; the model's class feature has %d", path, ut_dataset_n_classes(ds),
                   c->n_classes);
  return UT_OK;
}

void cmivae_image_feature(const cmivae_cfg *c, const ut_dataset *ds, int32_t i, float *row) {
  int a = ut_dataset_find_attribute(ds, CMIVAE_HUE_ATTRIBUTE);
  cmivae_feature_row(c, a >= 0 ? ut_dataset_attribute(ds, i, a) : 0.0f, ut_dataset_class(ds, i), row);
}

cmivae_model *cmivae_open_run(ut_runtime *rt, const char *run_dir) {
  char *path = kit_path(run_dir, CMIVAE_CHECKPOINT);
  if (!path) return NULL;
  cmivae_cfg cfg = cmivae_preset(CMIVAE_PRESET_SMALL, CMIVAE_FEATURE_HUE, 0);
  cmivae_model *m = NULL;
  if (cmivae_read_config(rt, path, &cfg) == UT_OK && (m = cmivae_new(rt, &cfg)) && cmivae_load(m, path) != UT_OK) {
    cmivae_free(m);
    m = NULL;
  }
  free(path);
  return m;
}

ut_status cmivae_load_images(const ut_dataset *ds, const int32_t *ids, int n, int size, float *out) {
  int side = ut_dataset_height(ds), ch = ut_dataset_channels(ds), off = (side - size) / 2;
  float *full = malloc((size_t)ch * side * side * sizeof *full);
  if (!full) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for images");
  for (int i = 0; i < n; i++) {
    ut_dataset_image_chw(ds, ids[i], full);
    for (int c = 0; c < ch; c++)
      for (int y = 0; y < size; y++)
        memcpy(out + (((int64_t)i * ch + c) * size + y) * size, full + ((int64_t)c * side + y + off) * side + off,
               (size_t)size * sizeof *out);
  }
  free(full);
  return UT_OK;
}

ut_status cmivae_fusion_grid(cmivae_model *m, const float *z1_images, int rows, const float *z2_tiles,
                             const float *features, int cols, const char *path) {
  const cmivae_cfg *c = cmivae_config(m);
  int64_t per = (int64_t)c->channels * c->size * c->size, F = cmivae_feature_width(c), cells = (int64_t)rows * cols;
  float *tiles = calloc((size_t)((rows + 1) * (cols + 1) * per), sizeof *tiles), *z1 = malloc((size_t)(rows * c->z1_dim) * sizeof *z1);
  float *zz = malloc((size_t)(cells * c->z1_dim) * sizeof *zz), *ff = malloc((size_t)(cells * F) * sizeof *ff);
  float *out = malloc((size_t)(cells * per) * sizeof *out);
  ut_status st = tiles && z1 && zz && ff && out ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the grid");
  if (st == UT_OK) st = cmivae_encode(m, z1_images, rows, z1);
  for (int i = 0; st == UT_OK && i < rows; i++)
    for (int j = 0; j < cols; j++) {
      memcpy(zz + ((int64_t)i * cols + j) * c->z1_dim, z1 + (int64_t)i * c->z1_dim, (size_t)c->z1_dim * sizeof *zz);
      memcpy(ff + ((int64_t)i * cols + j) * F, features + (int64_t)j * F, (size_t)F * sizeof *ff);
    }
  if (st == UT_OK) st = cmivae_generate(m, zz, ff, cells, out);
  for (int i = 0; st == UT_OK && i <= rows; i++)
    for (int j = 0; j <= cols; j++) {
      float *tile = tiles + ((int64_t)i * (cols + 1) + j) * per;
      if (i == 0 && j > 0 && z2_tiles) memcpy(tile, z2_tiles + (j - 1) * per, (size_t)per * sizeof *tile);
      else if (i > 0 && j == 0) memcpy(tile, z1_images + (i - 1) * per, (size_t)per * sizeof *tile);
      else if (i > 0) memcpy(tile, out + ((int64_t)(i - 1) * cols + j - 1) * per, (size_t)per * sizeof *tile);
    }
  if (st == UT_OK) st = ut_grid_write_jpeg(path, tiles, (rows + 1) * (cols + 1), c->channels, c->size, c->size, cols + 1, 92);
  free(tiles);
  free(z1);
  free(zz);
  free(ff);
  free(out);
  return st;
}

ut_status cmivae_write_grid(cmivae_model *m, const ut_dataset *ds, const int32_t *z1_ids, int rows,
                            const int32_t *z2_ids, int cols, const char *path) {
  const cmivae_cfg *c = cmivae_config(m);
  int64_t per = (int64_t)c->channels * c->size * c->size, F = cmivae_feature_width(c);
  float *src = malloc((size_t)((rows + cols) * per) * sizeof *src), *ff = malloc((size_t)(cols * F) * sizeof *ff);
  ut_status st = src && ff ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the grid");
  if (st == UT_OK) st = cmivae_load_images(ds, z1_ids, rows, c->size, src);
  if (st == UT_OK) st = cmivae_load_images(ds, z2_ids, cols, c->size, src + rows * per);
  for (int j = 0; st == UT_OK && j < cols; j++) cmivae_image_feature(c, ds, z2_ids[j], ff + (int64_t)j * F);
  if (st == UT_OK) st = cmivae_fusion_grid(m, src, rows, src + rows * per, ff, cols, path);
  free(src);
  free(ff);
  return st;
}

typedef struct {
  cmivae_model *m;
  const ut_dataset *ds;
  const cmivae_split *sp;
  int hue_attribute;
  float *features, *fuse_features;
} run_ctx;

static void batch_features(const run_ctx *r, const ut_batch *b, float *rows) {
  const cmivae_cfg *c = cmivae_config(r->m);
  int64_t F = cmivae_feature_width(c);
  for (int i = 0; i < b->n; i++) {
    float hue = r->hue_attribute >= 0 ? b->attributes[(int64_t)i * b->n_attributes + r->hue_attribute] : 0.0f;
    cmivae_feature_row(c, hue, b->classes[i], rows + i * F);
  }
}

static ut_status step(void *user, const ut_batch *const *batches, int64_t at, int64_t steps, float *losses) {
  (void)at; /* the learning rate is constant */
  (void)steps;
  run_ctx *r = user;
  batch_features(r, batches[0], r->features);
  batch_features(r, batches[1], r->fuse_features);
  cmivae_losses l;
  ut_status st = cmivae_train_step(r->m, &(cmivae_batch){ .images = batches[0]->images, .features = r->features,
                                                          .fuse_features = r->fuse_features,
                                                          .classes = batches[0]->classes,
                                                          .fuse_classes = batches[1]->classes }, &l);
  const float v[CMIVAE_LOSS_COUNT] = { l.dis, l.total, l.recon, l.kl, l.feature, l.gan };
  memcpy(losses, v, sizeof v);
  return st;
}

static ut_status save(void *user, const char *path) { return cmivae_save(((run_ctx *)user)->m, path); }

/* Held-out images spread over the list: the first GRID_SIDE as z1 sources, the next as z2's. */
static ut_status grid(void *user, const char *path) {
  run_ctx *r = user;
  const int32_t *list = r->sp->n_test >= 2 * GRID_SIDE ? r->sp->test : r->sp->train;
  int32_t avail = r->sp->n_test >= 2 * GRID_SIDE ? r->sp->n_test : r->sp->n_train, ids[2 * GRID_SIDE];
  int side = avail >= 2 * GRID_SIDE ? GRID_SIDE : avail / 2;
  if (side < 1) return ut_fail(UT_ERR_INVALID_ARGUMENT, "too few images to draw a grid from");
  for (int k = 0; k < 2 * side; k++) ids[k] = list[(int64_t)k * avail / (2 * side)];
  return cmivae_write_grid(r->m, r->ds, ids, side, ids + side, side, path);
}

ut_status cmivae_train(cmivae_model *m, const ut_dataset *ds, const cmivae_train_opts *o) {
  const cmivae_cfg *c = cmivae_config(m);
  ut_status st = cmivae_check_data(ds, c);
  if (st != UT_OK) return st;
  if (mkdir(o->run_dir, 0777) != 0 && errno != EEXIST)
    return ut_fail(UT_ERR_IO, "cannot create the run folder %s: %s", o->run_dir, strerror(errno));
  cmivae_split sp;
  if ((st = cmivae_run_split(ds, c, &sp)) != UT_OK) return st;
  if (sp.n_train < c->batch)
    st = ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %d training images, fewer than one batch of %d", ut_dataset_path(ds),
                 sp.n_train, c->batch);
  int64_t F = cmivae_feature_width(c);
  run_ctx ctx = { m, ds, &sp, ut_dataset_find_attribute(ds, CMIVAE_HUE_ATTRIBUTE),
                  malloc((size_t)(c->batch * F) * sizeof(float)), malloc((size_t)(c->batch * F) * sizeof(float)) };
  if (st == UT_OK && (!ctx.features || !ctx.fuse_features)) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  kit_model km = { .name = "CMI-VAE", .model = &ctx, .store = cmivae_store(m), .n_losses = CMIVAE_LOSS_COUNT,
                   .loss_names = cmivae_loss_names, .step = step, .save = save, .write_grid = grid };
  kit_train_opts to = { .run_dir = o->run_dir, .ds = ds, .n_streams = 2, .epochs = c->epochs,
                        .save_every = o->save_every, .on_step = o->on_step, .on_epoch = o->on_epoch, .user = o->user,
                        .team = o->team };
  int crop = ut_dataset_height(ds) > c->size ? c->size : 0;
  /* No flips: the data sets here are centred and upright, and the batches stay the stored images.
   * x~ is not a permutation of x's batch but a batch of its own stream, paired row by row with
   * x's: on a team the trainer gives each rank the same rows of both streams, so a rank's fused
   * pairs are exactly the whole batch's pairs of its rows, whatever the number of ranks. */
  for (int s = 0; s < 2; s++)
    to.streams[s] = (ut_loader_cfg){ .indices = sp.train, .n_indices = sp.n_train, .batch = c->batch,
                                     .seed = c->seed * 2654435761u + 29 + (uint64_t)s, .drop_last = 1, .crop = crop,
                                     .signed_range = 1 };
  if (st == UT_OK) st = kit_train(&km, &to);
  free(ctx.features);
  free(ctx.fuse_features);
  cmivae_split_free(&sp);
  return st;
}
