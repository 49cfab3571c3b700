/* DMIT's conditional instance normalization (CBIN, models/modules/cbin.py): the instance
 * statistics of x are removed with no affine part, and a per-sample, per-channel bias computed
 * from a condition code (the domain label and the style) is added back:
 *
 *   CBIN(x, code) = instance_norm(x, eps 1e-5) + tanh(SN-Linear(code))[:, :, None, None]
 *
 * DMIT wraps the Linear in spectral_norm, like every layer of its networks; a composition of
 * ut_instance_norm, ut_spectral_norm, ut_matmul and ut_tanh, so differentiable to any order. */
#include <stdio.h>

#include "error.h"
#include "graph_internal.h"

ut_tensor *ut_cbin(ut_graph *g, ut_tensor *x, ut_tensor *code, const char *prefix, const ut_sn_cfg *sn) {
  if (!g) return NULL;
  if (!x || !code) return ut_graph_fail(g, ut_graph_status(g));
  char a[64], b[64];
  if (!prefix || x->shape.rank != 4 || code->shape.rank != 2 || code->shape.d[0] != x->shape.d[0]) {
    ut_fail(UT_ERR_SHAPE, "cbin '%s': input '%s' %s and code '%s' %s must be [B, C, H, W] and [B, n]",
            prefix ? prefix : "(null)", x->name, ut_shape_str(x->shape, a, sizeof a), code->name,
            ut_shape_str(code->shape, b, sizeof b));
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  int64_t B = x->shape.d[0], C = x->shape.d[1];
  char name[160];
  snprintf(name, sizeof name, "%s.w", prefix);
  ut_tensor *w = ut_param(g, name, UT_SHAPE(C, code->shape.d[1]), (ut_init){ UT_INIT_NORMAL, 0, 0.02f });
  snprintf(name, sizeof name, "%s.b", prefix);
  ut_tensor *bias = ut_param(g, name, UT_SHAPE(C), (ut_init){ UT_INIT_ZERO, 0, 0 });
  if (sn) {
    ut_sn_cfg cfg = *sn;
    cfg.dim = 0; /* a Linear weight's rows are its outputs */
    w = ut_spectral_norm(g, w, prefix, cfg);
  }
  ut_tensor *shift = ut_tanh(g, ut_add(g, ut_matmul(g, code, w, 0, 1), bias));
  return ut_add(g, ut_instance_norm(g, x, NULL, NULL, 1e-5f), ut_reshape(g, shift, UT_SHAPE(B, C, 1, 1)));
}
