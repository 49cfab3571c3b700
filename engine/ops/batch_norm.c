/* The running-average update of batch normalization (kit_batch_norm in models/kit_layers.c,
 * nn.BatchNorm1d/2d): an UPDATE node (as the optimizers' in engine/optim.c) that a plan runs
 * once per run, in node order, after the batch statistic it reads. Nothing else in a training
 * graph reads the running statistics, so writing them in place cannot change another node's
 * input; a graph that reads them after the update (the same prefix in evaluation mode later in
 * one graph) is refused by the plan's update-order check. The normalization itself is a
 * composition of ops and lives in the kit. */
#include "error.h"
#include "plan_internal.h"

/* ---- running_average: in[0] the running statistic (a store state), in[1] the batch's;
 *      fattr[0] momentum, fattr[1] the factor applied to the batch statistic ----------------- */

static ut_status running_shape(ut_tensor *n) {
  ut_tensor *r = n->in[0], *v = n->in[1];
  if (!r->store || r->dtype != UT_F32 || v->dtype != UT_F32 || ut_shape_numel(r->shape) != ut_shape_numel(v->shape)) {
    char a[64], b[64];
    return ut_fail(UT_ERR_SHAPE, "%s: '%s' %s must be an f32 store tensor with as many elements as the f32 '%s' %s", n->op->name, r->name,
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

ut_tensor *ut_running_average(ut_graph *g, ut_tensor *running, ut_tensor *batch_stat, float momentum, float factor) {
  if (!g) return NULL;
  ut_tensor *in[2] = { running, batch_stat };
  float f[2] = { momentum, factor };
  return ut_node_new(g, &op_running, 2, in, NULL, 0, f, 2);
}
