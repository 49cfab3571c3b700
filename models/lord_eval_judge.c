/* The evaluation's class judge (lord_eval_judge.h): our own split of the real images, so the
 * held-out part holds every class in proportion, then the accuracy guard. */
#include "lord_eval_judge.h"

#include <stdlib.h>

#include "probe.h"

#define JUDGE_HELDOUT_EVERY 5 /* one image in five of each class is held out */
#define JUDGE_MIN_STEPS 600   /* small sets get more epochs: a few dozen steps leave it guessing */

/* Picks up to cfg->max_images images in a seeded order and puts the first fifth of each class's
 * picks (at least one of a class with two or more) into the held-out part: held[0 .. *n_held),
 * the rest into train[0 .. *n_train). */
static ut_status split_images(const ut_dataset *ds, const lord_eval_judge_cfg *cfg, int32_t *train, int64_t *n_train,
                              int32_t *held, int64_t *n_held) {
  int64_t total = ut_dataset_count(ds), n = total < cfg->max_images ? total : cfg->max_images;
  int k = ut_dataset_n_classes(ds);
  int64_t *perm = malloc((size_t)total * sizeof *perm), *count = calloc((size_t)k, sizeof *count);
  int64_t *quota = calloc((size_t)k, sizeof *quota);
  if (!perm || !count || !quota) {
    free(perm), free(count), free(quota);
    return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for the judge's split", ut_dataset_path(ds));
  }
  probe_permutation(cfg->seed ^ 0x6a75646765ull, total, perm); /* "judge" */
  for (int64_t i = 0; i < n; i++) count[ut_dataset_class(ds, (int32_t)perm[i])]++;
  for (int c = 0; c < k; c++)
    quota[c] = count[c] < 2 ? 0 : count[c] / JUDGE_HELDOUT_EVERY > 0 ? count[c] / JUDGE_HELDOUT_EVERY : 1;
  *n_train = *n_held = 0;
  for (int64_t i = 0; i < n; i++) {
    int32_t id = (int32_t)perm[i];
    int c = ut_dataset_class(ds, id);
    if (quota[c] > 0) {
      quota[c]--;
      held[(*n_held)++] = id;
    } else {
      train[(*n_train)++] = id;
    }
  }
  free(perm), free(count), free(quota);
  return UT_OK;
}

static float *load(const ut_dataset *ds, const int32_t *ids, int64_t n, int32_t *labels) {
  int64_t per = (int64_t)ut_dataset_channels(ds) * ut_dataset_height(ds) * ut_dataset_width(ds);
  float *images = malloc((size_t)(n * per) * sizeof *images);
  for (int64_t i = 0; images && i < n; i++) {
    ut_dataset_image_chw(ds, ids[i], images + i * per);
    labels[i] = ut_dataset_class(ds, ids[i]);
  }
  return images;
}

ut_status lord_eval_judge_train(ut_runtime *rt, const ut_dataset *ds, const lord_eval_judge_cfg *cfg,
                                image_classifier **judge, lord_eval_judge_report *report) {
  *judge = NULL;
  *report = (lord_eval_judge_report){ .epochs = cfg->epochs };
  if (cfg->max_images < 2 || cfg->epochs < 1 || !(cfg->min_accuracy >= 0 && cfg->min_accuracy <= 1))
    return ut_fail(UT_ERR_INVALID_ARGUMENT,
                   "the judge needs at least 2 images, 1 epoch and a minimum accuracy in [0, 1] (got %lld, %d, %g)",
                   (long long)cfg->max_images, cfg->epochs, cfg->min_accuracy);
  int64_t total = ut_dataset_count(ds), n_train = 0, n_held = 0;
  int32_t *ids = malloc((size_t)(2 * total) * sizeof *ids), *labels = malloc((size_t)total * sizeof *labels);
  int32_t *predicted = malloc((size_t)total * sizeof *predicted);
  float *train_images = NULL, *held_images = NULL;
  image_classifier *clf = NULL;
  ut_status st = ids && labels && predicted ? split_images(ds, cfg, ids, &n_train, ids + total, &n_held)
                                            : ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", ut_dataset_path(ds));
  if (st == UT_OK && (n_held == 0 || n_train < 2))
    st = ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: too few images per class to train and score the class judge",
                 ut_dataset_path(ds));
  if (st == UT_OK && !(train_images = load(ds, ids, n_train, labels)))
    st = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for %lld images", ut_dataset_path(ds), (long long)n_train);
  image_classifier_cfg icfg = image_classifier_default_cfg();
  icfg.heldout_share = 0; /* held out here, by class */
  icfg.flip = 1;
  int64_t steps_per_epoch = (n_train + icfg.batch - 1) / icfg.batch;
  int epochs = cfg->epochs * steps_per_epoch >= JUDGE_MIN_STEPS ? cfg->epochs
                                                                 : (int)((JUDGE_MIN_STEPS + steps_per_epoch - 1) / steps_per_epoch);
  if (st == UT_OK)
    st = image_classifier_train_cfg(rt, train_images, n_train, ut_dataset_channels(ds), ut_dataset_height(ds),
                                    ut_dataset_width(ds), labels, ut_dataset_n_classes(ds), cfg->seed, epochs, &icfg, &clf);
  free(train_images);
  if (st == UT_OK && !(held_images = load(ds, ids + total, n_held, labels)))
    st = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for %lld images", ut_dataset_path(ds), (long long)n_held);
  if (st == UT_OK) st = image_classifier_predict(clf, held_images, n_held, predicted);
  if (st == UT_OK) {
    int64_t right = 0;
    for (int64_t i = 0; i < n_held; i++) right += predicted[i] == labels[i];
    *report = (lord_eval_judge_report){ .heldout_accuracy = (double)right / (double)n_held, .n_train = n_train,
                                        .n_heldout = n_held, .epochs = epochs };
    if (report->heldout_accuracy < cfg->min_accuracy)
      st = ut_fail(UT_ERR_STATE,
                   "%s: the class judge recognises only %.3f of %lld held-out real images after %d epochs on %lld "
                   "(it must reach %.2f before it judges translations); give it more --judge-epochs or "
                   "--judge-images, or lower --judge-min-accuracy knowingly",
                   ut_dataset_path(ds), report->heldout_accuracy, (long long)n_held, epochs, (long long)n_train,
                   cfg->min_accuracy);
  }
  if (st == UT_OK) *judge = clf;
  else image_classifier_free(clf);
  free(held_images);
  free(ids);
  free(labels);
  free(predicted);
  return st;
}
