/* Stochastic layers: dropout, additive Gaussian noise and the VAE reparameterization (the KL
 * terms of UNIT's and DMIT's losses are the model kit's, models/kit_losses.c).
 *
 * Every random tensor comes from ut_random_uniform / ut_random_normal under the caller's name,
 * so a draw is a pure function of (store seed, name, run counter "rng.<name>"): reproducible,
 * the same on every device, and fixed for a test by resetting the counter. The stochastic ops
 * are a random source plus deterministic ops, so their gradients are those of the
 * deterministic part with the run's draw held constant (a random source has no backward).
 *
 * Dropout is one op of its own ("dropout_apply", cl/stochastic.cl): out = u > p ? x * s : 0
 * in one pass instead of four elementwise ones; it is linear in x, so its gradient is the same
 * op on the incoming gradient with the same draw u, and gradients of gradients stay inside it.
 * The rest are compositions of elementwise ops. */
#include <math.h>

#include "error.h"
#include "plan_internal.h"

/* ---- dropout_apply: in = x, u (same shape); fattr = p, scale --------------------------------- */

static ut_status dropout_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0], *u = n->in[1];
  if (x->dtype != UT_F32 || u->dtype != UT_F32 || !ut_shape_equal(x->shape, u->shape)) {
    char a[64], b[64];
    return ut_fail(UT_ERR_SHAPE, "dropout: input '%s' %s and its draw '%s' %s must be f32 tensors of one shape", x->name,
                   ut_shape_str(x->shape, a, sizeof a), u->name, ut_shape_str(u->shape, b, sizeof b));
  }
  n->shape = x->shape;
  return UT_OK;
}

static ut_status dropout_forward(ut_plan *p, ut_tensor *n) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "stochastic", "dropout_apply");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_tensor(l, n->in[1]);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_float(l, n->fattr[0]);
  ut_arg_float(l, n->fattr[1]);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static ut_tensor *dropout_apply(ut_graph *g, ut_tensor *x, ut_tensor *u, float p, float scale);

static ut_status dropout_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = dropout_apply(g, grad, n->in[1], n->fattr[0], n->fattr[1]);
  return grad_in[0] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_dropout = { "dropout", 0, dropout_shape, dropout_forward, dropout_backward };

static ut_tensor *dropout_apply(ut_graph *g, ut_tensor *x, ut_tensor *u, float p, float scale) {
  ut_tensor *in[2] = { x, u };
  float f[2] = { p, scale };
  return ut_node_new(g, &op_dropout, 2, in, NULL, 0, f, 2);
}

/* ---- public ------------------------------------------------------------------------------------ */

static ut_tensor *invalid(ut_graph *g, ut_status s, const char *op, const char *what, const ut_tensor *x, double v) {
  char a[64];
  ut_fail(s, "%s: %s %g is out of range (input '%s' %s)", op, what, v, x->name, ut_shape_str(x->shape, a, sizeof a));
  return ut_graph_fail(g, s);
}

ut_tensor *ut_dropout(ut_graph *g, ut_tensor *x, const char *name, float p) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  if (!(p >= 0.0f && p <= 1.0f)) return invalid(g, UT_ERR_INVALID_ARGUMENT, "dropout", "probability", x, p);
  if (p == 0.0f) return x;
  if (p == 1.0f) return ut_scale(g, x, 0.0f); /* nn.Dropout(1) gives zeros, and so does its gradient */
  return dropout_apply(g, x, ut_random_uniform(g, name, x->shape), p, 1.0f / (1.0f - p));
}

ut_tensor *ut_gaussian_noise(ut_graph *g, ut_tensor *x, const char *name, float sigma) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  if (!(sigma >= 0.0f) || isinf(sigma)) return invalid(g, UT_ERR_INVALID_ARGUMENT, "gaussian_noise", "sigma", x, sigma);
  if (sigma == 0.0f) return x;
  ut_tensor *z = ut_random_normal(g, name, x->shape);
  return ut_add(g, x, sigma == 1.0f ? z : ut_scale(g, z, sigma));
}

static int same_shapes(ut_graph *g, const char *op, ut_tensor *mu, ut_tensor *logvar) {
  if (ut_shape_equal(mu->shape, logvar->shape) && mu->dtype == UT_F32 && logvar->dtype == UT_F32) return 1;
  char a[64], b[64];
  ut_fail(UT_ERR_SHAPE, "%s: mu '%s' %s and logvar '%s' %s must be f32 tensors of one shape", op, mu->name,
          ut_shape_str(mu->shape, a, sizeof a), logvar->name, ut_shape_str(logvar->shape, b, sizeof b));
  ut_graph_fail(g, UT_ERR_SHAPE);
  return 0;
}

ut_tensor *ut_reparameterize(ut_graph *g, ut_tensor *mu, ut_tensor *logvar, const char *name) {
  if (!g) return NULL;
  if (!mu || !logvar) return ut_graph_fail(g, ut_graph_status(g));
  if (!same_shapes(g, "reparameterize", mu, logvar)) return NULL;
  ut_tensor *eps = ut_random_normal(g, name, mu->shape);
  return ut_add(g, mu, ut_mul(g, ut_exp(g, ut_scale(g, logvar, 0.5f)), eps));
}
