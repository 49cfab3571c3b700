/* The content-transfer pairs of LORD's evaluation (lord_eval.h, part a) and what each is scored
 * against. A pair takes the content (pose) of one image and the class of another; its truth is
 * the data set's image of that class in that pose. Every translation and every baseline is
 * scored on the same pairs, so their figures compare directly.
 *
 * Baselines, each a guess that knows less than a translation should:
 *   class-agnostic    the mean of the training images in the content source's pose (every
 *                     training class): knows the pose, not the class;
 *   content-agnostic  the mean of every image of the class source's class: knows the class,
 *                     not the pose;
 *   content copy      the content source itself: the right pose in the wrong class;
 *   background        the truth's background colour everywhere: neither.
 * On rendered sets, about three quarters of a 32x32 image is background, which a blurry
 * class-agnostic guess gets right; so pairs are also scored on the object's pixels alone (the
 * foreground L1) and on the object's mean colour (the colour error), where a grey blob in the
 * right pose scores badly.
 */
#ifndef UNTANGLE_MODELS_LORD_EVAL_PAIRS_H
#define UNTANGLE_MODELS_LORD_EVAL_PAIRS_H

#include "untangle_data.h"

typedef struct {
  int32_t content_source, class_source, truth; /* image indices */
} lord_eval_pair;

/* Draws n pairs in a seeded order (the same arguments give the same pairs): a content source
 * from content_sources, a class source from class_sources of another class and another content
 * (so it is never the truth, nor in the truth's pose), and the truth: the first image of the
 * class source's class with the content source's content. Draws for which the data set has no
 * such image are skipped; *drawn (<= n) says how many pairs were made within 20 n draws. Needs
 * content labels. */
ut_status lord_eval_draw_pairs(const ut_dataset *ds, const int32_t *class_sources, int64_t n_class_sources,
                               const int32_t *content_sources, int64_t n_content_sources, int64_t n, uint64_t seed,
                               lord_eval_pair *pairs, int64_t *drawn);

typedef enum {
  LORD_BASELINE_CLASS_AGNOSTIC,
  LORD_BASELINE_CONTENT_AGNOSTIC,
  LORD_BASELINE_CONTENT_COPY,
  LORD_BASELINE_BACKGROUND,
  LORD_BASELINE_COUNT
} lord_eval_baseline;

/* "class_agnostic", "content_agnostic", "content_copy", "background"; NULL out of range. */
const char *lord_eval_baseline_name(int baseline);

/* The means and object masks the baselines and the foreground scores need, for one data set. */
typedef struct lord_eval_refs lord_eval_refs;

/* Per-pose means over the images `train` (the run's training images), per-class means over all
 * images of each class, and, when ds is a rendered set (its source says "kind": "synth" and
 * matches its classes, poses and size), object masks re-rendered from it. NULL without memory
 * or for a set without content labels. */
lord_eval_refs *lord_eval_refs_new(const ut_dataset *ds, const int32_t *train, int64_t n_train);
void lord_eval_refs_free(lord_eval_refs *refs);

/* NULL when the object masks are known; else why not (the foreground scores and the background
 * baseline are then not measured). */
const char *lord_eval_refs_why_no_mask(const lord_eval_refs *refs);

/* The object mask of image `image`: 1 where any of the renderer's samples of a pixel hits the
 * object (anti-aliased edges included), else 0; height * width bytes. Needs masks. */
ut_status lord_eval_refs_mask(const lord_eval_refs *refs, int32_t image, uint8_t *mask);

/* The baseline's guess for pair p as float [C, H, W] in [0, 1]. `truth_mask` (the mask of
 * p->truth) is read by the background baseline only. */
void lord_eval_refs_baseline(const lord_eval_refs *refs, int baseline, const lord_eval_pair *p, const uint8_t *truth_mask,
                             float *guess);

/* Sums of the per-pair scores of one method; start from all zeros. */
typedef struct {
  int64_t pairs, masked_pairs; /* masked: pairs scored on the object (a mask with an object pixel) */
  double l1, foreground_l1, colour;
} lord_eval_score;

/* Adds one pair: `guess` against `truth` (float [channels, pixels] each). l1 is the mean
 * absolute difference over all values; with a mask that has an object pixel, foreground_l1 is
 * the same over the object's pixels and colour the mean over channels of the absolute
 * difference between the two images' mean colours over the object's pixels. */
void lord_eval_score_add(lord_eval_score *s, const float *guess, const float *truth, const uint8_t *mask, int channels,
                         int64_t pixels);

/* The means over pairs: l1 over all pairs, the foreground figures over masked pairs (NAN when
 * there were none; l1 NAN without pairs). */
void lord_eval_score_means(const lord_eval_score *s, double *l1, double *foreground_l1, double *colour);

#endif
