/* StyleGAN2's fused leaky ReLU, a composition of existing ops (so differentiable to any order,
 * as R1 needs). The layers with an equalized learning rate that use it and the minibatch
 * standard deviation are the model kit's (models/kit_layers.c, models/kit_losses.c). */
#include <math.h>

#include "error.h"
#include "graph_internal.h"

/* A [C] vector shaped to broadcast along dimension 1 of a rank-`rank` tensor. */
static ut_tensor *along_channels(ut_graph *g, ut_tensor *v, int rank) {
  ut_shape s = { .rank = rank - 1 };
  s.d[0] = v->shape.d[0];
  for (int i = 1; i < s.rank; i++) s.d[i] = 1;
  return ut_reshape(g, v, s);
}

ut_tensor *ut_fused_leaky_relu(ut_graph *g, ut_tensor *x, ut_tensor *bias) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  char a[64], b[64];
  if (x->shape.rank < 2 || (bias && (bias->shape.rank != 1 || bias->shape.d[0] != x->shape.d[1]))) {
    ut_fail(UT_ERR_SHAPE, "fused_leaky_relu: input '%s' %s must be [B, C, ...] and bias '%s' %s [C]", x->name,
            ut_shape_str(x->shape, a, sizeof a), bias ? bias->name : "(none)",
            bias ? ut_shape_str(bias->shape, b, sizeof b) : "-");
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  if (bias) x = ut_add(g, x, along_channels(g, bias, x->shape.rank));
  return ut_scale(g, ut_leaky_relu(g, x, 0.2f), (float)sqrt(2.0));
}
