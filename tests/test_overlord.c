/* OverLORD on tiny data: each stage's loss falls; stage 3's two updates each change only their
 * own networks; R1's weight gradient through the real discriminator matches central
 * differences; T is the same for a seed; a checkpoint reproduces outputs bit for bit and a
 * resumed run continues bit for bit inside a stage and across a stage boundary; bad
 * configurations and batches are refused by name. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "overlord_eval.h"
#include "overlord_internal.h"
#include "overlord_judges.h"
#include "test_support.h"

enum { N_IMAGES = 8, N_CLASSES = 2, BATCH = 4, S = 16, PER = 3 * S * S };

static overlord_cfg tiny_cfg(overlord_correlation corr) {
  overlord_cfg c = overlord_preset(OVERLORD_PRESET_SMALL, 3, N_IMAGES, N_CLASSES);
  c.size = S;
  c.correlation = corr;
  c.label_dim = 4;
  c.uncorr_dim = 4;
  c.corr_dim = 4;
  c.gen_channels = 8;
  c.enc_channels = 4;
  c.enc_max = 8;
  c.dis_channels = 8;
  c.batch = BATCH;
  /* The official stage-1 rates: with the small preset's faster ones stage 3's reconstruction
   * starts lower and falls by 11% in 40 steps, not the 20% asked below. */
  c.lr_latent = 0.01f;
  c.lr_gen = 1e-3f;
  c.lr_enc = 3e-3f; /* a few steps to show stages 2 and 3 learning, not 40 epochs */
  c.lr_gan = 1e-3f;
  /* Stage 3 as the official code has it (the preset's label changes and their read-back terms
   * off, the discriminator at the earlier preset's rate and R1 weight): the tests of those
   * terms turn them on, and each_stage_loss_falls runs the preset's as well. */
  c.lr_dis = 2e-4f;
  c.w_r1 = 1.0f;
  c.w_adv_swap = c.w_swap_label = c.w_swap_corr = c.w_swap_class = 0.0f;
  c.seed = 5;
  return c;
}

/* Eight images: class 0 a horizontal ramp, class 1 a vertical one, each image with its own
 * brightness and tint; the mask is the left half. */
static float *tiny_images(void) {
  float *x = malloc((size_t)(N_IMAGES * PER) * sizeof *x);
  for (int i = 0; i < N_IMAGES; i++)
    for (int ch = 0; ch < 3; ch++)
      for (int y = 0; y < S; y++)
        for (int xx = 0; xx < S; xx++) {
          float ramp = (float)((i % 2) ? y : xx) / (float)(S - 1);
          x[i * PER + (ch * S + y) * S + xx] = 0.1f + 0.6f * ramp * (0.5f + 0.5f * (float)(i / 2) / 3) + 0.1f * (float)((i + ch) % 3);
        }
  return x;
}

static float masks[BATCH * S * S];

typedef struct {
  float images[BATCH * PER];
  int32_t ids[BATCH], labels[BATCH];
  overlord_batch b;
} batch_buf;

static const overlord_batch *batch_of(batch_buf *bb, const float *all, int step) {
  for (int k = 0; k < BATCH; k++) {
    int i = (step * BATCH + k) % N_IMAGES;
    memcpy(bb->images + k * PER, all + i * PER, PER * sizeof(float));
    bb->ids[k] = i;
    bb->labels[k] = i % 2;
  }
  for (int i = 0; i < BATCH * S * S; i++) masks[i] = (i % S) < S / 2;
  bb->b = (overlord_batch){ .images = bb->images, .image_ids = bb->ids, .labels = bb->labels, .masks = masks };
  return &bb->b;
}

/* Steps first .. first + n - 1 of `stage`; losses[k * OVERLORD_N_LOSSES + i] gets loss i. */
static void train(overlord_model *m, int stage, const float *data, int first, int n, float *losses) {
  batch_buf bb;
  for (int s = first; s < first + n; s++) {
    float *l = losses + (s - first) * OVERLORD_N_LOSSES;
    ck_assert_ut_ok(overlord_step(m, stage, batch_of(&bb, data, s), (double)s / 100.0, l));
    for (int i = 0; i < OVERLORD_N_LOSSES; i++)
      ck_assert_msg(isfinite(l[i]), "stage %d step %d: loss %d = %g", stage, s, i, (double)l[i]);
  }
}

/* Trains `steps` steps of stage 1 and of stage 2, then begins stage 3. */
static void reach_stage3(overlord_model *m, const float *data, int steps) {
  static float l[4 * OVERLORD_N_LOSSES];
  ck_assert_int_le(steps, 4);
  train(m, 1, data, 0, steps, l);
  ck_assert_ut_ok(overlord_begin_stage(m, 2));
  train(m, 2, data, 0, steps, l);
  ck_assert_ut_ok(overlord_begin_stage(m, 3));
}

static double mean_loss(const float *losses, int from, int n, int which) {
  double s = 0;
  for (int k = from; k < from + n; k++) s += losses[k * OVERLORD_N_LOSSES + which];
  return s / n;
}

/* Each stage's own loss falls; stage 3 in its official form and with the small preset's
 * label changes and read-back terms. */
START_TEST(each_stage_loss_falls) {
  overlord_cfg c = tiny_cfg(OVERLORD_POSE_INVARIANT);
  if (_i) {
    const overlord_cfg p = overlord_preset(OVERLORD_PRESET_SMALL, 3, N_IMAGES, N_CLASSES);
    ck_assert_msg(p.w_adv_swap > 0 && p.w_swap_label > 0 && p.w_swap_corr > 0, "the preset has no read-back terms");
    c.lr_dis = p.lr_dis;
    c.w_r1 = p.w_r1;
    c.w_adv_swap = p.w_adv_swap;
    c.w_swap_label = p.w_swap_label;
    c.w_swap_corr = p.w_swap_corr;
  }
  float *data = tiny_images();
  overlord_model *m = overlord_new(test_runtime(), &c, NULL);
  ck_assert_ut_ptr(m);
  enum { STEPS = 40 };
  static float l[STEPS * OVERLORD_N_LOSSES];
  train(m, 1, data, 0, STEPS, l);
  enum { R = OVERLORD_LOSS_RECON, G = OVERLORD_LOSS_REGRESSION };
  ck_assert_msg(mean_loss(l, STEPS - 8, 8, R) < 0.6 * mean_loss(l, 0, 8, R), "stage 1 reconstruction %g -> %g",
                mean_loss(l, 0, 8, R), mean_loss(l, STEPS - 8, 8, R));
  ck_assert_ut_ok(overlord_begin_stage(m, 2));
  train(m, 2, data, 0, STEPS, l);
  ck_assert_msg(mean_loss(l, STEPS - 8, 8, G) < 0.6 * mean_loss(l, 0, 8, G), "stage 2 regression %g -> %g",
                mean_loss(l, 0, 8, G), mean_loss(l, STEPS - 8, 8, G));
  ck_assert_ut_ok(overlord_begin_stage(m, 3));
  enum { STEPS3 = 40 };
  train(m, 3, data, 0, STEPS3, l);
  /* Stage 3 starts from stage 2's encoders and the stage-1 generator, which never saw the
   * encoders' codes: fine-tuning them together lowers the reconstruction (with the preset's
   * terms, which pull the generator elsewhere as well, by 18% here). */
  ck_assert_msg(mean_loss(l, STEPS3 - 6, 6, R) < (_i ? 0.85 : 0.8) * mean_loss(l, 0, 6, R),
                "stage 3 reconstruction %g -> %g", mean_loss(l, 0, 6, R), mean_loss(l, STEPS3 - 6, 6, R));

  /* Codes, images and logits have the promised shapes; a bad id is refused. */
  float u[3 * 4], lab[3 * 4], corr[3 * 4], img[3 * PER], logits[3];
  ck_assert_ut_ok(overlord_embedded_codes(m, (int32_t[]){ 0, 3, 7 }, (int32_t[]){ 0, 1, 1 }, 3, u, lab));
  ck_assert_ut_ok(overlord_encode(m, 1, data, NULL, 3, NULL, NULL, corr));
  ck_assert_ut_ok(overlord_generate(m, 1, u, lab, corr, 3, img));
  for (int stage = 2; stage <= 3; stage++) {
    ck_assert_ut_ok(overlord_encode(m, stage, data, NULL, 3, u, lab, corr));
    ck_assert_ut_ok(overlord_generate(m, stage, u, lab, corr, 3, img));
    for (int i = 0; i < 3 * PER; i++) ck_assert(isfinite(img[i]));
  }
  ck_assert_ut_ok(overlord_discriminate(m, data, NULL, 3, logits));
  ck_assert_int_eq(overlord_embedded_codes(m, (int32_t[]){ N_IMAGES }, (int32_t[]){ 0 }, 1, u, NULL), UT_ERR_INVALID_ARGUMENT);
  overlord_free(m);
  free(data);
}
END_TEST

/* A copy of every store tensor whose name starts with one of the prefixes. */
typedef struct {
  int n;
  char *names[256];
  float *values[256];
  int64_t sizes[256];
} snapshot;

static void take(ut_store *st, snapshot *s) {
  *s = (snapshot){ 0 };
  for (int i = 0; i < ut_store_count(st); i++) {
    ut_store_tensor *t = ut_store_at(st, i);
    const char *name = ut_store_tensor_name(t);
    if (strncmp(name, "ov.", 3) || strstr(name, ".adam")) continue; /* parameters, not optimiser moments */
    int64_t n = ut_shape_numel(ut_store_tensor_shape(t));
    ck_assert_int_lt(s->n, 256);
    s->names[s->n] = strdup(name);
    s->values[s->n] = malloc((size_t)n * sizeof(float));
    s->sizes[s->n] = n;
    ck_assert_ut_ok(ut_store_tensor_read(st, t, s->values[s->n]));
    s->n++;
  }
}

/* How many tensors under `prefix` (and how many elsewhere) differ between a and b. */
static void changed(const snapshot *a, const snapshot *b, const char *prefix, int *inside, int *outside) {
  *inside = *outside = 0;
  ck_assert_int_eq(a->n, b->n);
  for (int i = 0; i < a->n; i++) {
    ck_assert_str_eq(a->names[i], b->names[i]);
    if (!memcmp(a->values[i], b->values[i], (size_t)a->sizes[i] * sizeof(float))) continue;
    if (!strncmp(a->names[i], prefix, strlen(prefix))) (*inside)++;
    else (*outside)++;
  }
}

/* Whether the tensor `name` differs between a and b. */
static int tensor_changed(const snapshot *a, const snapshot *b, const char *name) {
  for (int i = 0; i < a->n; i++)
    if (!strcmp(a->names[i], name)) return memcmp(a->values[i], b->values[i], (size_t)a->sizes[i] * sizeof(float)) != 0;
  ck_abort_msg("no tensor %s in the snapshot", name);
  return 0;
}

static void drop(snapshot *s) {
  for (int i = 0; i < s->n; i++) {
    free(s->names[i]);
    free(s->values[i]);
  }
}

/* With and without the label changes (w_adv_swap), with them and the projection
 * discriminator (whose class table is its own), and with them read by stage 2's label and
 * correlated encoders (w_swap_label, w_swap_corr, w_swap_class): neither step touches the label table the
 * changes read, stage 2's encoders nor the other side's networks. */
START_TEST(stage3_updates_each_side_from_its_own_loss) {
  overlord_cfg c = tiny_cfg(OVERLORD_POSE_INVARIANT);
  c.w_adv_swap = _i ? 2.0f : 0.0f;
  c.dis_projection = _i == 2;
  c.w_swap_label = _i == 3 ? 5.0f : 0.0f;
  c.w_swap_corr = _i == 3 ? 7.0f : 0.0f;
  c.w_swap_class = _i == 3 ? 6.0f : 0.0f;
  float *data = tiny_images();
  overlord_model *m = overlord_new(test_runtime(), &c, NULL);
  static float l[OVERLORD_N_LOSSES];
  reach_stage3(m, data, 2);
  train(m, 3, data, 0, 1, l); /* builds both plans, so every tensor exists before the snapshots */
  batch_buf bb;
  snapshot s0, s1, s2;
  float ls[OVERLORD_N_LOSSES];
  take(overlord_store(m), &s0);
  ck_assert_ut_ok(overlord_dis_step(m, batch_of(&bb, data, 1), ls));
  take(overlord_store(m), &s1);
  ck_assert_ut_ok(overlord_gen_step(m, batch_of(&bb, data, 1), ls));
  take(overlord_store(m), &s2);
  int in, out;
  changed(&s0, &s1, OV_DIS ".", &in, &out);
  ck_assert_msg(in > 5 && out == 0, "the discriminator's step changed %d of its tensors and %d others", in, out);
  if (c.dis_projection) {
    ck_assert_msg(tensor_changed(&s0, &s1, OV_DIS "." OV_DIS_CLASS_TABLE), "the class table did not learn");
  }
  changed(&s1, &s2, OV_S3, &in, &out);
  ck_assert_msg(in > 10 && out == 0, "the generator's step changed %d stage-3 tensors and %d others", in, out);
  drop(&s0);
  drop(&s1);
  drop(&s2);
  overlord_free(m);
  free(data);
}
END_TEST

/* The generator side's total is recon + w_latent x regression + w_adv x adversarial, read from
 * the columns the step reports; w_adv = 0 leaves the discriminator out of the total. */
START_TEST(stage3_total_weighs_the_adversarial_term) {
  static const float weights[] = { 3.0f, 0.0f };
  for (int k = 0; k < 2; k++) {
    overlord_cfg c = tiny_cfg(OVERLORD_POSE_INVARIANT);
    c.w_adv = weights[k];
    float *data = tiny_images();
    overlord_model *m = overlord_new(test_runtime(), &c, NULL);
    reach_stage3(m, data, 1);
    batch_buf bb;
    float ls[OVERLORD_N_LOSSES];
    ck_assert_ut_ok(overlord_gen_step(m, batch_of(&bb, data, 1), ls));
    float expect = ls[OVERLORD_LOSS_RECON] + c.w_latent * ls[OVERLORD_LOSS_REGRESSION] + c.w_adv * ls[OVERLORD_LOSS_ADV];
    ck_assert_msg(ls[OVERLORD_LOSS_ADV] > 0.1f, "adversarial term %g", (double)ls[OVERLORD_LOSS_ADV]);
    ck_assert_msg(fabsf(ls[OVERLORD_LOSS_TOTAL] - expect) <= 1e-5f * fabsf(expect), "w_adv %g: total %.7g, expected %.7g",
                  (double)c.w_adv, (double)ls[OVERLORD_LOSS_TOTAL], (double)expect);
    overlord_free(m);
    free(data);
  }
}
END_TEST

/* The label changes of w_adv_swap, against the host: image k drawn with its own stage-3
 * uncorrelated and correlated codes and stage 1's label row of image k + 1's label (the batch's
 * labels rolled within its one stddev group of 4), judged by the discriminator (with dis_projection, as one of that rolled
 * label). The generator side reports mean softplus(-D) as adv_swap and adds it at weight
 * w_adv_swap to its total; the discriminator's loss exceeds the one of a model without the
 * changes, trained identically until then, by w_adv_swap mean softplus(D). A model without
 * them has no such column, and a team refuses them. */
static double mean_softplus(const float *logits, int n, double sign) {
  double s = 0;
  for (int i = 0; i < n; i++) s += log1p(exp(sign * (double)logits[i]));
  return s / n;
}

/* A read-back column against the host's figure, its weighted share of the total; NaN (never
 * written) where the weight is 0. */
static float read_term(float reported, float weight, double host, const char *name) {
  if (weight == 0) {
    ck_assert_msg(isnan(reported), "a model without %s reported %g for it", name, (double)reported);
    return 0;
  }
  ck_assert_msg(fabs(reported - host) <= 1e-5 * host, "%s %.7g, host %.7g", name, (double)reported, host);
  return weight * reported;
}

START_TEST(stage3_label_changes_are_judged) {
  const float w = 2.0f;
  const double TOL = 1e-5;
  overlord_cfg c = tiny_cfg(OVERLORD_POSE_INVARIANT);
  c.dis_projection = _i == 1;
  overlord_cfg off = c;
  c.w_adv_swap = w;
  c.w_swap_label = _i == 2 ? 3.0f : 0.0f;
  c.w_swap_corr = _i == 2 || _i == 3 ? 4.0f : 0.0f; /* 2: both read back, 3: the correlated code alone */
  c.w_swap_class = _i == 4 ? 5.0f : 0.0f;            /* 4: the label read as a classification alone */
  float *data = tiny_images();
  overlord_model *m = overlord_new(test_runtime(), &c, NULL), *plain = overlord_new(test_runtime(), &off, NULL);
  reach_stage3(m, data, 2);
  reach_stage3(plain, data, 2);
  /* Two steps leave the label rows near their U(-0.05, 0.05) start, where a change of label
   * would hardly change the image: both models get rows far apart. */
  float rows[N_CLASSES * 4];
  for (int i = 0; i < N_CLASSES * 4; i++) rows[i] = (i < 4 ? 1.0f : -1.0f) * (2.0f + (float)(i % 4));
  ck_assert_ut_ok(ut_store_tensor_write(overlord_store(m), ut_store_find(overlord_store(m), OV_LABEL_EMB), rows));
  ck_assert_ut_ok(ut_store_tensor_write(overlord_store(plain), ut_store_find(overlord_store(plain), OV_LABEL_EMB), rows));
  if (c.w_swap_corr > 0 || c.w_swap_class > 0) {
    /* Stage 3's encoders start as copies of stage 2's: the readers are made to differ, so that
     * reading with the wrong ones shows. Neither model's steps below read them otherwise. */
    ut_store *st = overlord_store(m);
    int scaled = 0;
    for (int i = 0; i < ut_store_count(st); i++) {
      ut_store_tensor *t = ut_store_at(st, i);
      const char *name = ut_store_tensor_name(t);
      if ((strncmp(name, OV_S2 "enc_label", strlen(OV_S2 "enc_label")) &&
           strncmp(name, OV_S2 "enc_corr", strlen(OV_S2 "enc_corr"))) ||
          strstr(name, ".adam"))
        continue;
      int64_t n = ut_shape_numel(ut_store_tensor_shape(t));
      float *v = malloc((size_t)n * sizeof *v);
      ck_assert_ut_ok(ut_store_tensor_read(st, t, v));
      for (int64_t k = 0; k < n; k++) v[k] = v[k] * 1.25f + 0.01f;
      ck_assert_ut_ok(ut_store_tensor_write(st, t, v));
      free(v);
      scaled++;
    }
    ck_assert_int_gt(scaled, 4);
  }
  batch_buf bb;
  const overlord_batch *b = batch_of(&bb, data, 1);
  if (c.w_swap_class > 0) {
    /* Labels 0 1 1 0: the next image's label and the previous one's differ, so a cross-entropy
     * that paired a change's logits with the wrong neighbour's label would show. */
    bb.labels[2] = 1;
    bb.labels[3] = 0;
  }
  int32_t rolled[BATCH];
  for (int k = 0; k < BATCH; k++) rolled[k] = b->labels[(k + 1) % BATCH];
  ck_assert_int_ne(rolled[0], b->labels[0]); /* labels 0 1 0 1 (0 1 1 0 above): image 0 changes label */
  enum { U = 4, L = 4, K = 4 }; /* tiny_cfg's code sizes */
  ck_assert(c.uncorr_dim == U && c.label_dim == L && c.corr_dim == K);
  float u[BATCH * U], corr[BATCH * K], target[BATCH * L], changed[BATCH * PER], logits[BATCH];
  ck_assert_ut_ok(overlord_encode(m, 3, b->images, NULL, BATCH, u, NULL, corr));
  ck_assert_ut_ok(overlord_embedded_codes(m, NULL, rolled, BATCH, NULL, target));
  ck_assert_ut_ok(overlord_generate(m, 3, u, target, corr, BATCH, changed));
  const int32_t *judged_as = c.dis_projection ? rolled : NULL, *own_labels = c.dis_projection ? b->labels : NULL;
  ck_assert_ut_ok(overlord_discriminate(m, changed, judged_as, BATCH, logits));
  double judged_fake = mean_softplus(logits, BATCH, 1.0);
  /* With w_swap_label and w_swap_corr: the label and correlated codes stage 2's encoders read
   * from the changes, against the target's row and the same encoder's code of the input. */
  float read[BATCH * L], corr_read[BATCH * K], corr_input[BATCH * K];
  double read_error = 0, corr_error = 0;
  ck_assert_ut_ok(overlord_encode(m, 2, changed, NULL, BATCH, NULL, read, corr_read));
  ck_assert_ut_ok(overlord_encode(m, 2, b->images, NULL, BATCH, NULL, NULL, corr_input));
  for (int i = 0; i < BATCH * L; i++) read_error += ((double)read[i] - target[i]) * ((double)read[i] - target[i]);
  read_error /= BATCH * L;
  for (int i = 0; i < BATCH * K; i++)
    corr_error += ((double)corr_read[i] - corr_input[i]) * ((double)corr_read[i] - corr_input[i]);
  corr_error /= BATCH * K;
  /* With w_swap_class: the read's cross-entropy of the target over logits -|read - row j|^2. */
  double class_error = 0;
  for (int k = 0; k < BATCH; k++) {
    double logit[N_CLASSES], most = -INFINITY, sum = 0;
    for (int j = 0; j < N_CLASSES; j++) {
      logit[j] = 0;
      for (int i = 0; i < L; i++) logit[j] -= ((double)read[k * L + i] - rows[j * L + i]) * ((double)read[k * L + i] - rows[j * L + i]);
      most = fmax(most, logit[j]);
    }
    for (int j = 0; j < N_CLASSES; j++) sum += exp(logit[j] - most);
    class_error += most + log(sum) - logit[rolled[k]];
  }
  class_error /= BATCH;
  /* What the same images give under their own labels: the checks below must tell the two apart
   * (about 3e-4 relative here; the plan and the host agree to about 4e-8). */
  float own_rows[BATCH * L], own[BATCH * PER], own_logits[BATCH];
  ck_assert_ut_ok(overlord_embedded_codes(m, NULL, b->labels, BATCH, NULL, own_rows));
  ck_assert_ut_ok(overlord_generate(m, 3, u, own_rows, corr, BATCH, own));
  ck_assert_ut_ok(overlord_discriminate(m, own, own_labels, BATCH, own_logits));
  double judged_own = mean_softplus(own_logits, BATCH, 1.0);
  ck_assert_msg(fabs(judged_fake - judged_own) > 10 * TOL * judged_fake, "own labels %.9g, changed %.9g: too close for "
                "the check to tell them apart", judged_own, judged_fake);

  float ls[OVERLORD_N_LOSSES], lp[OVERLORD_N_LOSSES];
  /* The steps write their own columns only. */
  lp[OVERLORD_LOSS_ADV_SWAP] = ls[OVERLORD_LOSS_SWAP_LABEL] = ls[OVERLORD_LOSS_SWAP_CORR] = ls[OVERLORD_LOSS_SWAP_CLASS] = NAN;
  ck_assert_ut_ok(overlord_dis_step(m, b, ls));
  ck_assert_ut_ok(overlord_dis_step(plain, b, lp));
  double gap = (double)ls[OVERLORD_LOSS_DIS] - (double)lp[OVERLORD_LOSS_DIS];
  ck_assert_msg(fabs(gap - w * judged_fake) <= TOL * w * judged_fake, "discriminator: %.7g more than without the "
                "changes, expected %.7g", gap, w * judged_fake);

  /* The generator side, against the discriminator just updated. */
  ck_assert_ut_ok(overlord_discriminate(m, changed, judged_as, BATCH, logits));
  ck_assert_ut_ok(overlord_gen_step(m, b, ls));
  ck_assert_ut_ok(overlord_gen_step(plain, b, lp));
  double judged_real = mean_softplus(logits, BATCH, -1.0);
  ck_assert_msg(fabs(ls[OVERLORD_LOSS_ADV_SWAP] - judged_real) <= TOL * judged_real, "adv_swap %.7g, host %.7g",
                (double)ls[OVERLORD_LOSS_ADV_SWAP], judged_real);
  float expect = ls[OVERLORD_LOSS_RECON] + c.w_latent * ls[OVERLORD_LOSS_REGRESSION] + c.w_adv * ls[OVERLORD_LOSS_ADV] +
                 w * ls[OVERLORD_LOSS_ADV_SWAP];
  expect += read_term(ls[OVERLORD_LOSS_SWAP_LABEL], c.w_swap_label, read_error, "swap_label");
  expect += read_term(ls[OVERLORD_LOSS_SWAP_CORR], c.w_swap_corr, corr_error, "swap_corr");
  expect += read_term(ls[OVERLORD_LOSS_SWAP_CLASS], c.w_swap_class, class_error, "swap_class");
  ck_assert_msg(fabsf(ls[OVERLORD_LOSS_TOTAL] - expect) <= 1e-5f * fabsf(expect), "total %.7g, expected %.7g",
                (double)ls[OVERLORD_LOSS_TOTAL], (double)expect);
  ck_assert_msg(isnan(lp[OVERLORD_LOSS_ADV_SWAP]), "a model without label changes reported %g for them",
                (double)lp[OVERLORD_LOSS_ADV_SWAP]);
  if (c.dis_projection) {
    /* The label decides the projection discriminator's judgement of the same images, and it
     * needs the labels. */
    float as_own[BATCH];
    ck_assert_ut_ok(overlord_discriminate(m, changed, own_labels, BATCH, as_own));
    double apart = 0;
    for (int k = 0; k < BATCH; k++) apart += fabs((double)as_own[k] - logits[k]);
    ck_assert_msg(apart > 1e-3 * BATCH, "judged as their own labels and as the rolled ones: %g apart", apart);
    ck_assert_int_eq(overlord_discriminate(m, changed, NULL, BATCH, as_own), UT_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(ut_last_error(), "no labels"), "%s", ut_last_error());
  }
  overlord_free(m);
  overlord_free(plain);
  free(data);
}
END_TEST

/* R1 = 1/2 mean_b sum (d sum D(x) / dx)^2 through overlord_discriminator (equalized layers,
 * blur down-sampling, minibatch stddev, fused leaky ReLU; in the second run with the
 * projection onto the rows of its class table), its weight gradient by double
 * backward against central differences. D is piecewise smooth in its weights: where a
 * pre-activation crosses zero inside the step R1 jumps, which shows as a difference quotient
 * that changes with the step; such elements are skipped (most must be checked). Small steps
 * make such crossings rare. */
START_TEST(r1_gradient_through_the_discriminator) {
  overlord_cfg c = tiny_cfg(OVERLORD_POSE_INVARIANT);
  c.size = 8;
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, 41);
  enum { NX = BATCH * 3 * 8 * 8 };
  float x[NX];
  uint64_t seed = 7;
  test_fill_uniform(&seed, x, NX, 0, 1);
  ut_tensor *r1[2], *in[2];
  ut_graph *g[2];
  ut_plan *p[2];
  for (int k = 0; k < 2; k++) { /* 0: R1 and its weight gradients; 1: R1 alone, for the differences */
    g[k] = ut_graph_new(rt, st);
    in[k] = ut_input(g[k], "real", UT_F32, UT_SHAPE(BATCH, 3, 8, 8));
    ut_tensor *classes = NULL;
    if (_i) {
      c.dis_projection = 1;
      classes = overlord_dis_class_rows(g[k], &c, ut_constant_i32(g[k], UT_SHAPE(BATCH), (int32_t[BATCH]){ 1, 0, 1, 0 }), "d");
    }
    ut_tensor *d = overlord_discriminator(g[k], &c, in[k], classes, "d");
    ck_assert_ut_ok(ut_backward(g[k], ut_sum_all(g[k], d), (ut_tensor_list){ 1, &in[k] }));
    r1[k] = ut_scale(g[k], ut_sum_all(g[k], ut_square(g[k], ut_grad(g[k], in[k]))), 0.5f / BATCH);
    ck_assert_ut_ptr(r1[k]);
  }
  ut_tensor_list params = ut_params(g[0], "d.");
  ck_assert_ut_ok(ut_backward(g[0], r1[0], params));
  ut_tensor *outs[64] = { r1[0] };
  int n_outs = 1;
  for (int k = 0; k < params.n && n_outs < 64; k++)
    if (ut_grad(g[0], params.t[k])) outs[n_outs++] = ut_grad(g[0], params.t[k]);
  p[0] = ut_plan_compile(g[0], &(ut_plan_cfg){ .outputs = outs, .n_outputs = n_outs });
  p[1] = ut_plan_compile(g[1], &(ut_plan_cfg){ .outputs = &r1[1], .n_outputs = 1 });
  ck_assert_ut_ptr(p[0]);
  ck_assert_ut_ptr(p[1]);
  for (int k = 0; k < 2; k++) ck_assert_ut_ok(ut_upload(p[k], in[k], x));
  ck_assert_ut_ok(ut_plan_run(p[0]));
  float r10;
  ck_assert_ut_ok(ut_read(p[0], r1[0], &r10));
  ck_assert_msg(r10 > 1e-6f, "R1 = %g: the check needs a non-trivial penalty", (double)r10);
  int checked = 0, skipped = 0, nonzero = 0, table_checked = 0;
  for (int k = 0; k < params.n; k++) {
    ut_tensor *gt = ut_grad(g[0], params.t[k]);
    ut_store_tensor *t = ut_store_find(st, ut_tensor_name(params.t[k]));
    int64_t n = ut_shape_numel(ut_store_tensor_shape(t));
    float *v = malloc((size_t)n * sizeof *v), *ga = calloc((size_t)n, sizeof *ga);
    ck_assert_ut_ok(ut_store_tensor_read(st, t, v));
    if (gt) ck_assert_ut_ok(ut_read(p[0], gt, ga));
    for (int s = 0; s < 6 && s < n; s++) {
      int64_t e = ((int64_t)s * 7919 + k * 13) % n;
      float v0 = v[e];
      double q[2];
      for (int hk = 0; hk < 2; hk++) {
        double h = hk ? 4e-4 : 2e-4, r[2]; /* small: fewer pre-activations cross zero */
        for (int sign = 0; sign < 2; sign++) {
          v[e] = (float)(v0 + (sign ? -h : h));
          ck_assert_ut_ok(ut_store_tensor_write(st, t, v));
          ck_assert_ut_ok(ut_plan_run(p[1]));
          float rv;
          ck_assert_ut_ok(ut_read(p[1], r1[1], &rv));
          r[sign] = rv;
        }
        q[hk] = (r[0] - r[1]) / (2 * h);
      }
      v[e] = v0;
      ck_assert_ut_ok(ut_store_tensor_write(st, t, v));
      double tol = 3e-3 * r10 + 0.01 * fabs(q[0]); /* f32 R1's rounding over the step, and 1% */
      if (fabs(q[0] - q[1]) > tol) {
        skipped++;
        continue;
      }
      ck_assert_msg(fabs(ga[e] - q[0]) <= tol, "dR1/d%s[%lld]: double backward %.7g, central difference %.7g (R1 %g)",
                    ut_tensor_name(params.t[k]), (long long)e, (double)ga[e], q[0], (double)r10);
      checked++;
      nonzero += fabs(q[0]) > tol;
      table_checked += fabs(q[0]) > tol && strstr(ut_tensor_name(params.t[k]), OV_DIS_CLASS_TABLE) != NULL;
    }
    free(v);
    free(ga);
  }
  ck_assert_msg(checked >= 3 * (checked + skipped) / 4, "only %d of %d elements were smooth", checked, checked + skipped);
  ck_assert_msg(!_i || table_checked, "the class table's gradient was not checked");
  ck_assert_msg(nonzero >= 15, "only %d of %d checked gradients are clearly non-zero", nonzero, checked);
  for (int k = 0; k < 2; k++) {
    ut_plan_free(p[k]);
    ut_graph_free(g[k]);
  }
  ut_store_free(st);
}
END_TEST

/* T(x) of a store seed: two stores with one seed give the same bits, run after run; another
 * seed gives other crops; with crop 1, no flip and no rotation T is the identity; the
 * localized T is the mask multiply. */
static void transform_runs(uint64_t seed, const overlord_cfg *c, const float *x, int runs, float *out) {
  ut_runtime *rt = test_runtime();
  ut_store *st = ut_store_new(rt, seed);
  ut_graph *g = ut_graph_new(rt, st);
  ut_tensor *in = ut_input(g, "x", UT_F32, UT_SHAPE(BATCH, 3, S, S));
  ut_tensor *mask = ut_input(g, "m", UT_F32, UT_SHAPE(BATCH, 1, S, S));
  ut_tensor *t = overlord_transform(g, c, in, mask, "ov.test.T", 1);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &t, .n_outputs = 1 });
  ck_assert_ut_ptr(p);
  ck_assert_ut_ok(ut_upload(p, in, x));
  if (c->correlation == OVERLORD_LOCALIZED) ck_assert_ut_ok(ut_upload(p, mask, masks));
  for (int r = 0; r < runs; r++) {
    ck_assert_ut_ok(ut_plan_run(p));
    ck_assert_ut_ok(ut_read(p, t, out + r * BATCH * PER));
  }
  ut_plan_free(p);
  ut_graph_free(g);
  ut_store_free(st);
}

START_TEST(transform_follows_the_seed) {
  overlord_cfg c = tiny_cfg(OVERLORD_POSE_INVARIANT);
  float *data = tiny_images();
  static float a[2 * BATCH * PER], b[2 * BATCH * PER], o[2 * BATCH * PER];
  transform_runs(9, &c, data, 2, a);
  transform_runs(9, &c, data, 2, b);
  transform_runs(10, &c, data, 2, o);
  ck_assert_mem_eq(a, b, sizeof a);
  ck_assert(memcmp(a, a + BATCH * PER, BATCH * PER * sizeof(float)) != 0); /* fresh crops every run */
  ck_assert(memcmp(a, o, sizeof a) != 0);
  ck_assert(memcmp(a, data, BATCH * PER * sizeof(float)) != 0);
  c.crop_min = c.crop_max = 1;
  c.flip = 0;
  c.rotation = 0;
  transform_runs(9, &c, data, 1, a);
  ck_assert_mem_eq(a, data, BATCH * PER * sizeof(float));
  c.correlation = OVERLORD_LOCALIZED;
  transform_runs(9, &c, data, 1, a);
  for (int i = 0; i < BATCH * PER; i++) {
    int xx = i % S;
    ck_assert_float_eq(a[i], xx < S / 2 ? data[i] : 0.0f);
  }
  free(data);
}
END_TEST

/* Bit for bit: a run of 3 stage-1 steps, 2 of stage 2 and 3 of stage 3 uninterrupted, against
 * the same with checkpoints inside every stage and at the stage-1/2 boundary, each opened in a
 * fresh model. The localized form, so the masks travel too. */
/* Saves m to path, frees it and returns a fresh model of the checkpoint's configuration loaded
 * from it. */
static overlord_model *reopen(overlord_model *m, const char *path) {
  ck_assert_ut_ok(overlord_save(m, path));
  overlord_free(m);
  overlord_cfg cfg;
  ck_assert_ut_ok(overlord_read_config(test_runtime(), path, &cfg));
  overlord_model *r = overlord_new(test_runtime(), &cfg, NULL);
  ck_assert_ut_ptr(r);
  ck_assert_ut_ok(overlord_load(r, path));
  return r;
}

START_TEST(checkpoint_round_trip_and_resume_across_stages) {
  overlord_cfg c = tiny_cfg(OVERLORD_LOCALIZED);
  float *data = tiny_images();
  char path[256];
  snprintf(path, sizeof path, "%s", test_tmp_path("overlord.safetensors"));
  static float ref[8 * OVERLORD_N_LOSSES], got[8 * OVERLORD_N_LOSSES];

  overlord_model *a = overlord_new(test_runtime(), &c, NULL);
  ck_assert_ut_ptr(a);
  train(a, 1, data, 0, 3, ref);
  ck_assert_ut_ok(overlord_begin_stage(a, 2));
  train(a, 2, data, 0, 2, ref + 3 * OVERLORD_N_LOSSES);
  ck_assert_ut_ok(overlord_begin_stage(a, 3));
  train(a, 3, data, 0, 3, ref + 5 * OVERLORD_N_LOSSES);
  float ua[2 * 4], la[2 * 4], ca[2 * 4], img_a[2 * PER], img_b[2 * PER];
  batch_buf bb;
  batch_of(&bb, data, 0);
  ck_assert_ut_ok(overlord_encode(a, 3, data, masks, 2, ua, la, ca));
  ck_assert_ut_ok(overlord_generate(a, 3, ua, la, ca, 2, img_a));
  overlord_free(a);

  /* The same run, saved and opened in a fresh model inside stage 1, at the 1/2 boundary, inside
   * stage 2 and inside stage 3. */
  overlord_model *b = overlord_new(test_runtime(), &c, NULL);
  train(b, 1, data, 0, 2, got);
  b = reopen(b, path);
  train(b, 1, data, 2, 1, got + 2 * OVERLORD_N_LOSSES);
  b = reopen(b, path);
  ck_assert_ut_ok(overlord_begin_stage(b, 2));
  train(b, 2, data, 0, 1, got + 3 * OVERLORD_N_LOSSES);
  b = reopen(b, path);
  train(b, 2, data, 1, 1, got + 4 * OVERLORD_N_LOSSES);
  ck_assert_ut_ok(overlord_begin_stage(b, 3));
  train(b, 3, data, 0, 1, got + 5 * OVERLORD_N_LOSSES);
  b = reopen(b, path);
  train(b, 3, data, 1, 2, got + 6 * OVERLORD_N_LOSSES);
  overlord_cfg read;
  ck_assert_ut_ok(overlord_read_config(test_runtime(), path, &read));
  ck_assert_int_eq(read.correlation, OVERLORD_LOCALIZED);
  for (int k = 0; k < 8; k++)
    for (int i = 0; i < OVERLORD_N_LOSSES; i++)
      ck_assert_msg(!memcmp(&ref[k * OVERLORD_N_LOSSES + i], &got[k * OVERLORD_N_LOSSES + i], sizeof(float)),
                    "step %d loss %d: %.9g uninterrupted, %.9g resumed", k, i, (double)ref[k * OVERLORD_N_LOSSES + i],
                    (double)got[k * OVERLORD_N_LOSSES + i]);
  float ub[2 * 4], lb[2 * 4], cb[2 * 4];
  ck_assert_ut_ok(overlord_encode(b, 3, data, masks, 2, ub, lb, cb));
  ck_assert_ut_ok(overlord_generate(b, 3, ub, lb, cb, 2, img_b));
  ck_assert_mem_eq(img_a, img_b, sizeof img_a);

  /* A model of another shape refuses the checkpoint and names the difference. */
  overlord_cfg other = read;
  other.gen_channels = 16;
  overlord_model *o = overlord_new(test_runtime(), &other, NULL);
  ck_assert_int_eq(overlord_load(o, path), UT_ERR_MISMATCH);
  ck_assert_msg(strstr(ut_last_error(), "gen_channels") != NULL, "%s", ut_last_error());
  overlord_free(o);
  overlord_free(b);
  unlink(path);
  free(data);
}
END_TEST

/* The evaluation's judges train on renders of every (label, view, paint), so in their training
 * set each label appears in each paint equally often: the label judge cannot use the paint. It
 * is scored on the held-out views (v % 5 == 4) and a judge below the minimum is refused. */
START_TEST(judges_train_on_independent_renders) {
  ut_runtime *rt = test_runtime();
  const ut_synth_cfg synth = { .classes = 4, .views = 10, .size = 16, .seed = 3 };
  overlord_judges j;
  overlord_judges_cfg cfg = { .epochs = 1, .min_accuracy = 0, .max_images = 1000, .seed = 5 };
  ck_assert_ut_ok(overlord_judges_train(rt, &synth, 3, &cfg, &j));
  ck_assert_int_eq(j.n_train, 4 * 8 * 3); /* views 0-3 and 5-8 */
  ck_assert_int_eq(j.n_heldout, 4 * 2 * 3); /* views 4 and 9 */
  ck_assert_int_ge(j.epochs, 600 / ((j.n_train + 31) / 32)); /* at least 600 steps */
  ck_assert_msg(j.label_accuracy >= 0 && j.label_accuracy <= 1 && j.paint_accuracy >= 0 && j.paint_accuracy <= 1,
                "accuracies %g, %g", j.label_accuracy, j.paint_accuracy);
  /* The judges predict what they were scored on: a held-out render of class 2 in paint 3. */
  uint8_t rgb[16 * 16 * 3];
  float chw[3 * 16 * 16];
  ut_synth_cfg one = synth;
  one.paint = 3;
  ck_assert_ut_ok(ut_synth_render(&one, 2, 4, rgb));
  ut_image_bytes_to_chw(rgb, 16 * 16, 3, chw);
  int32_t label = -1, paint = -1;
  ck_assert_ut_ok(image_classifier_predict(j.label, chw, 1, &label));
  ck_assert_ut_ok(image_classifier_predict(j.paint, chw, 1, &paint));
  ck_assert(label >= 0 && label < 4 && paint >= 0 && paint < 3);
  /* The guard: a judge below the minimum is named; at or above it, both pass. */
  ck_assert_ut_ok(overlord_judges_check(&j, j.label_accuracy < j.paint_accuracy ? j.label_accuracy : j.paint_accuracy));
  overlord_judges weak = j;
  weak.label_accuracy = 0.5;
  ck_assert_int_eq(overlord_judges_check(&weak, 0.9), UT_ERR_STATE);
  ck_assert_msg(strstr(ut_last_error(), "the label judge recognises only 0.500 of 24 held-out renders"), "message: %s",
                ut_last_error());
  weak = j;
  weak.paint_accuracy = 0.25;
  ck_assert_int_eq(overlord_judges_check(&weak, 0.3), UT_ERR_STATE);
  ck_assert_msg(strstr(ut_last_error(), "the paint judge recognises only 0.250"), "message: %s", ut_last_error());
  overlord_judges_free(&j);
  ck_assert_ptr_null(j.label);
  /* Too few views to hold any out, or one paint: refused with the numbers. */
  ut_synth_cfg few = synth;
  few.views = 4;
  cfg.min_accuracy = 0;
  ck_assert_int_eq(overlord_judges_train(rt, &few, 3, &cfg, &j), UT_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(overlord_judges_train(rt, &synth, 1, &cfg, &j), UT_ERR_INVALID_ARGUMENT);
  /* Thinned to fit the cap, each part keeps every n-th of its own views: 20 views of 4 renders
   * each at a cap of 16 take every 6th training view (0, 7, 15: indices 0, 6, 12 of the 16) and
   * held-out view 4, where a step of 5 over all views (0, 5, 10, 15) would have held none out. */
  ut_synth_cfg many = { .classes = 2, .views = 20, .size = 8, .seed = 3 };
  cfg.max_images = 16;
  ck_assert_ut_ok(overlord_judges_train(rt, &many, 2, &cfg, &j));
  ck_assert_int_eq(j.n_train, 2 * 3 * 2);
  ck_assert_int_eq(j.n_heldout, 2 * 1 * 2);
  overlord_judges_free(&j);
  cfg.max_images = 7; /* below one view of each part */
  ck_assert_int_eq(overlord_judges_train(rt, &many, 2, &cfg, &j), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "8 renders, more than the cap of 7"), "message: %s", ut_last_error());
}
END_TEST

/* cfg's JSON with one field taken out, as a checkpoint written before the field existed. */
static char *config_without(const overlord_cfg *cfg, const char *name) {
  char *json = overlord_cfg_to_json(cfg);
  ck_assert_ptr_nonnull(json);
  test_json_drop_field(json, name);
  return json;
}

START_TEST(config_and_bad_input) {
  overlord_cfg c = overlord_preset(OVERLORD_PRESET_DEFAULT, 3, 1000, 10), back;
  c.seed = UINT64_MAX;
  c.correlation = OVERLORD_LOCALIZED;
  char *json = overlord_cfg_to_json(&c);
  ck_assert_ptr_nonnull(json);
  ck_assert_ut_ok(overlord_cfg_from_json(json, &back));
  char *again = overlord_cfg_to_json(&back);
  ck_assert_str_eq(json, again);
  ck_assert(back.seed == UINT64_MAX && back.correlation == OVERLORD_LOCALIZED);
  free(json);
  free(again);
  ck_assert_int_eq(overlord_cfg_from_json("{\"size\": 64}", &back), UT_ERR_FORMAT);
  /* Checkpoints written before w_adv and lr_dis existed read as those runs trained: the
   * adversarial term at weight 1, the discriminator at lr_gan. */
  overlord_cfg later = c;
  later.w_adv = 4.0f;
  later.lr_gan = 3e-4f;
  later.lr_dis = 5e-3f;
  char *old = config_without(&later, "w_adv");
  back.w_adv = -1.0f;
  ck_assert_ut_ok(overlord_cfg_from_json(old, &back));
  ck_assert_float_eq(back.w_adv, 1.0f);
  ck_assert_float_eq(back.lr_dis, 5e-3f);
  free(old);
  old = config_without(&later, "lr_dis");
  ck_assert_ut_ok(overlord_cfg_from_json(old, &back));
  ck_assert_float_eq(back.lr_dis, 3e-4f);
  ck_assert_float_eq(back.w_adv, 4.0f);
  free(old);
  later.dis_projection = 1; /* and before dis_projection: an unconditional discriminator */
  old = config_without(&later, "dis_projection");
  back.dis_projection = -1;
  ck_assert_ut_ok(overlord_cfg_from_json(old, &back));
  ck_assert_int_eq(back.dis_projection, 0);
  free(old);
  /* And before each of the weights of stage 3's optional terms: the term off, the weights
   * added before it as written. */
  static const struct {
    const char *name;
    size_t offset;
  } weights[] = { { "w_adv_swap", offsetof(overlord_cfg, w_adv_swap) }, { "w_swap_label", offsetof(overlord_cfg, w_swap_label) },
                  { "w_swap_corr", offsetof(overlord_cfg, w_swap_corr) }, { "w_swap_class", offsetof(overlord_cfg, w_swap_class) } };
  for (size_t i = 0; i < sizeof weights / sizeof weights[0]; i++) {
    *(float *)((char *)&later + weights[i].offset) = 2.0f + (float)i;
    old = config_without(&later, weights[i].name);
    *(float *)((char *)&back + weights[i].offset) = -1.0f;
    ck_assert_ut_ok(overlord_cfg_from_json(old, &back));
    ck_assert_msg(*(float *)((char *)&back + weights[i].offset) == 0.0f, "%s missing read as %g", weights[i].name,
                  (double)*(float *)((char *)&back + weights[i].offset));
    for (size_t k = 0; k < i; k++)
      ck_assert_msg(*(float *)((char *)&back + weights[k].offset) == 2.0f + (float)k, "%s lost when %s is missing",
                    weights[k].name, weights[i].name);
    free(old);
  }

  static const struct {
    const char *field, *value, *says;
  } bad[] = {
    { "size", "48", "size 48" },         { "channels", "2", "channels 2" },       { "batch", "6", "batch 6" },
    { "crop_min", "0", "crop_min" },     { "n_classes", "1", "n_classes 1" },     { "rotation", "200", "rotation" },
    { "w_adv", "-1", "w_adv" },          { "lr_dis", "0", "learning rates" },     { "w_adv_swap", "-2", "w_adv_swap" },
    { "dis_projection", "2", "dis_projection 2" }, { "w_swap_label", "-1", "w_swap_label" },
    { "w_swap_corr", "-1", "w_swap_corr" },  { "w_swap_class", "-1", "w_swap_class" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    overlord_cfg b = c;
    ck_assert_ut_ok(kit_config_set(overlord_cfg_table(), &b, bad[i].field, bad[i].value));
    ck_assert_int_eq(overlord_cfg_check(&b), UT_ERR_INVALID_ARGUMENT);
    ck_assert_msg(strstr(ut_last_error(), bad[i].says) != NULL, "%s=%s: %s", bad[i].field, bad[i].value, ut_last_error());
  }
  /* w_swap_label reads the label changes of w_adv_swap with stage 2's label encoder: without
   * either there is nothing to read or nothing trained to read it. */
  overlord_cfg r = c;
  r.w_swap_label = 1.0f;
  r.w_adv_swap = 1.0f;
  ck_assert_ut_ok(overlord_cfg_check(&r));
  r.w_adv_swap = 0.0f;
  ck_assert_int_eq(overlord_cfg_check(&r), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "w_swap_label 1 reads the label changes"), "%s", ut_last_error());
  r.w_adv_swap = 1.0f;
  r.epochs2 = 0;
  ck_assert_int_eq(overlord_cfg_check(&r), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "epochs2 0 leaves"), "%s", ut_last_error());
  r = c;
  r.w_swap_corr = 2.0f;
  ck_assert_int_eq(overlord_cfg_check(&r), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "w_swap_corr 2 reads the label changes"), "%s", ut_last_error());
  r = c;
  r.w_swap_class = 3.0f;
  ck_assert_int_eq(overlord_cfg_check(&r), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "w_swap_class 3 reads the label changes"), "%s", ut_last_error());
  ck_assert_int_eq(kit_config_set(overlord_cfg_table(), &c, "correlation", "global"), UT_ERR_INVALID_ARGUMENT);
  overlord_cfg v = c;
  v.recon = OVERLORD_RECON_VGG;
  ck_assert_ptr_null(overlord_new(test_runtime(), &v, NULL));
  ck_assert_msg(strstr(ut_last_error(), "--vgg") != NULL, "%s", ut_last_error());

  /* The localized form without masks. */
  overlord_cfg t = tiny_cfg(OVERLORD_LOCALIZED);
  overlord_model *m = overlord_new(test_runtime(), &t, NULL);
  float *data = tiny_images(), l[OVERLORD_N_LOSSES];
  batch_buf bb;
  overlord_batch nb = *batch_of(&bb, data, 0);
  nb.masks = NULL;
  ck_assert_int_eq(overlord_step(m, 1, &nb, 0, l), UT_ERR_INVALID_ARGUMENT);
  ck_assert_msg(strstr(ut_last_error(), "mask") != NULL, "%s", ut_last_error());
  ck_assert_int_eq(overlord_step(m, 4, batch_of(&bb, data, 0), 0, l), UT_ERR_INVALID_ARGUMENT);
  overlord_free(m);
  free(data);
}
END_TEST

/* What eval reports of the label judge's verdicts, on verdicts written by hand: the share per
 * target, per target the label read most often instead (ties to the lower label), and the share
 * apart for inputs in a paint the target class never comes in. */
START_TEST(misreads_are_tallied_per_target) {
  enum { N = 10 };
  const int32_t target[N] = { 1, 1, 1, 1, 1, 1, 2, 2, 0, 0 };
  const int32_t judged[N] = { 1, 1, 3, 3, 3, 0, 2, 2, 3, 1 };
  const int32_t source[N] = { 0, 0, 0, 2, 2, 0, 1, 1, 3, 2 };
  const uint8_t foreign[N] = { 0, 1, 1, 0, 0, 0, 1, 0, 0, 1 };
  overlord_eval_scores sc;
  memset(&sc, 0xff, sizeof sc);
  overlord_eval_tally_labels(judged, target, source, foreign, N, 4, &sc);
  ck_assert_double_eq_tol(sc.label_judged, 4.0 / N, 1e-12);
  ck_assert_double_eq_tol(sc.label_of_input, 2.0 / N, 1e-12); /* pairs 5 and 8 read as their input's label */
  ck_assert_int_eq(sc.usual_paint.pairs, 6);
  ck_assert_double_eq_tol(sc.usual_paint.label_judged, 2.0 / 6, 1e-12); /* pairs 0 and 7 of 0, 3, 4, 5, 7, 8 */
  ck_assert_int_eq(sc.foreign_paint.pairs, 4);
  ck_assert_double_eq_tol(sc.foreign_paint.label_judged, 2.0 / 4, 1e-12); /* pairs 1 and 6 of 1, 2, 6, 9 */
  ck_assert_int_eq(sc.n_listed, 4);
  const double by_target[4] = { 0, 2.0 / 6, 1, -1 };
  const int instead[4] = { 1, 3, -1, -1 };
  const double instead_share[4] = { 0.5, 3.0 / 6, 0, 0 };
  for (int k = 0; k < 4; k++) {
    ck_assert_double_eq_tol(sc.label_judged_by_target[k], by_target[k], 1e-12);
    ck_assert_int_eq(sc.label_instead[k], instead[k]);
    ck_assert_double_eq_tol(sc.label_instead_share[k], instead_share[k], 1e-12);
  }
  /* Beyond the listed count only the totals are kept; without the paints every pair is usual. */
  overlord_eval_tally_labels(judged, target, source, NULL, N, OVERLORD_EVAL_MAX_LISTED_LABELS + 1, &sc);
  ck_assert_int_eq(sc.n_listed, 0);
  ck_assert_double_eq_tol(sc.label_judged, 4.0 / N, 1e-12);
  ck_assert_int_eq(sc.usual_paint.pairs, N);
  ck_assert_double_eq_tol(sc.usual_paint.label_judged, 4.0 / N, 1e-12);
  ck_assert_int_eq(sc.foreign_paint.pairs, 0);
  ck_assert_double_eq_tol(sc.foreign_paint.label_judged, -1, 1e-12);
}
END_TEST

int main(void) {
  Suite *s = suite_create("overlord");
  TCase *t = tcase_create("overlord");
  tcase_set_timeout(t, 600);
  tcase_add_loop_test(t, each_stage_loss_falls, 0, 2);
  tcase_add_loop_test(t, stage3_updates_each_side_from_its_own_loss, 0, 4);
  tcase_add_loop_test(t, stage3_label_changes_are_judged, 0, 5);
  tcase_add_test(t, stage3_total_weighs_the_adversarial_term);
  tcase_add_loop_test(t, r1_gradient_through_the_discriminator, 0, 2);
  tcase_add_test(t, transform_follows_the_seed);
  tcase_add_test(t, checkpoint_round_trip_and_resume_across_stages);
  tcase_add_test(t, config_and_bad_input);
  tcase_add_test(t, judges_train_on_independent_renders);
  tcase_add_test(t, misreads_are_tallied_per_target);
  suite_add_tcase(s, t);
  return test_run_suite(s);
}
