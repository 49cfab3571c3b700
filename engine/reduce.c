/* The data-parallel seam (untangle.h): a graph's share of the batch, the node that hands one
 * optimiser's gradients to the graph's reducer, and the node that sums a value over the team
 * inside the forward pass.
 *
 * The node has no output of its own (an update node, so every plan keeps it). Its launches:
 * one copy per gradient into its workspace, packed one after the other; one host launch that
 * maps the workspace and calls the reducer; one copy per gradient back. It is made just
 * before the optimiser's updates, after every gradient node, and the gradients stay live until
 * those updates read them, so in node order it sees them complete and nothing reuses their
 * memory in between. Its gradients are listed in op_data because they do not fit in[]. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "plan_internal.h"

typedef struct {
  int n;
  ut_tensor **grads;
  ut_gradient_pack pack; /* arrays in graph memory, read by the reducer */
  ut_gradient_reducer fn;
  void *user;
} reduce_data;

/* What the host launch gets (copied into the schedule): the graph-owned description. */
typedef struct {
  const reduce_data *d;
} host_args;

/* iattr[0]: the floats packed, which the workspace holds. */
static ut_status reduce_shape(ut_tensor *n) {
  n->shape = UT_SHAPE(n->iattr[0]);
  n->workspace = (size_t)n->iattr[0];
  return UT_OK;
}

static ut_status run_reducer(const void *args, float *const *ptr) {
  const reduce_data *d = ((const host_args *)args)->d;
  ut_status st = d->fn(d->user, &d->pack, ptr[0]);
  if (st != UT_OK) ut_error_prefix("gradient reducer of optimiser '%s'", d->pack.optimizer);
  return st;
}

static void copy(ut_plan *p, ut_tensor *n, ut_loc dst, ut_loc src, size_t count) {
  ut_launch *l = ut_plan_kernel(p, n, "optim", "copy_floats");
  ut_arg_loc(l, dst);
  ut_arg_loc(l, src);
  ut_arg_uint(l, (unsigned)count);
  ut_launch_range(l, count, 0);
}

static ut_status reduce_forward(ut_plan *p, ut_tensor *n) {
  const reduce_data *d = n->op_data;
  ut_loc ws = ut_plan_workspace(p, n);
  for (int i = 0; i < d->n; i++)
    copy(p, n, (ut_loc){ ws.buf, ws.off + d->pack.offsets[i] }, ut_plan_loc(p, d->grads[i]),
         (size_t)ut_shape_numel(d->grads[i]->shape));
  ut_host_operand op = { .loc = ws, .floats = d->pack.total, .write = 1 };
  ut_status st = ut_plan_host(p, n, "gradient_reduce", run_reducer, &(host_args){ d }, sizeof(host_args), &op, 1);
  for (int i = 0; st == UT_OK && i < d->n; i++)
    copy(p, n, ut_plan_loc(p, d->grads[i]), (ut_loc){ ws.buf, ws.off + d->pack.offsets[i] },
         (size_t)ut_shape_numel(d->grads[i]->shape));
  return st;
}

static const ut_op_def op_gradient_reduce = { "gradient_reduce", UT_OP_UPDATE, reduce_shape, reduce_forward, NULL };

ut_status ut_gradient_reduce_node(ut_graph *g, const char *optimizer, ut_tensor_list params) {
  if (!g->reducer) return UT_OK;
  int n = 0;
  for (int i = 0; i < params.n; i++) n += params.t[i]->grad != NULL;
  if (!n) return UT_OK;
  reduce_data *d = ut_graph_alloc(g, sizeof *d);
  ut_tensor **grads = d ? ut_graph_alloc(g, (size_t)n * sizeof *grads) : NULL;
  const char **names = grads ? ut_graph_alloc(g, (size_t)n * sizeof *names) : NULL;
  ut_shape *shapes = names ? ut_graph_alloc(g, (size_t)n * sizeof *shapes) : NULL;
  size_t *offsets = shapes ? ut_graph_alloc(g, (size_t)n * sizeof *offsets) : NULL;
  char *opt = offsets ? ut_graph_alloc(g, strlen(optimizer) + 1) : NULL;
  if (!opt) {
    ut_graph_fail(g, ut_fail(UT_ERR_HOST_MEMORY, "gradient reduction of '%s': out of host memory", optimizer));
    return UT_ERR_HOST_MEMORY;
  }
  memcpy(opt, optimizer, strlen(optimizer) + 1);
  size_t total = 0;
  for (int i = 0, k = 0; i < params.n; i++) {
    if (!params.t[i]->grad) continue;
    grads[k] = params.t[i]->grad;
    names[k] = ut_store_tensor_name(params.t[i]->store);
    shapes[k] = params.t[i]->shape;
    offsets[k] = total;
    total += (size_t)ut_shape_numel(shapes[k]);
    k++;
  }
  *d = (reduce_data){ .n = n, .grads = grads, .fn = g->reducer, .user = g->reducer_user,
                      .pack = { .optimizer = opt, .n = n, .params = names, .shapes = shapes, .offsets = offsets,
                                .total = total } };
  int64_t floats = (int64_t)total;
  ut_tensor *node = ut_node_new(g, &op_gradient_reduce, 0, NULL, &floats, 1, NULL, 0);
  if (!node) return g->status;
  node->op_data = d;
  char name[96];
  snprintf(name, sizeof name, "%.80s.reduce", optimizer);
  ut_name(node, name);
  return UT_OK;
}

ut_status ut_graph_set_reducer(ut_graph *g, ut_gradient_reducer fn, void *user) {
  if (!g || !fn) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_graph_set_reducer: no graph or no callback");
  if (g->optimizers)
    return ut_fail(UT_ERR_STATE, "ut_graph_set_reducer: optimiser '%s' is already in the graph and would not be "
                   "reduced; set the reducer before ut_adam / ut_sgd", g->optimizers->name);
  g->reducer = fn;
  g->reducer_user = user;
  return UT_OK;
}

ut_status ut_graph_set_share_blocks(ut_graph *g, int index, int count, int blocks) {
  if (!g) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_graph_set_share: no graph");
  if (count < 1 || index < 0 || index >= count || blocks < 1)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_graph_set_share: share %d of %d in %d blocks; expected 0 <= index < "
                   "count and at least one block", index, count, blocks);
  g->share_index = index;
  g->share_count = count;
  g->share_blocks = blocks;
  return UT_OK;
}

ut_status ut_graph_set_share(ut_graph *g, int index, int count) { return ut_graph_set_share_blocks(g, index, count, 1); }

/* ---- sums over the team inside the forward pass ------------------------------------------------ */

typedef struct {
  ut_value_summer fn;
  void *user;
} summer;

static ut_status team_sum_shape(ut_tensor *n) {
  if (n->in[0]->dtype != UT_F32)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "team_sum: input '%s' is not f32", n->in[0]->name);
  n->shape = n->in[0]->shape;
  return UT_OK;
}

typedef struct {
  const summer *s;
  int n;
  const char *name;
} summer_args;

static ut_status run_summer(const void *args, float *const *ptr) {
  const summer_args *a = args;
  ut_status st = a->s->fn(a->s->user, ptr[0], a->n);
  if (st != UT_OK) ut_error_prefix("team sum '%s'", a->name);
  return st;
}

/* The input copied into the output, which the callback then replaces by the team's sum. */
static ut_status team_sum_forward(ut_plan *p, ut_tensor *n) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  copy(p, n, ut_plan_loc(p, n), ut_plan_loc(p, n->in[0]), count);
  ut_host_operand op = { .loc = ut_plan_loc(p, n), .floats = count, .write = 1 };
  summer_args a = { n->op_data, (int)count, n->name };
  return ut_plan_host(p, n, "team_sum", run_summer, &a, sizeof a, &op, 1);
}

static ut_status team_sum_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  const summer *s = n->op_data;
  grad_in[0] = ut_team_sum(g, grad, s->fn, s->user);
  return ut_graph_status(g);
}

static const ut_op_def op_team_sum = { "team_sum", 0, team_sum_shape, team_sum_forward, team_sum_backward };

ut_tensor *ut_team_sum(ut_graph *g, ut_tensor *x, ut_value_summer fn, void *user) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, g->status);
  if (!fn) return x;
  if (ut_shape_numel(x->shape) > INT32_MAX) {
    ut_fail(UT_ERR_SHAPE, "team_sum: '%s' has more elements than one call sums", x->name);
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  summer *s = ut_graph_alloc(g, sizeof *s);
  if (!s) {
    ut_fail(UT_ERR_HOST_MEMORY, "team_sum: out of host memory");
    return ut_graph_fail(g, UT_ERR_HOST_MEMORY);
  }
  *s = (summer){ fn, user };
  ut_tensor *node = ut_node_new(g, &op_team_sum, 1, &x, NULL, 0, NULL, 0);
  if (node) node->op_data = s;
  return node;
}
