/* The UNIT model (unit.h): its store, the discriminator and generator update plans, the
 * inference plans and checkpoints. Every plan has its own graph over the one store, so a
 * parameter made by any of them is the same tensor. */
#include <stdlib.h>
#include <string.h>

#include "checkpoint_config.h"
#include "kit_blocks.h"
#include "kit_infer.h"
#include "kit_losses.h"
#include "unit_internal.h"

#define INFER_CHUNK 16

typedef struct {
  ut_graph *g;
  ut_plan *p;
  ut_tensor *a, *b;
  ut_tensor *loss[5]; /* the plan's total, then (generator) its weighted gan, recon, cycle, kl terms */
  int n_loss;
} step_plan;

/* Inference plans: [from][to] translations, and [from][2] cycles. */
struct unit_model {
  ut_runtime *rt;
  ut_store *st;
  unit_cfg cfg;
  step_plan dis, gen;
  kit_infer infer[2][3];
  const kit_team *team;
  int rows; /* images of each domain per training step on this process: the batch, or its share */
};

unit_model *unit_new(ut_runtime *rt, const unit_cfg *cfg) {
  if (!rt || !cfg) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "unit_new: no runtime or configuration");
    return NULL;
  }
  if (unit_cfg_check(cfg) != UT_OK) return NULL;
  unit_model *m = calloc(1, sizeof *m);
  if (!m || !(m->st = ut_store_new(rt, cfg->seed))) {
    free(m);
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the UNIT model");
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

void unit_free(unit_model *m) {
  if (!m) return;
  step_plan_free(&m->dis);
  step_plan_free(&m->gen);
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 3; k++) kit_infer_free(&m->infer[i][k]);
  ut_store_free(m->st);
  free(m);
}

const unit_cfg *unit_config(const unit_model *m) { return &m->cfg; }
ut_store *unit_store(unit_model *m) { return m->st; }

ut_status unit_set_team(unit_model *m, const kit_team *team) {
  if (m->dis.g || m->gen.g)
    return ut_fail(UT_ERR_STATE, "unit_set_team: the training plans are built already; set the team first");
  ut_status st = kit_team_check_batch(team, "UNIT", m->cfg.batch);
  if (st != UT_OK) return st;
  m->team = team;
  m->rows = kit_team_rows(team, m->cfg.batch);
  return UT_OK;
}

static ut_shape image_shape(const unit_cfg *c, int64_t n) { return UT_SHAPE(n, c->channels, c->size, c->size); }

static ut_status adam(ut_graph *g, const unit_cfg *c, const char *prefix, const char *name) {
  ut_tensor_list params = ut_params(g, prefix);
  ut_status st = ut_graph_status(g);
  if (st == UT_OK) st = ut_adam(g, params, &(ut_adam_cfg){ .lr = c->lr, .beta1 = c->beta1, .beta2 = c->beta2,
                                                           .weight_decay = c->weight_decay, .name = name });
  return st;
}

/* cocogan_trainer.dis_update: both discriminators on real images (target 1) and on the
 * translations into their domain (target 0), BCE on every logit, times the GAN weight. The
 * official code lets this loss reach the generator and zeroes those gradients before the
 * generator's update; here only the discriminator is differentiated. */
static ut_status build_dis(unit_model *m, step_plan *s) {
  const unit_cfg *c = &m->cfg;
  ut_graph *g = s->g;
  ut_tensor *x[2] = { s->a, s->b };
  ut_tensor *fake[2];
  for (int d = 0; d < 2; d++) {
    ut_tensor *code = unit_encode(g, c, x[d], d, d == UNIT_A ? "unit.noise.dis_a" : "unit.noise.dis_b");
    fake[1 - d] = unit_decode_domain(g, c, unit_decode_shared(g, c, code), 1 - d);
  }
  ut_tensor *loss = NULL;
  for (int d = 0; d < 2; d++) {
    ut_tensor *real_loss = ut_bce_with_logits_const(g, unit_discriminate(g, c, x[d], d), 1.0f);
    ut_tensor *fake_loss = ut_bce_with_logits_const(g, unit_discriminate(g, c, fake[d], d), 0.0f);
    ut_tensor *both = ut_add(g, real_loss, fake_loss);
    loss = loss ? ut_add(g, loss, both) : both;
  }
  s->loss[0] = ut_name(ut_scale(g, loss, c->w_gan), "unit.dis_loss");
  s->n_loss = 1;
  ut_status st = ut_graph_status(g);
  if (st == UT_OK) st = ut_backward(g, s->loss[0], ut_params(g, UNIT_DIS_PREFIX));
  return st == UT_OK ? adam(g, c, UNIT_DIS_PREFIX, "unit.dis.adam") : st;
}

static ut_tensor *sum2(ut_graph *g, ut_tensor *x, ut_tensor *y) { return ut_add(g, x, y); }

/* cocogan_trainer.gen_update: adversarial (translations judged real), within-domain
 * reconstruction, cycle reconstruction and the KL terms mean(z^2) of the noisy codes. The
 * official code adds the KL of the concatenated code twice: with equal batches that is
 * KL(code_a) + KL(code_b). */
static ut_status build_gen(unit_model *m, step_plan *s) {
  const unit_cfg *c = &m->cfg;
  ut_graph *g = s->g;
  ut_tensor *x[2] = { s->a, s->b }, *code[2], *own[2], *other[2], *cyc_code[2], *cycle[2];
  static const char *noise[2] = { "unit.noise.gen_a", "unit.noise.gen_b" };
  static const char *cyc_noise[2] = { "unit.noise.cycle_a", "unit.noise.cycle_b" };
  for (int d = 0; d < 2; d++) {
    code[d] = unit_encode(g, c, x[d], d, noise[d]);
    ut_tensor *h = unit_decode_shared(g, c, code[d]);
    own[d] = unit_decode_domain(g, c, h, d);        /* x_aa, x_bb */
    other[d] = unit_decode_domain(g, c, h, 1 - d);  /* x_ab, x_ba */
  }
  for (int d = 0; d < 2; d++) {
    /* other[d] is in domain 1 - d: encode it there and decode back into d. */
    cyc_code[d] = unit_encode(g, c, other[d], 1 - d, cyc_noise[d]);
    cycle[d] = unit_decode_domain(g, c, unit_decode_shared(g, c, cyc_code[d]), d);
  }
  ut_tensor *gan = sum2(g, ut_bce_with_logits_const(g, unit_discriminate(g, c, other[UNIT_B], UNIT_A), 1.0f),
                        ut_bce_with_logits_const(g, unit_discriminate(g, c, other[UNIT_A], UNIT_B), 1.0f));
  ut_tensor *recon = sum2(g, ut_l1_loss(g, own[UNIT_A], x[UNIT_A]), ut_l1_loss(g, own[UNIT_B], x[UNIT_B]));
  ut_tensor *cyc = sum2(g, ut_l1_loss(g, cycle[UNIT_A], x[UNIT_A]), ut_l1_loss(g, cycle[UNIT_B], x[UNIT_B]));
  ut_tensor *kl = sum2(g, ut_scale(g, sum2(g, kit_kl_unit_variance(g, code[0]), kit_kl_unit_variance(g, code[1])), c->w_kl),
                       ut_scale(g, sum2(g, kit_kl_unit_variance(g, cyc_code[0]), kit_kl_unit_variance(g, cyc_code[1])),
                                c->w_kl_cycle));
  s->loss[1] = ut_name(ut_scale(g, gan, c->w_gan), "unit.gan");
  s->loss[2] = ut_name(ut_scale(g, recon, c->w_recon), "unit.recon");
  s->loss[3] = ut_name(ut_scale(g, cyc, c->w_cycle), "unit.cycle");
  s->loss[4] = ut_name(kl, "unit.kl");
  s->loss[0] = ut_name(sum2(g, sum2(g, s->loss[1], s->loss[2]), sum2(g, s->loss[3], s->loss[4])), "unit.gen_loss");
  s->n_loss = 5;
  ut_status st = ut_graph_status(g);
  if (st == UT_OK) st = ut_backward(g, s->loss[0], ut_params(g, UNIT_GEN_PREFIX));
  return st == UT_OK ? adam(g, c, UNIT_GEN_PREFIX, "unit.gen.adam") : st;
}

static ut_status ensure_step(unit_model *m, int which) {
  step_plan *s = which ? &m->gen : &m->dis;
  if (s->p) return UT_OK;
  step_plan_free(s);
  const unit_cfg *c = &m->cfg;
  if (!(s->g = ut_graph_new(m->rt, m->st))) return UT_ERR_HOST_MEMORY;
  s->a = ut_input(s->g, "images_a", UT_F32, image_shape(c, m->rows));
  s->b = ut_input(s->g, "images_b", UT_F32, image_shape(c, m->rows));
  ut_status st = kit_team_prepare(m->team, s->g);
  if (st == UT_OK) st = which ? build_gen(m, s) : build_dis(m, s);
  if (st == UT_OK && !(s->p = ut_plan_compile(s->g, &(ut_plan_cfg){ .outputs = s->loss, .n_outputs = s->n_loss })))
    st = UT_ERR_STATE;
  if (st != UT_OK) ut_error_prefix("UNIT %s update", which ? "generator" : "discriminator");
  return st;
}

ut_plan *unit_step_plan(unit_model *m, int which) { return ensure_step(m, which) == UT_OK ? (which ? m->gen.p : m->dis.p) : NULL; }

static ut_status run_step(step_plan *s, const float *a, const float *b, float *losses) {
  ut_status st = ut_upload(s->p, s->a, a);
  if (st == UT_OK) st = ut_upload(s->p, s->b, b);
  if (st == UT_OK) st = ut_plan_run(s->p);
  for (int i = 0; st == UT_OK && i < s->n_loss; i++) st = ut_read(s->p, s->loss[i], &losses[i]);
  return st;
}

ut_status unit_dis_step(unit_model *m, const float *a, const float *b, float *loss) {
  if (!m || !a || !b || !loss) return ut_fail(UT_ERR_INVALID_ARGUMENT, "unit_dis_step: no model, batch or output");
  ut_status st = ensure_step(m, 0);
  return st == UT_OK ? run_step(&m->dis, a, b, loss) : st;
}

ut_status unit_gen_step(unit_model *m, const float *a, const float *b, float losses[5]) {
  if (!m || !a || !b || !losses) return ut_fail(UT_ERR_INVALID_ARGUMENT, "unit_gen_step: no model, batch or output");
  ut_status st = ensure_step(m, 1);
  return st == UT_OK ? run_step(&m->gen, a, b, losses) : st;
}

ut_status unit_train_step(unit_model *m, const float *a, const float *b, unit_losses *out) {
  float dis = 0, gen[5] = { 0 };
  ut_status st = unit_dis_step(m, a, b, &dis);
  if (st == UT_OK) st = unit_gen_step(m, a, b, gen);
  if (st == UT_OK && out) *out = (unit_losses){ .dis = dis, .gen = gen[0], .gan = gen[1], .recon = gen[2], .cycle = gen[3], .kl = gen[4] };
  return st;
}

/* ---- inference -------------------------------------------------------------------------------- */

/* Translation from -> to (kind 0 or 1 = to) or the cycle from -> other -> from (kind 2), on
 * images in [0, 1], without noise. */
static ut_status ensure_infer(unit_model *m, int from, int kind) {
  kit_infer *f = &m->infer[from][kind];
  if (kit_infer_ready(f)) return UT_OK;
  kit_infer_free(f);
  const unit_cfg *c = &m->cfg;
  if (!(f->g = ut_graph_new(m->rt, m->st))) return UT_ERR_HOST_MEMORY;
  f->in[0] = ut_input(f->g, "images", UT_F32, image_shape(c, INFER_CHUNK));
  f->n_in = 1;
  int to = kind == 2 ? 1 - from : kind;
  ut_tensor *code = unit_encode(f->g, c, kit_to_signed(f->g, f->in[0]), from, NULL);
  ut_tensor *y = unit_decode_domain(f->g, c, unit_decode_shared(f->g, c, code), to);
  if (kind == 2) {
    code = unit_encode(f->g, c, y, to, NULL);
    y = unit_decode_domain(f->g, c, unit_decode_shared(f->g, c, code), from);
  }
  f->out[0] = kit_to_unit(f->g, y);
  f->n_out = 1;
  return kit_infer_compile(f);
}

static ut_status infer(unit_model *m, const float *images, int64_t n, int from, int kind, float *out) {
  if (!m || !images || !out || n < 0 || (from != UNIT_A && from != UNIT_B))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "UNIT inference: bad arguments (domain %d, %lld images)", from, (long long)n);
  ut_status st = ensure_infer(m, from, kind);
  return st == UT_OK ? kit_infer_run(&m->infer[from][kind], &images, &out, n) : st;
}

ut_status unit_translate(unit_model *m, const float *images, int64_t n, int from, int to, float *out) {
  if (to != UNIT_A && to != UNIT_B) return ut_fail(UT_ERR_INVALID_ARGUMENT, "unit_translate: no domain %d", to);
  return infer(m, images, n, from, to, out);
}

ut_status unit_cycle(unit_model *m, const float *images, int64_t n, int from, float *out) {
  return infer(m, images, n, from, 2, out);
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

ut_status unit_save(unit_model *m, const char *path) {
  return checkpoint_config_save(m->st, path, "unit", kit_config_to_json(unit_cfg_table(), &m->cfg));
}

ut_status unit_read_config(ut_runtime *rt, const char *path, unit_cfg *cfg) {
  char *json = NULL;
  ut_status st = checkpoint_config_json(rt, path, "unit", &json);
  if (st == UT_OK && (st = kit_config_from_json(unit_cfg_table(), json, cfg)) == UT_OK) st = unit_cfg_check(cfg);
  if (st != UT_OK) ut_error_prefix("%s", path);
  free(json);
  return st;
}

ut_status unit_load(unit_model *m, const char *path) {
  unit_cfg saved = m->cfg;
  ut_status st = unit_read_config(m->rt, path, &saved);
  if (st != UT_OK) return st;
  saved.epochs = m->cfg.epochs; /* how long to train may change between runs; the model may not */
  char why[256];
  if (kit_config_differs(unit_cfg_table(), &saved, &m->cfg, why, sizeof why))
    return ut_fail(UT_ERR_MISMATCH, "%s was trained with another UNIT configuration: its %s", path, why);
  return ut_store_load(m->st, path);
}
