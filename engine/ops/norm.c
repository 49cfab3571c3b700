/* Normalization layers. Instance norm and AdaIN run as fused ops (norm_fused.c: statistics,
 * normalisation and affine part in one kernel per plane, a fused backward); this file checks
 * their arguments and keeps the compositions of existing ops (mean, sub, square, sqrt, div,
 * mul, add) that they replaced, as their reference in the tests (norm_internal.h). Layer norm
 * is still such a composite. The composites are correct and differentiable to any order (R1
 * penalties included) with no backward code of their own.
 *
 * Statistics are two-pass (the mean first, then the mean of squared deviations), which keeps
 * the variance accurate for large means, and biased (divided by the count) as PyTorch uses for
 * normalizing. eps is added to the variance inside the square root. */
#include "error.h"
#include "norm_internal.h"

/* (x - mean) / sqrt(var + eps) over the dimensions in `axes`. */
static ut_tensor *normalize(ut_graph *g, ut_tensor *x, unsigned axes, float eps) {
  ut_tensor *centered = ut_sub(g, x, ut_mean(g, x, axes));
  ut_tensor *var = ut_mean(g, ut_square(g, centered), axes);
  return ut_div(g, centered, ut_sqrt(g, ut_shift(g, var, eps)));
}

/* Whether v (NULL passes) is a [C] vector for x [B, C, ...]; records a shape error if not. */
static int check_channel_vector(ut_graph *g, const char *op, ut_tensor *v, const char *what, ut_tensor *x) {
  if (!v || (v->shape.rank == 1 && v->shape.d[0] == x->shape.d[1])) return 1;
  char a[64], b[64];
  ut_fail(UT_ERR_SHAPE, "%s: %s '%s' of shape %s must be [%lld] for input '%s' %s", op, what, v->name,
          ut_shape_str(v->shape, a, sizeof a), (long long)x->shape.d[1], x->name, ut_shape_str(x->shape, b, sizeof b));
  ut_graph_fail(g, UT_ERR_SHAPE);
  return 0;
}

/* A per-channel [C] vector as [C, 1, ..., 1] so that it broadcasts along dimension 1 of a
 * rank-`rank` tensor; NULL stays NULL. Fails unless it has C elements. */
static int channel_vector(ut_graph *g, const char *op, ut_tensor *v, const char *what, ut_tensor *x, ut_tensor **out) {
  *out = NULL;
  if (!check_channel_vector(g, op, v, what, x)) return 0;
  if (!v) return 1;
  ut_shape s = { .rank = x->shape.rank - 1 };
  s.d[0] = x->shape.d[1];
  for (int i = 1; i < s.rank; i++) s.d[i] = 1;
  *out = ut_reshape(g, v, s);
  return *out != NULL;
}

static ut_tensor *affine(ut_graph *g, ut_tensor *y, ut_tensor *w, ut_tensor *b) {
  if (w) y = ut_mul(g, y, w);
  if (b) y = ut_add(g, y, b);
  return y;
}

static int check_rank(ut_graph *g, const char *op, ut_tensor *x, int lo, int hi, const char *layout) {
  if (x->shape.rank >= lo && x->shape.rank <= hi && x->dtype == UT_F32) return 1;
  char a[64];
  ut_fail(UT_ERR_SHAPE, "%s: input '%s' of shape %s must be an f32 %s tensor", op, x->name, ut_shape_str(x->shape, a, sizeof a), layout);
  ut_graph_fail(g, UT_ERR_SHAPE);
  return 0;
}

ut_tensor *ut_instance_norm_reference(ut_graph *g, ut_tensor *x, ut_tensor *weight, ut_tensor *bias, float eps) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  ut_tensor *w, *b;
  if (!check_rank(g, "instance_norm", x, 4, 4, "[B, C, H, W]") || !channel_vector(g, "instance_norm", weight, "weight", x, &w) ||
      !channel_vector(g, "instance_norm", bias, "bias", x, &b))
    return ut_graph_fail(g, ut_graph_status(g));
  return affine(g, normalize(g, x, (1u << 2) | (1u << 3), eps), w, b);
}

ut_tensor *ut_instance_norm(ut_graph *g, ut_tensor *x, ut_tensor *weight, ut_tensor *bias, float eps) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  if (!check_rank(g, "instance_norm", x, 4, 4, "[B, C, H, W]") || !check_channel_vector(g, "instance_norm", weight, "weight", x) ||
      !check_channel_vector(g, "instance_norm", bias, "bias", x))
    return ut_graph_fail(g, ut_graph_status(g));
  return ut_plane_norm(g, x, weight, bias, UT_NORM_PER_CHANNEL, eps, 0);
}

/* AdaIN's operands: x [B, C, H, W], scale and bias [B, C]. */
static int check_adain(ut_graph *g, ut_tensor *x, ut_tensor *scale, ut_tensor *bias) {
  if (!check_rank(g, "adain", x, 4, 4, "[B, C, H, W]")) return 0;
  ut_shape bc = UT_SHAPE(x->shape.d[0], x->shape.d[1]);
  if (ut_shape_equal(scale->shape, bc) && ut_shape_equal(bias->shape, bc)) return 1;
  char a[64], b[64], c[64];
  ut_fail(UT_ERR_SHAPE, "adain: scale '%s' %s and bias '%s' %s must both be [B, C] = %s for input '%s'", scale->name,
          ut_shape_str(scale->shape, a, sizeof a), bias->name, ut_shape_str(bias->shape, b, sizeof b),
          ut_shape_str(bc, c, sizeof c), x->name);
  ut_graph_fail(g, UT_ERR_SHAPE);
  return 0;
}

/* LORD's AdaIN is F.batch_norm over the (1, B*C, H, W) view in training mode: statistics per
 * (sample, channel) over H, W, biased, eps inside the root. That is instance norm. */
ut_tensor *ut_adain_reference(ut_graph *g, ut_tensor *x, ut_tensor *scale, ut_tensor *bias, float eps) {
  if (!x || !scale || !bias) return ut_graph_fail(g, ut_graph_status(g));
  if (!check_adain(g, x, scale, bias)) return NULL;
  ut_shape bc11 = UT_SHAPE(x->shape.d[0], x->shape.d[1], 1, 1);
  ut_tensor *y = normalize(g, x, (1u << 2) | (1u << 3), eps);
  return ut_add(g, ut_mul(g, y, ut_reshape(g, scale, bc11)), ut_reshape(g, bias, bc11));
}

ut_tensor *ut_adain(ut_graph *g, ut_tensor *x, ut_tensor *scale, ut_tensor *bias, float eps) {
  if (!x || !scale || !bias) return ut_graph_fail(g, ut_graph_status(g));
  if (!check_adain(g, x, scale, bias)) return NULL;
  return ut_plane_norm(g, x, scale, bias, UT_NORM_PER_PLANE, eps, 0);
}

ut_tensor *ut_layer_norm(ut_graph *g, ut_tensor *x, ut_tensor *weight, ut_tensor *bias, float eps) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  ut_tensor *w, *b;
  if (!check_rank(g, "layer_norm", x, 2, 4, "[B, C, ...]") || !channel_vector(g, "layer_norm", weight, "weight", x, &w) ||
      !channel_vector(g, "layer_norm", bias, "bias", x, &b))
    return ut_graph_fail(g, ut_graph_status(g));
  unsigned axes = ((1u << x->shape.rank) - 1) & ~1u; /* every dimension but the batch */
  return affine(g, normalize(g, x, axes, eps), w, b);
}
