/* Training DMIT on a data set with two to four domains into a run folder (dmit.h), the split
 * a run holds out, and the translation grid.
 *
 * The run folder holds checkpoint.safetensors, losses.tsv, grid.jpg and samples/ as every
 * model trained with the kit's trainer (kit_trainer.h). The grid shows held-out images of
 * every domain down the side and, across, each translated into every domain with a few fixed
 * prior styles.
 */
#ifndef UNTANGLE_MODELS_DMIT_TRAIN_H
#define UNTANGLE_MODELS_DMIT_TRAIN_H

#include "dmit.h"
#include "kit_trainer.h"
#include "untangle_data.h"

#define DMIT_CHECKPOINT KIT_CHECKPOINT

/* Fills an empty cfg->domains with every domain of ds in its order and cfg->n_domains with
 * their count; a configuration that names domains must name the data set's domains, in its
 * order (the attribute of domain d is the data set's domain d). Checks the channels and size. */
ut_status dmit_resolve_domains(const ut_dataset *ds, dmit_cfg *cfg);

/* Per domain (attribute order), the images trained on and held out. Where the data has content
 * labels, whole (class, content) keys are held out in every domain at once (a share
 * cfg->test_ratio of them, drawn from the seed), so a held-out image's true translations and
 * the same content in other styles are held out with it; otherwise each domain is drawn alone.
 * Lists are ascending image indices. */
typedef struct {
  int n_domains;
  int32_t *train[DMIT_MAX_DOMAINS], n_train[DMIT_MAX_DOMAINS];
  int32_t *test[DMIT_MAX_DOMAINS], n_test[DMIT_MAX_DOMAINS];
} dmit_split;
ut_status dmit_run_split(const ut_dataset *ds, const dmit_cfg *cfg, dmit_split *sp);
void dmit_split_free(dmit_split *sp);

/* The learning rate's factor in epoch `epoch` (from 0): 1, then falling linearly over the last
 * cfg->decay_epochs epochs (LambdaLR stepped per epoch, as the official schedule). */
float dmit_lr_factor(const dmit_cfg *cfg, int64_t epoch);

/* A grid: n images (in [0, 1]) down the side; across, the image, then for each domain its
 * translations with n_styles prior styles drawn from style_seed. */
ut_status dmit_write_grid(dmit_model *m, const float *images, int n, int n_styles, uint64_t style_seed, const char *path);

typedef struct {
  const char *run_dir;  /* created if missing */
  int64_t save_every;   /* > 0: a checkpoint every that many steps as well as every epoch */
  void (*on_step)(void *user, const kit_progress *p);
  void (*on_epoch)(void *user, const kit_progress *p, const char *grid_path);
  void *user;
  const kit_team *team; /* NULL: alone; else set on the model too (dmit_set_team) */
} dmit_train_opts;

/* Trains m (fresh, or loaded from the run's checkpoint to resume) on ds with the kit's trainer:
 * each step draws a batch of every domain from its own stream and runs the four updates. A
 * data set whose domains differ from the configuration's (count or names) is refused, naming
 * both. */
ut_status dmit_train(dmit_model *m, const ut_dataset *ds, const dmit_train_opts *o);

/* Centre crops at the model's size, in [0, 1], of images ids[0..n) of ds. */
ut_status dmit_load_images(const ut_dataset *ds, const int32_t *ids, int n, int size, float *out);

/* Opens the trained model of run folder `run_dir` for inference. NULL with an error that says
 * what is missing when there is no DMIT checkpoint. */
dmit_model *dmit_open_run(ut_runtime *rt, const char *run_dir);

#endif
