/* LORD's evaluation (issue 4, reworked by issue 16, `untangle eval`): how well a trained run
 * separates class from content, with every figure next to what a trivial guess scores, so a
 * number can only look good by beating them.
 *
 *  (a) content transfer: the content of one image drawn in the class of another, against the
 *      true image of that class in that pose, which a data set with content labels for every
 *      (class, content) pair holds (the rendered set does). Pairs, baselines and foreground
 *      scores are described in lord_eval_pairs.h; the baselines are scored on the same pairs.
 *      Measured for class sources of the held-out classes (one-shot, through the stage-2
 *      encoders) and of training classes.
 *  (b) probes, by logistic regression and a small MLP (models/probe.h) on a split that keeps
 *      every label in both halves: leakage (class from content codes, content from class
 *      codes; chance is best) beside informativeness (content from content codes, class from
 *      class codes; high is best), so codes that never left their initialisation cannot look
 *      disentangled. Stage-1 class codes are one embedding per class, so probes on them are
 *      degenerate by construction (content from class at chance, class from class perfect)
 *      and are reported as such, not measured.
 *  (c) reconstruction error of training images and of held-out classes' images.
 *  (d) class transfer: a judge trained on the data set's real images (lord_eval_judge.h), which
 *      must first reach a held-out accuracy (0.9), scores translations made from a random
 *      target class's image and another class's image's content: the share judged as the
 *      target class and as the content image's class.
 *
 * A run that trained both stages is measured twice, side by side: with the stage-1 embeddings
 * and with the stage-2 encoders (both through the run's final generator, which stage 2 also
 * trains; held-out classes have no embeddings, so their columns are stage 2's alone).
 *
 * Errors are mean absolute differences of pixels in [0, 1]; with VGG weights, (a) also gives
 * LORD's VGG distance (pixel L1 plus L1 of five VGG16 feature taps) of the translations. Every
 * random choice follows from cfg.seed, so the same run, data and device give the same report.
 */
#ifndef UNTANGLE_MODELS_LORD_EVAL_H
#define UNTANGLE_MODELS_LORD_EVAL_H

#include "lord.h"
#include "lord_eval_pairs.h"
#include "probe.h"
#include "untangle_data.h"

typedef struct {
  uint64_t seed;
  int64_t pairs;             /* translations per content-transfer and class-transfer measure */
  int64_t probe_samples;     /* at most this many codes per probe */
  int64_t recon_samples;     /* at most this many images per reconstruction measure */
  int64_t classifier_images; /* at most this many real images train and test the judge */
  int classifier_epochs;     /* or more, for at least 600 steps (lord_eval_judge.h) */
  double judge_min_accuracy; /* the judge's held-out accuracy needed before it judges */
  const char *vgg_weights;   /* torchvision vgg16 safetensors, or NULL: no VGG distance */
  /* Another run to score beside this one on the same pairs (the plain autoencoder trained with
   * the same budget, say), through its last stage `baseline_stage`, or NULL. It must have been
   * trained on the same data set with the same codes' sizes and the same held-out classes. */
  lord_model *baseline;
  int baseline_stage;
  int baseline_test_classes; /* its split, from its "lord.split" metadata */
  double baseline_test_ratio;
  /* Called as each part starts (may be NULL). */
  void (*on_part)(void *user, const char *part);
  void *user;
} lord_eval_cfg;

/* Seed 1, 1000 pairs, 10000 probe codes, 2000 reconstructions, a judge of 10000 images x 10
 * epochs (at least 600 steps) that must reach 0.9, no VGG. */
lord_eval_cfg lord_eval_default_cfg(void);

typedef struct {
  int64_t pairs; /* 0: not measured */
  double l1;
  double foreground_l1, colour; /* on the object's pixels (lord_eval_pairs.h); NAN without masks */
  double vgg;                   /* NAN without weights, and for baselines */
} lord_eval_transfer;

typedef struct {
  int measured;
  const char *degenerate; /* not measured because the answer is fixed by construction: why */
  probe_result result;
} lord_eval_probe;

/* The measures of one stage's codes. */
typedef struct {
  int measured; /* 0: the run did not train this stage */
  lord_eval_transfer transfer_unseen, transfer_seen; /* (a) */
  /* (b) on the codes of the training images */
  lord_eval_probe class_from_content, content_from_content; /* leakage, informativeness */
  lord_eval_probe content_from_class, class_from_class;     /* leakage, informativeness */
  lord_eval_transfer recon_train, recon_unseen;             /* (c); unseen needs stage 2 */
  double judged_target, judged_content_class;               /* (d) */
} lord_eval_stage_report;

typedef struct {
  int stage; /* the last stage the run trained */
  int n_test_classes;
  int64_t n_train, n_unseen;
  /* (a); why_no_transfer says why held-out classes were not measured (empty when they were),
   * why_no_foreground why the foreground scores and the background baseline are missing. */
  char why_no_transfer[160], why_no_foreground[200];
  lord_eval_transfer baseline_unseen[LORD_BASELINE_COUNT], baseline_seen[LORD_BASELINE_COUNT];
  lord_eval_stage_report stages[2]; /* [0]: stage-1 embeddings, [1]: stage-2 encoders */
  /* cfg.baseline's content transfer and class transfer (measured set when it was given). */
  struct {
    int measured, stage;
    lord_eval_transfer transfer_unseen, transfer_seen;
    double judged_target, judged_content_class;
  } baseline_run;
  /* (d) */
  int64_t judged, judge_train_images, judge_heldout_images;
  double judge_chance, judge_heldout_accuracy;
  double seconds;
} lord_eval_report;

/* Evaluates model m (as lord_open_run gives it on rt, trained through `stage`) on ds, the data set it
 * was trained on, with the run's split (test_classes, test_ratio as in the run's
 * "lord.split" metadata). UT_ERR_MISMATCH, naming the file, when ds is not that data set;
 * UT_ERR_STATE when the judge does not reach cfg->judge_min_accuracy (the message says so). */
ut_status lord_evaluate(ut_runtime *rt, lord_model *m, int stage, const ut_dataset *ds, int test_classes, double test_ratio,
                        const lord_eval_cfg *cfg, lord_eval_report *report);

/* The report as indented JSON (malloc'd), with the run's, the baseline run's (NULL without one)
 * and the data set's paths. NULL without memory. */
char *lord_eval_json(const lord_eval_report *r, const char *run_dir, const char *baseline_dir, const char *data_path,
                     const char *device);

#endif
