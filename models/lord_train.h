/* Training LORD on a data set file into a run folder, both stages, resumable, with the kit's
 * trainer (kit_trainer.h), each stage a phase of it.
 *
 * The run folder holds checkpoint.safetensors (written atomically after every epoch and every
 * save_every steps, with the stage, epoch and steps reached), losses.tsv (a header, then one
 * line per step: stage, epoch, step, loss; appended after each checkpoint so it always
 * matches it), grid.jpg (the latest sample grid: first row content sources, first
 * column class sources, each cell the generator's translation, as the paper's Fig. 2) and
 * samples/stage<S>-epoch<E>.jpg (every grid). A run resumed after a kill repeats the epoch
 * it was in and computes the same losses as an uninterrupted one on the same device: the
 * batches follow from (seed, epoch) and every random stream and optimizer state is in the
 * checkpoint.
 */
#ifndef UNTANGLE_MODELS_LORD_TRAIN_H
#define UNTANGLE_MODELS_LORD_TRAIN_H

#include "lord.h"
#include "untangle_data.h"

#define LORD_CHECKPOINT "checkpoint.safetensors"

typedef struct {
  int stage;           /* 1 or 2 */
  int64_t epoch, epochs;
  int64_t step, steps; /* within the stage */
  float loss;          /* of the last step */
  double images_per_second;
  double comm_share; /* on a team: the share of the step's time spent communicating */
} lord_progress;

typedef struct {
  const char *run_dir;
  int first_stage, last_stage; /* 1..2 */
  int test_classes;            /* classes held out of training (for one-shot evaluation) */
  double test_ratio;           /* share of the other classes' images held out */
  int64_t save_every;          /* > 0: a checkpoint every that many steps as well as every epoch */
  void (*on_step)(void *user, const lord_progress *p);
  void (*on_epoch)(void *user, const lord_progress *p, const char *grid_path);
  void *user;
  const kit_team *team; /* NULL: alone; else set on the model too (lord_set_team) */
} lord_train_opts;

/* The split a run uses: the data set, held-out classes and samples from the run's seed. */
ut_status lord_run_split(const ut_dataset *ds, const lord_cfg *cfg, int test_classes, double test_ratio,
                         ut_dataset_split *split);

/* Opens the trained model of run folder `run_dir` for inference: its checkpoint's configuration
 * with the pixel L1 loss (no VGG weights needed) and its parameters. *stage gets the last stage
 * trained (1 or 2). NULL when there is no LORD checkpoint or it has fewer than `min_stage`
 * stages, with an error that says what to train. */
lord_model *lord_open_run(ut_runtime *rt, const char *run_dir, int min_stage, int *stage);

/* Trains m (fresh, or loaded from the run's checkpoint by the caller when resuming; the stage
 * and epoch to go on from are read from the store's metadata) on ds. */
ut_status lord_train(lord_model *m, const ut_dataset *ds, const lord_train_opts *opts);

/* Writes a translation grid of `n` class sources x `n` content sources picked from `ids`
 * (distinct classes first): stage 1 takes the codes from the embeddings, stage 2 from the
 * encoders applied to the images. */
ut_status lord_write_grid(lord_model *m, const ut_dataset *ds, const int32_t *ids, int32_t n_ids, int n, int stage,
                          const char *path);

/* The same grid from given images [n, C, S, S] and their codes (content [n, content_dim],
 * class [n, class_dim]): row r takes the class of image r, column k the content of image k. */
ut_status lord_grid_write(lord_model *m, const float *images, const float *content, const float *class_codes, int n,
                          const char *path);

#endif
