/* The DMIT model (dmit.h): its store, the four update plans of an iteration, the inference
 * plans and checkpoints. Every plan has its own graph over the one store, so a parameter made
 * by any of them is the same tensor, and an optimiser named in two plans (the decoder's, the
 * content encoder's) is one optimiser with one set of moments, stepped by both, as the
 * official code steps the same torch optimiser twice per iteration. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_config.h"
#include "kit_random.h"
#include "dmit_internal.h"
#include "kit_blocks.h"
#include "kit_infer.h"
#include "kit_losses.h"

#define INFER_CHUNK 16
#define DIV_EPS 1e-5f

enum { UPDATE_DIS, UPDATE_GEN, UPDATE_DEC, UPDATE_CONTENT, UPDATE_DIS_CONTENT, UPDATE_DOMAIN_CLS, UPDATE_COUNT };
static const char *const update_names[UPDATE_COUNT] = { "discriminators", "generator", "decoder", "content encoder",
                                                        "content discriminator", "domain classifier" };
/* The losses each update reports. A term that is off leaves its slot NULL and is not computed,
 * so that a run without it builds the very plan it built before the term existed; the domain
 * classifier's second, its accuracy, is counted on the host from its logits. */
static const int update_losses[UPDATE_COUNT] = { 2, DMIT_UPDATE_LOSSES_MAX /* the most */, 1, 1, 1, 2 };

typedef struct {
  ut_graph *g;
  ut_plan *p;
  ut_tensor *x, *a_src, *a_tgt, *perm;
  ut_tensor *loss[8];
  ut_tensor *logits; /* the domain classifier's update: its logits of the batch, for its accuracy */
  ut_hparam *lr;
  const kit_team *team; /* the model's, for the terms of the whole batch */
} step_plan;

struct dmit_model {
  ut_runtime *rt;
  ut_store *st;
  dmit_cfg cfg;
  step_plan steps[UPDATE_COUNT];
  kit_infer translate, style, content, dis_content;
  float *host; /* attr_src, attr_tgt and perm of one batch, then the domain classifier's logits of it */
  const kit_team *team;
  int rows; /* images of each domain per step on this process: the batch, or its share on a team */
};

dmit_model *dmit_new(ut_runtime *rt, const dmit_cfg *cfg) {
  if (!rt || !cfg) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "dmit_new: no runtime or configuration");
    return NULL;
  }
  if (dmit_cfg_check(cfg) != UT_OK) return NULL;
  dmit_model *m = calloc(1, sizeof *m);
  int64_t nb = (int64_t)cfg->n_domains * cfg->batch;
  if (!m || !(m->host = malloc((size_t)(nb * (3 * cfg->n_domains + nb)) * sizeof *m->host)) ||
      !(m->st = ut_store_new(rt, cfg->seed))) {
    if (m) free(m->host);
    free(m);
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the DMIT model");
    return NULL;
  }
  m->rt = rt;
  m->cfg = *cfg;
  m->rows = cfg->batch;
  return m;
}

static void step_plan_free(step_plan *s) {
  ut_plan_free(s->p);
  ut_graph_free(s->g);
  *s = (step_plan){ 0 };
}

void dmit_free(dmit_model *m) {
  if (!m) return;
  for (int i = 0; i < UPDATE_COUNT; i++) step_plan_free(&m->steps[i]);
  kit_infer_free(&m->translate);
  kit_infer_free(&m->style);
  kit_infer_free(&m->content);
  kit_infer_free(&m->dis_content);
  ut_store_free(m->st);
  free(m->host);
  free(m);
}

const dmit_cfg *dmit_config(const dmit_model *m) { return &m->cfg; }
ut_store *dmit_store(dmit_model *m) { return m->st; }

/* A rank's batch is its share of each domain's batch, domain after domain: the graphs draw
 * their noise by blocks (kit_team_prepare_blocks), and row i's target image, (i + shift
 * batch) mod the batch in the whole batch, is in the same place of another domain's share, so
 * the target-index matrix stays within the rank. Every loss but two is a mean over the rows;
 * the KL term, summed over the batch, is the mean times the whole batch's rows, which the mean
 * over ranks keeps a sum over the whole batch; the diversity term divides two means of the
 * whole batch, which the ranks compute together (kit_team_mean). */
ut_status dmit_set_team(dmit_model *m, const kit_team *team) {
  for (int i = 0; i < UPDATE_COUNT; i++)
    if (m->steps[i].g)
      return ut_fail(UT_ERR_STATE, "dmit_set_team: the training plans are built already; set the team first");
  ut_status st = kit_team_check_batch(team, "DMIT", m->cfg.batch);
  if (st != UT_OK) return st;
  /* The content invariance term compares the domains' moments over the whole batch; a rank's
   * share holds only some of its images, and per-share moments would train another objective
   * than one process does (LORD refuses its term on a team for the same reason). */
  if (team && team->size > 1 && m->cfg.w_content_invariance > 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "DMIT: w_content_invariance (%g) cannot train data-parallel: it matches "
                   "each domain's moments over the whole batch, which no rank's share holds; train without --mpi, or "
                   "with --set w_content_invariance=0", (double)m->cfg.w_content_invariance);
  m->team = team;
  m->rows = kit_team_rows(team, m->cfg.batch);
  return UT_OK;
}

static ut_shape image_shape(const dmit_cfg *c, int64_t n) { return UT_SHAPE(n, c->channels, c->size, c->size); }

/* What one update's forward pass computes, all from the plan's own random draws. */
typedef struct {
  ut_tensor *content, *mu, *logvar, *z;
  ut_tensor *prior1, *prior2;                 /* styles drawn from N(0, I) */
  ut_tensor *fake_prior1, *fake_prior2, *fake_enc, *recon;
} forward_pass;

enum { NEED_RECON = 1, NEED_ENC = 2, NEED_PRIOR2 = 4 };

static void stream(char *buf, const char *tag, const char *what) {
  snprintf(buf, KIT_SCOPE_MAX, "dmit.%s.%s", tag, what);
}

static ut_tensor *code(ut_graph *g, ut_tensor *attr, ut_tensor *style) { return ut_concat(g, attr, style); }

static ut_status forward(ut_graph *g, const dmit_net *n, const step_plan *s, const char *tag, unsigned need,
                         forward_pass *f) {
  const dmit_cfg *c = n->c;
  char name[KIT_SCOPE_MAX];
  int64_t nb = ut_tensor_shape(s->x).d[0]; /* this process's rows */
  *f = (forward_pass){ 0 };
  f->content = dmit_content_encoder(g, n, s->x);
  dmit_style_encoder(g, n, s->x, &f->mu, &f->logvar);
  stream(name, tag, "style");
  f->z = ut_reparameterize(g, f->mu, f->logvar, name);
  stream(name, tag, "prior1");
  f->prior1 = ut_random_normal(g, name, UT_SHAPE(nb, c->n_style));
  stream(name, tag, "dropout_prior1");
  f->fake_prior1 = dmit_decoder(g, n, f->content, code(g, s->a_tgt, f->prior1), name);
  if (need & NEED_PRIOR2) {
    stream(name, tag, "prior2");
    f->prior2 = ut_random_normal(g, name, UT_SHAPE(nb, c->n_style));
    stream(name, tag, "dropout_prior2");
    f->fake_prior2 = dmit_decoder(g, n, f->content, code(g, s->a_tgt, f->prior2), name);
  }
  if (need & NEED_ENC) {
    /* The target image's encoded style: row i of perm picks image (i + shift batch). */
    stream(name, tag, "dropout_enc");
    f->fake_enc = dmit_decoder(g, n, f->content, code(g, s->a_tgt, ut_matmul(g, s->perm, f->z, 0, 0)), name);
  }
  if (need & NEED_RECON) {
    stream(name, tag, "dropout_recon");
    f->recon = dmit_decoder(g, n, f->content, code(g, s->a_src, f->z), name);
  }
  return ut_graph_status(g);
}

static ut_tensor *add(ut_graph *g, ut_tensor *a, ut_tensor *b) { return a ? ut_add(g, a, b) : b; }

/* Hinge losses of one two-scale image discriminator, summed over its scales: real images with
 * their own domain are real, real images with the target domain and the translations are
 * fake at half weight each (update_dis_image). */
static ut_tensor *image_dis_loss(ut_graph *g, const dmit_net *n, const char *prefix, const step_plan *s, ut_tensor *fake) {
  ut_tensor *real_src[2], *real_tgt[2], *fake_tgt[2], *loss = NULL;
  dmit_image_discriminator(g, n, prefix, s->x, s->a_src, real_src);
  dmit_image_discriminator(g, n, prefix, s->x, s->a_tgt, real_tgt);
  dmit_image_discriminator(g, n, prefix, fake, s->a_tgt, fake_tgt);
  for (int k = 0; k < 2; k++) {
    loss = add(g, loss, kit_hinge_real_loss(g, real_src[k]));
    loss = add(g, loss, ut_scale(g, kit_hinge_fake_loss(g, real_tgt[k]), 0.5f));
    loss = add(g, loss, ut_scale(g, kit_hinge_fake_loss(g, fake_tgt[k]), 0.5f));
  }
  return loss;
}

static ut_tensor *image_gen_loss(ut_graph *g, const dmit_net *n, const char *prefix, const step_plan *s, ut_tensor *fake) {
  ut_tensor *d[2];
  dmit_image_discriminator(g, n, prefix, fake, s->a_tgt, d);
  return add(g, kit_hinge_gen_loss(g, d[0]), kit_hinge_gen_loss(g, d[1]));
}

/* 1. The discriminators. The content discriminator learns to tell a content code with its own
 * domain (real) from the same code with the target domain (fake), LSGAN. */
static ut_status build_dis(ut_graph *g, const dmit_net *n, step_plan *s) {
  forward_pass f;
  forward(g, n, s, "dis", NEED_ENC, &f);
  ut_tensor *content = add(g, kit_lsgan_real_loss(g, dmit_content_discriminator(g, n, f.content, s->a_src)),
                           kit_lsgan_fake_loss(g, dmit_content_discriminator(g, n, f.content, s->a_tgt)));
  s->loss[1] = ut_name(content, "dmit.dis_content");
  ut_tensor *loss = add(g, content, image_dis_loss(g, n, DMIT_DIS_PRIOR, s, f.fake_prior1));
  s->loss[0] = ut_name(add(g, loss, image_dis_loss(g, n, DMIT_DIS_ENC, s, f.fake_enc)), "dmit.dis_loss");
  return ut_graph_status(g);
}

/* Not in DMIT (issue 13): the content discriminator, even when it wins, does not make the
 * content encoder drop the domain (docs/dmit.md), so this asks for it directly, as LORD's
 * content invariance term does for the class: the domains' group moment gap (kit_losses.h) of
 * the flattened content codes, every domain's per-dimension mean and second moment the
 * graph's rows'. The rows hold images of every domain, so every domain is in them. */
static ut_tensor *content_moment_gap(ut_graph *g, const dmit_cfg *c, ut_tensor *content, ut_tensor *attr) {
  int64_t rows = content ? ut_tensor_shape(content).d[0] : 0;
  return kit_group_moment_gap(g, ut_reshape(g, content, UT_SHAPE(rows, dmit_content_size(c))), attr);
}

/* 2. The encoders and decoder: adversarial terms, reconstruction, KL (summed over the batch as
 * the official criterion does) and the cycle through the prior-style translation. */
static ut_status build_gen(ut_graph *g, const dmit_net *n, step_plan *s) {
  const dmit_cfg *c = n->c;
  forward_pass f;
  forward(g, n, s, "gen", NEED_ENC | NEED_RECON, &f);
  s->loss[5] = ut_name(
      ut_scale(g, kit_lsgan_real_loss(g, dmit_content_discriminator(g, n, f.content, s->a_tgt)), c->w_adv_content),
      "dmit.adv_content");
  ut_tensor *adv = add(g, s->loss[5], image_gen_loss(g, n, DMIT_DIS_PRIOR, s, f.fake_prior1));
  adv = add(g, adv, image_gen_loss(g, n, DMIT_DIS_ENC, s, f.fake_enc));
  ut_tensor *cyc = dmit_decoder(g, n, dmit_content_encoder(g, n, f.fake_prior1), code(g, s->a_src, f.z), "dmit.gen.dropout_cycle");
  int64_t nb = (int64_t)c->n_domains * c->batch;
  s->loss[1] = ut_name(adv, "dmit.adv");
  s->loss[2] = ut_name(ut_scale(g, ut_l1_loss(g, f.recon, s->x), c->w_rec), "dmit.rec");
  s->loss[3] = ut_name(ut_scale(g, ut_l1_loss(g, cyc, s->x), c->w_cyc), "dmit.cyc");
  s->loss[4] = ut_name(ut_scale(g, kit_kl_normal(g, f.mu, f.logvar), c->w_kl * (float)nb), "dmit.kl");
  ut_tensor *total = add(g, add(g, s->loss[1], s->loss[2]), add(g, s->loss[3], s->loss[4]));
  if (c->w_content_invariance > 0) {
    s->loss[6] = ut_name(ut_scale(g, content_moment_gap(g, c, f.content, s->a_src), c->w_content_invariance),
                         "dmit.content_invariance");
    total = ut_add(g, total, s->loss[6]);
  }
  /* The gradient reaches the content encoder through the domain classifier, which this update
   * does not step (it is not among gen_nets): the encoder learns to confuse it, it does not
   * learn to be confused. */
  if (c->w_domain_confusion > 0) {
    s->loss[7] = ut_name(ut_scale(g, dmit_domain_confusion(g, c, dmit_domain_logits(g, c, f.content)),
                                  c->w_domain_confusion),
                         "dmit.domain_confusion");
    total = ut_add(g, total, s->loss[7]);
  }
  s->loss[0] = ut_name(total, "dmit.gen_loss");
  return ut_graph_status(g);
}

/* 3. The decoder alone: the style encoder must find the prior style in its translation, and
 * two prior styles must give translations apart (the diversity ratio). */
static ut_status build_dec(ut_graph *g, const dmit_net *n, step_plan *s) {
  const dmit_cfg *c = n->c;
  forward_pass f;
  forward(g, n, s, "dec", NEED_PRIOR2, &f);
  ut_tensor *mu_rec, *logvar_rec;
  dmit_style_encoder(g, n, f.fake_prior1, &mu_rec, &logvar_rec);
  ut_tensor *style = ut_scale(g, ut_l1_loss(g, mu_rec, f.prior1), c->w_style);
  ut_tensor *div = dmit_diversity_term(g, s->team, f.prior1, f.prior2, f.fake_prior1, f.fake_prior2);
  s->loss[0] = ut_name(add(g, style, ut_scale(g, div, c->w_div)), "dmit.latent");
  return ut_graph_status(g);
}

ut_tensor *dmit_diversity_term(ut_graph *g, const kit_team *team, ut_tensor *s1, ut_tensor *s2, ut_tensor *fake1,
                               ut_tensor *fake2) {
  return ut_div(g, kit_team_mean(team, g, ut_l1_loss(g, s1, s2)),
                ut_shift(g, kit_team_mean(team, g, ut_l1_loss(g, fake1, fake2)), DIV_EPS));
}

/* 4. The content encoder alone: the content of a translation must be the input's. */
static ut_status build_content(ut_graph *g, const dmit_net *n, step_plan *s) {
  forward_pass f;
  forward(g, n, s, "content", 0, &f);
  ut_tensor *again = dmit_content_encoder(g, n, f.fake_prior1);
  s->loss[0] = ut_name(ut_scale(g, ut_l1_loss(g, f.content, again), n->c->w_content), "dmit.content_loss");
  return ut_graph_status(g);
}

/* 5. The content discriminator alone (cfg.dis_content_steps times per iteration, before the
 * four): its loss of update 1 on the batch's content codes, which need no random draw. */
static ut_status build_dis_content(ut_graph *g, const dmit_net *n, step_plan *s) {
  ut_tensor *content = dmit_content_encoder(g, n, s->x);
  s->loss[0] = ut_name(add(g, kit_lsgan_real_loss(g, dmit_content_discriminator(g, n, content, s->a_src)),
                           kit_lsgan_fake_loss(g, dmit_content_discriminator(g, n, content, s->a_tgt))),
                       "dmit.dis_content_only");
  return ut_graph_status(g);
}

/* 6. The linear domain classifier alone (with w_domain_confusion > 0, once per iteration before
 * the discriminators): the cross-entropy of its logits against each code's own domain. The
 * encoder runs as in inference, its spectral norms frozen at their stored vectors, so this
 * update reads the codes and leaves every tensor of the encoder as it was. */
static ut_status build_domain_cls(ut_graph *g, const dmit_net *n, step_plan *s) {
  const dmit_net frozen = { .c = n->c, .frozen = 1 };
  int64_t rows = ut_tensor_shape(s->x).d[0] / n->c->n_domains;
  s->logits = ut_name(dmit_domain_logits(g, n->c, dmit_content_encoder(g, &frozen, s->x)), "dmit.domain_logits");
  s->loss[0] = ut_name(dmit_domain_cls_loss(g, n->c, s->logits, rows), "dmit.domain_cls");
  return ut_graph_status(g);
}

/* The networks each update trains, each with its own Adam. */
static const char *const dis_nets[] = { DMIT_DIS_CONTENT, DMIT_DIS_PRIOR, DMIT_DIS_ENC, NULL };
static const char *const gen_nets[] = { DMIT_ENC_CONTENT, DMIT_ENC_STYLE, DMIT_DEC, NULL };
static const char *const dec_nets[] = { DMIT_DEC, NULL };
static const char *const content_nets[] = { DMIT_ENC_CONTENT, NULL };
static const char *const dis_content_nets[] = { DMIT_DIS_CONTENT, NULL };
static const char *const domain_cls_nets[] = { DMIT_DOMAIN_CLS, NULL };
static const char *const *const update_nets[UPDATE_COUNT] = { dis_nets, gen_nets, dec_nets, content_nets,
                                                              dis_content_nets, domain_cls_nets };

static ut_status optimise(ut_graph *g, const dmit_cfg *c, step_plan *s, const char *const *nets) {
  ut_tensor_list all = { 0 };
  for (int i = 0; nets[i]; i++) all = i ? ut_params_join(g, all, ut_params(g, nets[i])) : ut_params(g, nets[i]);
  ut_status st = ut_graph_status(g);
  if (st == UT_OK) st = ut_backward(g, s->loss[0], all);
  if (st == UT_OK && !(s->lr = ut_hparam_new(g, "dmit.lr", c->lr))) st = ut_graph_status(g);
  for (int i = 0; st == UT_OK && nets[i]; i++) {
    char name[KIT_SCOPE_MAX];
    snprintf(name, sizeof name, "%sadam", nets[i]);
    st = ut_adam(g, ut_params(g, nets[i]),
                 &(ut_adam_cfg){ .lr_param = s->lr, .beta1 = c->beta1, .beta2 = c->beta2, .name = name });
  }
  return st;
}

static ut_status ensure_step(dmit_model *m, int which) {
  step_plan *s = &m->steps[which];
  if (s->p) return UT_OK;
  step_plan_free(s);
  const dmit_cfg *c = &m->cfg;
  int64_t nb = (int64_t)c->n_domains * m->rows;
  if (!(s->g = ut_graph_new(m->rt, m->st))) return UT_ERR_HOST_MEMORY;
  ut_graph *g = s->g;
  s->team = m->team;
  s->x = ut_input(g, "images", UT_F32, image_shape(c, nb));
  s->a_src = ut_input(g, "attr_source", UT_F32, UT_SHAPE(nb, c->n_domains));
  s->a_tgt = ut_input(g, "attr_target", UT_F32, UT_SHAPE(nb, c->n_domains));
  s->perm = ut_input(g, "target_index", UT_F32, UT_SHAPE(nb, nb));
  dmit_net n = { .c = c, .frozen = 0 };
  static ut_status (*const build[UPDATE_COUNT])(ut_graph *, const dmit_net *, step_plan *) = {
    build_dis, build_gen, build_dec, build_content, build_dis_content, build_domain_cls
  };
  ut_status st = kit_team_prepare_blocks(m->team, g, c->n_domains);
  if (st == UT_OK) st = build[which](g, &n, s);
  if (st == UT_OK) st = optimise(g, c, s, update_nets[which]);
  /* The computed losses in their order, then the logits where there are any. */
  ut_tensor *outputs[sizeof s->loss / sizeof s->loss[0] + 1];
  int n_outputs = 0;
  for (int i = 0; i < update_losses[which]; i++)
    if (s->loss[i]) outputs[n_outputs++] = s->loss[i];
  if (s->logits) outputs[n_outputs++] = s->logits;
  if (st == UT_OK && !(s->p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = outputs, .n_outputs = n_outputs })))
    st = UT_ERR_STATE;
  if (st != UT_OK) ut_error_prefix("DMIT %s update", update_names[which]);
  return st;
}

/* The source and target one-hot attributes and the target-index matrix of a batch (of this
 * process's rows: the batch, or the rank's share of each domain's). */
static ut_status batch_labels(dmit_model *m, const dmit_batch *b, float **a_src, float **a_tgt, float **perm) {
  const dmit_cfg *c = &m->cfg;
  int n = c->n_domains, rows = m->rows, nb = n * rows;
  if (b->shift < 1 || b->shift >= n)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "DMIT batch: shift %d must be in [1, %d]", b->shift, n - 1);
  *a_src = m->host;
  *a_tgt = m->host + (int64_t)nb * n;
  *perm = m->host + (int64_t)2 * nb * n;
  memset(m->host, 0, (size_t)nb * (2 * n + nb) * sizeof *m->host);
  for (int i = 0; i < nb; i++) {
    int t = (i + b->shift * rows) % nb;
    (*a_src)[i * n + i / rows] = 1;
    (*a_tgt)[i * n + t / rows] = 1;
    (*perm)[(int64_t)i * nb + t] = 1;
  }
  return UT_OK;
}

/* The share of rows, domain after domain `rows` each, whose largest logit is their own domain's
 * (the first of equal largest ones). */
static float domain_accuracy(const float *logits, int n_domains, int rows) {
  int nb = n_domains * rows, right = 0;
  for (int i = 0; i < nb; i++) {
    int best = 0;
    for (int k = 1; k < n_domains; k++)
      if (logits[i * n_domains + k] > logits[i * n_domains + best]) best = k;
    right += best == i / rows;
  }
  return (float)right / (float)nb;
}

ut_status dmit_update(dmit_model *m, int which, const dmit_batch *b, float lr_scale, float *out) {
  if (!m || !b || !b->images || !out || which < 0 || which >= UPDATE_COUNT)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "dmit_update: no model, batch or output, or no update %d", which);
  float *a_src = NULL, *a_tgt = NULL, *perm = NULL;
  ut_status st = batch_labels(m, b, &a_src, &a_tgt, &perm);
  if (st == UT_OK) st = ensure_step(m, which);
  step_plan *s = &m->steps[which];
  if (st != UT_OK) return st;
  ut_hparam_set(s->lr, m->cfg.lr * lr_scale);
  st = ut_upload(s->p, s->x, b->images);
  /* A content discriminator of one block (its head) reads no domain, and its update alone
   * then none at all; the domain classifier's labels are fixed in its plan. */
  int attrs = which != UPDATE_DOMAIN_CLS && (which != UPDATE_DIS_CONTENT || m->cfg.content_dis_blocks > 1);
  if (st == UT_OK && attrs) st = ut_upload(s->p, s->a_tgt, a_tgt);
  /* The decoder's and content encoder's updates neither reconstruct nor borrow styles. */
  if (st == UT_OK && attrs && (which <= UPDATE_GEN || which == UPDATE_DIS_CONTENT)) st = ut_upload(s->p, s->a_src, a_src);
  if (st == UT_OK && which <= UPDATE_GEN) st = ut_upload(s->p, s->perm, perm);
  if (st == UT_OK) st = ut_plan_run(s->p);
  for (int i = 0; i < update_losses[which]; i++) out[i] = 0;
  for (int i = 0; st == UT_OK && i < update_losses[which]; i++)
    if (s->loss[i]) st = ut_read(s->p, s->loss[i], &out[i]);
  if (st == UT_OK && s->logits) {
    float *logits = perm + (int64_t)m->cfg.n_domains * m->rows * m->cfg.n_domains * m->rows;
    st = ut_read(s->p, s->logits, logits);
    if (st == UT_OK) out[1] = domain_accuracy(logits, m->cfg.n_domains, m->rows);
  }
  return st;
}

ut_status dmit_train_step(dmit_model *m, const dmit_batch *b, float lr_scale, dmit_losses *out) {
  float dis[2] = { 0 }, gen[DMIT_UPDATE_LOSSES_MAX] = { 0 }, latent = 0, content = 0, extra = 0, domain_cls[2] = { 0 };
  ut_status st = UT_OK;
  for (int i = 0; st == UT_OK && i < m->cfg.dis_content_steps; i++) st = dmit_update(m, UPDATE_DIS_CONTENT, b, lr_scale, &extra);
  if (st == UT_OK && m->cfg.w_domain_confusion > 0) st = dmit_update(m, UPDATE_DOMAIN_CLS, b, lr_scale, domain_cls);
  if (st == UT_OK) st = dmit_update(m, UPDATE_DIS, b, lr_scale, dis);
  if (st == UT_OK) st = dmit_update(m, UPDATE_GEN, b, lr_scale, gen);
  if (st == UT_OK) st = dmit_update(m, UPDATE_DEC, b, lr_scale, &latent);
  if (st == UT_OK) st = dmit_update(m, UPDATE_CONTENT, b, lr_scale, &content);
  if (st == UT_OK && out)
    *out = (dmit_losses){ .dis = dis[0], .dis_content = dis[1], .gen = gen[0], .adv = gen[1], .rec = gen[2],
                          .cyc = gen[3], .kl = gen[4], .adv_content = gen[5], .content_invariance = gen[6],
                          .domain_confusion = gen[7], .latent = latent, .content = content,
                          .domain_cls = domain_cls[0], .domain_cls_accuracy = domain_cls[1] };
  return st;
}

/* ---- inference -------------------------------------------------------------------------------- */

static ut_status ensure_translate(dmit_model *m) {
  kit_infer *f = &m->translate;
  if (kit_infer_ready(f)) return UT_OK;
  kit_infer_free(f);
  const dmit_cfg *c = &m->cfg;
  dmit_net n = { .c = c, .frozen = 1 };
  if (!(f->g = ut_graph_new(m->rt, m->st))) return UT_ERR_HOST_MEMORY;
  f->in[0] = ut_input(f->g, "images", UT_F32, image_shape(c, INFER_CHUNK));
  f->in[1] = ut_input(f->g, "codes", UT_F32, UT_SHAPE(INFER_CHUNK, c->n_domains + c->n_style));
  f->n_in = 2;
  ut_tensor *content = dmit_content_encoder(f->g, &n, kit_to_signed(f->g, f->in[0]));
  f->out[0] = kit_to_unit(f->g, dmit_decoder(f->g, &n, content, f->in[1], NULL));
  f->n_out = 1;
  return kit_infer_compile(f);
}

static ut_status ensure_style(dmit_model *m) {
  kit_infer *f = &m->style;
  if (kit_infer_ready(f)) return UT_OK;
  kit_infer_free(f);
  const dmit_cfg *c = &m->cfg;
  dmit_net n = { .c = c, .frozen = 1 };
  if (!(f->g = ut_graph_new(m->rt, m->st))) return UT_ERR_HOST_MEMORY;
  f->in[0] = ut_input(f->g, "images", UT_F32, image_shape(c, INFER_CHUNK));
  f->n_in = 1;
  ut_tensor *mu, *logvar;
  dmit_style_encoder(f->g, &n, kit_to_signed(f->g, f->in[0]), &mu, &logvar);
  f->out[0] = mu;
  f->n_out = 1;
  return kit_infer_compile(f);
}

static ut_status ensure_content(dmit_model *m) {
  kit_infer *f = &m->content;
  if (kit_infer_ready(f)) return UT_OK;
  kit_infer_free(f);
  const dmit_cfg *c = &m->cfg;
  dmit_net n = { .c = c, .frozen = 1 };
  if (!(f->g = ut_graph_new(m->rt, m->st))) return UT_ERR_HOST_MEMORY;
  f->in[0] = ut_input(f->g, "images", UT_F32, image_shape(c, INFER_CHUNK));
  f->n_in = 1;
  f->out[0] = dmit_content_encoder(f->g, &n, kit_to_signed(f->g, f->in[0]));
  f->n_out = 1;
  return kit_infer_compile(f);
}

static ut_status ensure_dis_content(dmit_model *m) {
  kit_infer *f = &m->dis_content;
  if (kit_infer_ready(f)) return UT_OK;
  kit_infer_free(f);
  const dmit_cfg *c = &m->cfg;
  dmit_net n = { .c = c, .frozen = 1 };
  int64_t side = c->size >> c->down_blocks;
  if (!(f->g = ut_graph_new(m->rt, m->st))) return UT_ERR_HOST_MEMORY;
  f->in[0] = ut_input(f->g, "content", UT_F32, UT_SHAPE(INFER_CHUNK, dmit_content_size(c) / (side * side), side, side));
  f->in[1] = ut_input(f->g, "attr", UT_F32, UT_SHAPE(INFER_CHUNK, c->n_domains));
  /* With no conditional block past its head the discriminator does not read the domain, and
   * the plan has no such input to fill. */
  f->n_in = c->content_dis_blocks > 1 ? 2 : 1;
  f->out[0] = dmit_content_discriminator(f->g, &n, f->in[0], f->in[1]);
  f->n_out = 1;
  return kit_infer_compile(f);
}

ut_status dmit_content_dis_score(dmit_model *m, const float *codes, int64_t n, int domain, float *out) {
  if (!m || !codes || !out || n < 0 || domain < 0 || domain >= m->cfg.n_domains)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "dmit_content_dis_score: bad arguments (domain %d of %d, %lld codes)", domain,
                   m ? m->cfg.n_domains : 0, (long long)n);
  const dmit_cfg *c = &m->cfg;
  int64_t map = (c->size >> c->down_blocks) >> c->content_dis_blocks;
  map *= map;
  float *attr = calloc((size_t)(n > 0 ? n : 1) * (size_t)c->n_domains, sizeof *attr);
  float *logits = malloc((size_t)(n > 0 ? n : 1) * (size_t)map * sizeof *logits);
  ut_status st = attr && logits ? ensure_dis_content(m) : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  for (int64_t i = 0; i < n && attr; i++) attr[i * c->n_domains + domain] = 1;
  if (st == UT_OK) st = kit_infer_run(&m->dis_content, (const float *[]){ codes, attr }, &logits, n);
  for (int64_t i = 0; st == UT_OK && i < n; i++) {
    double sum = 0;
    for (int64_t k = 0; k < map; k++) sum += logits[i * map + k];
    out[i] = (float)(sum / (double)map);
  }
  free(attr);
  free(logits);
  return st;
}

int64_t dmit_content_size(const dmit_cfg *c) {
  int64_t side = c->size >> c->down_blocks, ch = c->nef;
  for (int i = 0; i < c->down_blocks; i++) ch = 2 * ch < 1024 ? 2 * ch : 1024;
  return ch * side * side;
}

ut_status dmit_encode_content(dmit_model *m, const float *images, int64_t n, float *out) {
  if (!m || !images || !out || n < 0) return ut_fail(UT_ERR_INVALID_ARGUMENT, "dmit_encode_content: bad arguments");
  ut_status st = ensure_content(m);
  return st == UT_OK ? kit_infer_run(&m->content, &images, &out, n) : st;
}

ut_status dmit_translate(dmit_model *m, const float *images, int64_t n, int to, const float *styles, float *out) {
  if (!m || !images || !styles || !out || n < 0 || to < 0 || to >= m->cfg.n_domains)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "dmit_translate: bad arguments (domain %d of %d, %lld images)", to,
                   m ? m->cfg.n_domains : 0, (long long)n);
  int k = m->cfg.n_domains + m->cfg.n_style;
  float *codes = calloc((size_t)(n > 0 ? n : 1) * (size_t)k, sizeof *codes);
  if (!codes) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the style codes");
  for (int64_t i = 0; i < n; i++) {
    codes[i * k + to] = 1;
    memcpy(codes + i * k + m->cfg.n_domains, styles + i * m->cfg.n_style, (size_t)m->cfg.n_style * sizeof *codes);
  }
  ut_status st = ensure_translate(m);
  if (st == UT_OK) st = kit_infer_run(&m->translate, (const float *[]){ images, codes }, &out, n);
  free(codes);
  return st;
}

ut_status dmit_encode_style(dmit_model *m, const float *images, int64_t n, float *styles) {
  if (!m || !images || !styles || n < 0) return ut_fail(UT_ERR_INVALID_ARGUMENT, "dmit_encode_style: bad arguments");
  ut_status st = ensure_style(m);
  return st == UT_OK ? kit_infer_run(&m->style, &images, &styles, n) : st;
}

void dmit_prior_styles(const dmit_cfg *cfg, uint64_t seed, int64_t n, float *styles) {
  uint64_t s = seed ^ 0x646d6974ull;
  for (int64_t i = 0; i < n * cfg->n_style; i++) {
    /* Box-Muller on two uniforms in (0, 1]. */
    double u1 = ((double)(kit_next64(&s) >> 11) + 1.0) / 9007199254740992.0;
    double u2 = (double)(kit_next64(&s) >> 11) / 9007199254740992.0;
    styles[i] = (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
  }
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

ut_status dmit_save(dmit_model *m, const char *path) {
  return checkpoint_config_save(m->st, path, "dmit", kit_config_to_json(dmit_cfg_table(), &m->cfg));
}

ut_status dmit_read_config(ut_runtime *rt, const char *path, dmit_cfg *cfg) {
  char *json = NULL;
  ut_status st = checkpoint_config_json(rt, path, "dmit", &json);
  if (st == UT_OK && (st = kit_config_from_json(dmit_cfg_table(), json, cfg)) == UT_OK) st = dmit_cfg_check(cfg);
  if (st != UT_OK) ut_error_prefix("%s", path);
  free(json);
  return st;
}

ut_status dmit_load(dmit_model *m, const char *path) {
  dmit_cfg saved = m->cfg;
  ut_status st = dmit_read_config(m->rt, path, &saved);
  if (st != UT_OK) return st;
  /* How long to train may change between runs; the model may not. */
  saved.epochs = m->cfg.epochs;
  saved.decay_epochs = m->cfg.decay_epochs;
  char why[256];
  if (kit_config_differs(dmit_cfg_table(), &saved, &m->cfg, why, sizeof why))
    return ut_fail(UT_ERR_MISMATCH, "%s was trained with another DMIT configuration: its %s", path, why);
  return ut_store_load(m->st, path);
}
