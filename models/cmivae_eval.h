/* `untangle eval` of a CMI-VAE run (issue 15): does z2 control the feature, and does z1 keep
 * the rest without it?
 *
 * On the run's held-out images, each image x is paired with another held-out image x~ (a
 * seeded shuffle) and fused: G(mean of z1 of x, E2(f(x~))). Measured:
 *  - feature error: for hue, the circular distance in degrees between the fused image's hue
 *    (cmivae_image_hue, the measure the data was painted for, exact on real images) and x~'s;
 *    for class, the share of fused images a judge does not take for x~'s class. Baselines on
 *    the same pairs: x itself (a generator that ignores z2 draws it), and x's reconstruction
 *    G(z1, z2 of x) against x's own feature;
 *  - class kept: the share of fused images whose z1 source's class a judge still recognises,
 *    beside the share of the z1 sources themselves it recognises (the copy) and of their
 *    reconstructions (what the VAE alone keeps). The judge
 *    (image_judge.h, as LORD's evaluation's) is trained here on grey versions of real training
 *    images (the grey level each pixel was painted from, cmivae_grey) and reads grey versions,
 *    so a hue tells it nothing; below cfg->judge_min_accuracy on its own held-out real images
 *    it judges nothing and the evaluation stops;
 *  - probes (probe.h): the hue in 12 bins of 30 degrees (or the class) predicted from z1 (leakage:
 *    near chance when z1 holds none of it) and from z2 (informativeness).
 * With a baseline run (a --no-cmi run of the same data, split and size) every figure is also
 * measured for it on the same pairs with the same judge.
 */
#ifndef UNTANGLE_MODELS_CMIVAE_EVAL_H
#define UNTANGLE_MODELS_CMIVAE_EVAL_H

#include <stdio.h>

#include "cmivae.h"
#include "probe.h"
#include "untangle_data.h"

#define CMIVAE_EVAL_HUE_BINS 12
#define CMIVAE_EVAL_JUDGE_EPOCHS 15

typedef struct {
  int64_t max_images;   /* held-out images (pairs) measured at most */
  int64_t judge_images; /* training images that train (4/5) and score (1/5) the class judge at most */
  int judge_epochs;     /* or more, for at least IMAGE_JUDGE_MIN_STEPS steps */
  double judge_min_accuracy; /* the judge's held-out accuracy needed before it judges */
  int64_t judge_width;  /* channels of its first convolution; 0: image_classifier's default */
  int judge_flatten;    /* 1: its linear layer reads the whole last feature map (image_classifier.h) */
  const ut_dataset *judge_data; /* NULL: the judge learns from the run's training images; else from
                                   this set's (same classes, grey or painted, at least the model's
                                   size), which must not hold the held-out images eval pairs */
  uint64_t seed;        /* pairs, judge and probes */
  void (*on_part)(void *user, const char *part);
  void *user;
} cmivae_eval_cfg;

/* 2000 pairs, a judge with the flattened head (0.860 held out against the average pool's 0.828
 * on 7205 grey Fashion-MNIST images, docs/cmivae.md) of CMIVAE_EVAL_JUDGE_EPOCHS epochs on up
 * to 10000 of the run's training images that must reach 0.9 on its held-out ones, seed 1. */
cmivae_eval_cfg cmivae_eval_default_cfg(void);

/* The figures of one run. NAN: not measured for this feature. */
typedef struct {
  int64_t n_pairs;
  double fused_hue_error, copy_hue_error, recon_hue_error;  /* mean degrees, hue feature */
  double fused_hue_error_median;
  double fused_class_error, copy_class_error;               /* class feature: not judged as x~'s class */
  double class_kept, copy_class_kept, recon_class_kept;     /* judged as the z1 source's class */
  probe_result z1_feature, z2_feature;                      /* hue bins (or class) from z1, from z2 */
  probe_result z1_class;                                    /* class from z1 (hue runs: z1 should keep it) */
} cmivae_eval_run;

typedef struct {
  int feature;
  cmivae_eval_run run, baseline;
  int has_baseline;
  double judge_heldout_accuracy;
  int64_t judge_train_images, judge_heldout_images, judge_width;
  int judge_epochs, judge_flatten;
  const char *judge_data; /* the judge's data set when not the run's training images */
} cmivae_eval_report;

/* Measures m (and baseline, may be NULL) on ds, the data set it was trained on. The baseline
 * must have the same size, channels, feature, seed and held-out share (so the same images are
 * held out); anything else is UT_ERR_MISMATCH naming the field. A judge below
 * cfg->judge_min_accuracy is UT_ERR_STATE, with its accuracy in r->judge_heldout_accuracy. */
ut_status cmivae_evaluate(ut_runtime *rt, cmivae_model *m, cmivae_model *baseline, const ut_dataset *ds,
                          const cmivae_eval_cfg *cfg, cmivae_eval_report *r);

/* The report as JSON (malloc'd), naming the run, data, baseline run (may be NULL) and device;
 * "claims" compares the figures with the bars. */
char *cmivae_eval_json(const cmivae_eval_report *r, const char *run, const char *data, const char *baseline_run,
                       const char *device);
void cmivae_eval_print(FILE *out, const cmivae_eval_report *r);

#endif
