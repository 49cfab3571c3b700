/* Training UNIT on a data set with two or more domains into a run folder (unit.h), and the
 * split a run holds out for evaluation.
 *
 * The run folder holds checkpoint.safetensors, losses.tsv, grid.jpg and samples/ as every
 * model trained with the kit's trainer (kit_trainer.h). The grid shows, for a few held-out
 * images of each domain: the input, its translation and its cycle reconstruction.
 */
#ifndef UNTANGLE_MODELS_UNIT_TRAIN_H
#define UNTANGLE_MODELS_UNIT_TRAIN_H

#include "kit_trainer.h"
#include "unit.h"
#include "untangle_data.h"

#define UNIT_CHECKPOINT KIT_CHECKPOINT

/* The images a run trains on and holds out, per domain (index 0 is cfg->domain_a, 1 domain_b).
 * Where the data is paired (both domains have content labels, and an image of (class,
 * content) in A has one in B, as the built-in set's), whole pairs are held out: a share
 * cfg->test_ratio of the (class, content) keys, drawn from the seed, so every held-out image
 * has its true translation held out too; otherwise each domain's images are drawn alone.
 * Lists are ascending image indices. */
typedef struct {
  int domain[2];          /* domain ids in the data set */
  int32_t *train[2], n_train[2];
  int32_t *test[2], n_test[2];
  int paired;             /* 1: every test image of A has its partner in test[1] and back */
} unit_split;

/* Fills *sp (free with unit_split_free); the domains are looked up by name (the first two of
 * the data set when cfg names none, which unit_resolve_domains fills in). Errors name the
 * data set and the missing or empty domain. */
ut_status unit_run_split(const ut_dataset *ds, const unit_cfg *cfg, unit_split *sp);
void unit_split_free(unit_split *sp);
/* Fills empty cfg->domain_a / domain_b with the first two domains of ds; checks both exist
 * and differ, and that the images have the configured channels. */
ut_status unit_resolve_domains(const ut_dataset *ds, unit_cfg *cfg);

/* The partner of image i (same class and content, other domain `domain`), or -1. */
int32_t unit_partner(const ut_dataset *ds, int32_t i, int domain);

typedef struct {
  const char *run_dir;  /* created if missing */
  int64_t save_every;   /* > 0: a checkpoint every that many steps as well as every epoch */
  void (*on_step)(void *user, const kit_progress *p);
  void (*on_epoch)(void *user, const kit_progress *p, const char *grid_path);
  void *user;
  const kit_team *team; /* NULL: alone; else set on the model too (unit_set_team) */
} unit_train_opts;

/* Trains m (fresh, or loaded from the run's checkpoint to resume) on ds with the kit's trainer:
 * each step draws a batch of each domain from its own stream, so a paired set's pairing is
 * never seen. The images must be cfg->size square (or larger: then random crops). */
ut_status unit_train(unit_model *m, const ut_dataset *ds, const unit_train_opts *o);

/* The grid of up to `n` held-out images of each domain: rows input A, A -> B, A -> B -> A,
 * input B, B -> A, B -> A -> B. */
ut_status unit_write_grid(unit_model *m, const ut_dataset *ds, const unit_split *sp, int n, const char *path);

/* Opens the trained model of run folder `run_dir` for inference. NULL with an error that
 * says what is missing when there is no UNIT checkpoint. */
unit_model *unit_open_run(ut_runtime *rt, const char *run_dir);

#endif
