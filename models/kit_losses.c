/* The kit's GAN and KL losses and minibatch standard deviation (kit_losses.h), written with the
 * public engine API alone. */
#include "kit_losses.h"

static int check_f32(ut_graph *g, const char *op, ut_tensor *x) {
  if (!x) return 0;
  if (ut_tensor_dtype(x) == UT_F32) return 1;
  ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: input '%s' is not f32", op, ut_tensor_name(x));
  ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  return 0;
}

/* ---- GAN losses ------------------------------------------------------------------------------- */

ut_tensor *kit_lsgan_real_loss(ut_graph *g, ut_tensor *d) {
  if (!check_f32(g, "lsgan_real_loss", d)) return ut_graph_fail(g, ut_graph_status(g));
  return ut_mean_all(g, ut_square(g, ut_shift(g, d, -1.0f)));
}

ut_tensor *kit_lsgan_fake_loss(ut_graph *g, ut_tensor *d) {
  if (!check_f32(g, "lsgan_fake_loss", d)) return ut_graph_fail(g, ut_graph_status(g));
  return ut_mean_all(g, ut_square(g, d));
}

ut_tensor *kit_hinge_real_loss(ut_graph *g, ut_tensor *d) {
  if (!check_f32(g, "hinge_real_loss", d)) return ut_graph_fail(g, ut_graph_status(g));
  return ut_mean_all(g, ut_relu(g, ut_shift(g, ut_neg(g, d), 1.0f)));
}

ut_tensor *kit_hinge_fake_loss(ut_graph *g, ut_tensor *d) {
  if (!check_f32(g, "hinge_fake_loss", d)) return ut_graph_fail(g, ut_graph_status(g));
  return ut_mean_all(g, ut_relu(g, ut_shift(g, d, 1.0f)));
}

ut_tensor *kit_hinge_gen_loss(ut_graph *g, ut_tensor *d) {
  if (!check_f32(g, "hinge_gen_loss", d)) return ut_graph_fail(g, ut_graph_status(g));
  return ut_neg(g, ut_mean_all(g, d));
}

/* x viewed as [M, G, F, (C / F) H W]: sample b is member b % G of group b / G, a run of G
 * consecutive rows. rosinality's x.view(G, -1, F, ...) takes every (B / G)-th row instead
 * (rows m, m + B/G, ...); the rows of a batch come in random order, so either grouping gives
 * the statistic the same distribution, and consecutive groups keep each group inside one
 * slice of the batch, so a data-parallel share of a multiple of G rows computes its own
 * samples' values exactly as the whole batch does. The std over the G members, averaged over
 * the last dimension, gives [M, 1, F, 1], stretched to [M, G, F, H W] and appended to the
 * channels. */
ut_tensor *kit_minibatch_stddev(ut_graph *g, ut_tensor *x, int group, int features) {
  if (!g) return NULL;
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  ut_shape xs = ut_tensor_shape(x);
  char s[64];
  if (xs.rank != 4 || group < 1 || features < 1 || xs.d[1] % features) {
    ut_fail(UT_ERR_SHAPE, "minibatch_stddev: input '%s' %s must be [B, C, H, W] with C divisible by %d features, and "
            "the group (%d) positive", ut_tensor_name(x), ut_shape_str(xs, s, sizeof s), features, group);
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  int64_t B = xs.d[0], C = xs.d[1], HW = xs.d[2] * xs.d[3];
  int64_t G = group < B ? group : B, M = B / G, F = features;
  if (B % G) {
    ut_fail(UT_ERR_SHAPE, "minibatch_stddev: the batch of '%s' %s does not split into groups of %lld samples",
            ut_tensor_name(x), ut_shape_str(xs, s, sizeof s), (long long)G);
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  ut_tensor *v = ut_reshape(g, x, UT_SHAPE(M, G, F, (C / F) * HW));
  ut_tensor *centered = ut_sub(g, v, ut_mean(g, v, 1u << 1));
  ut_tensor *sd = ut_sqrt(g, ut_shift(g, ut_mean(g, ut_square(g, centered), 1u << 1), 1e-8f)); /* [M, 1, F, K] */
  ut_tensor *feat = ut_mean(g, sd, 1u << 3);                                                   /* [M, 1, F, 1] */
  ut_tensor *maps = ut_broadcast(g, feat, UT_SHAPE(M, G, F, HW));
  return ut_concat(g, x, ut_reshape(g, maps, UT_SHAPE(B, F, xs.d[2], xs.d[3])));
}

/* ---- KL terms --------------------------------------------------------------------------------- */

static int same_shapes(ut_graph *g, const char *op, ut_tensor *mu, ut_tensor *logvar) {
  ut_shape ms = ut_tensor_shape(mu), ls = ut_tensor_shape(logvar);
  if (ut_shape_equal(ms, ls) && ut_tensor_dtype(mu) == UT_F32 && ut_tensor_dtype(logvar) == UT_F32) return 1;
  char a[64], b[64];
  ut_fail(UT_ERR_SHAPE, "%s: mu '%s' %s and logvar '%s' %s must be f32 tensors of one shape", op, ut_tensor_name(mu),
          ut_shape_str(ms, a, sizeof a), ut_tensor_name(logvar), ut_shape_str(ls, b, sizeof b));
  ut_graph_fail(g, UT_ERR_SHAPE);
  return 0;
}

ut_tensor *kit_kl_normal(ut_graph *g, ut_tensor *mu, ut_tensor *logvar) {
  if (!g) return NULL;
  if (!mu || !logvar) return ut_graph_fail(g, ut_graph_status(g));
  if (!same_shapes(g, "kl_normal", mu, logvar)) return NULL;
  /* 1 + logvar - mu^2 - exp(logvar), summed, then -0.5 / B. */
  ut_tensor *t = ut_sub(g, ut_shift(g, logvar, 1.0f), ut_add(g, ut_square(g, mu), ut_exp(g, logvar)));
  return ut_scale(g, ut_sum_all(g, t), -0.5f / (float)ut_tensor_shape(mu).d[0]);
}

ut_tensor *kit_kl_unit_variance(ut_graph *g, ut_tensor *mu) {
  if (!g) return NULL;
  if (!mu) return ut_graph_fail(g, ut_graph_status(g));
  return ut_mean_all(g, ut_square(g, mu));
}

/* ---- group moment gap ------------------------------------------------------------------------- */

/* Each row's group mean of x [B, D] over the batch: H (H^T x) / H (H^T 1), H the one-hot [B, K]
 * of the rows' groups. A row's own group is always present, so the count is at least 1. */
static ut_tensor *group_means(ut_graph *g, ut_tensor *onehot, ut_tensor *x) {
  int64_t k = ut_tensor_shape(onehot).d[1];
  ut_tensor *counts = ut_reshape(g, ut_sum(g, onehot, 1u), UT_SHAPE(k, 1));
  return ut_div(g, ut_matmul(g, onehot, ut_matmul(g, onehot, x, 1, 0), 0, 0), ut_matmul(g, onehot, counts, 0, 0));
}

ut_tensor *kit_group_moment_gap(ut_graph *g, ut_tensor *x, ut_tensor *onehot) {
  if (!g) return NULL;
  if (!x || !onehot) return ut_graph_fail(g, ut_graph_status(g));
  if (!check_f32(g, "group_moment_gap", x) || !check_f32(g, "group_moment_gap", onehot)) return NULL;
  ut_shape xs = ut_tensor_shape(x), hs = ut_tensor_shape(onehot);
  if (xs.rank != 2 || hs.rank != 2 || xs.d[0] != hs.d[0]) {
    char a[64], b[64];
    ut_fail(UT_ERR_SHAPE, "group_moment_gap: codes '%s' %s and one-hot '%s' %s must be [B, D] and [B, K]",
            ut_tensor_name(x), ut_shape_str(xs, a, sizeof a), ut_tensor_name(onehot), ut_shape_str(hs, b, sizeof b));
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  ut_tensor *second = ut_square(g, x);
  ut_tensor *gap1 = ut_sub(g, group_means(g, onehot, x), ut_mean(g, x, 1u));
  ut_tensor *gap2 = ut_sub(g, group_means(g, onehot, second), ut_mean(g, second, 1u));
  return ut_add(g, ut_mean_all(g, ut_square(g, gap1)), ut_mean_all(g, ut_square(g, gap2)));
}
