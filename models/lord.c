/* The LORD model (lord.h): its store, its four plans and checkpoints. Each plan has its own
 * graph over the one store, so a parameter made by any of them is the same tensor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_config.h"
#include "kit_infer.h"
#include "kit_losses.h"
#include "lord_internal.h"

#define STAGE2_CODE_WEIGHT 10.0f /* lord-pytorch's weight of each code's MSE in stage 2 */

typedef struct {
  ut_graph *g;
  ut_plan *p;
  ut_tensor *images, *image_ids, *class_ids, *loss;
  ut_hparam *lr[2];
  float lr0[2];
} step_plan;


struct lord_model {
  ut_runtime *rt;
  ut_store *st;
  lord_cfg cfg;
  step_plan step[2];
  kit_infer gen, enc; /* codes -> images, images -> codes */
  const kit_team *team;
  int rows; /* images per training step on this process: the batch, or its share on a team */
};

static const ut_init EMBEDDING_INIT = { UT_INIT_UNIFORM, -0.05f, 0.05f }; /* LatentModel.weights_init */

lord_model *lord_new(ut_runtime *rt, const lord_cfg *cfg, const char *vgg_weights) {
  if (!rt || !cfg) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "lord_new: no runtime or configuration");
    return NULL;
  }
  if (lord_cfg_check(cfg) != UT_OK) return NULL;
  if (cfg->recon == LORD_RECON_VGG && (!vgg_weights || !*vgg_weights)) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "the VGG loss needs a weight file (--vgg FILE)");
    return NULL;
  }
  lord_model *m = calloc(1, sizeof *m);
  if (!m) {
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
    return NULL;
  }
  m->rt = rt;
  m->cfg = *cfg;
  m->rows = cfg->batch;
  m->st = ut_store_new(rt, cfg->seed);
  ut_status s = m->st ? ut_store_set_external(m->st, LORD_VGG_PREFIX) : UT_ERR_HOST_MEMORY;
  if (s == UT_OK && cfg->recon == LORD_RECON_VGG) s = ut_store_import(m->st, vgg_weights, LORD_VGG_PREFIX);
  if (s != UT_OK) {
    lord_free(m);
    return NULL;
  }
  return m;
}

static void step_plan_free(step_plan *s) {
  ut_plan_free(s->p);
  ut_graph_free(s->g);
}

void lord_free(lord_model *m) {
  if (!m) return;
  for (int i = 0; i < 2; i++) step_plan_free(&m->step[i]);
  kit_infer_free(&m->gen);
  kit_infer_free(&m->enc);
  ut_store_free(m->st);
  free(m);
}

const lord_cfg *lord_config(const lord_model *m) { return &m->cfg; }

ut_status lord_set_team(lord_model *m, const kit_team *team) {
  if (m->step[0].g || m->step[1].g)
    return ut_fail(UT_ERR_STATE, "lord_set_team: the training plans are built already; set the team first");
  ut_status st = kit_team_check_batch(team, "LORD", m->cfg.batch);
  if (st != UT_OK) return st;
  /* The content invariance term compares class moments over the whole batch; a rank's share
   * holds only some of its images, and per-share moments would train another objective than
   * one process does. */
  if (team && team->size > 1 && m->cfg.content_invariance > 0 && m->cfg.epochs2 > 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "LORD: the content invariance term (weight %g) cannot train data-parallel: "
                   "it matches each class's moments over the whole batch, which no rank's share holds; train stage 1 "
                   "with --mpi --epochs2 0, then stage 2 as one process with --resume --content-invariance W",
                   (double)m->cfg.content_invariance);
  /* Stage 1 changes only the content codes of the batch's images (their rows follow the
   * loader's indices), and Adam's update of the other rows needs no gradient exchanged. */
  if (team && team->size > 1 && (st = team->sparse_rows(team->user, "lord.content_emb", 0)) != UT_OK) return st;
  m->team = team;
  m->rows = kit_team_rows(team, m->cfg.batch);
  return UT_OK;
}
ut_store *lord_store(lord_model *m) { return m->st; }

static ut_shape image_shape(const lord_cfg *c, int64_t b) { return UT_SHAPE(b, c->channels, c->size, c->size); }

/* Inputs and code tables shared by both stages. */
static void step_inputs(lord_model *m, step_plan *s, ut_tensor **content_table, ut_tensor **class_table) {
  const lord_cfg *c = &m->cfg;
  s->images = ut_input(s->g, "images", UT_F32, image_shape(c, m->rows));
  s->image_ids = ut_input(s->g, "image_ids", UT_I32, UT_SHAPE(m->rows));
  s->class_ids = ut_input(s->g, "class_ids", UT_I32, UT_SHAPE(m->rows));
  *content_table = ut_param(s->g, "lord.content_emb", UT_SHAPE(c->n_images, c->content_dim), EMBEDDING_INIT);
  *class_table = ut_param(s->g, "lord.class_emb", UT_SHAPE(c->n_classes, c->class_dim), EMBEDDING_INIT);
}

static ut_status adam_group(ut_graph *g, ut_tensor_list params, step_plan *s, int slot, float lr, const char *name) {
  s->lr0[slot] = lr;
  s->lr[slot] = ut_hparam_new(g, name, lr);
  return ut_adam(g, params, &(ut_adam_cfg){ .lr_param = s->lr[slot], .beta1 = 0.5f, .beta2 = 0.999f, .name = name });
}

/* Stage 1: loss = recon(G(content + noise, class), x) + decay * mean_b sum_d (content + noise)^2,
 * one Adam (betas 0.5, 0.999) with the generator and modulation at lr_gen and the two
 * embeddings at lr_emb. */
static ut_status build_stage1(lord_model *m, step_plan *s) {
  const lord_cfg *c = &m->cfg;
  ut_graph *g = s->g;
  ut_tensor *content_table, *class_table;
  step_inputs(m, s, &content_table, &class_table);
  ut_tensor *content = ut_embedding(g, content_table, s->image_ids);
  ut_tensor *class_code = ut_embedding(g, class_table, s->class_ids);
  if (c->content_std > 0) {
    ut_tensor *noise = ut_random_normal(g, "lord.content_noise", UT_SHAPE(m->rows, c->content_dim));
    content = ut_add(g, content, ut_scale(g, noise, c->content_std));
  }
  ut_tensor *generated = lord_generator(g, c, content, class_code);
  ut_tensor *decay = ut_scale(g, ut_sum_all(g, ut_square(g, content)), c->content_decay / (float)m->rows);
  s->loss = ut_add(g, lord_reconstruction_loss(g, c, generated, s->images), decay);
  ut_tensor_list net = ut_params_join(g, ut_params(g, "lord.gen."), ut_params(g, "lord.mod."));
  ut_tensor_list codes = ut_params_join(g, ut_params(g, "lord.content_emb"), ut_params(g, "lord.class_emb"));
  ut_status st = ut_graph_status(g);
  if (st == UT_OK) st = ut_backward(g, s->loss, ut_params_join(g, net, codes));
  if (st == UT_OK) st = adam_group(g, net, s, 0, c->lr_gen, "lord.adam1");
  if (st == UT_OK) st = adam_group(g, codes, s, 1, c->lr_emb, "lord.adam1_codes");
  return st;
}

/* Not in LORD (issue 16): the stage-2 content encoder's codes carry the class although the
 * stage-1 embeddings do not, and regression onto the embeddings never removes it. This term
 * asks for invariance directly: the classes' group moment gap of the codes (kit_losses.h), so
 * each class present in the batch has the batch's per-dimension mean and second moment. It acts
 * on the batch at hand, which on a team is a share of it: lord_set_team refuses it there. */
static ut_tensor *class_moment_gap(ut_graph *g, const lord_cfg *c, ut_tensor *content, ut_tensor *class_ids) {
  return kit_group_moment_gap(g, content, ut_one_hot(g, class_ids, c->n_classes));
}

/* Stage 2: loss = recon(G(E_content(x), E_class(x)), x) + 10 MSE(E_content(x), content code)
 * + 10 MSE(E_class(x), class code), the codes taken from the embeddings without noise, plus
 * content_invariance times class_moment_gap when it is positive; the encoders, generator and
 * modulation train with a fresh Adam at lr_enc. */
static ut_status build_stage2(lord_model *m, step_plan *s) {
  const lord_cfg *c = &m->cfg;
  ut_graph *g = s->g;
  ut_tensor *content_table, *class_table;
  step_inputs(m, s, &content_table, &class_table);
  ut_tensor *content = lord_encoder(g, c, s->images, "content", c->content_dim);
  ut_tensor *class_code = lord_encoder(g, c, s->images, "class", c->class_dim);
  ut_tensor *generated = lord_generator(g, c, content, class_code);
  ut_tensor *codes = ut_add(g, ut_mse_loss(g, content, ut_embedding(g, content_table, s->image_ids)),
                            ut_mse_loss(g, class_code, ut_embedding(g, class_table, s->class_ids)));
  s->loss = ut_add(g, lord_reconstruction_loss(g, c, generated, s->images), ut_scale(g, codes, STAGE2_CODE_WEIGHT));
  if (c->content_invariance > 0)
    s->loss = ut_add(g, s->loss, ut_scale(g, class_moment_gap(g, c, content, s->class_ids), c->content_invariance));
  ut_tensor_list params = ut_params_join(g, ut_params(g, "lord.enc_"),
                                         ut_params_join(g, ut_params(g, "lord.gen."), ut_params(g, "lord.mod.")));
  ut_status st = ut_graph_status(g);
  if (st == UT_OK) st = ut_backward(g, s->loss, params);
  if (st == UT_OK) st = adam_group(g, params, s, 0, c->lr_enc, "lord.adam2");
  return st;
}

static ut_status ensure_step(lord_model *m, int stage) {
  step_plan *s = &m->step[stage - 1];
  if (s->p) return UT_OK;
  step_plan_free(s);
  *s = (step_plan){ .g = ut_graph_new(m->rt, m->st) };
  if (!s->g) return UT_ERR_HOST_MEMORY;
  ut_status st = kit_team_prepare(m->team, s->g);
  if (st == UT_OK) st = stage == 1 ? build_stage1(m, s) : build_stage2(m, s);
  if (st == UT_OK) {
    s->p = ut_plan_compile(s->g, &(ut_plan_cfg){ .outputs = &s->loss, .n_outputs = 1 });
    if (!s->p) st = UT_ERR_STATE;
  }
  if (st != UT_OK) ut_error_prefix("LORD stage %d", stage);
  return st;
}

ut_plan *lord_step_plan(lord_model *m, int stage) {
  if (stage != 1 && stage != 2) return NULL;
  return ensure_step(m, stage) == UT_OK ? m->step[stage - 1].p : NULL;
}

/* CosineAnnealingLR stepped every step: lr_min + (lr0 - lr_min) (1 + cos(pi t)) / 2. */
static float cosine_lr(float lr0, float lr_min, double progress) {
  if (progress < 0) progress = 0;
  if (progress > 1) progress = 1;
  return (float)(lr_min + (lr0 - lr_min) * 0.5 * (1.0 + cos(3.14159265358979323846 * progress)));
}

static ut_status run_step(lord_model *m, int stage, const float *images, const int32_t *image_ids,
                          const int32_t *class_ids, double progress, float *loss) {
  ut_status st = ensure_step(m, stage);
  if (st != UT_OK) return st;
  step_plan *s = &m->step[stage - 1];
  for (int i = 0; i < 2; i++)
    if (s->lr[i]) ut_hparam_set(s->lr[i], cosine_lr(s->lr0[i], m->cfg.lr_min, progress));
  if ((st = ut_upload(s->p, s->images, images)) != UT_OK || (st = ut_upload(s->p, s->image_ids, image_ids)) != UT_OK ||
      (st = ut_upload(s->p, s->class_ids, class_ids)) != UT_OK || (st = ut_plan_run(s->p)) != UT_OK)
    return st;
  return loss ? ut_read(s->p, s->loss, loss) : UT_OK;
}

ut_status lord_stage1_step(lord_model *m, const float *images, const int32_t *image_ids, const int32_t *class_ids,
                           double progress, float *loss) {
  return run_step(m, 1, images, image_ids, class_ids, progress, loss);
}

ut_status lord_stage2_step(lord_model *m, const float *images, const int32_t *image_ids, const int32_t *class_ids,
                           double progress, float *loss) {
  return run_step(m, 2, images, image_ids, class_ids, progress, loss);
}

/* ---- inference -------------------------------------------------------------------------------- */

static int64_t infer_chunk(const lord_cfg *c) { return c->batch < 64 ? c->batch : 64; }

static ut_status ensure_infer(lord_model *m, kit_infer *f, int generate) {
  if (kit_infer_ready(f)) return UT_OK;
  const lord_cfg *c = &m->cfg;
  int64_t chunk = infer_chunk(c);
  kit_infer_free(f);
  if (!(f->g = ut_graph_new(m->rt, m->st))) return UT_ERR_HOST_MEMORY;
  if (generate) {
    f->in[0] = ut_input(f->g, "content", UT_F32, UT_SHAPE(chunk, c->content_dim));
    f->in[1] = ut_input(f->g, "class", UT_F32, UT_SHAPE(chunk, c->class_dim));
    f->out[0] = lord_generator(f->g, c, f->in[0], f->in[1]);
    f->n_in = 2;
    f->n_out = 1;
  } else {
    f->in[0] = ut_input(f->g, "images", UT_F32, image_shape(c, chunk));
    f->out[0] = lord_encoder(f->g, c, f->in[0], "content", c->content_dim);
    f->out[1] = lord_encoder(f->g, c, f->in[0], "class", c->class_dim);
    f->n_in = 1;
    f->n_out = 2;
  }
  return kit_infer_compile(f);
}

ut_status lord_generate(lord_model *m, const float *content, const float *class_codes, int64_t n, float *images) {
  ut_status st = ensure_infer(m, &m->gen, 1);
  return st == UT_OK ? kit_infer_run(&m->gen, (const float *const[]){ content, class_codes }, (float *const[]){ images }, n)
                     : st;
}

ut_status lord_encode(lord_model *m, const float *images, int64_t n, float *content, float *class_codes) {
  ut_status st = ensure_infer(m, &m->enc, 0);
  return st == UT_OK ? kit_infer_run(&m->enc, (const float *const[]){ images }, (float *const[]){ content, class_codes }, n)
                     : st;
}

/* Rows of a table picked by ids, read through the host (a handful of grid rows or eval codes). */
static ut_status gather_rows(lord_model *m, const char *name, int64_t rows, int64_t dim, const int32_t *ids,
                             int64_t n, float *out) {
  ut_store_tensor *t = ut_store_tensor_get(m->st, name, UT_SHAPE(rows, dim), EMBEDDING_INIT);
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

ut_status lord_embedded_codes(lord_model *m, const int32_t *image_ids, const int32_t *class_ids, int64_t n,
                              float *content, float *class_codes) {
  const lord_cfg *c = &m->cfg;
  ut_status st = UT_OK;
  if (content) st = gather_rows(m, "lord.content_emb", c->n_images, c->content_dim, image_ids, n, content);
  if (st == UT_OK && class_codes)
    st = gather_rows(m, "lord.class_emb", c->n_classes, c->class_dim, class_ids, n, class_codes);
  return st;
}

/* ---- checkpoints ------------------------------------------------------------------------------ */

ut_status lord_save(lord_model *m, const char *path) {
  return checkpoint_config_save(m->st, path, "lord", lord_cfg_to_json(&m->cfg));
}

ut_status lord_read_config(ut_runtime *rt, const char *path, lord_cfg *cfg) {
  char *json = NULL;
  ut_status st = checkpoint_config_json(rt, path, "lord", &json);
  if (st == UT_OK && (st = lord_cfg_from_json(json, cfg)) != UT_OK) ut_error_prefix("%s", path);
  free(json);
  return st;
}

ut_status lord_load(lord_model *m, const char *path) {
  lord_cfg saved;
  ut_status st = lord_read_config(m->rt, path, &saved);
  if (st != UT_OK) return st;
  saved.epochs1 = m->cfg.epochs1; /* how long to train may change between runs; the model may not */
  saved.epochs2 = m->cfg.epochs2;
  saved.content_invariance = m->cfg.content_invariance; /* a stage-2 loss weight, not the model */
  saved.recon = m->cfg.recon; /* the loss is not part of the model: inference opens VGG runs without VGG */
  char why[256];
  if (lord_cfg_differs(&saved, &m->cfg, why, sizeof why))
    return ut_fail(UT_ERR_MISMATCH, "%s was trained with another LORD configuration: its %s as in this model", path,
                   why);
  return ut_store_load(m->st, path);
}
