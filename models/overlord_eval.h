/* `untangle eval` of an OverLORD run on the rendered three-factor set (data synth --paints),
 * whose ground truth is exact: the image of any class in any paint and pose can be rendered.
 *
 * For held-out images (class c, paint p, view v) and target labels c' != c, the translation
 * (pose and correlated code from the image, label code of c') is compared with the render of
 * (c', p, v):
 *  - pixel L1 per stage (2 and 3), beside the input copied and, when a LORD run of the same set
 *    is given, LORD's translation of the same pairs (its content code from the image, the class
 *    code of c');
 *  - label judged: the share of translations a CNN assigns to c' (beside the share it assigns to
 *    c, the input's own label, per target label with the label most often read instead, and
 *    apart for inputs in a paint the target class never comes in), and paint kept: the share another assigns
 *    to p, both trained on renders in which label and paint are independent
 *    (overlord_judges.h: the data set's own correlation would teach paint as a cue for label);
 *  - leakage probes on the encoders' codes: the label and the paint from the uncorrelated code,
 *    beside the label from the label code and the paint from the correlated code;
 *  - stage 1 itself, on training images (whose uncorrelated codes are the embedding's rows):
 *    the same scores of its translations, the label and paint probed from those rows (so that
 *    leakage learnt in stage 1 can be told from leakage of the amortised encoder) and the paint
 *    probed from E_c's code;
 *  - sharpness: the mean absolute difference of neighbouring pixels of stage 2's and stage 3's
 *    translations, beside the true images'.
 */
#ifndef UNTANGLE_MODELS_OVERLORD_EVAL_H
#define UNTANGLE_MODELS_OVERLORD_EVAL_H

#include "overlord.h"
#include "probe.h"
#include "untangle_data.h"

typedef struct {
  int64_t max_images;  /* held-out images at most (200) */
  int targets;         /* target labels per image; n_classes - 1 or more (the default): every other label */
  int judge_epochs;    /* training epochs of the two judges (30; overlord_judges.h) */
  double judge_min_accuracy; /* held-out accuracy each judge must reach before it judges (0.9) */
  int64_t judge_images; /* renders the judges see at most (20000) */
  int64_t max_probe;   /* images whose codes the probes see, at most (1500) */
  uint64_t seed;
  void (*on_part)(void *user, const char *part);
  void *user;
} overlord_eval_cfg;

overlord_eval_cfg overlord_eval_default_cfg(void);

/* Sets of up to this many classes also get the label judged per target label. */
#define OVERLORD_EVAL_MAX_LISTED_LABELS 64

/* Scores over the pairs whose input's paint the target class comes in (usual) or never comes in
 * (foreign): the second asks the generator for a combination it never saw in training. */
typedef struct {
  int64_t pairs;
  double label_judged, paint_kept; /* -1 when pairs is 0 */
} overlord_eval_split;

/* One translator's scores on the pairs. */
typedef struct {
  double l1;            /* mean |translation - truth| over pixels in [0, 1] */
  double label_judged;  /* share judged as the target label */
  double label_of_input; /* share judged as the input's own label: the label the translation failed to change */
  double paint_kept;    /* share judged as the input's paint */
  double sharpness;     /* mean |neighbour difference| */
  int n_listed;         /* n_classes when at most OVERLORD_EVAL_MAX_LISTED_LABELS, else 0 */
  double label_judged_by_target[OVERLORD_EVAL_MAX_LISTED_LABELS]; /* the share per target label (-1: never a target) */
  /* Per target label, the label its translations were most often judged as instead (-1: no
   * miss) and the share of that target's changes judged so: what a missed change becomes. */
  int label_instead[OVERLORD_EVAL_MAX_LISTED_LABELS];
  double label_instead_share[OVERLORD_EVAL_MAX_LISTED_LABELS];
  overlord_eval_split usual_paint, foreign_paint;
} overlord_eval_scores;

/* The label figures of sc from the judge's labels of n translations, their target labels and
 * their inputs' labels (all in [0, n_classes)): label_judged, label_of_input, the label judged
 * over the pairs with foreign[i] 0 and 1 (foreign may be NULL: every pair usual) and, for up to
 * OVERLORD_EVAL_MAX_LISTED_LABELS classes, the per-target shares and misreads (ties go to the
 * lower label). */
void overlord_eval_tally_labels(const int32_t *judged, const int32_t *target, const int32_t *source, const uint8_t *foreign,
                                int64_t n, int64_t n_classes, overlord_eval_scores *sc);

typedef struct {
  int n_images, n_pairs, stage; /* stage: the last one trained */
  int targets;                  /* target labels per image (n_pairs / n_images) */
  int n_train_pairs;            /* stage 1's pairs, of training images */
  overlord_eval_scores stage1, stage2, stage3, copy, truth, lord;
  int has_lord;
  double label_judge_accuracy, paint_judge_accuracy; /* on held-out renders */
  int64_t judge_train_images, judge_heldout_images;
  probe_result label_from_uncorr, paint_from_uncorr, label_from_label, paint_from_corr; /* the last stage's encoders */
  /* stage 1 on training images: their embedding's rows, and E_c's code of the image */
  probe_result label_from_uncorr_emb, paint_from_uncorr_emb, paint_from_corr_s1;
  int paints;
} overlord_eval_report;

/* Evaluates m (trained on ds up to `stage`, with the run's held-out share test_ratio) and, when
 * lord_run is not NULL, the LORD run of that folder on the same pairs. UT_ERR_INVALID_ARGUMENT
 * naming the file when ds is not a rendered set with paints or does not fit the model. */
ut_status overlord_evaluate(ut_runtime *rt, overlord_model *m, int stage, const ut_dataset *ds, double test_ratio,
                            const char *lord_run, const overlord_eval_cfg *cfg, overlord_eval_report *r);

/* The report as JSON (malloc'd), with the run, data and device named. */
char *overlord_eval_json(const overlord_eval_report *r, const char *run, const char *data, const char *device);
void overlord_eval_print(FILE *out, const overlord_eval_report *r);

#endif
