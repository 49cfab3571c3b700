/* LORD's evaluation (issue 4, `untangle eval`): how well a trained run separates class from
 * content, measured the ways the paper does.
 *
 *  (a) content transfer: the content of one image drawn in the class of another, compared with
 *      the true image of that class in that pose, which a data set with content labels for
 *      every (class, content) pair holds (the rendered set does). Measured for class sources of
 *      the held-out classes (one-shot, through the stage-2 encoders) and of training classes.
 *  (b) leakage probes: class predicted from content codes and content from class codes by
 *      logistic regression and a small MLP (models/probe.h), next to chance.
 *  (c) reconstruction error of training images and of held-out classes' images.
 *  (d) class transfer: a CNN trained on the data set's real images (models/image_classifier.h)
 *      judges translations made from a random target class code and another class's image's
 *      content code: the share judged as the target class and as the content image's class.
 *
 * Errors are mean absolute differences of pixels in [0, 1]; with VGG weights, (a) also gives
 * LORD's VGG distance (pixel L1 plus L1 of five VGG16 feature taps). Every random choice
 * follows from cfg.seed, so the same run, data and device give the same report.
 */
#ifndef UNTANGLE_MODELS_LORD_EVAL_H
#define UNTANGLE_MODELS_LORD_EVAL_H

#include "lord.h"
#include "probe.h"
#include "untangle_data.h"

typedef struct {
  uint64_t seed;
  int64_t pairs;             /* translations per content-transfer and class-transfer measure */
  int64_t probe_samples;     /* at most this many codes per probe */
  int64_t recon_samples;     /* at most this many images per reconstruction measure */
  int64_t classifier_images; /* at most this many real images train the judge */
  int classifier_epochs;
  const char *vgg_weights;   /* torchvision vgg16 safetensors, or NULL: no VGG distance */
  /* Called as each part starts (may be NULL). */
  void (*on_part)(void *user, const char *part);
  void *user;
} lord_eval_cfg;

/* Seed 1, 1000 pairs, 10000 probe codes, 2000 reconstructions, 10000 images x 5 epochs for
 * the judge, no VGG. */
lord_eval_cfg lord_eval_default_cfg(void);

typedef struct {
  int64_t pairs; /* 0: not measured */
  double l1, vgg; /* vgg: NAN without weights */
} lord_eval_transfer;

typedef struct {
  int measured;
  probe_result result;
} lord_eval_probe;

typedef struct {
  int stage; /* the last stage the run trained: 2 uses the encoders, 1 the embeddings */
  int n_test_classes;
  int64_t n_train, n_unseen;
  /* (a); why_no_transfer says why it was not measured (empty when it was). */
  lord_eval_transfer transfer_unseen, transfer_seen;
  char why_no_transfer[160];
  /* (b) on the codes of the training images: the stage's codes, and in stage 2 also the
   * stage-1 embeddings. Content-from-class needs content labels. */
  lord_eval_probe class_from_content, content_from_class;
  lord_eval_probe class_from_content_embedded, content_from_class_embedded;
  /* (c); unseen needs stage 2 and held-out classes. */
  lord_eval_transfer recon_train, recon_unseen;
  /* (d) */
  int64_t judged;
  double judged_target, judged_content_class, judge_chance, judge_heldout_accuracy;
  double seconds;
} lord_eval_report;

/* Evaluates model m (as lord_open_run gives it on rt, trained through `stage`) on ds, the data set it
 * was trained on, with the run's split (test_classes, test_ratio as in the run's
 * "lord.split" metadata). UT_ERR_MISMATCH, naming the file, when ds is not that data set. */
ut_status lord_evaluate(ut_runtime *rt, lord_model *m, int stage, const ut_dataset *ds, int test_classes, double test_ratio,
                        const lord_eval_cfg *cfg, lord_eval_report *report);

/* The report as indented JSON (malloc'd), with the run and data set paths. NULL without memory. */
char *lord_eval_json(const lord_eval_report *r, const char *run_dir, const char *data_path, const char *device);

#endif
