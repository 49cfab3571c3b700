/* The evaluation CNN: a training plan over fixed-size minibatches and a forward-only plan over
 * fixed-size chunks, both on one store that belongs to the classifier. */
#include "image_classifier.h"
#include "kit_random.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe.h"

image_classifier_cfg image_classifier_default_cfg(void) {
  return (image_classifier_cfg){ .width = 32, .batch = 32, .lr = 1e-3f, .heldout_share = 0.1 };
}

struct image_classifier {
  ut_runtime *rt;
  ut_store *st;
  image_classifier_cfg cfg;
  int64_t c, h, w, image_size; /* image_size = c * h * w */
  int n_classes;
  ut_graph *train_g, *pred_g;
  ut_tensor *x, *y, *loss, *px, *logits;
  ut_plan *train_p, *pred_p;
  float *bx, *logit_buf;
  int32_t *by;
  image_classifier_report report;
};

/* Logits [B, classes] of images x [B, C, H, W] in [0, 1]; the parameters are "clf.*". */
static ut_tensor *network(ut_graph *g, ut_tensor *x, int64_t width, int flatten, int n_classes) {
  ut_tensor *h = ut_shift(g, ut_scale(g, x, 2.0f), -1.0f);
  static const char *const names[3] = { "clf.conv1", "clf.conv2", "clf.conv3" };
  for (int i = 0; i < 3; i++)
    h = ut_leaky_relu(g, ut_conv2d_layer(g, h, names[i], width << i, 3, UT_CONV(2, 1), 1), 0.2f);
  if (!h) return NULL;
  ut_shape s = ut_tensor_shape(h);
  if (!flatten) h = ut_global_avg_pool(g, h);
  h = h ? ut_reshape(g, h, UT_SHAPE(s.d[0], flatten ? s.d[1] * s.d[2] * s.d[3] : s.d[1])) : NULL;
  return ut_linear(g, h, "clf.fc", n_classes);
}

static ut_status graph_failure(ut_graph *g, const char *what) {
  ut_status s = g && ut_graph_status(g) != UT_OK ? ut_graph_status(g) : UT_ERR_STATE;
  ut_error_prefix("image classifier: %s", what);
  return s;
}

static ut_status build(image_classifier *clf, uint64_t seed) {
  int64_t b = clf->cfg.batch;
  ut_shape shape = UT_SHAPE(b, clf->c, clf->h, clf->w);
  clf->st = ut_store_new(clf->rt, seed);
  clf->bx = malloc((size_t)(b * clf->image_size) * sizeof(float));
  clf->by = malloc((size_t)b * sizeof(int32_t));
  clf->logit_buf = malloc((size_t)(b * clf->n_classes) * sizeof(float));
  if (!clf->st || !clf->bx || !clf->by || !clf->logit_buf)
    return ut_fail(UT_ERR_HOST_MEMORY, "image classifier: out of host memory");

  clf->train_g = ut_graph_new(clf->rt, clf->st);
  if (!clf->train_g) return UT_ERR_HOST_MEMORY;
  clf->x = ut_input(clf->train_g, "clf.x", UT_F32, shape);
  clf->y = ut_input(clf->train_g, "clf.y", UT_I32, UT_SHAPE(b));
  ut_tensor *logits = network(clf->train_g, clf->x, clf->cfg.width, clf->cfg.flatten, clf->n_classes);
  clf->loss = ut_name(ut_cross_entropy(clf->train_g, logits, clf->y), "clf.loss");
  ut_tensor_list params = ut_params(clf->train_g, "clf.");
  ut_status s = clf->loss ? ut_backward(clf->train_g, clf->loss, params) : ut_graph_status(clf->train_g);
  if (s == UT_OK) s = ut_adam(clf->train_g, params, &(ut_adam_cfg){ .lr = clf->cfg.lr });
  if (s != UT_OK) return graph_failure(clf->train_g, "training graph");
  clf->train_p = ut_plan_compile(clf->train_g, &(ut_plan_cfg){ .outputs = &clf->loss, .n_outputs = 1 });
  if (!clf->train_p) return graph_failure(clf->train_g, "training plan");

  clf->pred_g = ut_graph_new(clf->rt, clf->st);
  if (!clf->pred_g) return UT_ERR_HOST_MEMORY;
  clf->px = ut_input(clf->pred_g, "clf.x", UT_F32, shape);
  clf->logits = network(clf->pred_g, clf->px, clf->cfg.width, clf->cfg.flatten, clf->n_classes);
  clf->pred_p = ut_plan_compile(clf->pred_g, &(ut_plan_cfg){ .outputs = &clf->logits, .n_outputs = 1 });
  if (!clf->pred_p) return graph_failure(clf->pred_g, "prediction plan");
  return UT_OK;
}

void image_classifier_free(image_classifier *clf) {
  if (!clf) return;
  ut_plan_free(clf->train_p);
  ut_plan_free(clf->pred_p);
  ut_graph_free(clf->train_g);
  ut_graph_free(clf->pred_g);
  ut_store_free(clf->st);
  free(clf->bx);
  free(clf->by);
  free(clf->logit_buf);
  free(clf);
}

const image_classifier_report *image_classifier_get_report(const image_classifier *clf) {
  return clf ? &clf->report : NULL;
}

int image_classifier_classes(const image_classifier *clf) { return clf ? clf->n_classes : 0; }

/* Predicts the images picked by idx (or the first n when idx is NULL), in chunks of the
 * plan's batch; a short last chunk is padded with zero images whose answers are ignored. */
static ut_status predict_rows(image_classifier *clf, const float *images, const int64_t *idx, int64_t n, int32_t *out) {
  int64_t b = clf->cfg.batch, sz = clf->image_size;
  for (int64_t at = 0; at < n; at += b) {
    int64_t m = n - at < b ? n - at : b;
    for (int64_t k = 0; k < m; k++) {
      int64_t i = idx ? idx[at + k] : at + k;
      memcpy(clf->bx + k * sz, images + i * sz, (size_t)sz * sizeof(float));
    }
    memset(clf->bx + m * sz, 0, (size_t)((b - m) * sz) * sizeof(float));
    ut_status s = ut_upload(clf->pred_p, clf->px, clf->bx);
    if (s == UT_OK) s = ut_plan_run(clf->pred_p);
    if (s == UT_OK) s = ut_read(clf->pred_p, clf->logits, clf->logit_buf);
    if (s != UT_OK) {
      ut_error_prefix("image classifier: predicting images %lld..%lld", (long long)at, (long long)(at + m - 1));
      return s;
    }
    for (int64_t k = 0; k < m; k++) {
      const float *row = clf->logit_buf + k * clf->n_classes;
      int best = 0;
      for (int c = 1; c < clf->n_classes; c++)
        if (row[c] > row[best]) best = c;
      out[at + k] = best;
    }
  }
  return UT_OK;
}

ut_status image_classifier_predict(image_classifier *clf, const float *images, int64_t n, int32_t *out) {
  if (!clf || (n > 0 && (!images || !out)) || n < 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "image_classifier_predict: no classifier, images or output");
  return predict_rows(clf, images, NULL, n, out);
}

/* The accuracy over the images picked by idx; `pred` is scratch for n answers. */
static ut_status score(image_classifier *clf, const float *images, const int32_t *labels, const int64_t *idx, int64_t n,
                       int32_t *pred, double *accuracy) {
  *accuracy = NAN;
  if (n == 0) return UT_OK;
  ut_status s = predict_rows(clf, images, idx, n, pred);
  if (s != UT_OK) return s;
  int64_t right = 0;
  for (int64_t k = 0; k < n; k++) right += pred[k] == labels[idx[k]];
  *accuracy = (double)right / (double)n;
  return UT_OK;
}

/* dst gets the rows (planes x width) of src in reverse column order. */
static void mirror_rows(const float *src, int64_t rows, int64_t width, float *dst) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t x = 0; x < width; x++) dst[r * width + x] = src[r * width + width - 1 - x];
}

/* Epochs over the training indices in a fresh seeded order each; the last minibatch of an
 * epoch wraps around to its first images so every step has the planned size. */
static ut_status train_epochs(image_classifier *clf, const float *images, const int32_t *labels, const int64_t *train_idx,
                              int64_t n_train, int epochs, uint64_t seed) {
  int64_t b = clf->cfg.batch, sz = clf->image_size;
  int64_t steps = (n_train + b - 1) / b;
  int64_t *order = malloc((size_t)n_train * sizeof(int64_t));
  if (!order) return ut_fail(UT_ERR_HOST_MEMORY, "image classifier: out of host memory");
  ut_status s = UT_OK;
  double loss_sum = 0;
  for (int e = 0; s == UT_OK && e < epochs; e++) {
    kit_permutation(kit_hash64(seed ^ 0x65706f6368ull) + (uint64_t)e, n_train, order); /* "epoch" */
    loss_sum = 0;
    for (int64_t st = 0; s == UT_OK && st < steps; st++) {
      for (int64_t k = 0; k < b; k++) {
        int64_t i = train_idx[order[(st * b + k) % n_train]];
        uint64_t slot = (uint64_t)(e * steps + st) * (uint64_t)b + (uint64_t)k;
        if (clf->cfg.flip && (kit_hash64((seed ^ 0x666c6970ull) + kit_hash64(slot)) & 1)) /* "flip" */
          mirror_rows(images + i * sz, clf->c * clf->h, clf->w, clf->bx + k * sz);
        else
          memcpy(clf->bx + k * sz, images + i * sz, (size_t)sz * sizeof(float));
        clf->by[k] = labels[i];
      }
      float l = 0;
      s = ut_upload(clf->train_p, clf->x, clf->bx);
      if (s == UT_OK) s = ut_upload(clf->train_p, clf->y, clf->by);
      if (s == UT_OK) s = ut_plan_run(clf->train_p);
      if (s == UT_OK) s = ut_read(clf->train_p, clf->loss, &l);
      if (s != UT_OK) ut_error_prefix("image classifier: epoch %d, step %lld", e + 1, (long long)st);
      loss_sum += l;
    }
  }
  clf->report.final_loss = epochs > 0 ? loss_sum / (double)steps : NAN;
  free(order);
  return s;
}

static ut_status check_args(ut_runtime *rt, const float *images, int64_t n, int64_t c, int64_t h, int64_t w,
                            const int32_t *labels, int n_classes, int epochs, const image_classifier_cfg *cfg,
                            image_classifier **out) {
  if (!out) return ut_fail(UT_ERR_INVALID_ARGUMENT, "image_classifier_train: nowhere to put the classifier");
  *out = NULL;
  if (!rt || !images || !labels)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "image_classifier_train: no runtime, images or labels");
  if (n < 2 || c < 1 || h < 1 || w < 1 || n_classes < 2 || epochs < 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT,
                   "image_classifier_train: %lld images of %lldx%lldx%lld, %d classes, %d epochs: need at least 2 "
                   "images of at least 1x1x1, 2 classes and no negative epochs",
                   (long long)n, (long long)c, (long long)h, (long long)w, n_classes, epochs);
  if (cfg->width < 1 || cfg->batch < 1 || !(cfg->lr > 0) || !(cfg->heldout_share >= 0 && cfg->heldout_share < 1))
    return ut_fail(UT_ERR_INVALID_ARGUMENT,
                   "image_classifier_train: settings out of range (width %lld, batch %lld, lr %g, held-out share %g)",
                   (long long)cfg->width, (long long)cfg->batch, (double)cfg->lr, cfg->heldout_share);
  for (int64_t i = 0; i < n; i++)
    if (labels[i] < 0 || labels[i] >= n_classes)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "image_classifier_train: label %d of image %lld is outside [0, %d)",
                     (int)labels[i], (long long)i, n_classes);
  return UT_OK;
}

ut_status image_classifier_train_cfg(ut_runtime *rt, const float *images, int64_t n, int64_t c, int64_t h, int64_t w,
                                     const int32_t *labels, int n_classes, uint64_t seed, int epochs,
                                     const image_classifier_cfg *cfg, image_classifier **out) {
  image_classifier_cfg defaults = image_classifier_default_cfg();
  if (!cfg) cfg = &defaults;
  ut_status s = check_args(rt, images, n, c, h, w, labels, n_classes, epochs, cfg, out);
  if (s != UT_OK) return s;

  image_classifier *clf = calloc(1, sizeof *clf);
  int64_t *perm = malloc((size_t)n * sizeof(int64_t));
  int32_t *pred = malloc((size_t)n * sizeof(int32_t));
  if (!clf || !perm || !pred) {
    free(clf);
    free(perm);
    free(pred);
    return ut_fail(UT_ERR_HOST_MEMORY, "image classifier: out of host memory");
  }
  clf->rt = rt;
  clf->cfg = *cfg;
  clf->c = c;
  clf->h = h;
  clf->w = w;
  clf->image_size = c * h * w;
  clf->n_classes = n_classes;
  image_classifier_report *r = &clf->report;
  r->epochs = epochs;
  r->n_heldout = (int64_t)floor(cfg->heldout_share * (double)n);
  if (r->n_heldout > n - 1) r->n_heldout = n - 1;
  r->n_train = n - r->n_heldout;

  /* The held-out images are the seeded permutation's tail. */
  kit_permutation(seed, n, perm);
  s = build(clf, kit_hash64(seed ^ 0x636c66ull)); /* "clf" */
  if (s == UT_OK) s = train_epochs(clf, images, labels, perm, r->n_train, epochs, seed);
  if (s == UT_OK) s = score(clf, images, labels, perm, r->n_train, pred, &r->train_accuracy);
  if (s == UT_OK) s = score(clf, images, labels, perm + r->n_train, r->n_heldout, pred, &r->heldout_accuracy);
  free(perm);
  free(pred);
  if (s != UT_OK) {
    image_classifier_free(clf);
    return s;
  }
  *out = clf;
  return UT_OK;
}

ut_status image_classifier_train(ut_runtime *rt, const float *images, int64_t n, int64_t c, int64_t h, int64_t w,
                                 const int32_t *labels, int n_classes, uint64_t seed, int epochs,
                                 image_classifier **out) {
  return image_classifier_train_cfg(rt, images, n, c, h, w, labels, n_classes, seed, epochs, NULL, out);
}
