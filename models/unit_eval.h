/* UNIT's evaluation (`untangle eval` of a UNIT run): how well a trained run translates between
 * its two domains, measured on the run's held-out images (unit_run_split) in both directions,
 * every figure beside baselines computed on the same images.
 *
 *  translation  mean absolute pixel error (pixels in [0, 1]) of the translation against the
 *               true image of the same class and content in the other domain (unit_partner),
 *               next to two baselines: the input copied unchanged, and the input with its
 *               per-channel mean and standard deviation matched to the target domain's average
 *               over its training images ("colour-matched"). Needs a paired split (the built-in
 *               rendered sets); otherwise not measured, and the report says why.
 *  cycle        error of the input against its cycle reconstruction (unit_cycle) and against
 *               its within-domain reconstruction (unit_translate with from == to).
 *  domain judge an image_classifier trained on real training images of both domains, labelled
 *               by domain: its held-out accuracy, and the share of translations it judges as
 *               the target domain, next to the same share for the copy and the colour-matched
 *               baseline (a judge fooled by colour alone passes the colour-matched input) and,
 *               with pairs, for the true images (what a perfect translation would score).
 *  class judge  (data sets with 2+ classes) an image_classifier trained on the same real images,
 *               labelled by class: the share of translations whose input's class it still
 *               recognises, next to the same share for both baselines and the true images.
 * A judge whose held-out accuracy is below UNIT_EVAL_RELIABLE_ACCURACY (or unknown) is marked
 * unreliable in the report, the JSON and the summary; its figures are still given, flagged.
 * Every random choice follows from cfg.seed, so the same run, data and device give the same
 * report.
 *
 *   unit_eval_cfg cfg = unit_eval_default_cfg();
 *   unit_eval_report r;
 *   if (unit_evaluate(rt, m, ds, &cfg, &r) == UT_OK) {
 *     unit_eval_print(stdout, &r);
 *     char *json = unit_eval_json(&r, run_dir, data_path, device_name);
 *   }
 */
#ifndef UNTANGLE_MODELS_UNIT_EVAL_H
#define UNTANGLE_MODELS_UNIT_EVAL_H

#include <stdio.h>

#include "unit.h"
#include "untangle_data.h"

/* A judge scoring below this on its own held-out images is reported as unreliable. */
#define UNIT_EVAL_RELIABLE_ACCURACY 0.9

typedef struct {
  uint64_t seed;
  int64_t max_images;   /* at most this many held-out images per domain and measure */
  int judge_epochs;     /* training epochs of each judge */
  int64_t judge_images; /* at most this many real training images train each judge (half per domain) */
  /* Called as each part starts (may be NULL). */
  void (*on_part)(void *user, const char *part);
  void *user;
} unit_eval_cfg;

/* Seed 1, 500 images per domain and measure, judges trained 5 epochs on up to 4000 images. */
unit_eval_cfg unit_eval_default_cfg(void);

/* One judge: how it was trained and how well it tells its labels apart on images it never saw. */
typedef struct {
  int measured;            /* 0: not trained; note says why */
  int classes;             /* labels it tells apart (2 for the domain judge) */
  int64_t n_train, n_heldout;
  double heldout_accuracy; /* NAN when nothing was held out */
  int reliable;            /* heldout_accuracy >= UNIT_EVAL_RELIABLE_ACCURACY */
  char note[160];          /* why it was not trained, or why it is unreliable; empty otherwise */
} unit_eval_judge;

/* Figures of one direction, from -> to. Errors are mean absolute pixel differences in [0, 1];
 * shares are in [0, 1]. NAN: not measured. */
typedef struct {
  int from, to;            /* UNIT_A or UNIT_B */
  int64_t n_images;        /* held-out images of `from` measured */
  int64_t n_paired;        /* of them, with a true translation: the count behind the *_l1 of translation */
  double translation_l1;   /* the model's translation against the true image */
  double copy_l1;          /* the input itself against the true image */
  double colour_matched_l1; /* the colour-matched input against the true image */
  double cycle_l1;         /* from -> to -> from against the input */
  double recon_l1;         /* from -> from against the input */
  /* Shares the domain judge gives the target domain: of the translations, of both baselines,
   * and of the true images (what a perfect translation scores; NAN when not paired). */
  double judged_target_domain, copy_judged_target_domain, colour_matched_judged_target_domain;
  double true_judged_target_domain;
  /* Shares in which the class judge recognises the input's class, for the same four sets of
   * images (NAN without a class judge). */
  double class_kept, copy_class_kept, colour_matched_class_kept, true_class_kept;
} unit_eval_direction;

typedef struct {
  char domain_name[2][KIT_STRING_MAX]; /* [UNIT_A], [UNIT_B] */
  int domain_id[2];                    /* ids in the data set */
  int64_t n_train[2], n_test[2];       /* the run's split, per domain */
  int paired;                          /* 1: the split holds out whole pairs */
  char why_no_translation[200];        /* why the translation errors were not measured, or empty */
  int channels;
  double colour_mean[2][3], colour_std[2][3]; /* each domain's average per-image channel statistics */
  unit_eval_direction dir[2];          /* [0] A -> B, [1] B -> A */
  unit_eval_judge domain_judge, class_judge;
  int n_classes;                       /* classes of the data set */
  double class_chance;                 /* 1 / classes the class judge tells apart; NAN without it */
  int judge_epochs;
  uint64_t seed;
  int64_t max_images;
  double seconds;
} unit_eval_report;

/* Evaluates model m (as unit_open_run gives it on rt) on ds, the data set it was trained on,
 * with the run's split (unit_resolve_domains, then unit_run_split with the model's
 * configuration). Images larger than the model's size are centre-cropped. UT_ERR_MISMATCH,
 * naming the file, when ds has smaller images or other channels; UT_ERR_INVALID_ARGUMENT when a
 * cfg field is out of range or a domain has no held-out image. *r is filled on success. */
ut_status unit_evaluate(ut_runtime *rt, unit_model *m, const ut_dataset *ds, const unit_eval_cfg *cfg,
                        unit_eval_report *r);

/* The report as indented JSON (malloc'd) with the run folder, the data set path and the device
 * name (any may be NULL); figures not measured are null. NULL without memory. */
char *unit_eval_json(const unit_eval_report *r, const char *run_dir, const char *data_path, const char *device);

/* The human summary `untangle eval` prints: a table per measure with both directions side by
 * side, baselines under the model's figure, each judge's held-out accuracy on every line it
 * judges, and a warning on every line of an unreliable judge. */
void unit_eval_print(FILE *out, const unit_eval_report *r);

#endif
