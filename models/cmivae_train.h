/* Training CMI-VAE on a data set into a run folder (cmivae.h), the split a run holds out, and
 * the fusion grid.
 *
 * The run folder holds checkpoint.safetensors, losses.tsv, grid.jpg and samples/ as every model
 * trained with the kit's trainer (kit_trainer.h). The grid fuses held-out images: z1 sources
 * down the left, z2 sources across the top, and in cell (i, j) G(z1 of row i, z2 of column j).
 */
#ifndef UNTANGLE_MODELS_CMIVAE_TRAIN_H
#define UNTANGLE_MODELS_CMIVAE_TRAIN_H

#include "cmivae.h"
#include "kit_trainer.h"
#include "untangle_data.h"

#define CMIVAE_CHECKPOINT KIT_CHECKPOINT

/* The images a run trains on and holds out: floor(test_ratio n) images drawn from the seed;
 * both lists ascending. */
typedef struct {
  int32_t *train, n_train;
  int32_t *test, n_test;
} cmivae_split;
ut_status cmivae_run_split(const ut_dataset *ds, const cmivae_cfg *cfg, cmivae_split *sp);
void cmivae_split_free(cmivae_split *sp);

/* Whether ds suits cfg: square images of at least cfg->size with cfg->channels channels, the
 * attribute "hue" for the hue feature, cfg->n_classes classes for the class feature. The error
 * names the file, what it holds and what was expected (and how to make a set that fits). */
ut_status cmivae_check_data(const ut_dataset *ds, const cmivae_cfg *cfg);

/* The feature row of image i of ds (its hue attribute, or its class). */
void cmivae_image_feature(const cmivae_cfg *cfg, const ut_dataset *ds, int32_t i, float *row);

typedef struct {
  const char *run_dir;  /* created if missing */
  int64_t save_every;   /* > 0: a checkpoint every that many steps as well as every epoch */
  void (*on_step)(void *user, const kit_progress *p);
  void (*on_epoch)(void *user, const kit_progress *p, const char *grid_path);
  void *user;
  const kit_team *team; /* NULL: alone; else set on the model too (cmivae_set_team) */
} cmivae_train_opts;

/* Trains m (fresh, or loaded from the run's checkpoint to resume) on ds with the kit's trainer:
 * two streams over the training images with their own seeds, the first giving x, the second
 * the independent x~ whose feature is fused with x's z1: row i of the one batch with row i of
 * the other, so on a team each rank's share of x has its partners in its share of x~. */
ut_status cmivae_train(cmivae_model *m, const ut_dataset *ds, const cmivae_train_opts *o);

/* Centre crops of images ids[n] of ds at the model's size, in [0, 1]: out [n, C, size, size]. */
ut_status cmivae_load_images(const ut_dataset *ds, const int32_t *ids, int n, int size, float *out);

/* The fusion grid of `rows` z1 sources and `cols` z2 sources (images of ds), written to path:
 * (rows + 1) x (cols + 1) tiles, the top-left one blank. */
ut_status cmivae_write_grid(cmivae_model *m, const ut_dataset *ds, const int32_t *z1_ids, int rows,
                            const int32_t *z2_ids, int cols, const char *path);

/* The same grid from images in memory: z1_images [rows, C, size, size] in [0, 1] down the left,
 * z2_tiles [cols, ...] across the top (NULL: blank tiles) and the feature rows [cols, feature
 * width] whose z2 each column fuses. */
ut_status cmivae_fusion_grid(cmivae_model *m, const float *z1_images, int rows, const float *z2_tiles,
                             const float *features, int cols, const char *path);

/* Opens the trained model of run folder run_dir. NULL with an error when there is no CMI-VAE
 * checkpoint. */
cmivae_model *cmivae_open_run(ut_runtime *rt, const char *run_dir);

#endif
