/* The evaluation of a CMI-VAE run (cmivae_eval.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmivae_colour.h"
#include "kit_random.h"
#include "cmivae_data.h"
#include "cmivae_eval.h"
#include "cmivae_train.h"
#include "image_judge.h"

cmivae_eval_cfg cmivae_eval_default_cfg(void) {
  return (cmivae_eval_cfg){ .max_images = 2000, .judge_images = 10000, .judge_epochs = CMIVAE_EVAL_JUDGE_EPOCHS,
                            .judge_min_accuracy = 0.9, .judge_flatten = 1, .seed = 1 };
}

static void part(const cmivae_eval_cfg *c, const char *what) {
  if (c->on_part) c->on_part(c->user, what);
}

static ut_status check_baseline(const cmivae_cfg *a, const cmivae_cfg *b) {
#define SAME(field, fmt, cast)                                                                                        \
  if (a->field != b->field)                                                                                           \
    return ut_fail(UT_ERR_MISMATCH, "the baseline run has " #field " = " fmt ", the run " fmt "; both must hold out " \
                   "the same images at the same size", (cast)b->field, (cast)a->field)
  SAME(size, "%d", int);
  SAME(channels, "%d", int);
  SAME(feature, "%d", int);
  SAME(n_classes, "%d", int);
  SAME(seed, "%llu", unsigned long long);
  SAME(test_ratio, "%g", double);
#undef SAME
  return UT_OK;
}

/* Grey versions of n images [n, C, S, S] into [n, 1, S, S]: the painted grey level
 * (cmivae_grey) of colour images, a copy of grey ones. */
static void to_grey(const float *x, int64_t n, int channels, int64_t pixels, float *grey) {
  for (int64_t i = 0; i < n; i++) {
    if (channels == 3) cmivae_grey(x + i * 3 * pixels, pixels, grey + i * pixels);
    else memcpy(grey + i * pixels, x + i * pixels, (size_t)pixels * sizeof *grey);
  }
}

/* The first n of a seeded shuffle of list[m]. */
static int32_t *pick(const int32_t *list, int32_t m, int64_t n, uint64_t seed) {
  int64_t *perm = malloc((size_t)(m > 0 ? m : 1) * sizeof *perm);
  int32_t *out = malloc((size_t)(n > 0 ? n : 1) * sizeof *out);
  if (perm && out) {
    kit_permutation(seed, m, perm);
    for (int64_t k = 0; k < n; k++) out[k] = list[perm[k]];
  }
  free(perm);
  if (!perm) {
    free(out);
    out = NULL;
  }
  return out;
}

typedef struct {
  const ut_dataset *ds;
  const int32_t *x, *xt; /* pair k: z1 from x[k], z2 from xt[k] */
  int64_t n;
  const float *images;   /* x's images in [0, 1] */
  const float *fx, *fxt; /* feature rows of x and x~ */
  image_classifier *judge;
  int hue_attribute;
  uint64_t seed;
} eval_ctx;

static double hue_error(const float *img, int64_t pixels, double target) {
  double h = cmivae_image_hue(img, pixels);
  return isnan(h) ? 180.0 : cmivae_hue_distance(h, target); /* no colour is as wrong as can be */
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static ut_status measure(ut_runtime *rt, cmivae_model *m, const eval_ctx *e, cmivae_eval_run *r) {
  const cmivae_cfg *c = cmivae_config(m);
  int64_t n = e->n, pixels = (int64_t)c->size * c->size, per = c->channels * pixels;
  int hue = c->feature == CMIVAE_FEATURE_HUE;
  *r = (cmivae_eval_run){ .n_pairs = n, .fused_hue_error = NAN, .copy_hue_error = NAN, .recon_hue_error = NAN,
                          .fused_hue_error_median = NAN, .fused_class_error = NAN, .copy_class_error = NAN };
  float *z1 = malloc((size_t)(n * c->z1_dim) * sizeof *z1), *z2 = malloc((size_t)(n * c->z2_dim) * sizeof *z2);
  float *fused = malloc((size_t)(n * per) * sizeof *fused), *recon = malloc((size_t)(n * per) * sizeof *recon);
  float *grey = malloc((size_t)(n * pixels) * sizeof *grey);
  int32_t *pred = malloc((size_t)n * sizeof *pred), *labels = malloc((size_t)n * sizeof *labels);
  double *errors = malloc((size_t)n * sizeof *errors);
  ut_status st = z1 && z2 && fused && recon && grey && pred && labels && errors
                     ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the evaluation");
  if (st == UT_OK) st = cmivae_encode(m, e->images, n, z1);
  if (st == UT_OK) st = cmivae_generate(m, z1, e->fxt, n, fused);
  if (st == UT_OK) st = cmivae_generate(m, z1, e->fx, n, recon);
  if (st == UT_OK) st = cmivae_feature_code(m, e->fx, n, z2);
  if (st == UT_OK && hue) {
    double fs = 0, cs = 0, rs = 0;
    for (int64_t k = 0; k < n; k++) {
      double hx = ut_dataset_attribute(e->ds, e->x[k], e->hue_attribute), ht = ut_dataset_attribute(e->ds, e->xt[k], e->hue_attribute);
      errors[k] = hue_error(fused + k * per, pixels, ht);
      fs += errors[k];
      cs += hue_error(e->images + k * per, pixels, ht);
      rs += hue_error(recon + k * per, pixels, hx);
    }
    qsort(errors, (size_t)n, sizeof *errors, cmp_double);
    r->fused_hue_error = fs / n;
    r->copy_hue_error = cs / n;
    r->recon_hue_error = rs / n;
    r->fused_hue_error_median = n % 2 ? errors[n / 2] : 0.5 * (errors[n / 2 - 1] + errors[n / 2]);
  }
  /* The judge on fused images, on the copies and on the reconstructions (which tell what the
   * VAE loses from what the fusion loses). */
  const float *judged[3] = { fused, e->images, recon };
  double *kept_share[3] = { &r->class_kept, &r->copy_class_kept, &r->recon_class_kept };
  double *wrong_share[3] = { &r->fused_class_error, &r->copy_class_error, NULL };
  for (int j = 0; st == UT_OK && j < 3; j++) {
    to_grey(judged[j], n, c->channels, pixels, grey);
    st = image_classifier_predict(e->judge, grey, n, pred);
    int64_t kept = 0, wrong = 0;
    for (int64_t k = 0; st == UT_OK && k < n; k++) {
      kept += pred[k] == ut_dataset_class(e->ds, e->x[k]);
      wrong += pred[k] != ut_dataset_class(e->ds, e->xt[k]);
    }
    *kept_share[j] = (double)kept / n;
    if (!hue && wrong_share[j]) *wrong_share[j] = (double)wrong / n;
  }
  /* Probes: the feature (hue bin or class) from z1 and from z2, and the class from z1. */
  int n_classes = ut_dataset_n_classes(e->ds);
  for (int64_t k = 0; st == UT_OK && k < n; k++)
    labels[k] = hue ? (int32_t)(ut_dataset_attribute(e->ds, e->x[k], e->hue_attribute) / (360.0f / CMIVAE_EVAL_HUE_BINS)) %
                          CMIVAE_EVAL_HUE_BINS
                    : ut_dataset_class(e->ds, e->x[k]);
  int n_feature = hue ? CMIVAE_EVAL_HUE_BINS : n_classes;
  /* Stratified, so that codes without the label score chance (1 / bins), not below it. */
  probe_cfg pc = probe_default_cfg();
  pc.stratified = 1;
  if (st == UT_OK) st = probe_accuracy_cfg(rt, z1, n, c->z1_dim, labels, n_feature, e->seed, &pc, &r->z1_feature);
  if (st == UT_OK) st = probe_accuracy_cfg(rt, z2, n, c->z2_dim, labels, n_feature, e->seed, &pc, &r->z2_feature);
  for (int64_t k = 0; st == UT_OK && k < n; k++) labels[k] = ut_dataset_class(e->ds, e->x[k]);
  if (st == UT_OK) st = probe_accuracy_cfg(rt, z1, n, c->z1_dim, labels, n_classes, e->seed, &pc, &r->z1_class);
  free(z1);
  free(z2);
  free(fused);
  free(recon);
  free(grey);
  free(pred);
  free(labels);
  free(errors);
  return st;
}

/* The class judge (image_judge.h) on grey versions of up to cfg->judge_images of the run's
 * training images (or of cfg->judge_data's images): trained on four fifths of each class,
 * scored on the rest, refused below cfg->judge_min_accuracy. */
static ut_status train_judge(ut_runtime *rt, const ut_dataset *ds, const cmivae_cfg *c, const cmivae_split *sp,
                             const cmivae_eval_cfg *cfg, image_classifier **judge, cmivae_eval_report *r) {
  const int32_t *pool = sp->train;
  int32_t n_pool = sp->n_train, *all = NULL;
  const ut_dataset *jds = cfg->judge_data ? cfg->judge_data : ds;
  if (cfg->judge_data) {
    const char *path = ut_dataset_path(jds);
    int ch = ut_dataset_channels(jds);
    if (ut_dataset_n_classes(jds) != ut_dataset_n_classes(ds))
      return ut_fail(UT_ERR_MISMATCH, "the judge's data %s has %d classes, the run's data %s %d", path,
                     ut_dataset_n_classes(jds), ut_dataset_path(ds), ut_dataset_n_classes(ds));
    if ((ch != 1 && ch != 3) || ut_dataset_height(jds) < c->size || ut_dataset_width(jds) != ut_dataset_height(jds))
      return ut_fail(UT_ERR_MISMATCH, "the judge's data %s holds %dx%d images of %d channels; it needs square grey or "
                     "painted images of at least %d pixels", path, ut_dataset_width(jds), ut_dataset_height(jds), ch, c->size);
    n_pool = ut_dataset_count(jds);
    if (!(all = malloc((size_t)(n_pool > 0 ? n_pool : 1) * sizeof *all)))
      return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the class judge");
    for (int32_t i = 0; i < n_pool; i++) all[i] = i;
    pool = all;
  }
  int channels = ut_dataset_channels(jds);
  int64_t nj = n_pool < cfg->judge_images ? n_pool : cfg->judge_images;
  int64_t pixels = (int64_t)c->size * c->size;
  int32_t *ids = pick(pool, n_pool, nj, cfg->seed + 1), *labels = malloc((size_t)(nj + 1) * sizeof *labels);
  int32_t *part_labels = malloc((size_t)(nj + 1) * sizeof *part_labels);
  int64_t *train_idx = malloc((size_t)(nj + 1) * sizeof *train_idx), *held_idx = malloc((size_t)(nj + 1) * sizeof *held_idx);
  float *images = malloc((size_t)(nj * channels * pixels + 1) * sizeof *images);
  float *grey = malloc((size_t)(nj * pixels + 1) * sizeof *grey), *part_grey = malloc((size_t)(nj * pixels + 1) * sizeof *part_grey);
  int64_t n_train = 0, n_held = 0;
  ut_status st = ids && labels && part_labels && train_idx && held_idx && images && grey && part_grey
                     ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the class judge");
  if (st == UT_OK) st = cmivae_load_images(jds, ids, (int)nj, c->size, images);
  if (st == UT_OK) {
    to_grey(images, nj, channels, pixels, grey);
    for (int64_t k = 0; k < nj; k++) labels[k] = ut_dataset_class(jds, ids[k]);
    st = image_judge_split(labels, nj, ut_dataset_n_classes(jds), train_idx, &n_train, held_idx, &n_held);
  }
  if (st == UT_OK && (n_held == 0 || n_train < 2))
    st = ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: too few training images per class to train and score the class judge",
                 ut_dataset_path(jds));
  image_judge_cfg jc = { .epochs = cfg->judge_epochs, .min_accuracy = cfg->judge_min_accuracy, .width = cfg->judge_width,
                         .flatten = cfg->judge_flatten, .seed = cfg->seed };
  image_judge_report jr = { 0 };
  /* part_grey and part_labels hold the training part, then the held-out part. */
  for (int64_t k = 0; st == UT_OK && k < n_train; k++) {
    memcpy(part_grey + k * pixels, grey + train_idx[k] * pixels, (size_t)pixels * sizeof *grey);
    part_labels[k] = labels[train_idx[k]];
  }
  if (st == UT_OK)
    st = image_judge_train(rt, part_grey, n_train, 1, c->size, c->size, part_labels, ut_dataset_n_classes(ds), &jc, judge, &jr);
  for (int64_t k = 0; st == UT_OK && k < n_held; k++) {
    memcpy(part_grey + k * pixels, grey + held_idx[k] * pixels, (size_t)pixels * sizeof *grey);
    part_labels[k] = labels[held_idx[k]];
  }
  if (st == UT_OK) st = image_judge_check(*judge, part_grey, n_held, part_labels, &jc, ut_dataset_path(jds), &jr);
  r->judge_heldout_accuracy = jr.heldout_accuracy;
  r->judge_train_images = jr.n_train;
  r->judge_heldout_images = jr.n_heldout;
  r->judge_epochs = jr.epochs;
  r->judge_width = cfg->judge_width > 0 ? cfg->judge_width : image_classifier_default_cfg().width;
  r->judge_flatten = cfg->judge_flatten;
  r->judge_data = cfg->judge_data ? ut_dataset_path(cfg->judge_data) : NULL;
  if (st != UT_OK) {
    image_classifier_free(*judge);
    *judge = NULL;
  }
  free(all), free(ids), free(labels), free(part_labels), free(train_idx), free(held_idx), free(images), free(grey);
  free(part_grey);
  return st;
}

ut_status cmivae_evaluate(ut_runtime *rt, cmivae_model *m, cmivae_model *baseline, const ut_dataset *ds,
                          const cmivae_eval_cfg *cfg, cmivae_eval_report *r) {
  const cmivae_cfg *c = cmivae_config(m);
  ut_status st = cmivae_check_data(ds, c);
  if (st == UT_OK && baseline) st = check_baseline(c, cmivae_config(baseline));
  if (st != UT_OK) return st;
  if (ut_dataset_n_classes(ds) < 2)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s has one class; the class judge needs two or more", ut_dataset_path(ds));
  cmivae_split sp;
  if ((st = cmivae_run_split(ds, c, &sp)) != UT_OK) return st;
  int64_t n = sp.n_test < cfg->max_images ? sp.n_test : cfg->max_images;
  if (n < 10) st = ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: the run holds out %lld images; the evaluation needs 10 or more "
                           "(train with a larger test_ratio)", ut_dataset_path(ds), (long long)sp.n_test);
  int64_t pixels = (int64_t)c->size * c->size, per = c->channels * pixels, F = cmivae_feature_width(c);
  int32_t *x = st == UT_OK ? pick(sp.test, sp.n_test, n, cfg->seed) : NULL, *xt = malloc((size_t)(n > 0 ? n : 1) * sizeof *xt);
  float *images = malloc((size_t)(n * per + 1) * sizeof *images);
  float *fx = malloc((size_t)(n * F + 1) * sizeof *fx), *fxt = malloc((size_t)(n * F + 1) * sizeof *fxt);
  if (st == UT_OK && (!x || !xt || !images || !fx || !fxt))
    st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the evaluation");
  image_classifier *judge = NULL;
  *r = (cmivae_eval_report){ .feature = c->feature, .has_baseline = baseline != NULL };
  /* The judge first: when it cannot tell real images apart, nothing else is worth the time. */
  if (st == UT_OK) {
    part(cfg, "class judge on grey training images");
    st = train_judge(rt, ds, c, &sp, cfg, &judge, r);
  }
  if (st == UT_OK) {
    /* Pair k fuses x[k] with the next image of the shuffle, never itself. */
    for (int64_t k = 0; k < n; k++) xt[k] = x[(k + 1) % n];
    for (int64_t k = 0; k < n; k++) {
      cmivae_image_feature(c, ds, x[k], fx + k * F);
      cmivae_image_feature(c, ds, xt[k], fxt + k * F);
    }
    st = cmivae_load_images(ds, x, (int)n, c->size, images);
  }
  eval_ctx e = { ds, x, xt, n, images, fx, fxt, judge, ut_dataset_find_attribute(ds, CMIVAE_HUE_ATTRIBUTE), cfg->seed };
  if (st == UT_OK) {
    part(cfg, "fused images and probes of the run");
    st = measure(rt, m, &e, &r->run);
  }
  if (st == UT_OK && baseline) {
    part(cfg, "the same for the baseline run");
    st = measure(rt, baseline, &e, &r->baseline);
  }
  image_classifier_free(judge);
  free(x);
  free(xt);
  free(images);
  free(fx);
  free(fxt);
  cmivae_split_free(&sp);
  return st;
}
