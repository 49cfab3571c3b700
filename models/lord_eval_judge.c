/* The evaluation's class judge (lord_eval_judge.h): a seeded pick of the data set's real images,
 * split, trained and guarded by image_judge.h. */
#include "lord_eval_judge.h"
#include "kit_random.h"

#include <stdlib.h>

#include "image_judge.h"
#include "probe.h"

/* Picks up to cfg->max_images images in a seeded order and splits them by class
 * (image_judge_split): the ids of the training part into train[0 .. *n_train), of the held-out
 * part into held[0 .. *n_held). */
static ut_status split_images(const ut_dataset *ds, const lord_eval_judge_cfg *cfg, int32_t *train, int64_t *n_train,
                              int32_t *held, int64_t *n_held) {
  int64_t total = ut_dataset_count(ds), n = total < cfg->max_images ? total : cfg->max_images;
  int64_t *perm = malloc((size_t)total * sizeof *perm), *train_idx = malloc((size_t)n * sizeof *train_idx);
  int64_t *held_idx = malloc((size_t)n * sizeof *held_idx);
  int32_t *labels = malloc((size_t)n * sizeof *labels);
  ut_status st = perm && train_idx && held_idx && labels
                     ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for the judge's split", ut_dataset_path(ds));
  if (st == UT_OK) {
    kit_permutation(cfg->seed ^ 0x6a75646765ull, total, perm); /* "judge" */
    for (int64_t i = 0; i < n; i++) labels[i] = ut_dataset_class(ds, (int32_t)perm[i]);
    st = image_judge_split(labels, n, ut_dataset_n_classes(ds), train_idx, n_train, held_idx, n_held);
  }
  for (int64_t i = 0; st == UT_OK && i < *n_train; i++) train[i] = (int32_t)perm[train_idx[i]];
  for (int64_t i = 0; st == UT_OK && i < *n_held; i++) held[i] = (int32_t)perm[held_idx[i]];
  free(perm), free(train_idx), free(held_idx), free(labels);
  return st;
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
  float *train_images = NULL, *held_images = NULL;
  image_classifier *clf = NULL;
  ut_status st = ids && labels ? split_images(ds, cfg, ids, &n_train, ids + total, &n_held)
                                : ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", ut_dataset_path(ds));
  if (st == UT_OK && (n_held == 0 || n_train < 2))
    st = ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: too few images per class to train and score the class judge",
                 ut_dataset_path(ds));
  if (st == UT_OK && !(train_images = load(ds, ids, n_train, labels)))
    st = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for %lld images", ut_dataset_path(ds), (long long)n_train);
  image_judge_cfg jc = { .epochs = cfg->epochs, .min_accuracy = cfg->min_accuracy, .seed = cfg->seed };
  image_judge_report jr = { .epochs = cfg->epochs };
  if (st == UT_OK)
    st = image_judge_train(rt, train_images, n_train, ut_dataset_channels(ds), ut_dataset_height(ds), ut_dataset_width(ds),
                           labels, ut_dataset_n_classes(ds), &jc, &clf, &jr);
  free(train_images);
  if (st == UT_OK && !(held_images = load(ds, ids + total, n_held, labels)))
    st = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for %lld images", ut_dataset_path(ds), (long long)n_held);
  if (st == UT_OK) {
    st = image_judge_check(clf, held_images, n_held, labels, &jc, ut_dataset_path(ds), &jr);
    *report = (lord_eval_judge_report){ .heldout_accuracy = jr.heldout_accuracy, .n_train = n_train,
                                        .n_heldout = n_held, .epochs = jr.epochs };
  }
  if (st == UT_OK) *judge = clf;
  else image_classifier_free(clf);
  free(held_images);
  free(ids);
  free(labels);
  return st;
}
