/* Reverse-mode differentiation: walks the graph from the loss back to the chosen tensors and
 * appends, for each node on the way, the nodes its op's backward builder makes. Contributions
 * to a tensor used several times are summed. Only nodes that both lie on a path to the loss
 * and depend on a chosen tensor are differentiated. */
#include <stdlib.h>

#include "error.h"
#include "graph_internal.h"

ut_status ut_backward(ut_graph *g, ut_tensor *loss, ut_tensor_list params) {
  if (!g) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_backward: no graph");
  if (g->status != UT_OK) return g->status;
  if (!loss || loss->g != g) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_backward: the loss is NULL or from another graph");
  if (ut_shape_numel(loss->shape) != 1) {
    char s[64];
    return ut_fail(UT_ERR_SHAPE, "ut_backward: the loss '%s' must have one element, it has shape %s", loss->name,
                   ut_shape_str(loss->shape, s, sizeof s));
  }
  int n = loss->id + 1;
  unsigned char *depends = calloc((size_t)n, 1), *wanted = calloc((size_t)n, 1);
  ut_tensor **grads = calloc((size_t)n, sizeof *grads);
  if (!depends || !wanted || !grads) {
    free(depends), free(wanted), free(grads);
    return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory in ut_backward");
  }
  for (int i = 0; i < params.n; i++) {
    ut_tensor *p = params.t[i];
    if (p && p->g == g && p->id < n) depends[p->id] = wanted[p->id] = 1;
    if (p) p->grad = NULL;
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < g->nodes[i]->n_in && !depends[i]; j++) depends[i] = depends[g->nodes[i]->in[j]->id];

  float one = 1.0f;
  grads[loss->id] = ut_reshape(g, ut_constant(g, UT_SHAPE(1), &one), loss->shape);
  for (int i = loss->id; i >= 0 && g->status == UT_OK; i--) {
    ut_tensor *node = g->nodes[i];
    if (!grads[i] || !depends[i] || !node->op->backward) continue;
    ut_tensor *grad_in[UT_MAX_INPUTS] = { 0 };
    ut_status st = node->op->backward(g, node, grads[i], grad_in);
    if (st != UT_OK) ut_graph_fail(g, st);
    for (int j = 0; j < node->n_in && g->status == UT_OK; j++) {
      int k = node->in[j]->id;
      if (!grad_in[j] || !depends[k]) continue;
      grads[k] = grads[k] ? ut_add(g, grads[k], grad_in[j]) : grad_in[j];
    }
  }
  ut_status st = g->status;
  if (st == UT_OK)
    for (int i = 0; i < params.n; i++)
      if (params.t[i] && params.t[i]->id < n && wanted[params.t[i]->id]) params.t[i]->grad = grads[params.t[i]->id];
  if (st != UT_OK) ut_error_prefix("ut_backward from '%s'", loss->name);
  free(depends), free(wanted), free(grads);
  return st;
}

ut_tensor *ut_grad(ut_graph *g, ut_tensor *p) { return (p && p->g == g) ? p->grad : NULL; }
