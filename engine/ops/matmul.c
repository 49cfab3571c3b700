/* Matrix products through CLBlast's SGEMM (row-major), and the linear layer built on them. */
#include <math.h>
#include <stdio.h>

#include "error.h"
#include "plan_internal.h"

/* iattr: transpose_a, transpose_b. */
static ut_status matmul_shape(ut_tensor *n) {
  ut_tensor *a = n->in[0], *b = n->in[1];
  int ta = (int)n->iattr[0], tb = (int)n->iattr[1];
  char sa[64], sb[64];
  if (a->shape.rank != 2 || b->shape.rank != 2)
    return ut_fail(UT_ERR_SHAPE, "matmul: needs 2-D tensors, got %s ('%s') and %s ('%s')", ut_shape_str(a->shape, sa, sizeof sa),
                   a->name, ut_shape_str(b->shape, sb, sizeof sb), b->name);
  int64_t m = ta ? a->shape.d[1] : a->shape.d[0], k = ta ? a->shape.d[0] : a->shape.d[1];
  int64_t kb = tb ? b->shape.d[1] : b->shape.d[0], nn = tb ? b->shape.d[0] : b->shape.d[1];
  if (k != kb)
    return ut_fail(UT_ERR_SHAPE, "matmul: inner dimensions differ: %s%s ('%s') x %s%s ('%s')", ut_shape_str(a->shape, sa, sizeof sa),
                   ta ? "^T" : "", a->name, ut_shape_str(b->shape, sb, sizeof sb), tb ? "^T" : "", b->name);
  n->shape = UT_SHAPE(m, nn);
  return UT_OK;
}

static ut_status matmul_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *a = n->in[0], *b = n->in[1];
  int ta = (int)n->iattr[0], tb = (int)n->iattr[1];
  ut_gemm_args args = {
    .trans_a = ta, .trans_b = tb,
    .m = (size_t)n->shape.d[0], .n = (size_t)n->shape.d[1], .k = (size_t)(ta ? a->shape.d[0] : a->shape.d[1]),
    .alpha = 1.0f, .beta = 0.0f,
    .a = ut_plan_loc(p, a), .b = ut_plan_loc(p, b), .c = ut_plan_loc(p, n),
    .lda = (size_t)a->shape.d[1], .ldb = (size_t)b->shape.d[1], .ldc = (size_t)n->shape.d[1],
  };
  return ut_plan_gemm(p, n, &args);
}

/* With C = op(A) op(B): dA = dC op(B)^T (transposed back when A was), dB = op(A)^T dC (likewise). */
static ut_status matmul_backward(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  ut_tensor *a = n->in[0], *b = n->in[1];
  int ta = (int)n->iattr[0], tb = (int)n->iattr[1];
  grad_in[0] = ta ? ut_matmul(g, b, gr, tb, 1) : ut_matmul(g, gr, b, 0, !tb);
  grad_in[1] = tb ? ut_matmul(g, gr, a, 1, ta) : ut_matmul(g, a, gr, !ta, 0);
  return UT_OK;
}

static const ut_op_def op_matmul = { "matmul", 0, matmul_shape, matmul_forward, matmul_backward };

ut_tensor *ut_matmul(ut_graph *g, ut_tensor *a, ut_tensor *b, int transpose_a, int transpose_b) {
  ut_tensor *in[2] = { a, b };
  int64_t attrs[2] = { transpose_a != 0, transpose_b != 0 };
  return ut_node_new(g, &op_matmul, 2, in, attrs, 2, NULL, 0);
}

ut_tensor *ut_linear(ut_graph *g, ut_tensor *x, const char *prefix, int64_t out_features) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  if (x->shape.rank != 2) {
    char s[64];
    ut_fail(UT_ERR_SHAPE, "linear '%s': input '%s' must be [batch, features], got %s", prefix, x->name,
            ut_shape_str(x->shape, s, sizeof s));
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  int64_t in_features = x->shape.d[1];
  char wname[128], bname[128];
  snprintf(wname, sizeof wname, "%s.w", prefix);
  snprintf(bname, sizeof bname, "%s.b", prefix);
  ut_tensor *w = ut_param(g, wname, UT_SHAPE(out_features, in_features), (ut_init){ UT_INIT_FAN_IN_UNIFORM, 0, 0 });
  ut_tensor *b = ut_param(g, bname, UT_SHAPE(out_features), (ut_init){ UT_INIT_FAN_IN_UNIFORM, (float)in_features, 0 });
  return ut_add(g, ut_matmul(g, x, w, 0, 1), b);
}
