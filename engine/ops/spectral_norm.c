/* Spectral normalization (Miyato et al. 2018) as torch.nn.utils.spectral_norm computes it in
 * training mode with n_power_iterations = 1:
 *
 *   v = normalize(W^T u),  u = normalize(W v)   (no gradient: torch runs this under no_grad)
 *   sigma = u . (W v)                            (gradient through W only: d sigma/dW = u v^T)
 *   result = w / sigma
 *
 * with normalize(t) = t / max(||t||, eps). W is the weight as a matrix whose rows are indexed
 * by dimension `dim` (0 for Linear and Conv2d; 1 for ConvTranspose2d, where torch permutes that
 * dimension to the front). The normalization is an op with no backward, which is what makes u
 * and v constants to autograd; everything else is ordinary differentiable ops, so W's gradient
 * (and its gradient, for R1) comes for free.
 *
 * u and v persist in the store. Two update nodes copy the new u and v back at the end of each
 * run, so every run of a plan advances the power iteration once, as every training forward
 * does in PyTorch. With `frozen` (eval mode) the stored u, v are used as they are. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "plan_internal.h"

/* ---- l2_normalize: a constant to autograd ------------------------------------------------------ */

static ut_status normalize_shape(ut_tensor *n) {
  if (n->in[0]->dtype != UT_F32)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "l2_normalize: input '%s' is not f32", n->in[0]->name);
  n->shape = n->in[0]->shape;
  return UT_OK;
}

static ut_status normalize_forward(ut_plan *p, ut_tensor *n) {
  size_t max = ut_runtime_device(ut_plan_runtime(p))->max_work_group_size, local = 1;
  while (local * 2 <= 256 && local * 2 <= max) local *= 2;
  ut_launch *l = ut_plan_kernel(p, n, "spectral", "l2_normalize");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_uint(l, (unsigned)ut_shape_numel(n->shape));
  ut_arg_float(l, n->fattr[0]);
  ut_arg_local(l, local * sizeof(float));
  ut_launch_range(l, local, local);
  return UT_OK;
}

static const ut_op_def op_normalize = { "l2_normalize", 0, normalize_shape, normalize_forward, NULL };

static ut_tensor *normalize(ut_graph *g, ut_tensor *t, float eps) {
  return ut_node_new(g, &op_normalize, 1, &t, NULL, 0, &eps, 1);
}

/* ---- sn_store: writes a new u or v into the store at its place in the schedule ----------------- */

/* iattr: the id of the normalized weight this update belongs to, and the id of the weight. */
enum { A_RESULT, A_WEIGHT, N_STORE_ATTRS };

static ut_status store_shape(ut_tensor *n) {
  if (ut_shape_numel(n->in[1]->shape) != ut_shape_numel(n->in[0]->shape)) {
    char a[64], b[64];
    return ut_fail(UT_ERR_SHAPE, "sn_store: '%s' %s does not fit '%s' %s", n->in[1]->name,
                   ut_shape_str(n->in[1]->shape, a, sizeof a), n->in[0]->name, ut_shape_str(n->in[0]->shape, b, sizeof b));
  }
  n->shape = n->in[0]->shape;
  return UT_OK;
}

static ut_status store_forward(ut_plan *p, ut_tensor *n) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "spectral", "copy_into");
  ut_arg_tensor(l, n->in[0]);
  ut_arg_tensor(l, n->in[1]);
  ut_arg_uint(l, (unsigned)count);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static const ut_op_def op_store = { "sn_store", UT_OP_UPDATE, store_shape, store_forward, NULL };

/* ---- public ------------------------------------------------------------------------------------ */

/* The store vector `name` [n]; created N(0, 1) and scaled to unit length as torch does. */
static ut_tensor *unit_vector(ut_graph *g, const char *name, int64_t n, float eps) {
  ut_store *st = ut_graph_store(g);
  int fresh = ut_store_find(st, name) == NULL;
  ut_store_tensor *t = ut_store_tensor_get(st, name, UT_SHAPE(n), (ut_init){ UT_INIT_NORMAL, 0, 1 });
  if (!t) {
    ut_error_prefix("spectral_norm");
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  if (fresh) {
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) {
      ut_fail(UT_ERR_HOST_MEMORY, "spectral_norm: out of host memory initialising '%s'", name);
      return ut_graph_fail(g, UT_ERR_HOST_MEMORY);
    }
    ut_status s = ut_store_tensor_read(st, t, v);
    double sq = 0;
    for (int64_t i = 0; i < n; i++) sq += (double)v[i] * v[i];
    double norm = fmax(sqrt(sq), (double)eps);
    for (int64_t i = 0; i < n; i++) v[i] = (float)(v[i] / norm);
    if (s == UT_OK) s = ut_store_tensor_write(st, t, v);
    free(v);
    if (s != UT_OK) return ut_graph_fail(g, s);
  }
  return ut_state(g, t);
}

ut_tensor *ut_spectral_norm(ut_graph *g, ut_tensor *w, const char *prefix, ut_sn_cfg cfg) {
  if (!g) return NULL;
  if (!w) return ut_graph_fail(g, ut_graph_status(g));
  char s[64];
  if (!prefix || w->dtype != UT_F32 || w->shape.rank < 2 || (cfg.dim != 0 && cfg.dim != 1)) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "spectral_norm '%s': weight '%s' %s must be f32 of rank 2 to 4, dim %d 0 or 1",
            prefix ? prefix : "(null)", w->name, ut_shape_str(w->shape, s, sizeof s), cfg.dim);
    return ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  }
  float eps = cfg.eps > 0 ? cfg.eps : 1e-12f;
  int64_t numel = ut_shape_numel(w->shape), rows = w->shape.d[cfg.dim], cols = numel / rows;
  char name[192];
  snprintf(name, sizeof name, "%s.u", prefix);
  ut_tensor *u = unit_vector(g, name, rows, eps);
  snprintf(name, sizeof name, "%s.v", prefix);
  ut_tensor *v = unit_vector(g, name, cols, eps);
  if (!u || !v) return NULL;
  if (!cfg.frozen)
    for (int i = 0; i < g->n_nodes; i++) {
      ut_tensor *n = g->nodes[i];
      if (n->op != &op_store || n->in[0] != u) continue;
      if (n->iattr[A_WEIGHT] != w->id) {
        ut_fail(UT_ERR_INVALID_ARGUMENT, "spectral_norm '%s': already applied to '%s' in this graph, now asked for '%s'",
                prefix, g->nodes[n->iattr[A_WEIGHT]]->name, w->name);
        return ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
      }
      return g->nodes[n->iattr[A_RESULT]];
    }

  ut_tensor *wv, *v_new = NULL;
  if (cfg.dim == 0) { /* W [rows, cols]: matrix products */
    ut_tensor *wm = ut_reshape(g, w, UT_SHAPE(rows, cols));
    if (!cfg.frozen) v_new = normalize(g, ut_matmul(g, ut_reshape(g, u, UT_SHAPE(1, rows)), wm, 0, 0), eps);
    wv = ut_matmul(g, wm, ut_reshape(g, cfg.frozen ? v : v_new, UT_SHAPE(cols, 1)), 0, 0); /* [rows, 1] */
  } else { /* w as [A, rows, K], W[o, (a, k)] = w[a, o, k]: broadcast products and sums */
    int64_t A = w->shape.d[0], K = cols / A;
    ut_tensor *w3 = ut_reshape(g, w, UT_SHAPE(A, rows, K));
    if (!cfg.frozen) v_new = normalize(g, ut_sum(g, ut_mul(g, w3, ut_reshape(g, u, UT_SHAPE(1, rows, 1))), 2u), eps);
    wv = ut_sum(g, ut_mul(g, w3, ut_reshape(g, cfg.frozen ? v : v_new, UT_SHAPE(A, 1, K))), 1u | 4u); /* [1, rows, 1] */
  }
  if (!wv) return NULL;
  ut_tensor *u_new = cfg.frozen ? NULL : normalize(g, wv, eps);
  ut_tensor *u_used = cfg.frozen ? ut_reshape(g, u, wv->shape) : u_new;
  ut_tensor *sigma = ut_sum_all(g, ut_mul(g, u_used, wv));
  ut_tensor *out = ut_div(g, w, sigma);
  if (!out || cfg.frozen) return out;
  int64_t a[N_STORE_ATTRS] = { [A_RESULT] = out->id, [A_WEIGHT] = w->id };
  ut_tensor *in_u[2] = { u, u_new }, *in_v[2] = { v, v_new };
  if (!ut_node_new(g, &op_store, 2, in_u, a, N_STORE_ATTRS, NULL, 0) || !ut_node_new(g, &op_store, 2, in_v, a, N_STORE_ATTRS, NULL, 0))
    return NULL;
  return out;
}
