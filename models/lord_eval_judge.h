/* The class judge of LORD's evaluation (lord_eval.h, part d): a CNN (models/image_classifier.h)
 * trained on a data set's real images, which says which class a translation shows. A judge
 * that cannot tell the real images apart says nothing about translations, so it must first
 * reach a held-out accuracy (0.9 by default) on images it did not train on, or the evaluation
 * stops.
 *
 *   image_classifier *judge;
 *   lord_eval_judge_report jr;
 *   if (lord_eval_judge_train(rt, ds, &(lord_eval_judge_cfg){ ... }, &judge, &jr) != UT_OK) ...
 *   image_classifier_predict(judge, translations, n, classes);
 *
 * The split by class, the mirroring, the least number of steps and the guard are
 * image_judge.h's, shared with CMI-VAE's evaluation.
 */
#ifndef UNTANGLE_MODELS_LORD_EVAL_JUDGE_H
#define UNTANGLE_MODELS_LORD_EVAL_JUDGE_H

#include "image_classifier.h"
#include "untangle_data.h"

typedef struct {
  int64_t max_images;  /* at most this many real images, held-out ones included */
  int epochs;          /* passes over the training part, or more: at least 600 steps of 32 images */
  double min_accuracy; /* the held-out accuracy the judge must reach, in [0, 1] */
  uint64_t seed;       /* picks the images, the split and the judge's initial weights */
} lord_eval_judge_cfg;

typedef struct {
  double heldout_accuracy;
  int64_t n_train, n_heldout; /* real images in each part */
  int epochs;                 /* as trained */
} lord_eval_judge_report;

/* Trains the judge on ds's images and scores it on its held-out part; *judge gets it (free
 * with image_classifier_free). When the held-out accuracy is below cfg->min_accuracy, *judge
 * is NULL and the result is UT_ERR_STATE with a message naming the data set, the accuracy
 * reached and what to change; *report is filled either way. */
ut_status lord_eval_judge_train(ut_runtime *rt, const ut_dataset *ds, const lord_eval_judge_cfg *cfg,
                                image_classifier **judge, lord_eval_judge_report *report);

#endif
