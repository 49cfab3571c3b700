/* Optimizers as update nodes: one per parameter, writing the parameter and its state in
 * place. A plan runs every update of its graph after the gradients they read. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "plan_internal.h"

/* fattr: [0] beta1 or momentum, [1] beta2, [2] eps, [3] weight decay, [4] fixed lr. */
enum { ADAM_ARG_STEP_SIZE = 13, ADAM_ARG_BC2_SQRT = 14, SGD_ARG_LR = 9 };

static ut_status update_shape(ut_tensor *n) {
  for (int i = 1; i < n->n_in; i++)
    if (!ut_shape_equal(n->in[i]->shape, n->in[0]->shape)) {
      char a[64], b[64];
      return ut_fail(UT_ERR_SHAPE, "%s: '%s' has shape %s but parameter '%s' has %s", n->op->name, n->in[i]->name,
                     ut_shape_str(n->in[i]->shape, a, sizeof a), n->in[0]->name, ut_shape_str(n->in[0]->shape, b, sizeof b));
    }
  n->shape = n->in[0]->shape;
  return UT_OK;
}

static float current_lr(const ut_tensor *n) { return n->hparam ? n->hparam->value : n->fattr[4]; }

static void adam_prepare(ut_launch *l, const ut_tensor *n) {
  double t = (double)*n->counter;
  double bc1 = 1.0 - pow(n->fattr[0], t), bc2 = 1.0 - pow(n->fattr[1], t);
  ut_launch_set_float(l, ADAM_ARG_STEP_SIZE, (float)(current_lr(n) / bc1));
  ut_launch_set_float(l, ADAM_ARG_BC2_SQRT, (float)sqrt(bc2));
}

static ut_status adam_forward(ut_plan *p, ut_tensor *n) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "optim", "adam_update");
  for (int i = 0; i < 4; i++) ut_arg_tensor(l, n->in[i]);
  ut_arg_uint(l, (unsigned)count);
  for (int i = 0; i < 4; i++) ut_arg_float(l, n->fattr[i]);
  ut_arg_float(l, 0.0f); /* step size and bias correction: set before each run */
  ut_arg_float(l, 1.0f);
  ut_launch_on_run(l, adam_prepare);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static void sgd_prepare(ut_launch *l, const ut_tensor *n) { ut_launch_set_float(l, SGD_ARG_LR, current_lr(n)); }

static ut_status sgd_forward(ut_plan *p, ut_tensor *n) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "optim", "sgd_update");
  for (int i = 0; i < 3; i++) ut_arg_tensor(l, n->in[i]);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_float(l, n->fattr[0]);
  ut_arg_float(l, n->fattr[3]);
  ut_arg_float(l, current_lr(n));
  ut_launch_on_run(l, sgd_prepare);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static const ut_op_def op_adam = { "adam_update", UT_OP_UPDATE, update_shape, adam_forward, NULL };
static const ut_op_def op_sgd = { "sgd_update", UT_OP_UPDATE, update_shape, sgd_forward, NULL };

/* The optimizer state of parameter p: "<param>.<opt>.<what>", zero at the start. */
static ut_tensor *state_of(ut_graph *g, ut_tensor *p, const char *opt, const char *what) {
  char name[256];
  snprintf(name, sizeof name, "%s.%s.%s", p->name, opt, what);
  ut_store_tensor *t = ut_store_tensor_get(ut_graph_store(g), name, p->shape, (ut_init){ UT_INIT_ZERO, 0, 0 });
  return t ? ut_state(g, t) : ut_graph_fail(g, UT_ERR_STATE);
}

static ut_status check_params(ut_graph *g, ut_tensor_list params, const char *who) {
  if (!g) return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: no graph", who);
  if (g->status != UT_OK) return g->status;
  for (int i = 0; i < params.n; i++)
    if (!params.t[i] || params.t[i]->op != &ut_op_param)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: entry %d of the list is not a parameter", who, i);
  return UT_OK;
}

ut_status ut_adam(ut_graph *g, ut_tensor_list params, const ut_adam_cfg *cfg) {
  ut_status st = check_params(g, params, "ut_adam");
  if (st != UT_OK) return st;
  const char *name = cfg->name ? cfg->name : "adam";
  char counter[128];
  snprintf(counter, sizeof counter, "%s.step", name);
  int64_t *step = ut_store_counter(ut_graph_store(g), counter);
  if (!step) return ut_fail(UT_ERR_HOST_MEMORY, "ut_adam: no memory for the step counter");
  float f[5] = { cfg->beta1 ? cfg->beta1 : 0.9f, cfg->beta2 ? cfg->beta2 : 0.999f, cfg->eps ? cfg->eps : 1e-8f,
                 cfg->weight_decay, cfg->lr };
  for (int i = 0; i < params.n; i++) {
    ut_tensor *p = params.t[i];
    if (!p->grad) continue; /* as PyTorch: a parameter the loss does not reach is left alone */
    ut_tensor *in[4] = { p, p->grad, state_of(g, p, name, "m"), state_of(g, p, name, "v") };
    ut_tensor *u = ut_node_new(g, &op_adam, 4, in, NULL, 0, f, 5);
    if (!u) return g->status;
    u->counter = step;
    u->hparam = cfg->lr_param;
  }
  return g->status;
}

ut_status ut_sgd(ut_graph *g, ut_tensor_list params, const ut_sgd_cfg *cfg) {
  ut_status st = check_params(g, params, "ut_sgd");
  if (st != UT_OK) return st;
  const char *name = cfg->name ? cfg->name : "sgd";
  float f[5] = { cfg->momentum, 0, 0, cfg->weight_decay, cfg->lr };
  for (int i = 0; i < params.n; i++) {
    ut_tensor *p = params.t[i];
    if (!p->grad) continue;
    ut_tensor *in[3] = { p, p->grad, state_of(g, p, name, "momentum") };
    ut_tensor *u = ut_node_new(g, &op_sgd, 3, in, NULL, 0, f, 5);
    if (!u) return g->status;
    u->hparam = cfg->lr_param;
  }
  return g->status;
}
