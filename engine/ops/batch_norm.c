/* Batch normalization as nn.BatchNorm1d/2d: per-channel statistics over every dimension but
 * dimension 1 (the batch and the pixels), in training or in evaluation mode.
 *
 * The normalization is a composition of existing ops (mean, sub, square, sqrt, div, mul, add),
 * so it is differentiable to any order with no backward code of its own, like engine/ops/norm.c.
 * The only op of this file is the running-average update: an UPDATE node (as the optimizers'
 * in engine/optim.c) that a plan runs once per run, in node order, after the batch statistic it
 * reads. Nothing else in a training graph reads the running statistics, so writing them in
 * place cannot change another node's input; a graph that reads them after the update (the same
 * prefix in evaluation mode later in one graph) is refused by the plan's update-order check.
 *
 * Both modes fold the statistics and the affine part into one per-channel scale and shift,
 * computed on [C]-sized tensors, so the full-size passes are few: training mode makes
 * centered = x - mean (needed for the two-pass variance anyway) and y = centered * a + b with
 * a = w / sqrt(var + eps); evaluation mode makes y = x * a + (b - running_mean * a), as
 * PyTorch's CPU inference kernel does. */
#include <stdarg.h>
#include <stdio.h>

#include "error.h"
#include "plan_internal.h"

/* ---- running_average: in[0] the running statistic (a store state), in[1] the batch's;
 *      fattr[0] momentum, fattr[1] the factor applied to the batch statistic ----------------- */

static ut_status running_shape(ut_tensor *n) {
  ut_tensor *r = n->in[0], *v = n->in[1];
  if (!r->store || ut_shape_numel(r->shape) != ut_shape_numel(v->shape)) {
    char a[64], b[64];
    return ut_fail(UT_ERR_SHAPE, "%s: '%s' %s must be a store tensor with as many elements as '%s' %s", n->op->name, r->name,
                   ut_shape_str(r->shape, a, sizeof a), v->name, ut_shape_str(v->shape, b, sizeof b));
  }
  n->shape = r->shape;
  return UT_OK;
}

static ut_status running_forward(ut_plan *p, ut_tensor *n) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "batch", "running_average");
  ut_arg_tensor(l, n->in[0]);
  ut_arg_tensor(l, n->in[1]);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_float(l, n->fattr[0]);
  ut_arg_float(l, n->fattr[1]);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

/* No backward: running statistics are not differentiated (PyTorch keeps them as buffers). */
static const ut_op_def op_running = { "running_average", UT_OP_UPDATE, running_shape, running_forward, NULL };

static int running_update(ut_graph *g, ut_tensor *running, ut_tensor *batch_stat, float momentum, float factor) {
  ut_tensor *in[2] = { running, batch_stat };
  float f[2] = { momentum, factor };
  return ut_node_new(g, &op_running, 2, in, NULL, 0, f, 2) != NULL;
}

/* ---- the layer ------------------------------------------------------------------------------- */

static ut_tensor *fail(ut_graph *g, ut_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static ut_tensor *fail(ut_graph *g, ut_status s, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ut_fail(s, "%s", msg);
  return ut_graph_fail(g, s);
}

/* A store tensor "<prefix>.<what>" of shape [C] as a source node of g. */
static ut_tensor *named(ut_graph *g, const char *prefix, const char *what, int64_t c, ut_init init, int is_param) {
  char name[256];
  snprintf(name, sizeof name, "%s.%s", prefix, what);
  if (is_param) return ut_param(g, name, UT_SHAPE(c), init);
  ut_store_tensor *t = ut_store_tensor_get(ut_graph_store(g), name, UT_SHAPE(c), init);
  return t ? ut_state(g, t) : ut_graph_fail(g, UT_ERR_SHAPE);
}

ut_tensor *ut_batch_norm(ut_graph *g, ut_tensor *x, const char *prefix, const ut_batch_norm_cfg *cfg) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  ut_batch_norm_cfg c = cfg ? *cfg : (ut_batch_norm_cfg){ 0 };
  float eps = c.eps > 0 ? c.eps : 1e-5f, momentum = c.momentum > 0 ? c.momentum : 0.1f;
  char sx[64];
  ut_shape_str(x->shape, sx, sizeof sx);
  if (!prefix || !*prefix) return fail(g, UT_ERR_INVALID_ARGUMENT, "batch_norm: input '%s' %s: no name prefix", x->name, sx);
  if (x->dtype != UT_F32 || x->shape.rank < 2)
    return fail(g, UT_ERR_SHAPE, "batch_norm '%s': input '%s' of shape %s must be an f32 [B, C], [B, C, L] or [B, C, H, W] tensor",
                prefix, x->name, sx);
  if (!(c.eps >= 0) || !(c.momentum >= 0 && c.momentum <= 1))
    return fail(g, UT_ERR_INVALID_ARGUMENT, "batch_norm '%s': eps %g must be >= 0 and momentum %g in [0, 1]", prefix,
                (double)c.eps, (double)c.momentum);

  int rank = x->shape.rank;
  int64_t channels = x->shape.d[1], count = ut_shape_numel(x->shape) / channels;
  unsigned axes = ((1u << rank) - 1) & ~2u; /* every dimension but the channels */
  /* [C] vectors broadcast along dimension 1 as [C, 1, ..., 1] (rank - 1 dimensions). */
  ut_shape vec = { .rank = rank - 1 };
  vec.d[0] = channels;
  for (int i = 1; i < vec.rank; i++) vec.d[i] = 1;

  ut_tensor *w = NULL, *b = NULL;
  if (!c.no_affine) {
    w = ut_reshape(g, named(g, prefix, "w", channels, (ut_init){ UT_INIT_CONST, 1, 0 }, 1), vec);
    b = ut_reshape(g, named(g, prefix, "b", channels, (ut_init){ UT_INIT_ZERO, 0, 0 }, 1), vec);
  }
  ut_tensor *rmean = named(g, prefix, "running_mean", channels, (ut_init){ UT_INIT_ZERO, 0, 0 }, 0);
  ut_tensor *rvar = named(g, prefix, "running_var", channels, (ut_init){ UT_INIT_CONST, 1, 0 }, 0);
  if (ut_graph_status(g) != UT_OK) return NULL;
  ut_tensor *one = w ? w : ut_scalar(g, 1.0f);

  if (c.eval) {
    ut_tensor *rm = ut_reshape(g, rmean, vec);
    ut_tensor *a = ut_div(g, one, ut_sqrt(g, ut_shift(g, ut_reshape(g, rvar, vec), eps)));
    ut_tensor *shift = ut_mul(g, rm, a);
    shift = b ? ut_sub(g, b, shift) : ut_neg(g, shift);
    return ut_add(g, ut_mul(g, x, a), shift);
  }

  /* nn.BatchNorm refuses to train on one value per channel: the variance would be 0 and the
   * running variance's unbiased factor n / (n - 1) infinite. */
  if (count < 2)
    return fail(g, UT_ERR_SHAPE, "batch_norm '%s': training needs more than one value per channel, input '%s' %s has %lld",
                prefix, x->name, sx, (long long)count);
  ut_tensor *mean = ut_mean(g, x, axes);
  ut_tensor *centered = ut_sub(g, x, mean);
  ut_tensor *var = ut_mean(g, ut_square(g, centered), axes); /* biased, as used to normalize */
  ut_tensor *a = ut_div(g, one, ut_sqrt(g, ut_shift(g, var, eps)));
  ut_tensor *y = ut_mul(g, centered, a);
  if (b) y = ut_add(g, y, b);
  if (!y || !running_update(g, rmean, mean, momentum, 1.0f) ||
      !running_update(g, rvar, var, momentum, (float)((double)count / (double)(count - 1))))
    return ut_graph_fail(g, ut_graph_status(g));
  return y;
}
