/* DMIT's linear domain classifier and the content encoder's confusion term (w_domain_confusion,
 * issue 13): both losses against host references, the classifier's update trains it alone on
 * the encoder's codes, the generator's update trains the encoder through it and leaves it as it
 * was, a checkpoint keeps it bit for bit, and a run without the term builds nothing of it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmit.h"
#include "dmit_tiny.h"
#include "dmit_internal.h"
#include "gradcheck.h"
#include "test_support.h"

enum { DOMAINS = DMIT_TINY_DOMAINS, BATCH = DMIT_TINY_BATCH, SIZE = DMIT_TINY_SIZE };
enum { NB = DOMAINS * BATCH, PIXELS = 3 * SIZE * SIZE };
enum { UPDATE_GEN = 1, UPDATE_DOMAIN_CLS = 5 }; /* dmit_update's numbers (dmit.h) */

/* The tiny model of test_dmit.c with the term at the given weight. */
static dmit_cfg tiny_cfg(float w_domain_confusion) {
  dmit_cfg c = dmit_tiny_cfg();
  c.w_domain_confusion = w_domain_confusion;
  return c;
}

/* Domain d tinted towards channel d, over a ramp that changes with the step: in [-1, 1]. */
static void tinted_batch(int step, float *x) {
  for (int i = 0; i < NB; i++)
    for (int ch = 0; ch < 3; ch++)
      for (int p = 0; p < SIZE * SIZE; p++) {
        float ramp = (float)((p + 7 * (step + i)) % (SIZE * SIZE)) / (SIZE * SIZE);
        x[((int64_t)i * 3 + ch) * SIZE * SIZE + p] = ch == i / BATCH ? 0.2f + 0.8f * ramp : -0.6f + 0.5f * ramp;
      }
}

static void train(dmit_model *m, int first, int n, float *x, dmit_losses *out) {
  for (int s = first; s < first + n; s++) {
    tinted_batch(s, x);
    ck_assert_ut_ok(dmit_train_step(m, &(dmit_batch){ .images = x, .shift = 1 + s % (DOMAINS - 1) }, 1.0f, &out[s - first]));
  }
}

/* Every store tensor under prefix, concatenated (parameters, optimiser moments, spectral norms'
 * vectors alike), and their count of floats. */
static float *tensors_under(ut_store *st, const char *prefix, int64_t *n) {
  *n = 0;
  for (int i = 0; i < ut_store_count(st); i++)
    if (!strncmp(ut_store_tensor_name(ut_store_at(st, i)), prefix, strlen(prefix)))
      *n += ut_shape_numel(ut_store_tensor_shape(ut_store_at(st, i)));
  float *all = malloc((size_t)(*n > 0 ? *n : 1) * sizeof *all), *at = all;
  for (int i = 0; i < ut_store_count(st); i++) {
    ut_store_tensor *t = ut_store_at(st, i);
    if (strncmp(ut_store_tensor_name(t), prefix, strlen(prefix))) continue;
    ck_assert_ut_ok(ut_store_tensor_read(st, t, at));
    at += ut_shape_numel(ut_store_tensor_shape(t));
  }
  return all;
}

static float *read_named(ut_store *st, const char *name, int64_t n) {
  ut_store_tensor *t = ut_store_find(st, name);
  ck_assert_msg(t != NULL, "no store tensor %s", name);
  ck_assert_int_eq(ut_shape_numel(ut_store_tensor_shape(t)), n);
  float *v = malloc((size_t)n * sizeof *v);
  ck_assert_ut_ok(ut_store_tensor_read(st, t, v));
  return v;
}

static int same(const float *a, const float *b, int64_t n) { return !memcmp(a, b, (size_t)n * sizeof *a); }

/* ---- the two losses ------------------------------------------------------------------------ */

static double log_sum_exp(const float *row, int k) {
  double top = row[0], sum = 0;
  for (int j = 1; j < k; j++) top = row[j] > top ? row[j] : top;
  for (int j = 0; j < k; j++) sum += exp(row[j] - top);
  return top + log(sum);
}

static ut_tensor *build_cls_loss(ut_graph *g, ut_tensor **in, void *ctx) {
  return dmit_domain_cls_loss(g, ctx, in[0], BATCH);
}

static ut_tensor *build_confusion(ut_graph *g, ut_tensor **in, void *ctx) { return dmit_domain_confusion(g, ctx, in[0]); }

START_TEST(losses_match_the_host) {
  dmit_cfg c = tiny_cfg(1);
  float *logits = gc_random_values(3, NB * DOMAINS, -4, 4);
  /* Row i's domain is i / BATCH; against the uniform distribution every label counts 1/K. */
  double cls = 0, confusion = 0;
  for (int i = 0; i < NB; i++) {
    const float *row = logits + i * DOMAINS;
    double lse = log_sum_exp(row, DOMAINS), mean = 0;
    for (int k = 0; k < DOMAINS; k++) mean += row[k] / (double)DOMAINS;
    cls += (lse - row[i / BATCH]) / NB;
    confusion += (lse - mean) / NB;
  }
  ck_assert_msg(confusion >= log((double)DOMAINS), "the reference itself: %g below log K", confusion);
  float want_cls = (float)cls, want_confusion = (float)confusion;
  ut_shape shape = UT_SHAPE(NB, DOMAINS);
  gc_assert_gradcheck(&(gc_case){ .label = "domain classifier loss", .n_inputs = 1, .shapes = &shape,
                                  .values = (const float *[]){ logits }, .build = build_cls_loss, .ctx = &c,
                                  .expect = &want_cls, .h = 1e-3 });
  gc_assert_gradcheck(&(gc_case){ .label = "domain confusion", .n_inputs = 1, .shapes = &shape,
                                  .values = (const float *[]){ logits }, .build = build_confusion, .ctx = &c,
                                  .expect = &want_confusion, .h = 1e-3 });
  free(logits);
}
END_TEST

/* ---- the updates --------------------------------------------------------------------------- */

/* The classifier's update reports its loss and accuracy on the batch before it steps: the host
 * recomputes both from the codes dmit_encode_content gives (the same frozen encoder) and the
 * classifier's stored weights. Then it has moved the classifier and nothing else, not even the
 * encoder's spectral norms' vectors. */
START_TEST(classifier_update_trains_the_classifier_alone) {
  dmit_cfg c = tiny_cfg(1);
  dmit_model *m = dmit_new(test_runtime(), &c);
  float *x = malloc((size_t)NB * PIXELS * sizeof *x), out[2];
  dmit_losses l;
  train(m, 0, 1, x, &l);
  ck_assert_msg(l.domain_cls > 0 && l.domain_cls_accuracy >= 0 && l.domain_cls_accuracy <= 1 &&
                    l.domain_confusion >= (float)log(DOMAINS) * 0.999f,
                "classifier %g, accuracy %g, confusion %g", (double)l.domain_cls, (double)l.domain_cls_accuracy,
                (double)l.domain_confusion);
  ut_store *st = dmit_store(m);
  tinted_batch(1, x);
  int64_t dim = dmit_content_size(&c), n_cls, n_all;
  float *unit = malloc((size_t)NB * PIXELS * sizeof *unit), *codes = malloc((size_t)NB * dim * sizeof *codes);
  for (int64_t i = 0; i < (int64_t)NB * PIXELS; i++) unit[i] = 0.5f * (x[i] + 1);
  ck_assert_ut_ok(dmit_encode_content(m, unit, NB, codes));
  float *w = read_named(st, DMIT_DOMAIN_CLS "linear.w", DOMAINS * dim), *bias = read_named(st, DMIT_DOMAIN_CLS "linear.b", DOMAINS);
  double loss = 0;
  int right = 0;
  for (int i = 0; i < NB; i++) {
    float row[DOMAINS];
    int best = 0;
    for (int k = 0; k < DOMAINS; k++) {
      double z = bias[k];
      for (int64_t j = 0; j < dim; j++) z += (double)w[k * dim + j] * codes[i * dim + j];
      row[k] = (float)z;
      if (row[k] > row[best]) best = k;
    }
    loss += (log_sum_exp(row, DOMAINS) - row[i / BATCH]) / NB;
    right += best == i / BATCH;
  }
  float *before = tensors_under(st, "", &n_all), *cls_before = tensors_under(st, DMIT_DOMAIN_CLS, &n_cls);
  ck_assert_ut_ok(dmit_update(m, UPDATE_DOMAIN_CLS, &(dmit_batch){ .images = x, .shift = 1 }, 1.0f, out));
  ck_assert_msg(fabs(out[0] - loss) <= 1e-4 * loss, "classifier loss %.7g, host %.7g", (double)out[0], loss);
  ck_assert_msg(out[1] == (float)right / NB, "accuracy %g, host %d of %d", (double)out[1], right, NB);
  int64_t n_cls_after, n_all_after;
  float *cls_after = tensors_under(st, DMIT_DOMAIN_CLS, &n_cls_after), *all_after = tensors_under(st, "", &n_all_after);
  ck_assert_int_eq(n_cls_after, n_cls);
  ck_assert_msg(!same(cls_before, cls_after, n_cls), "the classifier's update left it unchanged");
  /* Everything but the classifier's tensors, in store order, is as it was. */
  int64_t off = 0;
  for (int i = 0; i < ut_store_count(st); i++) {
    ut_store_tensor *t = ut_store_at(st, i);
    int64_t n = ut_shape_numel(ut_store_tensor_shape(t));
    const char *name = ut_store_tensor_name(t);
    if (strncmp(name, DMIT_DOMAIN_CLS, strlen(DMIT_DOMAIN_CLS)))
      ck_assert_msg(same(before + off, all_after + off, n), "the classifier's update changed %s", name);
    off += n;
  }
  ck_assert_int_eq(off, n_all);
  free(w);
  free(bias);
  free(cls_before);
  free(cls_after);
  free(before);
  free(all_after);
  free(unit);
  free(codes);
  free(x);
  dmit_free(m);
}
END_TEST

/* Two models from one seed see the same generator forward pass: the term scales with its weight
 * and adds to the total, the other losses are the same bits. Its gradient goes to the content
 * encoder alone (the encoder's parameters after the update differ from those of a model without
 * the term, the decoder's and style encoder's do not) and the classifier is left as it was. */
START_TEST(generator_update_trains_the_encoder_through_the_classifier) {
  dmit_cfg c[3] = { tiny_cfg(0), tiny_cfg(1), tiny_cfg(3) };
  dmit_model *m[3];
  float *x = malloc((size_t)NB * PIXELS * sizeof *x), g[3][DMIT_UPDATE_LOSSES_MAX], d[2], cls_out[2];
  tinted_batch(0, x);
  dmit_batch b = { .images = x, .shift = 1 };
  /* The classifier's update builds it (and trains it, the same in both models with the term),
   * so that the generator's update has a classifier to leave alone. */
  for (int k = 0; k < 3; k++) {
    m[k] = dmit_new(test_runtime(), &c[k]);
    ck_assert_ut_ok(dmit_update(m[k], 0, &b, 1.0f, d));
    if (k) ck_assert_ut_ok(dmit_update(m[k], UPDATE_DOMAIN_CLS, &b, 1.0f, cls_out));
  }
  int64_t n_cls, n;
  float *cls_before = tensors_under(dmit_store(m[2]), DMIT_DOMAIN_CLS, &n_cls);
  ck_assert_int_gt(n_cls, 0);
  for (int k = 0; k < 3; k++) ck_assert_ut_ok(dmit_update(m[k], UPDATE_GEN, &b, 1.0f, g[k]));
  printf("confusion term at weight 1: %g (log K = %g)\n", (double)g[1][7], log(DOMAINS));
  ck_assert(g[0][7] == 0);
  ck_assert_msg(g[1][7] >= (float)log(DOMAINS) * 0.999f, "the term %g is below log K", (double)g[1][7]);
  ck_assert_msg(fabsf(g[2][7] - 3 * g[1][7]) <= 1e-6f * g[2][7], "term %g, weighted by 3: %g", (double)g[1][7],
                (double)g[2][7]);
  for (int k = 1; k < 3; k++) {
    ck_assert(!memcmp(g[k] + 1, g[0] + 1, 6 * sizeof(float)));
    ck_assert_msg(fabsf(g[k][0] - g[0][0] - g[k][7]) <= 1e-5f * g[k][0], "total %g, without %g, term %g",
                  (double)g[k][0], (double)g[0][0], (double)g[k][7]);
  }
  float *cls_after = tensors_under(dmit_store(m[2]), DMIT_DOMAIN_CLS, &n);
  ck_assert_int_eq(n, n_cls);
  ck_assert_msg(same(cls_before, cls_after, n), "the generator's update changed the classifier");
  static const char *const untouched[] = { DMIT_DEC, DMIT_ENC_STYLE };
  for (int i = 0; i < 2; i++) {
    int64_t n0, n2;
    float *a = tensors_under(dmit_store(m[0]), untouched[i], &n0), *b2 = tensors_under(dmit_store(m[2]), untouched[i], &n2);
    ck_assert_int_eq(n0, n2);
    ck_assert_msg(same(a, b2, n0), "the confusion term changed %s", untouched[i]);
    free(a);
    free(b2);
  }
  int64_t n0, n2;
  float *a = tensors_under(dmit_store(m[0]), DMIT_ENC_CONTENT, &n0), *b2 = tensors_under(dmit_store(m[2]), DMIT_ENC_CONTENT, &n2);
  ck_assert_int_eq(n0, n2);
  ck_assert_msg(!same(a, b2, n0), "the confusion term did not reach the content encoder");
  free(a);
  free(b2);
  free(cls_before);
  free(cls_after);
  for (int k = 0; k < 3; k++) dmit_free(m[k]);
  free(x);
}
END_TEST

/* ---- checkpoints and runs without the term -------------------------------------------------- */

START_TEST(checkpoint_keeps_the_classifier) {
  dmit_cfg c = tiny_cfg(1);
  dmit_model *m = dmit_new(test_runtime(), &c);
  float *x = malloc((size_t)NB * PIXELS * sizeof *x);
  dmit_losses l[2], again[2];
  train(m, 0, 2, x, l);
  const char *path = test_tmp_path("dmit-confusion.safetensors");
  ck_assert_ut_ok(dmit_save(m, path));
  dmit_cfg read = dmit_preset(DMIT_PRESET_DEFAULT, 1, 2);
  ck_assert_ut_ok(dmit_read_config(test_runtime(), path, &read));
  ck_assert_float_eq(read.w_domain_confusion, 1);
  dmit_model *m2 = dmit_new(test_runtime(), &read);
  ck_assert_ut_ok(dmit_load(m2, path));
  int64_t n1, n2;
  float *a = tensors_under(dmit_store(m), DMIT_DOMAIN_CLS, &n1), *b = tensors_under(dmit_store(m2), DMIT_DOMAIN_CLS, &n2);
  /* w, b and Adam's two moments of each. */
  ck_assert_int_ge(n1, 3 * (DOMAINS * dmit_content_size(&c) + DOMAINS));
  ck_assert_int_eq(n1, n2);
  ck_assert_msg(same(a, b, n1), "the classifier differs after loading");
  train(m, 2, 2, x, l);
  train(m2, 2, 2, x, again);
  ck_assert_msg(!memcmp(l, again, sizeof l), "losses after loading differ: classifier %.9g vs %.9g, confusion %.9g vs %.9g",
                (double)l[1].domain_cls, (double)again[1].domain_cls, (double)l[1].domain_confusion,
                (double)again[1].domain_confusion);
  /* A configuration written before the field reads as 0 (off). */
  ck_assert_float_eq(dmit_read_without(&c, "w_domain_confusion").w_domain_confusion, 0);
  free(a);
  free(b);
  free(x);
  dmit_free(m);
  dmit_free(m2);
}
END_TEST

/* Off, a training step makes no classifier tensor and reports no classifier losses: the plans
 * are those of a run before the term existed. */
START_TEST(off_builds_nothing_of_the_term) {
  dmit_cfg c = tiny_cfg(0);
  dmit_model *m = dmit_new(test_runtime(), &c);
  float *x = malloc((size_t)NB * PIXELS * sizeof *x);
  dmit_losses l;
  train(m, 0, 1, x, &l);
  int64_t n;
  free(tensors_under(dmit_store(m), DMIT_DOMAIN_CLS, &n));
  ck_assert_int_eq(n, 0);
  ck_assert(l.domain_confusion == 0 && l.domain_cls == 0 && l.domain_cls_accuracy == 0);
  free(x);
  dmit_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("dmit_confusion");
  TCase *tc = tcase_create("dmit_confusion");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, losses_match_the_host);
  tcase_add_test(tc, off_builds_nothing_of_the_term);
  tcase_add_test(tc, classifier_update_trains_the_classifier_alone);
  tcase_add_test(tc, generator_update_trains_the_encoder_through_the_classifier);
  tcase_add_test(tc, checkpoint_keeps_the_classifier);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
