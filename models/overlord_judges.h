/* The two judges of OverLORD's evaluation: one CNN that tells the label (class) of an image, one
 * that tells its paint. In the data set the paint is drawn from a class-specific distribution,
 * so a judge trained on it learns paint as a cue for the class: it then calls a translation
 * that keeps the input's paint the input's class, and even the true image of the target
 * label in the input's paint is judged right only about 6 times in 10. These judges train
 * instead on renders of every (class, view, paint) combination, in which label and paint are
 * independent, so the label judge must read the shape and the paint judge the colour.
 *
 * Views v with v % 5 == 4 are held out: each judge is scored on all their renders and must
 * reach cfg->min_accuracy there before it judges anything. Each trains by image_judge's recipe
 * (mirrored half the time, which keeps class and paint; at least IMAGE_JUDGE_MIN_STEPS steps).
 */
#ifndef UNTANGLE_MODELS_OVERLORD_JUDGES_H
#define UNTANGLE_MODELS_OVERLORD_JUDGES_H

#include "image_classifier.h"
#include "untangle_data.h"

typedef struct {
  int epochs;          /* passes over the training renders, or more for 600 steps */
  double min_accuracy; /* held-out accuracy each judge must reach, in [0, 1] */
  int64_t max_images;  /* renders at most, held-out ones included (views are thinned to fit) */
  uint64_t seed;
} overlord_judges_cfg;

typedef struct {
  image_classifier *label, *paint;
  double label_accuracy, paint_accuracy; /* on the held-out renders */
  int64_t n_train, n_heldout;            /* renders in each part */
  int epochs;                            /* as trained */
} overlord_judges;

/* Trains both judges on renders of `synth` (the set's renderer settings) with paints 1 ..
 * `paints`. When a judge stays below cfg->min_accuracy the result is UT_ERR_STATE with a
 * message naming it, its accuracy and what to change; j's accuracies are filled either way.
 * Free with overlord_judges_free. */
ut_status overlord_judges_train(ut_runtime *rt, const ut_synth_cfg *synth, int paints, const overlord_judges_cfg *cfg,
                                overlord_judges *j);
/* The guard overlord_judges_train applies: UT_ERR_STATE naming the first judge (label, then
 * paint) whose held-out accuracy is below min_accuracy, else UT_OK. */
ut_status overlord_judges_check(const overlord_judges *j, double min_accuracy);
void overlord_judges_free(overlord_judges *j);

#endif
