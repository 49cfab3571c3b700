/* The CMI-VAE model (cmivae.h): its store, the discriminator and encoder-generator update
 * plans, the inference plans and checkpoints. Every plan has its own graph over the one store,
 * so a parameter made by any of them is the same tensor. */
#include <stdlib.h>
#include <string.h>

#include "checkpoint_config.h"
#include "cmivae_colour.h"
#include "cmivae_internal.h"
#include "kit_blocks.h"
#include "kit_infer.h"
#include "kit_losses.h"

#define INFER_CHUNK 16
#define MAX_STEP_LOSSES 5

typedef struct {
  ut_graph *g;
  ut_plan *p;
  ut_tensor *x, *f, *ft, *c, *ct; /* images, their features and classes, x~'s features and classes */
  ut_tensor *loss[MAX_STEP_LOSSES];
  int n_loss;
} step_plan;

enum { INFER_ENCODE, INFER_GENERATE, INFER_CODE, INFER_KINDS };

struct cmivae_model {
  ut_runtime *rt;
  ut_store *st;
  cmivae_cfg cfg;
  step_plan dis, gen;
  kit_infer infer[INFER_KINDS];
  const kit_team *team;
  int rows; /* images per training step on this process: the batch, or its share on a team */
};

cmivae_model *cmivae_new(ut_runtime *rt, const cmivae_cfg *cfg) {
  if (!rt || !cfg) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "cmivae_new: no runtime or configuration");
    return NULL;
  }
  if (cmivae_cfg_check(cfg) != UT_OK) return NULL;
  cmivae_model *m = calloc(1, sizeof *m);
  if (!m || !(m->st = ut_store_new(rt, cfg->seed))) {
    free(m);
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the CMI-VAE model");
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

void cmivae_free(cmivae_model *m) {
  if (!m) return;
  step_plan_free(&m->dis);
  step_plan_free(&m->gen);
  for (int k = 0; k < INFER_KINDS; k++) kit_infer_free(&m->infer[k]);
  ut_store_free(m->st);
  free(m);
}

const cmivae_cfg *cmivae_config(const cmivae_model *m) { return &m->cfg; }
ut_store *cmivae_store(cmivae_model *m) { return m->st; }

ut_status cmivae_set_team(cmivae_model *m, const kit_team *team) {
  if (m->dis.g || m->gen.g)
    return ut_fail(UT_ERR_STATE, "cmivae_set_team: the training plans are built already; set the team first");
  ut_status st = kit_team_check_batch(team, "CMI-VAE", m->cfg.batch);
  if (st != UT_OK) return st;
  m->team = team;
  m->rows = kit_team_rows(team, m->cfg.batch);
  return UT_OK;
}

static ut_status adam(ut_graph *g, const cmivae_cfg *c, const char *prefix, const char *name) {
  ut_tensor_list params = ut_params(g, prefix);
  ut_status st = ut_graph_status(g);
  if (st == UT_OK) st = ut_adam(g, params, &(ut_adam_cfg){ .lr = c->lr, .beta1 = c->beta1, .beta2 = c->beta2, .name = name });
  return st;
}

/* The fused image G(z1 of x, z2 of x~) with z1 drawn by reparameterisation. */
typedef struct {
  ut_tensor *mu, *logvar, *z1, *z2, *z2t, *fused;
} forward_parts;

static forward_parts forward(ut_graph *g, const cmivae_cfg *c, step_plan *s, const char *noise) {
  forward_parts p = { 0 };
  cmivae_e1(g, c, s->x, &p.mu, &p.logvar);
  p.z1 = ut_reparameterize(g, p.mu, p.logvar, noise);
  p.z2 = cmivae_e2(g, c, s->f);
  p.z2t = cmivae_e2(g, c, s->ft);
  p.fused = cmivae_g(g, c, p.z1, p.z2t);
  return p;
}

/* The paper's L_D: real pairs (z2 of x, x) against fused ones (z2~, x^), binary cross-entropy.
 * Only D is differentiated. */
static ut_status build_dis(cmivae_model *m, step_plan *s) {
  const cmivae_cfg *c = &m->cfg;
  ut_graph *g = s->g;
  forward_parts p = forward(g, c, s, "cmivae.noise.dis_z1");
  ut_tensor *real = ut_bce_with_logits_const(g, cmivae_d(g, c, p.z2, s->x), 1.0f);
  ut_tensor *fake = ut_bce_with_logits_const(g, cmivae_d(g, c, p.z2t, p.fused), 0.0f);
  s->loss[0] = ut_name(ut_add(g, real, fake), "cmivae.dis_loss");
  s->n_loss = 1;
  ut_status st = ut_graph_status(g);
  if (st == UT_OK) st = ut_backward(g, s->loss[0], ut_params(g, CMIVAE_DIS_PREFIX));
  return st == UT_OK ? adam(g, c, CMIVAE_DIS_PREFIX, "cmivae.dis.adam") : st;
}

/* L = L_VAE + lambda3 L_f + lambda4 L_GAN for E1, E2, G and q. */
static ut_status build_gen(cmivae_model *m, step_plan *s) {
  const cmivae_cfg *c = &m->cfg;
  ut_graph *g = s->g;
  forward_parts p = forward(g, c, s, "cmivae.noise.gen_z1");
  ut_tensor *recon = cmivae_g(g, c, p.z1, p.z2);
  /* The per-image sum of squared errors: a Gaussian likelihood of fixed variance. */
  float pixels = (float)c->channels * (float)c->size * (float)c->size;
  s->loss[1] = ut_name(ut_scale(g, ut_mse_loss(g, recon, s->x), c->w_recon * pixels), "cmivae.recon");
  s->loss[2] = ut_name(ut_scale(g, kit_kl_normal(g, p.mu, p.logvar), c->w_kl), "cmivae.kl");
  ut_tensor *lf, *q_real = NULL;
  if (c->feature == CMIVAE_FEATURE_HUE) { /* ||f(x^) - f(x~)||^2 per image: the mean over 2 values, times 2 */
    lf = ut_scale(g, ut_mse_loss(g, cmivae_soft_hue(g, p.fused), s->ft), 2.0f);
  } else {
    /* q learns the class of real images from (z1, x), the posterior the bound wants, and only
     * there; the encoders and G then make fused images that this q reads as x~'s class. Trained
     * on fused images as well, q and G agreed on marks that q reads and nothing else sees. */
    lf = ut_cross_entropy(g, cmivae_q(g, c, p.z1, p.fused), s->ct);
    q_real = ut_cross_entropy(g, cmivae_q(g, c, p.z1, s->x), s->c);
  }
  s->loss[3] = ut_name(ut_scale(g, lf, c->w_f), "cmivae.feature");
  /* Without the GAN (w_gan 0) D is never built or trained, and its term is reported as 0. */
  const float zero = 0.0f;
  s->loss[4] = c->w_gan > 0 ? ut_scale(g, ut_bce_with_logits_const(g, cmivae_d(g, c, p.z2t, p.fused), 1.0f), c->w_gan)
                            : ut_constant(g, UT_SHAPE(1), &zero);
  ut_name(s->loss[4], "cmivae.gan");
  ut_tensor *total = ut_add(g, ut_add(g, s->loss[1], s->loss[2]), s->loss[4]);
  if (c->cmi) total = ut_add(g, total, s->loss[3]);
  s->loss[0] = ut_name(total, "cmivae.total");
  s->n_loss = 5;
  ut_status st = ut_graph_status(g);
  if (st == UT_OK) st = ut_backward(g, s->loss[0], ut_params(g, CMIVAE_GEN_PREFIX));
  if (st == UT_OK) st = adam(g, c, CMIVAE_GEN_PREFIX, "cmivae.gen.adam");
  if (st == UT_OK && q_real) st = ut_backward(g, q_real, ut_params(g, CMIVAE_Q_PREFIX));
  if (st == UT_OK && q_real) st = adam(g, c, CMIVAE_Q_PREFIX, "cmivae.q.adam");
  return st;
}

static ut_status ensure_step(cmivae_model *m, int which) {
  step_plan *s = which ? &m->gen : &m->dis;
  if (s->p) return UT_OK;
  step_plan_free(s);
  const cmivae_cfg *c = &m->cfg;
  if (!(s->g = ut_graph_new(m->rt, m->st))) return UT_ERR_HOST_MEMORY;
  int64_t B = m->rows, F = cmivae_feature_width(c);
  s->x = ut_input(s->g, "images", UT_F32, UT_SHAPE(B, c->channels, c->size, c->size));
  s->f = ut_input(s->g, "features", UT_F32, UT_SHAPE(B, F));
  s->ft = ut_input(s->g, "fuse_features", UT_F32, UT_SHAPE(B, F));
  if (which && c->feature == CMIVAE_FEATURE_CLASS) {
    s->c = ut_input(s->g, "classes", UT_I32, UT_SHAPE(B));
    s->ct = ut_input(s->g, "fuse_classes", UT_I32, UT_SHAPE(B));
  }
  ut_status st = kit_team_prepare(m->team, s->g);
  if (st == UT_OK) st = which ? build_gen(m, s) : build_dis(m, s);
  if (st == UT_OK && !(s->p = ut_plan_compile(s->g, &(ut_plan_cfg){ .outputs = s->loss, .n_outputs = s->n_loss })))
    st = UT_ERR_STATE;
  if (st != UT_OK) ut_error_prefix("CMI-VAE %s update", which ? "encoder and generator" : "discriminator");
  return st;
}

static ut_status run_step(step_plan *s, const cmivae_batch *b, float *losses) {
  ut_status st = ut_upload(s->p, s->x, b->images);
  if (st == UT_OK) st = ut_upload(s->p, s->f, b->features);
  if (st == UT_OK) st = ut_upload(s->p, s->ft, b->fuse_features);
  if (st == UT_OK && s->c) st = ut_upload(s->p, s->c, b->classes);
  if (st == UT_OK && s->ct) st = ut_upload(s->p, s->ct, b->fuse_classes);
  if (st == UT_OK) st = ut_plan_run(s->p);
  for (int i = 0; st == UT_OK && i < s->n_loss; i++) st = ut_read(s->p, s->loss[i], &losses[i]);
  return st;
}

ut_status cmivae_train_step(cmivae_model *m, const cmivae_batch *b, cmivae_losses *out) {
  if (!m || !b || !b->images || !b->features || !b->fuse_features ||
      (m->cfg.feature == CMIVAE_FEATURE_CLASS && (!b->classes || !b->fuse_classes)))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "cmivae_train_step: no model, or a batch without images, features, the fused "
                   "images' features or (class feature) the classes of both");
  float dis = 0, gen[MAX_STEP_LOSSES] = { 0 };
  ut_status st = UT_OK;
  if (m->cfg.w_gan > 0 && (st = ensure_step(m, 0)) == UT_OK) st = run_step(&m->dis, b, &dis);
  if (st == UT_OK) st = ensure_step(m, 1);
  if (st == UT_OK) st = run_step(&m->gen, b, gen);
  if (st == UT_OK && out)
    *out = (cmivae_losses){ .dis = dis, .total = gen[0], .recon = gen[1], .kl = gen[2], .feature = gen[3], .gan = gen[4] };
  return st;
}

/* ---- inference -------------------------------------------------------------------------------- */

static ut_status ensure_infer(cmivae_model *m, int kind) {
  kit_infer *f = &m->infer[kind];
  if (kit_infer_ready(f)) return UT_OK;
  kit_infer_free(f);
  const cmivae_cfg *c = &m->cfg;
  if (!(f->g = ut_graph_new(m->rt, m->st))) return UT_ERR_HOST_MEMORY;
  ut_shape feat = UT_SHAPE(INFER_CHUNK, cmivae_feature_width(c));
  if (kind == INFER_ENCODE) {
    f->in[0] = ut_input(f->g, "images", UT_F32, UT_SHAPE(INFER_CHUNK, c->channels, c->size, c->size));
    f->n_in = 1;
    ut_tensor *logvar;
    cmivae_e1(f->g, c, kit_to_signed(f->g, f->in[0]), &f->out[0], &logvar);
  } else if (kind == INFER_GENERATE) {
    f->in[0] = ut_input(f->g, "z1", UT_F32, UT_SHAPE(INFER_CHUNK, c->z1_dim));
    f->in[1] = ut_input(f->g, "features", UT_F32, feat);
    f->n_in = 2;
    f->out[0] = kit_to_unit(f->g, cmivae_g(f->g, c, f->in[0], cmivae_e2(f->g, c, f->in[1])));
  } else {
    f->in[0] = ut_input(f->g, "features", UT_F32, feat);
    f->n_in = 1;
    f->out[0] = cmivae_e2(f->g, c, f->in[0]);
  }
  f->n_out = 1;
  return kit_infer_compile(f);
}

static ut_status infer(cmivae_model *m, int kind, const float *const *in, float *out, int64_t n) {
  if (!m || !out || n < 0) return ut_fail(UT_ERR_INVALID_ARGUMENT, "CMI-VAE inference: bad arguments");
  for (int i = 0; i < (kind == INFER_GENERATE ? 2 : 1); i++)
    if (!in[i]) return ut_fail(UT_ERR_INVALID_ARGUMENT, "CMI-VAE inference: an input is missing");
  ut_status st = ensure_infer(m, kind);
  return st == UT_OK ? kit_infer_run(&m->infer[kind], in, &out, n) : st;
}

ut_status cmivae_encode(cmivae_model *m, const float *images, int64_t n, float *z1) {
  return infer(m, INFER_ENCODE, (const float *const[]){ images }, z1, n);
}

ut_status cmivae_generate(cmivae_model *m, const float *z1, const float *features, int64_t n, float *out) {
  return infer(m, INFER_GENERATE, (const float *const[]){ z1, features }, out, n);
}

ut_status cmivae_feature_code(cmivae_model *m, const float *features, int64_t n, float *z2) {
  return infer(m, INFER_CODE, (const float *const[]){ features }, z2, n);
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

ut_status cmivae_save(cmivae_model *m, const char *path) {
  return checkpoint_config_save(m->st, path, "cmivae", kit_config_to_json(cmivae_cfg_table(), &m->cfg));
}

ut_status cmivae_read_config(ut_runtime *rt, const char *path, cmivae_cfg *cfg) {
  char *json = NULL;
  ut_status st = checkpoint_config_json(rt, path, "cmivae", &json);
  if (st == UT_OK && (st = kit_config_from_json(cmivae_cfg_table(), json, cfg)) == UT_OK) st = cmivae_cfg_check(cfg);
  if (st != UT_OK) ut_error_prefix("%s", path);
  free(json);
  return st;
}

ut_status cmivae_load(cmivae_model *m, const char *path) {
  cmivae_cfg saved = m->cfg;
  ut_status st = cmivae_read_config(m->rt, path, &saved);
  if (st != UT_OK) return st;
  saved.epochs = m->cfg.epochs; /* how long to train may change between runs; the model may not */
  /* Nor may the weights of E1, E2 and G's loss: they shape no tensor. w_gan may not, since D
   * exists only when it is above 0. */
  saved.w_recon = m->cfg.w_recon;
  saved.w_kl = m->cfg.w_kl;
  saved.w_f = m->cfg.w_f;
  char why[256];
  if (kit_config_differs(cmivae_cfg_table(), &saved, &m->cfg, why, sizeof why))
    return ut_fail(UT_ERR_MISMATCH, "%s was trained with another CMI-VAE configuration: its %s", path, why);
  return ut_store_load(m->st, path);
}
