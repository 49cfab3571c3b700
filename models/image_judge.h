/* A class judge for evaluations: a CNN (image_classifier.h) trained on real images, which says
 * which class a generated image shows, and which must first show that it can tell real images
 * apart. LORD's evaluation (lord_eval_judge.h) and CMI-VAE's (cmivae_eval.h) share it.
 *
 *   int64_t *train_idx, *held_idx, n_train, n_held;
 *   image_judge_split(labels, n, n_classes, train_idx, &n_train, held_idx, &n_held);
 *   ... gather the training images and their labels ...
 *   image_judge_train(rt, train_images, n_train, 1, 32, 32, train_labels, 10, &cfg, &judge, &report);
 *   ... gather the held-out ones ...
 *   if (image_judge_check(judge, held_images, n_held, held_labels, &cfg, "f10k.dat", &report) != UT_OK)
 *     ... the judge is too weak: report.heldout_accuracy says how weak ...
 *
 * The held-out images are a fifth of each class's images (so every class is in both parts and
 * chance is the same in both); in training each image is mirrored left to right half the time
 * (for classes a mirror image keeps), and small sets get more epochs, up to at least
 * IMAGE_JUDGE_MIN_STEPS steps: a few dozen steps leave it guessing.
 */
#ifndef UNTANGLE_MODELS_IMAGE_JUDGE_H
#define UNTANGLE_MODELS_IMAGE_JUDGE_H

#include "image_classifier.h"

#define IMAGE_JUDGE_MIN_STEPS 600
#define IMAGE_JUDGE_HELDOUT_EVERY 5 /* one image in five of each class is held out */

typedef struct {
  int epochs;          /* passes over the training part, or more: at least IMAGE_JUDGE_MIN_STEPS steps */
  double min_accuracy; /* the held-out accuracy the judge must reach, in [0, 1] */
  int64_t width;       /* channels of the first convolution; 0: image_classifier's default */
  int flatten;         /* 1: image_classifier's flattened head instead of the average pool */
  uint64_t seed;       /* minibatch order, mirroring and initial weights */
} image_judge_cfg;

typedef struct {
  double heldout_accuracy;
  int64_t n_train, n_heldout; /* real images in each part */
  int epochs;                 /* as trained */
} image_judge_report;

/* Splits n labelled images, taken in the given order (shuffle them first), into the held-out
 * part held_idx[0 .. *n_held) (the first fifth of each class's images, at least one of a class
 * with two or more) and the training part train_idx[0 .. *n_train), both in that order. Labels
 * must lie in [0, n_classes). */
ut_status image_judge_split(const int32_t *labels, int64_t n, int n_classes, int64_t *train_idx, int64_t *n_train,
                            int64_t *held_idx, int64_t *n_held);

/* Trains the judge on n images (float [n, c, h, w] in [0, 1]) with labels in [0, n_classes),
 * mirrored and for at least IMAGE_JUDGE_MIN_STEPS steps; *judge gets it (NULL on failure) and
 * report->n_train and report->epochs are set. */
ut_status image_judge_train(ut_runtime *rt, const float *images, int64_t n, int64_t c, int64_t h, int64_t w,
                            const int32_t *labels, int n_classes, const image_judge_cfg *cfg, image_classifier **judge,
                            image_judge_report *report);

/* Scores the judge on n held-out images and sets report->heldout_accuracy and n_heldout. Below
 * cfg->min_accuracy it is UT_ERR_STATE with a message naming `what` (the data), the accuracy
 * reached and what to change (--judge-epochs, --judge-images, --judge-min-accuracy). */
ut_status image_judge_check(image_classifier *judge, const float *images, int64_t n, const int32_t *labels,
                            const image_judge_cfg *cfg, const char *what, image_judge_report *report);

#endif
