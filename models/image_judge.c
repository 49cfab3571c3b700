/* The evaluations' class judge (image_judge.h): the split by class, the training settings and
 * the accuracy guard. */
#include "image_judge.h"

#include <stdlib.h>

ut_status image_judge_split(const int32_t *labels, int64_t n, int n_classes, int64_t *train_idx, int64_t *n_train,
                            int64_t *held_idx, int64_t *n_held) {
  int64_t *count = calloc((size_t)(n_classes > 0 ? n_classes : 1), sizeof *count);
  int64_t *quota = calloc((size_t)(n_classes > 0 ? n_classes : 1), sizeof *quota);
  if (!count || !quota) {
    free(count), free(quota);
    return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the judge's split");
  }
  for (int64_t i = 0; i < n; i++) count[labels[i]]++;
  for (int c = 0; c < n_classes; c++)
    quota[c] = count[c] < 2 ? 0 : count[c] / IMAGE_JUDGE_HELDOUT_EVERY > 0 ? count[c] / IMAGE_JUDGE_HELDOUT_EVERY : 1;
  *n_train = *n_held = 0;
  for (int64_t i = 0; i < n; i++) {
    if (quota[labels[i]] > 0) {
      quota[labels[i]]--;
      held_idx[(*n_held)++] = i;
    } else {
      train_idx[(*n_train)++] = i;
    }
  }
  free(count), free(quota);
  return UT_OK;
}

ut_status image_judge_train(ut_runtime *rt, const float *images, int64_t n, int64_t c, int64_t h, int64_t w,
                            const int32_t *labels, int n_classes, const image_judge_cfg *cfg, image_classifier **judge,
                            image_judge_report *report) {
  *judge = NULL;
  if (cfg->epochs < 1 || cfg->width < 0 || !(cfg->min_accuracy >= 0 && cfg->min_accuracy <= 1))
    return ut_fail(UT_ERR_INVALID_ARGUMENT,
                   "the judge needs at least 1 epoch, a width of 0 (the default) or more and a minimum accuracy in "
                   "[0, 1] (got %d, %lld, %g)",
                   cfg->epochs, (long long)cfg->width, cfg->min_accuracy);
  image_classifier_cfg icfg = image_classifier_default_cfg();
  icfg.heldout_share = 0; /* held out by the caller, by class */
  icfg.flip = 1;
  if (cfg->width > 0) icfg.width = cfg->width;
  icfg.flatten = cfg->flatten;
  int64_t steps_per_epoch = (n + icfg.batch - 1) / icfg.batch;
  int epochs = cfg->epochs * steps_per_epoch >= IMAGE_JUDGE_MIN_STEPS
                   ? cfg->epochs
                   : (int)((IMAGE_JUDGE_MIN_STEPS + steps_per_epoch - 1) / steps_per_epoch);
  report->n_train = n;
  report->epochs = epochs;
  return image_classifier_train_cfg(rt, images, n, c, h, w, labels, n_classes, cfg->seed, epochs, &icfg, judge);
}

ut_status image_judge_check(image_classifier *judge, const float *images, int64_t n, const int32_t *labels,
                            const image_judge_cfg *cfg, const char *what, image_judge_report *report) {
  int32_t *predicted = malloc((size_t)(n > 0 ? n : 1) * sizeof *predicted);
  if (!predicted) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", what);
  ut_status st = image_classifier_predict(judge, images, n, predicted);
  if (st == UT_OK) {
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++) right += predicted[i] == labels[i];
    report->heldout_accuracy = n > 0 ? (double)right / (double)n : 0.0;
    report->n_heldout = n;
    if (report->heldout_accuracy < cfg->min_accuracy)
      st = ut_fail(UT_ERR_STATE,
                   "%s: the class judge recognises only %.3f of %lld held-out real images after %d epochs on %lld "
                   "(it must reach %.2f before it judges generated images); give it more --judge-epochs or "
                   "--judge-images, or lower --judge-min-accuracy knowingly",
                   what, report->heldout_accuracy, (long long)n, report->epochs, (long long)report->n_train,
                   cfg->min_accuracy);
  }
  free(predicted);
  return st;
}
