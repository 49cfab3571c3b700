/* Training OverLORD on a data set file into a run folder, the three stages one after another,
 * each a phase of the kit's trainer (kit_trainer.h).
 *
 * The run folder holds checkpoint.safetensors (written atomically after every epoch and every
 * save_every steps, with the stage reached and each stage's steps), losses.tsv (a header, then
 * one line per step: stage, epoch, step and the losses of overlord.h, 0 where a stage has no
 * such term), grid.jpg (the latest grid: inputs down the side, training images in stage 1,
 * whose codes are embeddings, held-out ones after it; one column per target label, each cell the
 * input with that label, its correlated and uncorrelated codes kept) and
 * samples/stage<S>-epoch<E>.jpg. A run resumed after a kill, inside a stage or at a boundary
 * between two, computes the same losses as an uninterrupted one on the same device.
 */
#ifndef UNTANGLE_MODELS_OVERLORD_TRAIN_H
#define UNTANGLE_MODELS_OVERLORD_TRAIN_H

#include "overlord.h"
#include "untangle_data.h"

#define OVERLORD_CHECKPOINT "checkpoint.safetensors"
#define OVERLORD_STAGE_KEY "overlord.stage"        /* the last stage the checkpoint has steps of */
#define OVERLORD_CLASSES_KEY "overlord.class_names" /* the data set's class names, one a line */

typedef struct {
  int stage;
  int64_t epoch, epochs;
  int64_t step, steps; /* within the stage */
  const float *losses; /* OVERLORD_N_LOSSES of the last step */
  double images_per_second;
  double comm_share; /* on a team: the share of the step's time spent communicating */
} overlord_progress;

typedef struct {
  const char *run_dir;
  double test_ratio;  /* share of the images held out of training (for eval and the grids) */
  int64_t save_every; /* > 0: a checkpoint every that many steps as well as every epoch */
  void (*on_step)(void *user, const overlord_progress *p);
  void (*on_epoch)(void *user, const overlord_progress *p, const char *grid_path);
  void *user;
  const kit_team *team; /* NULL: alone; else set on the model too (overlord_set_team) */
} overlord_train_opts;

/* Whether ds fits m (size, channels, image and class counts, masks for the localized form):
 * UT_OK or UT_ERR_MISMATCH naming the file and what differs. */
ut_status overlord_check_data(const overlord_model *m, const ut_dataset *ds);

/* Trains m (fresh, or loaded from the run's checkpoint by the caller when resuming: the stage
 * and step to go on from are in the store's metadata) on ds, stages 1 to 3. */
ut_status overlord_train(overlord_model *m, const ut_dataset *ds, const overlord_train_opts *opts);

/* The split a run uses (held-out images of every class, from the run's seed). */
ut_status overlord_run_split(const ut_dataset *ds, const overlord_cfg *cfg, double test_ratio, ut_dataset_split *split);

/* Opens the trained model of run folder `run_dir` for inference (pixel L1 loss, no VGG needed).
 * *stage gets the last stage trained. NULL when there is no OverLORD checkpoint or it has not
 * reached `min_stage`, with an error that says what to do. */
overlord_model *overlord_open_run(ut_runtime *rt, const char *run_dir, int min_stage, int *stage);

/* Translation grid of n input images (with their masks for the localized form, else NULL):
 * row r starts with input r, then for each stage in `stages` (n_stages of 1..3; stage 1 needs
 * image_ids) the input drawn with each of the n_labels labels, a white column between stages.
 * The first row shows label_images (one real image per label, or NULL for white) above each
 * stage's columns. */
ut_status overlord_grid_write(overlord_model *m, const float *images, const float *masks, const int32_t *image_ids, int n,
                              const int32_t *labels, const float *label_images, int n_labels, const int *stages,
                              int n_stages, const char *path);

#endif
