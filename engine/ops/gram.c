/* Batched matrix products (one strided-batched CLBlast GEMM over the first dimension) and the
 * Gram matrices of feature maps built on them, for style losses and style statistics.
 *
 * The batched product's backward is two batched products, exactly as ut_matmul's (see
 * engine/ops/matmul.c), so gradients of any order stay inside this op. The Gram matrix is a
 * reshape, one product of F with itself and a scale; autograd sums the two contributions of
 * F, which gives dF = (dG + dG^T) F / (C H W). */
#include "error.h"
#include "plan_internal.h"

/* iattr: transpose_a, transpose_b. */
static ut_status bmm_shape(ut_tensor *n) {
  ut_tensor *a = n->in[0], *b = n->in[1];
  int ta = (int)n->iattr[0], tb = (int)n->iattr[1];
  char sa[64], sb[64];
  ut_shape_str(a->shape, sa, sizeof sa);
  ut_shape_str(b->shape, sb, sizeof sb);
  if (a->shape.rank != 3 || b->shape.rank != 3 || a->dtype != UT_F32 || b->dtype != UT_F32 ||
      a->shape.d[0] != b->shape.d[0])
    return ut_fail(UT_ERR_SHAPE, "batched_matmul: needs two f32 [B, rows, columns] tensors with one B, got %s ('%s') and %s ('%s')",
                   sa, a->name, sb, b->name);
  int64_t m = ta ? a->shape.d[2] : a->shape.d[1], k = ta ? a->shape.d[1] : a->shape.d[2];
  int64_t kb = tb ? b->shape.d[2] : b->shape.d[1], nn = tb ? b->shape.d[1] : b->shape.d[2];
  if (k != kb)
    return ut_fail(UT_ERR_SHAPE, "batched_matmul: inner dimensions differ: %s%s ('%s') x %s%s ('%s')", sa, ta ? "^T" : "",
                   a->name, sb, tb ? "^T" : "", b->name);
  n->shape = UT_SHAPE(a->shape.d[0], m, nn);
  return UT_OK;
}

static ut_status bmm_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *a = n->in[0], *b = n->in[1];
  int ta = (int)n->iattr[0];
  size_t m = (size_t)n->shape.d[1], nn = (size_t)n->shape.d[2];
  ut_gemm_args args = {
    .trans_a = ta, .trans_b = (int)n->iattr[1],
    .m = m, .n = nn, .k = (size_t)(ta ? a->shape.d[1] : a->shape.d[2]),
    .alpha = 1.0f, .beta = 0.0f,
    .a = ut_plan_loc(p, a), .b = ut_plan_loc(p, b), .c = ut_plan_loc(p, n),
    .lda = (size_t)a->shape.d[2], .ldb = (size_t)b->shape.d[2], .ldc = nn,
    .batch = (size_t)n->shape.d[0],
    .stride_a = (size_t)(a->shape.d[1] * a->shape.d[2]),
    .stride_b = (size_t)(b->shape.d[1] * b->shape.d[2]),
    .stride_c = m * nn,
  };
  return ut_plan_gemm(p, n, &args);
}

/* With C = op(A) op(B) per batch entry: dA = dC op(B)^T (transposed back when A was), and
 * dB = op(A)^T dC (likewise), each a batched product again. */
static ut_status bmm_backward(ut_graph *g, ut_tensor *n, ut_tensor *gr, ut_tensor **grad_in) {
  ut_tensor *a = n->in[0], *b = n->in[1];
  int ta = (int)n->iattr[0], tb = (int)n->iattr[1];
  grad_in[0] = ta ? ut_batched_matmul(g, b, gr, tb, 1) : ut_batched_matmul(g, gr, b, 0, !tb);
  grad_in[1] = tb ? ut_batched_matmul(g, gr, a, 1, ta) : ut_batched_matmul(g, a, gr, !ta, 0);
  return grad_in[0] && grad_in[1] ? UT_OK : ut_graph_status(g);
}

static const ut_op_def op_bmm = { "batched_matmul", 0, bmm_shape, bmm_forward, bmm_backward };

ut_tensor *ut_batched_matmul(ut_graph *g, ut_tensor *a, ut_tensor *b, int transpose_a, int transpose_b) {
  ut_tensor *in[2] = { a, b };
  int64_t attrs[2] = { transpose_a != 0, transpose_b != 0 };
  return ut_node_new(g, &op_bmm, 2, in, attrs, 2, NULL, 0);
}

ut_tensor *ut_gram(ut_graph *g, ut_tensor *x) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  if (x->shape.rank < 3 || x->dtype != UT_F32) {
    char a[64];
    ut_fail(UT_ERR_SHAPE, "gram: input '%s' of shape %s must be an f32 [B, C, H, W] or [B, C, N] tensor", x->name,
            ut_shape_str(x->shape, a, sizeof a));
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  int64_t b = x->shape.d[0], c = x->shape.d[1], per_image = ut_shape_numel(x->shape) / b;
  ut_tensor *f = ut_reshape(g, x, UT_SHAPE(b, c, per_image / c));
  return ut_scale(g, ut_batched_matmul(g, f, f, 0, 1), (float)(1.0 / (double)per_image));
}
