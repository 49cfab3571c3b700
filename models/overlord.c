/* The OverLORD model (overlord.h): its store, the update plans of the three stages, the
 * inference plans and checkpoints. Every plan has its own graph over the one store, so a
 * parameter made by any of them is the same tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_config.h"
#include "kit_blocks.h"
#include "kit_infer.h"
#include "overlord_internal.h"

#define MAX_GROUPS 3

/* Update plans: 0 stage 1, 1 stage 2, 2 stage 3's discriminator, 3 stage 3's generator side. */
enum { PLAN_S1, PLAN_S2, PLAN_DIS, PLAN_GEN, N_PLANS };

typedef struct {
  ut_graph *g;
  ut_plan *p;
  ut_tensor *images, *image_ids, *labels, *masks;
  ut_tensor *loss[OVERLORD_N_LOSSES]; /* by column; NULL where the plan has no such term */
  ut_hparam *lr[MAX_GROUPS];
  float lr0[MAX_GROUPS];
  int cosine; /* the learning rates follow the cosine schedule */
} step_plan;

struct overlord_model {
  ut_runtime *rt;
  ut_store *st;
  overlord_cfg cfg;
  step_plan step[N_PLANS];
  kit_infer gen[2], enc[3], dis; /* gen: stages 1-2, stage 3; enc: by stage */
  const kit_team *team;
  int rows; /* images per training step on this process: the batch, or its share on a team */
};

static const ut_init EMBEDDING_INIT = { UT_INIT_UNIFORM, -0.05f, 0.05f }; /* OverLORD's (2 rand - 1) 0.05 */

overlord_model *overlord_new(ut_runtime *rt, const overlord_cfg *cfg, const char *vgg_weights) {
  if (!rt || !cfg) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "overlord_new: no runtime or configuration");
    return NULL;
  }
  if (overlord_cfg_check(cfg) != UT_OK) return NULL;
  if (cfg->recon == OVERLORD_RECON_VGG && (!vgg_weights || !*vgg_weights)) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "the VGG loss needs a weight file (--vgg FILE)");
    return NULL;
  }
  overlord_model *m = calloc(1, sizeof *m);
  if (!m) {
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
    return NULL;
  }
  m->rt = rt;
  m->cfg = *cfg;
  m->rows = cfg->batch;
  m->st = ut_store_new(rt, cfg->seed);
  ut_status s = m->st ? ut_store_set_external(m->st, OVERLORD_VGG_PREFIX) : UT_ERR_HOST_MEMORY;
  if (s == UT_OK && cfg->recon == OVERLORD_RECON_VGG) s = ut_store_import(m->st, vgg_weights, OVERLORD_VGG_PREFIX);
  if (s != UT_OK) {
    overlord_free(m);
    return NULL;
  }
  return m;
}

static void step_plan_free(step_plan *s) {
  ut_plan_free(s->p);
  ut_graph_free(s->g);
  *s = (step_plan){ 0 };
}

void overlord_free(overlord_model *m) {
  if (!m) return;
  for (int i = 0; i < N_PLANS; i++) step_plan_free(&m->step[i]);
  for (int i = 0; i < 2; i++) kit_infer_free(&m->gen[i]);
  for (int i = 0; i < 3; i++) kit_infer_free(&m->enc[i]);
  kit_infer_free(&m->dis);
  ut_store_free(m->st);
  free(m);
}

const overlord_cfg *overlord_config(const overlord_model *m) { return &m->cfg; }
ut_store *overlord_store(overlord_model *m) { return m->st; }

ut_status overlord_set_team(overlord_model *m, const kit_team *team) {
  for (int i = 0; i < N_PLANS; i++)
    if (m->step[i].g)
      return ut_fail(UT_ERR_STATE, "overlord_set_team: the training plans are built already; set the team first");
  ut_status st = kit_team_check_batch(team, "OverLORD", m->cfg.batch);
  if (st != UT_OK) return st;
  if (team && team->size > 1) {
    /* Stage 3's discriminator appends the standard deviation over groups of consecutive
     * images; a share that holds whole groups computes its images' values as one process
     * does over the whole batch, and any other share would change what stage 3 trains. */
    int share = m->cfg.batch / team->size;
    if (m->cfg.epochs3 > 0 && share % OVERLORD_STDDEV_GROUP)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "OverLORD: stage 3 on %d processes needs each share of the batch to "
                     "hold whole groups of %d images (its discriminator's minibatch standard deviation), but batch %d "
                     "gives shares of %d; use a batch that is a multiple of %d, or train stage 3 on fewer processes "
                     "(--epochs A,B,0 here, then --resume --epochs A,B,C)", team->size, OVERLORD_STDDEV_GROUP,
                     m->cfg.batch, share, OVERLORD_STDDEV_GROUP * team->size);
    if ((st = team->sparse_rows(team->user, OV_UNCORR_EMB, 0)) != UT_OK) return st;
  }
  m->team = team;
  m->rows = kit_team_rows(team, m->cfg.batch);
  return UT_OK;
}

static ut_shape image_shape(const overlord_cfg *c, int64_t b) { return UT_SHAPE(b, c->channels, c->size, c->size); }
static ut_shape mask_shape(const overlord_cfg *c, int64_t b) { return UT_SHAPE(b, 1, c->size, c->size); }
static int64_t latent_dim(const overlord_cfg *c) { return (int64_t)c->uncorr_dim + c->label_dim + c->corr_dim; }

static void step_inputs(overlord_model *m, step_plan *s) {
  const overlord_cfg *c = &m->cfg;
  s->images = ut_input(s->g, "images", UT_F32, image_shape(c, m->rows));
  s->image_ids = ut_input(s->g, "image_ids", UT_I32, UT_SHAPE(m->rows));
  s->labels = ut_input(s->g, "labels", UT_I32, UT_SHAPE(m->rows));
  if (c->correlation == OVERLORD_LOCALIZED) s->masks = ut_input(s->g, "masks", UT_F32, mask_shape(c, m->rows));
}

static ut_tensor *label_table(ut_graph *g, const overlord_cfg *c) {
  return ut_param(g, OV_LABEL_EMB, UT_SHAPE(c->n_classes, c->label_dim), EMBEDDING_INIT);
}
static ut_tensor *uncorr_table(ut_graph *g, const overlord_cfg *c) {
  return ut_param(g, OV_UNCORR_EMB, UT_SHAPE(c->n_images, c->uncorr_dim), EMBEDDING_INIT);
}

static ut_status adam_group(ut_graph *g, ut_tensor_list params, step_plan *s, int slot, float lr, float beta1,
                            const char *name) {
  s->lr0[slot] = lr;
  s->lr[slot] = ut_hparam_new(g, name, lr);
  return ut_adam(g, params, &(ut_adam_cfg){ .lr_param = s->lr[slot], .beta1 = beta1, .beta2 = 0.999f, .name = name });
}

static ut_tensor_list params_of(ut_graph *g, const char *prefix) {
  char p[KIT_SCOPE_MAX];
  snprintf(p, sizeof p, "%s.", prefix);
  return ut_params(g, p);
}

/* Stage 1: recon(G(u + noise, l, E_c(T(x))), x) + decay mean(u^2) on the pre-noise u; one
 * Adam (0.5, 0.999) with three learning rates: codes, generator, correlated encoder. */
static ut_status build_stage1(overlord_model *m, step_plan *s) {
  const overlord_cfg *c = &m->cfg;
  ut_graph *g = s->g;
  ut_tensor *u = ut_embedding(g, uncorr_table(g, c), s->image_ids);
  ut_tensor *l = ut_embedding(g, label_table(g, c), s->labels);
  ut_tensor *noisy = ut_gaussian_noise(g, u, "ov.s1.noise", c->uncorr_std);
  ut_tensor *corr = overlord_encoder(g, c, overlord_transform(g, c, s->images, s->masks, "ov.s1.T", 1), OV_ENC_T, c->corr_dim);
  ut_tensor *generated = overlord_generator(g, c, overlord_latent(g, noisy, l, corr), OV_GEN);
  s->loss[OVERLORD_LOSS_RECON] = ut_name(overlord_reconstruction_loss(g, c, generated, s->images), "ov.s1.recon");
  s->loss[OVERLORD_LOSS_DECAY] = ut_name(ut_scale(g, ut_mean_all(g, ut_square(g, u)), c->uncorr_decay), "ov.s1.decay");
  s->loss[OVERLORD_LOSS_TOTAL] = ut_name(ut_add(g, s->loss[OVERLORD_LOSS_RECON], s->loss[OVERLORD_LOSS_DECAY]), "ov.s1.loss");
  s->cosine = 1;
  ut_tensor_list codes = ut_params_join(g, ut_params(g, OV_UNCORR_EMB), ut_params(g, OV_LABEL_EMB));
  ut_tensor_list gen = params_of(g, OV_GEN), enc = params_of(g, OV_ENC_T);
  ut_status st = ut_graph_status(g);
  if (st == UT_OK) st = ut_backward(g, s->loss[OVERLORD_LOSS_TOTAL], ut_params_join(g, codes, ut_params_join(g, gen, enc)));
  if (st == UT_OK) st = adam_group(g, codes, s, 0, c->lr_latent, 0.5f, "ov.adam1_latent");
  if (st == UT_OK) st = adam_group(g, gen, s, 1, c->lr_gen, 0.5f, "ov.adam1_gen");
  if (st == UT_OK) st = adam_group(g, enc, s, 2, c->lr_corr, 0.5f, "ov.adam1_corr");
  return st;
}

/* The three encoders of stage `stage` (2 or 3) on x: uncorrelated, label, correlated codes. */
static void encode(ut_graph *g, const overlord_cfg *c, int stage, ut_tensor *x, ut_tensor *mask, ut_tensor **u,
                   ut_tensor **l, ut_tensor **corr) {
  char name[KIT_SCOPE_MAX];
  const char *p = stage == 2 ? OV_S2 : OV_S3;
  snprintf(name, sizeof name, "%senc_uncorr", p);
  *u = overlord_encoder(g, c, x, name, c->uncorr_dim);
  snprintf(name, sizeof name, "%senc_label", p);
  *l = overlord_encoder(g, c, x, name, c->label_dim);
  snprintf(name, sizeof name, "%senc_corr", p);
  *corr = overlord_encoder(g, c, overlord_transform(g, c, x, mask, NULL, 0), name, c->corr_dim);
}

/* MSE of the encoders' codes against stage 1's: the embeddings' rows (no noise) and E_c's code
 * of a fresh T(x). */
static ut_tensor *regression(ut_graph *g, const overlord_cfg *c, step_plan *s, ut_tensor *u, ut_tensor *l, ut_tensor *corr,
                             const char *stream) {
  ut_tensor *corr_target =
    overlord_encoder(g, c, overlord_transform(g, c, s->images, s->masks, stream, 1), OV_ENC_T, c->corr_dim);
  ut_tensor *codes = ut_add(g, ut_mse_loss(g, u, ut_embedding(g, uncorr_table(g, c), s->image_ids)),
                            ut_mse_loss(g, l, ut_embedding(g, label_table(g, c), s->labels)));
  return ut_add(g, codes, ut_mse_loss(g, corr, corr_target));
}

/* Stage 2: only the encoders learn, with Adam at its default betas. */
static ut_status build_stage2(overlord_model *m, step_plan *s) {
  const overlord_cfg *c = &m->cfg;
  ut_graph *g = s->g;
  ut_tensor *u, *l, *corr;
  encode(g, c, 2, s->images, s->masks, &u, &l, &corr);
  s->loss[OVERLORD_LOSS_REGRESSION] = ut_name(regression(g, c, s, u, l, corr, "ov.s2.T"), "ov.s2.loss");
  s->cosine = 1;
  ut_tensor_list enc = ut_params(g, OV_S2);
  ut_status st = ut_graph_status(g);
  if (st == UT_OK) st = ut_backward(g, s->loss[OVERLORD_LOSS_REGRESSION], enc);
  if (st == UT_OK) st = adam_group(g, enc, s, 0, c->lr_enc, 0.9f, "ov.adam2");
  return st;
}

static ut_tensor *stage3_fake(ut_graph *g, const overlord_cfg *c, step_plan *s, ut_tensor **u, ut_tensor **l, ut_tensor **corr) {
  char name[KIT_SCOPE_MAX];
  encode(g, c, 3, s->images, s->masks, u, l, corr);
  snprintf(name, sizeof name, "%sgen", OV_S3);
  return overlord_generator(g, c, overlord_latent(g, *u, *l, *corr), name);
}

/* Row k of t [rows, ...] becomes row k + shift of its group of OVERLORD_STDDEV_GROUP
 * consecutive rows, counted round the group: shift 1 (next_rows) pairs each image with a
 * neighbour for the label changes, a fixed permutation of rows that come in random order, and
 * shift -1 (previous_rows) undoes it. Inside the groups the discriminator's minibatch stddev
 * forms, so that a team's shares, which hold whole groups, pair their images as one process
 * pairs the whole batch. */
static ut_tensor *shifted_rows(overlord_model *m, ut_graph *g, ut_tensor *t, int shift) {
  int32_t *order = malloc((size_t)m->rows * sizeof *order);
  if (!order) {
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
    return ut_graph_fail(g, UT_ERR_HOST_MEMORY);
  }
  const int group = m->rows < OVERLORD_STDDEV_GROUP ? m->rows : OVERLORD_STDDEV_GROUP;
  for (int k = 0; k < m->rows; k++) order[k] = k / group * group + (k % group + group + shift % group) % group;
  ut_tensor *permuted = ut_embedding(g, t, ut_constant_i32(g, UT_SHAPE(m->rows), order));
  free(order);
  return permuted;
}
static ut_tensor *next_rows(overlord_model *m, ut_graph *g, ut_tensor *t) { return shifted_rows(m, g, t, 1); }
static ut_tensor *previous_rows(overlord_model *m, ut_graph *g, ut_tensor *t) { return shifted_rows(m, g, t, -1); }

/* With w_adv_swap > 0, stage 3 also draws every image under another label: its own
 * uncorrelated and correlated codes with stage 1's label code of its neighbour's label
 * (next_rows; where the two labels agree, a reconstruction from the table's row). The label
 * code is the table's row, as the eval's and translate's label changes take it, and goes to
 * *target when that is not NULL. NULL when off. */
static ut_tensor *stage3_label_change(overlord_model *m, step_plan *s, ut_tensor *u, ut_tensor *corr, ut_tensor **target) {
  const overlord_cfg *c = &m->cfg;
  if (c->w_adv_swap <= 0) return NULL;
  ut_graph *g = s->g;
  char name[KIT_SCOPE_MAX];
  snprintf(name, sizeof name, "%sgen", OV_S3);
  ut_tensor *row = next_rows(m, g, ut_embedding(g, label_table(g, c), s->labels));
  if (target) *target = row;
  return overlord_generator(g, c, overlord_latent(g, u, row, corr), name);
}

/* With w_swap_label > 0: the label changes read by stage 2's label encoder, which stage 3
 * leaves as it was, against the target's row. An unconditional discriminator accepts a sharp
 * image of any class; this term asks the generator side for the target's label as well,
 * through an encoder trained on real images only. Its gradient reaches stage 3's generator and
 * encoders; the reader and the table are not among the parameters the step updates. */
static ut_tensor *swap_label_loss(ut_graph *g, const overlord_cfg *c, ut_tensor *changed, ut_tensor *target) {
  char name[KIT_SCOPE_MAX];
  snprintf(name, sizeof name, "%senc_label", OV_S2);
  return ut_mse_loss(g, overlord_encoder(g, c, changed, name, c->label_dim), target);
}

/* With w_swap_corr > 0: the same reader for the correlated code. A label reader trained on
 * data where the label and the paint go together moves the paint towards the target class's;
 * this term asks the change to keep the input's correlated code as stage 2's correlated
 * encoder reads both (untransformed in the pose-invariant form, through the input's mask in
 * the localized one, as encode() reads), so neither side of the MSE is a parameter of the step. */
static ut_tensor *swap_corr_loss(ut_graph *g, const overlord_cfg *c, step_plan *s, ut_tensor *changed) {
  char name[KIT_SCOPE_MAX];
  snprintf(name, sizeof name, "%senc_corr", OV_S2);
  ut_tensor *read = overlord_encoder(g, c, overlord_transform(g, c, changed, s->masks, NULL, 0), name, c->corr_dim);
  ut_tensor *input = overlord_encoder(g, c, overlord_transform(g, c, s->images, s->masks, NULL, 0), name, c->corr_dim);
  return ut_mse_loss(g, read, input);
}

/* With w_swap_class > 0: stage 2's label encoder reads the label changes, and the read is
 * classified as the nearest row of the label table (logits -|read - row k|^2, written as
 * 2 read . row k - |row k|^2, which differ from them by the same -|read|^2 in every logit of a
 * row) with the cross-entropy of the target label. Unlike the MSE of w_swap_label, which asks
 * for the whole target row, it asks only that the target row be the nearest, as a judge asks
 * for the label alone, and stops pulling once a change reads as the target. Change k's target
 * is label next(k), so the logits go back by one row of their group to meet s->labels. */
static ut_tensor *swap_class_loss(overlord_model *m, step_plan *s, ut_tensor *changed) {
  const overlord_cfg *c = &m->cfg;
  ut_graph *g = s->g;
  char name[KIT_SCOPE_MAX];
  snprintf(name, sizeof name, "%senc_label", OV_S2);
  ut_tensor *read = overlord_encoder(g, c, changed, name, c->label_dim);
  ut_tensor *rows = label_table(g, c);
  ut_tensor *row_norms = ut_reshape(g, ut_sum(g, ut_square(g, rows), 1u << 1), UT_SHAPE(1, c->n_classes));
  ut_tensor *logits = ut_sub(g, ut_scale(g, ut_matmul(g, read, rows, 0, 1), 2.0f),
                             ut_broadcast(g, row_norms, UT_SHAPE(m->rows, c->n_classes)));
  return ut_cross_entropy(g, previous_rows(m, g, logits), s->labels);
}

/* What the discriminator judges images as, with dis_projection: the rows of its class table
 * for the batch's own labels (real images and reconstructions), and for the label changes the
 * neighbour's row of those (next_rows). NULL when off. */
static ut_tensor *own_classes(overlord_model *m, step_plan *s) {
  return overlord_dis_class_rows(s->g, &m->cfg, s->labels, OV_DIS);
}
static ut_tensor *changed_classes(overlord_model *m, ut_graph *g, ut_tensor *own) {
  return own ? next_rows(m, g, own) : NULL;
}

/* Stage 3's discriminator step: BCE(D(fake), 0) + BCE(D(real), 1) (+ w_adv_swap BCE(D(label
 * change), 0)) + R1, R1 = w_r1 / 2 mean_b sum (d sum D(real) / d real)^2 by double backward.
 * Only D's parameters learn. */
static ut_status build_dis(overlord_model *m, step_plan *s) {
  const overlord_cfg *c = &m->cfg;
  ut_graph *g = s->g;
  ut_tensor *u, *l, *corr;
  ut_tensor *fake = stage3_fake(g, c, s, &u, &l, &corr);
  ut_tensor *changed = stage3_label_change(m, s, u, corr, NULL);
  ut_tensor *classes = own_classes(m, s);
  ut_tensor *d_real = overlord_discriminator(g, c, s->images, classes, OV_DIS);
  ut_tensor *d_fake = overlord_discriminator(g, c, fake, classes, OV_DIS);
  ut_tensor *real_sum = ut_sum_all(g, d_real);
  ut_status st = ut_graph_status(g);
  if (st == UT_OK) st = ut_backward(g, real_sum, (ut_tensor_list){ 1, &s->images });
  if (st != UT_OK) return st;
  /* Over this graph's rows (the batch, or a share of it on a team), as every mean here. */
  ut_tensor *r1 = ut_scale(g, ut_sum_all(g, ut_square(g, ut_grad(g, s->images))), 0.5f * c->w_r1 / (float)m->rows);
  ut_tensor *bce = ut_add(g, ut_bce_with_logits_const(g, d_fake, 0.0f), ut_bce_with_logits_const(g, d_real, 1.0f));
  if (changed) {
    ut_tensor *d_changed = overlord_discriminator(g, c, changed, changed_classes(m, g, classes), OV_DIS);
    bce = ut_add(g, bce, ut_scale(g, ut_bce_with_logits_const(g, d_changed, 0.0f), c->w_adv_swap));
  }
  s->loss[OVERLORD_LOSS_DIS] = ut_name(ut_add(g, bce, r1), "ov.s3.dis_loss");
  /* The discriminator's step reads the images alone, and the labels for the label changes
   * and the projection. */
  s->image_ids = NULL;
  if (!changed && !classes) s->labels = NULL;
  ut_tensor_list dis = params_of(g, OV_DIS);
  st = ut_graph_status(g);
  if (st == UT_OK) st = ut_backward(g, s->loss[OVERLORD_LOSS_DIS], dis);
  if (st == UT_OK) st = adam_group(g, dis, s, 0, c->lr_dis, 0.5f, "ov.adam3_dis");
  return st;
}

/* Stage 3's generator step: recon + w_latent regression + w_adv BCE(D(fake), 1) (+ w_adv_swap
 * BCE(D(label change), 1) + w_swap_label swap_label_loss + w_swap_corr swap_corr_loss +
 * w_swap_class swap_class_loss), over
 * stage 3's encoders and generator. */
static ut_status build_gen(overlord_model *m, step_plan *s) {
  const overlord_cfg *c = &m->cfg;
  ut_graph *g = s->g;
  ut_tensor *u, *l, *corr;
  ut_tensor *fake = stage3_fake(g, c, s, &u, &l, &corr);
  ut_tensor **l3 = s->loss;
  l3[OVERLORD_LOSS_RECON] = ut_name(overlord_reconstruction_loss(g, c, fake, s->images), "ov.s3.recon");
  ut_tensor *classes = own_classes(m, s);
  l3[OVERLORD_LOSS_ADV] =
    ut_name(ut_bce_with_logits_const(g, overlord_discriminator(g, c, fake, classes, OV_DIS), 1.0f), "ov.s3.adv");
  l3[OVERLORD_LOSS_REGRESSION] = ut_name(regression(g, c, s, u, l, corr, "ov.s3.T"), "ov.s3.regression");
  ut_tensor *weighted = ut_add(g, l3[OVERLORD_LOSS_RECON], ut_scale(g, l3[OVERLORD_LOSS_REGRESSION], c->w_latent));
  ut_tensor *total = ut_add(g, weighted, ut_scale(g, l3[OVERLORD_LOSS_ADV], c->w_adv));
  ut_tensor *target = NULL;
  ut_tensor *changed = stage3_label_change(m, s, u, corr, &target);
  if (changed) {
    ut_tensor *d_changed = overlord_discriminator(g, c, changed, changed_classes(m, g, classes), OV_DIS);
    l3[OVERLORD_LOSS_ADV_SWAP] = ut_name(ut_bce_with_logits_const(g, d_changed, 1.0f), "ov.s3.adv_swap");
    total = ut_add(g, total, ut_scale(g, l3[OVERLORD_LOSS_ADV_SWAP], c->w_adv_swap));
  }
  if (changed && c->w_swap_label > 0) {
    l3[OVERLORD_LOSS_SWAP_LABEL] = ut_name(swap_label_loss(g, c, changed, target), "ov.s3.swap_label");
    total = ut_add(g, total, ut_scale(g, l3[OVERLORD_LOSS_SWAP_LABEL], c->w_swap_label));
  }
  if (changed && c->w_swap_corr > 0) {
    l3[OVERLORD_LOSS_SWAP_CORR] = ut_name(swap_corr_loss(g, c, s, changed), "ov.s3.swap_corr");
    total = ut_add(g, total, ut_scale(g, l3[OVERLORD_LOSS_SWAP_CORR], c->w_swap_corr));
  }
  if (changed && c->w_swap_class > 0) {
    l3[OVERLORD_LOSS_SWAP_CLASS] = ut_name(swap_class_loss(m, s, changed), "ov.s3.swap_class");
    total = ut_add(g, total, ut_scale(g, l3[OVERLORD_LOSS_SWAP_CLASS], c->w_swap_class));
  }
  l3[OVERLORD_LOSS_TOTAL] = ut_name(total, "ov.s3.gen_loss");
  ut_tensor_list net = ut_params(g, OV_S3);
  ut_status st = ut_graph_status(g);
  if (st == UT_OK) st = ut_backward(g, l3[OVERLORD_LOSS_TOTAL], net);
  if (st == UT_OK) st = adam_group(g, net, s, 0, c->lr_gan, 0.5f, "ov.adam3_gen");
  return st;
}

static ut_status ensure_step(overlord_model *m, int which) {
  step_plan *s = &m->step[which];
  if (s->p) return UT_OK;
  step_plan_free(s);
  if (!(s->g = ut_graph_new(m->rt, m->st))) return UT_ERR_HOST_MEMORY;
  step_inputs(m, s);
  static ut_status (*const build[N_PLANS])(overlord_model *, step_plan *) = { build_stage1, build_stage2, build_dis,
                                                                             build_gen };
  ut_status st = kit_team_prepare(m->team, s->g);
  if (st == UT_OK) st = build[which](m, s);
  ut_tensor *outs[OVERLORD_N_LOSSES];
  int n = 0;
  for (int i = 0; i < OVERLORD_N_LOSSES; i++)
    if (s->loss[i]) outs[n++] = s->loss[i];
  if (st == UT_OK && !(s->p = ut_plan_compile(s->g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = n }))) st = UT_ERR_STATE;
  static const char *const what[N_PLANS] = { "stage 1", "stage 2", "stage 3 discriminator", "stage 3 generator" };
  if (st != UT_OK) ut_error_prefix("OverLORD %s", what[which]);
  return st;
}

ut_plan *overlord_step_plan(overlord_model *m, int stage, int which) {
  int plan = stage == 1 ? PLAN_S1 : stage == 2 ? PLAN_S2 : stage == 3 ? (which ? PLAN_GEN : PLAN_DIS) : -1;
  if (plan < 0) return NULL;
  return ensure_step(m, plan) == UT_OK ? m->step[plan].p : NULL;
}

/* CosineAnnealingLR stepped every step: lr_min + (lr0 - lr_min) (1 + cos(pi t)) / 2. */
static float cosine_lr(float lr0, float lr_min, double progress) {
  if (progress < 0) progress = 0;
  if (progress > 1) progress = 1;
  return (float)(lr_min + (lr0 - lr_min) * 0.5 * (1.0 + cos(3.14159265358979323846 * progress)));
}

static ut_status run_plan(overlord_model *m, int which, const overlord_batch *b, double progress) {
  ut_status st = ensure_step(m, which);
  if (st != UT_OK) return st;
  step_plan *s = &m->step[which];
  for (int i = 0; i < MAX_GROUPS; i++)
    if (s->lr[i]) ut_hparam_set(s->lr[i], s->cosine ? cosine_lr(s->lr0[i], m->cfg.lr_min, progress) : s->lr0[i]);
  if ((st = ut_upload(s->p, s->images, b->images)) != UT_OK ||
      (s->image_ids && (st = ut_upload(s->p, s->image_ids, b->image_ids)) != UT_OK) ||
      (s->labels && (st = ut_upload(s->p, s->labels, b->labels)) != UT_OK))
    return st;
  if (s->masks && (st = ut_upload(s->p, s->masks, b->masks)) != UT_OK) return st;
  return ut_plan_run(s->p);
}

/* The plan's columns into out; the others keep their values. */
static ut_status read_losses(step_plan *s, float *out) {
  ut_status st = UT_OK;
  for (int i = 0; st == UT_OK && i < OVERLORD_N_LOSSES; i++)
    if (s->loss[i]) st = ut_read(s->p, s->loss[i], &out[i]);
  return st;
}

static ut_status check_batch(const overlord_model *m, const overlord_batch *b, const void *out, const char *what) {
  if (!m || !b || !b->images || !b->image_ids || !b->labels || !out)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: no model, batch or output", what);
  if (m->cfg.correlation == OVERLORD_LOCALIZED && !b->masks)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: the localized correlation needs a mask per image", what);
  return UT_OK;
}

ut_status overlord_dis_step(overlord_model *m, const overlord_batch *b, float *losses) {
  ut_status st = check_batch(m, b, losses, "overlord_dis_step");
  if (st == UT_OK) st = run_plan(m, PLAN_DIS, b, 0);
  return st == UT_OK ? read_losses(&m->step[PLAN_DIS], losses) : st;
}

ut_status overlord_gen_step(overlord_model *m, const overlord_batch *b, float *losses) {
  ut_status st = check_batch(m, b, losses, "overlord_gen_step");
  if (st == UT_OK) st = run_plan(m, PLAN_GEN, b, 0);
  return st == UT_OK ? read_losses(&m->step[PLAN_GEN], losses) : st;
}

ut_status overlord_step(overlord_model *m, int stage, const overlord_batch *b, double progress, float *losses) {
  ut_status st = check_batch(m, b, losses, "overlord_step");
  if (st != UT_OK) return st;
  if (stage < 1 || stage > 3) return ut_fail(UT_ERR_INVALID_ARGUMENT, "overlord_step: stage %d is not 1, 2 or 3", stage);
  for (int i = 0; i < OVERLORD_N_LOSSES; i++) losses[i] = 0;
  if (stage < 3) {
    int which = stage == 1 ? PLAN_S1 : PLAN_S2;
    st = run_plan(m, which, b, progress);
    if (st == UT_OK) st = read_losses(&m->step[which], losses);
    if (stage == 2) losses[OVERLORD_LOSS_TOTAL] = losses[OVERLORD_LOSS_REGRESSION];
    return st;
  }
  /* Stage 3: the discriminator's update, then the generator side's against the updated D. */
  st = overlord_dis_step(m, b, losses);
  return st == UT_OK ? overlord_gen_step(m, b, losses) : st;
}

/* ---- stage starts: copies of the networks ---------------------------------------------------- */

/* Copies every parameter under `from` into the one made in the same order under `to`, both
 * made by `build` on a throwaway graph. */
typedef ut_tensor *(*builder_fn)(ut_graph *g, const overlord_cfg *c, const char *prefix);

static ut_tensor *build_corr_encoder(ut_graph *g, const overlord_cfg *c, const char *prefix) {
  return overlord_encoder(g, c, ut_input(g, "x", UT_F32, image_shape(c, 1)), prefix, c->corr_dim);
}
static ut_tensor *build_label_encoder(ut_graph *g, const overlord_cfg *c, const char *prefix) {
  return overlord_encoder(g, c, ut_input(g, "x", UT_F32, image_shape(c, 1)), prefix, c->label_dim);
}
static ut_tensor *build_uncorr_encoder(ut_graph *g, const overlord_cfg *c, const char *prefix) {
  return overlord_encoder(g, c, ut_input(g, "x", UT_F32, image_shape(c, 1)), prefix, c->uncorr_dim);
}
static ut_tensor *build_generator(ut_graph *g, const overlord_cfg *c, const char *prefix) {
  return overlord_generator(g, c, ut_input(g, "z", UT_F32, UT_SHAPE(1, latent_dim(c))), prefix);
}

static ut_status copy_net(overlord_model *m, builder_fn build, const char *from, const char *to) {
  ut_graph *g = ut_graph_new(m->rt, m->st);
  if (!g) return UT_ERR_HOST_MEMORY;
  build(g, &m->cfg, from);
  build(g, &m->cfg, to);
  ut_tensor_list a = params_of(g, from), b = params_of(g, to);
  ut_status st = ut_graph_status(g);
  if (st == UT_OK && a.n != b.n) st = ut_fail(UT_ERR_STATE, "copying %s to %s: %d against %d parameters", from, to, a.n, b.n);
  for (int k = 0; st == UT_OK && k < a.n; k++) {
    ut_store_tensor *src = ut_store_find(m->st, ut_tensor_name(a.t[k])), *dst = ut_store_find(m->st, ut_tensor_name(b.t[k]));
    ut_shape ss = ut_store_tensor_shape(src);
    int64_t n = 1;
    for (int d = 0; d < ss.rank; d++) n *= ss.d[d];
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory copying %s", from);
    if (st == UT_OK) st = ut_store_tensor_read(m->st, src, v);
    if (st == UT_OK) st = ut_store_tensor_write(m->st, dst, v);
    free(v);
  }
  ut_graph_free(g);
  return st;
}

ut_status overlord_begin_stage(overlord_model *m, int stage) {
  if (stage == 2) return copy_net(m, build_corr_encoder, OV_ENC_T, OV_S2 "enc_corr");
  if (stage != 3) return UT_OK;
  ut_status st = copy_net(m, build_uncorr_encoder, OV_S2 "enc_uncorr", OV_S3 "enc_uncorr");
  if (st == UT_OK) st = copy_net(m, build_label_encoder, OV_S2 "enc_label", OV_S3 "enc_label");
  if (st == UT_OK) st = copy_net(m, build_corr_encoder, OV_S2 "enc_corr", OV_S3 "enc_corr");
  if (st == UT_OK) st = copy_net(m, build_generator, OV_GEN, OV_S3 "gen");
  return st;
}

/* ---- inference -------------------------------------------------------------------------------- */

static int64_t infer_chunk(const overlord_cfg *c) { return c->batch < 16 ? c->batch : 16; }

static ut_status ensure_gen(overlord_model *m, int stage) {
  kit_infer *f = &m->gen[stage == 3];
  if (kit_infer_ready(f)) return UT_OK;
  const overlord_cfg *c = &m->cfg;
  int64_t n = infer_chunk(c);
  kit_infer_free(f);
  if (!(f->g = ut_graph_new(m->rt, m->st))) return UT_ERR_HOST_MEMORY;
  f->in[0] = ut_input(f->g, "uncorr", UT_F32, UT_SHAPE(n, c->uncorr_dim));
  f->in[1] = ut_input(f->g, "label", UT_F32, UT_SHAPE(n, c->label_dim));
  f->in[2] = ut_input(f->g, "corr", UT_F32, UT_SHAPE(n, c->corr_dim));
  f->n_in = 3;
  f->out[0] = overlord_generator(f->g, c, overlord_latent(f->g, f->in[0], f->in[1], f->in[2]), stage == 3 ? OV_S3 "gen" : OV_GEN);
  f->n_out = 1;
  return kit_infer_compile(f);
}

static ut_status ensure_enc(overlord_model *m, int stage) {
  kit_infer *f = &m->enc[stage - 1];
  if (kit_infer_ready(f)) return UT_OK;
  const overlord_cfg *c = &m->cfg;
  int64_t n = infer_chunk(c);
  kit_infer_free(f);
  if (!(f->g = ut_graph_new(m->rt, m->st))) return UT_ERR_HOST_MEMORY;
  f->in[0] = ut_input(f->g, "images", UT_F32, image_shape(c, n));
  f->n_in = 1;
  ut_tensor *mask = NULL;
  if (c->correlation == OVERLORD_LOCALIZED) mask = f->in[f->n_in++] = ut_input(f->g, "masks", UT_F32, mask_shape(c, n));
  if (stage == 1) {
    f->out[0] = overlord_encoder(f->g, c, overlord_transform(f->g, c, f->in[0], mask, NULL, 0), OV_ENC_T, c->corr_dim);
    f->n_out = 1;
  } else {
    encode(f->g, c, stage, f->in[0], mask, &f->out[0], &f->out[1], &f->out[2]);
    f->n_out = 3;
  }
  return kit_infer_compile(f);
}

ut_status overlord_generate(overlord_model *m, int stage, const float *uncorr, const float *label, const float *corr,
                            int64_t n, float *images) {
  if (stage < 1 || stage > 3) return ut_fail(UT_ERR_INVALID_ARGUMENT, "overlord_generate: stage %d is not 1, 2 or 3", stage);
  ut_status st = ensure_gen(m, stage);
  return st == UT_OK ? kit_infer_run(&m->gen[stage == 3], (const float *const[]){ uncorr, label, corr },
                                     (float *const[]){ images }, n)
                     : st;
}

ut_status overlord_encode(overlord_model *m, int stage, const float *images, const float *masks, int64_t n, float *uncorr,
                          float *label, float *corr) {
  if (stage < 1 || stage > 3) return ut_fail(UT_ERR_INVALID_ARGUMENT, "overlord_encode: stage %d is not 1, 2 or 3", stage);
  if (m->cfg.correlation == OVERLORD_LOCALIZED && !masks)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "the localized correlation needs a mask per image");
  ut_status st = ensure_enc(m, stage);
  if (st != UT_OK) return st;
  const float *in[2] = { images, masks };
  if (stage == 1) return kit_infer_run(&m->enc[0], in, (float *const[]){ corr }, n);
  return kit_infer_run(&m->enc[stage - 1], in, (float *const[]){ uncorr, label, corr }, n);
}

/* Rows of an embedding picked by ids, read through the host (grid rows, eval codes, the
 * discriminator's class rows). */
static ut_status gather_rows(overlord_model *m, const char *name, int64_t rows, int64_t dim, ut_init init,
                             const int32_t *ids, int64_t n, float *out) {
  ut_store_tensor *t = ut_store_tensor_get(m->st, name, UT_SHAPE(rows, dim), init);
  if (!t) return UT_ERR_STATE;
  float *all = malloc((size_t)(rows * dim) * sizeof *all);
  if (!all) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for %s", name);
  ut_status st = ut_store_tensor_read(m->st, t, all);
  for (int64_t i = 0; st == UT_OK && i < n; i++) {
    if (ids[i] < 0 || ids[i] >= rows)
      st = ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: index %d outside [0, %lld)", name, ids[i], (long long)rows);
    else memcpy(out + i * dim, all + (int64_t)ids[i] * dim, (size_t)dim * sizeof *out);
  }
  free(all);
  return st;
}

ut_status overlord_discriminate(overlord_model *m, const float *images, const int32_t *labels, int64_t n, float *logits) {
  const overlord_cfg *c = &m->cfg;
  if (c->dis_projection && !labels)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "overlord_discriminate: a discriminator with dis_projection judges each image "
                   "as one of its label; no labels were given");
  if (!kit_infer_ready(&m->dis)) {
    kit_infer_free(&m->dis);
    if (!(m->dis.g = ut_graph_new(m->rt, m->st))) return UT_ERR_HOST_MEMORY;
    m->dis.in[0] = ut_input(m->dis.g, "images", UT_F32, image_shape(c, c->batch)); /* stddev groups as in training */
    m->dis.n_in = 1;
    /* The projection's rows come in as floats, read from the class table on the host. */
    ut_tensor *rows = NULL;
    if (c->dis_projection)
      rows = m->dis.in[m->dis.n_in++] = ut_input(m->dis.g, "class_rows", UT_F32, UT_SHAPE(c->batch, overlord_dis_features(c)));
    m->dis.out[0] = overlord_discriminator(m->dis.g, c, m->dis.in[0], rows, OV_DIS);
    m->dis.n_out = 1;
    ut_status st = kit_infer_compile(&m->dis);
    if (st != UT_OK) return st;
  }
  if (!c->dis_projection) return kit_infer_run(&m->dis, (const float *const[]){ images }, (float *const[]){ logits }, n);
  int64_t w = overlord_dis_features(c);
  float *rows = malloc((size_t)(n * w) * sizeof *rows);
  if (!rows) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  ut_status st = gather_rows(m, OV_DIS "." OV_DIS_CLASS_TABLE, c->n_classes, w, OV_DIS_CLASS_INIT, labels, n, rows);
  if (st == UT_OK) st = kit_infer_run(&m->dis, (const float *const[]){ images, rows }, (float *const[]){ logits }, n);
  free(rows);
  return st;
}

ut_status overlord_embedded_codes(overlord_model *m, const int32_t *image_ids, const int32_t *labels, int64_t n,
                                  float *uncorr, float *label) {
  const overlord_cfg *c = &m->cfg;
  ut_status st = UT_OK;
  if (uncorr) st = gather_rows(m, OV_UNCORR_EMB, c->n_images, c->uncorr_dim, EMBEDDING_INIT, image_ids, n, uncorr);
  if (st == UT_OK && label) st = gather_rows(m, OV_LABEL_EMB, c->n_classes, c->label_dim, EMBEDDING_INIT, labels, n, label);
  return st;
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

ut_status overlord_save(overlord_model *m, const char *path) {
  return checkpoint_config_save(m->st, path, "overlord", overlord_cfg_to_json(&m->cfg));
}

ut_status overlord_read_config(ut_runtime *rt, const char *path, overlord_cfg *cfg) {
  char *json = NULL;
  ut_status st = checkpoint_config_json(rt, path, "overlord", &json);
  if (st == UT_OK && (st = overlord_cfg_from_json(json, cfg)) != UT_OK) ut_error_prefix("%s", path);
  free(json);
  return st;
}

ut_status overlord_load(overlord_model *m, const char *path) {
  overlord_cfg saved;
  ut_status st = overlord_read_config(m->rt, path, &saved);
  if (st != UT_OK) return st;
  /* How long to train may change between runs, and the loss is not part of the model
   * (inference opens a VGG run without VGG); the networks may not change. */
  saved.epochs1 = m->cfg.epochs1;
  saved.epochs2 = m->cfg.epochs2;
  saved.epochs3 = m->cfg.epochs3;
  saved.recon = m->cfg.recon;
  char why[256];
  if (overlord_cfg_differs(&saved, &m->cfg, why, sizeof why))
    return ut_fail(UT_ERR_MISMATCH, "%s was trained with another OverLORD configuration: its %s as in this model", path, why);
  return ut_store_load(m->st, path);
}
