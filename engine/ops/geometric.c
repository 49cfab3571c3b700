/* Geometric transforms: affine bilinear resampling (F.grid_sample over F.affine_grid) and the
 * random crop / flip / rotation matrices of OverLORD's augmentation T. Kernels in
 * cl/geometric.cl, which also states the coordinate conventions.
 *
 * Three ops carry the resampling, with S(x, theta) the sampled image:
 *
 *   grid_sample          (x, theta)        -> S(x, theta)                  [B, C, OH, OW]
 *   grid_sample_adjoint  (g, theta)        -> S^T(g, theta)                [B, C, H, W]
 *   grid_sample_theta    (go, x, theta)    -> per-pixel terms of d<go, S(x, theta)>/d theta,
 *                                             summed over pixels by ut_sum  [B, 6, OH * OW]
 *
 * S is linear in x, so its x-gradient is the adjoint, and the adjoint's gradient with respect
 * to g is S again. The theta-gradients of both come from grid_sample_theta, because
 * <gg, S^T(g, theta)> = <S(gg, theta), g>. grid_sample_theta itself has no backward: second
 * derivatives that pass through a theta-gradient are not computed (everything else is, to any
 * order), which covers every use in the models: theta comes from random sources there.
 *
 * The random matrices and the composition of transforms are built from ordinary ops, plus
 * rotation_theta (cos and sin of an angle), whose derivative is itself shifted by pi/2. */
#include <math.h>
#include <stdio.h>

#include "error.h"
#include "plan_internal.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* iattr of the three resampling ops: the size of the other side (the output of grid_sample,
 * the input of the adjoint and of the theta terms). */
enum { A_H, A_W, N_ATTRS };

static ut_status fail_shape(const char *op, const char *what, const ut_tensor *t, const char *want) {
  char a[64];
  return ut_fail(UT_ERR_SHAPE, "%s: %s '%s' of shape %s must be %s", op, what, t->name, ut_shape_str(t->shape, a, sizeof a),
                 want);
}

static ut_status check_image(const char *op, const char *what, const ut_tensor *t) {
  if (t->dtype != UT_F32 || t->shape.rank != 4) return fail_shape(op, what, t, "an f32 [B, C, H, W] tensor");
  return UT_OK;
}

/* theta is [B, 2, 3] or [B, 6], with B the image batch. */
static ut_status check_theta(const char *op, const ut_tensor *theta, const ut_tensor *image) {
  ut_shape s = theta->shape;
  int64_t b = image->shape.d[0];
  int ok = theta->dtype == UT_F32 && s.d[0] == b &&
           ((s.rank == 3 && s.d[1] == 2 && s.d[2] == 3) || (s.rank == 2 && s.d[1] == 6));
  if (ok) return UT_OK;
  char want[160], a[64];
  snprintf(want, sizeof want, "f32 [%lld, 2, 3] or [%lld, 6] (one matrix per sample of '%s' %s)", (long long)b,
           (long long)b, image->name, ut_shape_str(image->shape, a, sizeof a));
  return fail_shape(op, "theta", theta, want);
}

/* The kernels index planes with 32-bit unsigned arithmetic. */
static ut_status check_size(const char *op, ut_shape a, int64_t oh, int64_t ow) {
  int64_t big = (int64_t)1 << 31, planes = a.d[0] * a.d[1]; /* <= 2^32: the graph bounds numel */
  if (oh < 1 || ow < 1 || oh >= big || ow >= big || oh * ow > (((int64_t)1 << 32) - 1) / planes) {
    char s[64];
    return ut_fail(UT_ERR_SHAPE, "%s: output size %lld x %lld for input %s is empty or too large for 32-bit indexing", op,
                   (long long)oh, (long long)ow, ut_shape_str(a, s, sizeof s));
  }
  return UT_OK;
}

/* ---- grid_sample: in = (x, theta); iattr = OH, OW --------------------------------------------- */

static ut_status sample_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0];
  ut_status st = check_image(n->op->name, "x", x);
  if (st == UT_OK) st = check_theta(n->op->name, n->in[1], x);
  if (st == UT_OK) st = check_size(n->op->name, x->shape, n->iattr[A_H], n->iattr[A_W]);
  if (st == UT_OK) n->shape = UT_SHAPE(x->shape.d[0], x->shape.d[1], n->iattr[A_H], n->iattr[A_W]);
  return st;
}

/* One launch shape for the forward and adjoint kernels: (out, in, theta, count, C, H, W, OH, OW)
 * where H, W is the image side and OH, OW the sampled side. */
static ut_status launch_resample(ut_plan *p, ut_tensor *n, const char *kernel, ut_shape image, ut_shape sampled) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "geometric", kernel);
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_tensor(l, n->in[1]);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_int(l, (int)image.d[1]);
  ut_arg_int(l, (int)image.d[2]);
  ut_arg_int(l, (int)image.d[3]);
  ut_arg_int(l, (int)sampled.d[2]);
  ut_arg_int(l, (int)sampled.d[3]);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static ut_status sample_forward(ut_plan *p, ut_tensor *n) {
  return launch_resample(p, n, "grid_sample", n->in[0]->shape, n->shape);
}

static ut_tensor *sample(ut_graph *g, ut_tensor *x, ut_tensor *theta, int64_t oh, int64_t ow);
static ut_tensor *adjoint(ut_graph *g, ut_tensor *gr, ut_tensor *theta, int64_t h, int64_t w);
static ut_tensor *theta_grad(ut_graph *g, ut_tensor *go, ut_tensor *x, ut_tensor *theta);

static ut_status sample_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  ut_tensor *x = n->in[0], *theta = n->in[1];
  grad_in[0] = adjoint(g, grad, theta, x->shape.d[2], x->shape.d[3]);
  grad_in[1] = theta_grad(g, grad, x, theta);
  return ut_graph_status(g);
}

static const ut_op_def op_sample = { "grid_sample", 0, sample_shape, sample_forward, sample_backward };

static ut_tensor *sample(ut_graph *g, ut_tensor *x, ut_tensor *theta, int64_t oh, int64_t ow) {
  ut_tensor *in[2] = { x, theta };
  int64_t a[N_ATTRS] = { oh, ow };
  return ut_node_new(g, &op_sample, 2, in, a, N_ATTRS, NULL, 0);
}

/* ---- grid_sample_adjoint: in = (g [B, C, OH, OW], theta); iattr = H, W of the image --------------- */

static ut_status adjoint_shape(ut_tensor *n) {
  ut_tensor *gr = n->in[0];
  ut_status st = check_image(n->op->name, "gradient", gr);
  if (st == UT_OK) st = check_theta(n->op->name, n->in[1], gr);
  if (st == UT_OK) st = check_size(n->op->name, gr->shape, n->iattr[A_H], n->iattr[A_W]);
  if (st == UT_OK) n->shape = UT_SHAPE(gr->shape.d[0], gr->shape.d[1], n->iattr[A_H], n->iattr[A_W]);
  return st;
}

static ut_status adjoint_forward(ut_plan *p, ut_tensor *n) {
  return launch_resample(p, n, "grid_sample_adjoint", n->shape, n->in[0]->shape);
}

static ut_status adjoint_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  ut_tensor *gr = n->in[0], *theta = n->in[1];
  grad_in[0] = sample(g, grad, theta, gr->shape.d[2], gr->shape.d[3]);
  grad_in[1] = theta_grad(g, gr, grad, theta); /* <grad, S^T(gr)> = <S(grad), gr> */
  return ut_graph_status(g);
}

static const ut_op_def op_adjoint = { "grid_sample_adjoint", 0, adjoint_shape, adjoint_forward, adjoint_backward };

static ut_tensor *adjoint(ut_graph *g, ut_tensor *gr, ut_tensor *theta, int64_t h, int64_t w) {
  ut_tensor *in[2] = { gr, theta };
  int64_t a[N_ATTRS] = { h, w };
  return ut_node_new(g, &op_adjoint, 2, in, a, N_ATTRS, NULL, 0);
}

/* ---- grid_sample_theta: in = (go [B, C, OH, OW], x [B, C, H, W], theta) -> [B, 6, OH * OW] ------ */

static ut_status terms_shape(ut_tensor *n) {
  ut_tensor *go = n->in[0], *x = n->in[1];
  ut_status st = check_image(n->op->name, "gradient", go);
  if (st == UT_OK) st = check_image(n->op->name, "x", x);
  if (st == UT_OK && (go->shape.d[0] != x->shape.d[0] || go->shape.d[1] != x->shape.d[1])) {
    char a[64];
    snprintf(a, sizeof a, "[%lld, %lld, OH, OW] like x", (long long)x->shape.d[0], (long long)x->shape.d[1]);
    st = fail_shape(n->op->name, "gradient", go, a);
  }
  if (st == UT_OK) st = check_theta(n->op->name, n->in[2], x);
  if (st == UT_OK) n->shape = UT_SHAPE(go->shape.d[0], 6, go->shape.d[2] * go->shape.d[3]);
  return st;
}

static ut_status terms_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *go = n->in[0], *x = n->in[1];
  size_t count = (size_t)(go->shape.d[0] * go->shape.d[2] * go->shape.d[3]);
  ut_launch *l = ut_plan_kernel(p, n, "geometric", "grid_sample_theta");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, go);
  ut_arg_tensor(l, x);
  ut_arg_tensor(l, n->in[2]);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_int(l, (int)x->shape.d[1]);
  ut_arg_int(l, (int)x->shape.d[2]);
  ut_arg_int(l, (int)x->shape.d[3]);
  ut_arg_int(l, (int)go->shape.d[2]);
  ut_arg_int(l, (int)go->shape.d[3]);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

/* No backward: see the file comment. */
static const ut_op_def op_terms = { "grid_sample_theta", 0, terms_shape, terms_forward, NULL };

/* d<go, S(x, theta)>/d theta, shaped as theta; the pixel sum is the engine's fixed-order
 * reduction, so the result is the same on every run. */
static ut_tensor *theta_grad(ut_graph *g, ut_tensor *go, ut_tensor *x, ut_tensor *theta) {
  ut_tensor *in[3] = { go, x, theta };
  ut_tensor *t = ut_node_new(g, &op_terms, 3, in, NULL, 0, NULL, 0);
  return t ? ut_reshape(g, ut_sum(g, t, 1u << 2), theta->shape) : NULL;
}

/* ---- rotation_theta: angle [B] or [B, 1] -> [B, 2, 3] ---------------------------------------- */

static ut_status rotation_shape(ut_tensor *n) {
  ut_tensor *a = n->in[0];
  ut_shape s = a->shape;
  if (a->dtype != UT_F32 || !((s.rank == 1) || (s.rank == 2 && s.d[1] == 1)))
    return fail_shape(n->op->name, "angle", a, "an f32 [B] or [B, 1] tensor of radians");
  n->shape = UT_SHAPE(s.d[0], 2, 3);
  return UT_OK;
}

static ut_status rotation_forward(ut_plan *p, ut_tensor *n) {
  size_t count = (size_t)n->shape.d[0];
  ut_launch *l = ut_plan_kernel(p, n, "geometric", "rotation_theta");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, n->in[0]);
  ut_arg_uint(l, (unsigned)count);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

/* dR(a)/da = R(a + pi/2) with its translation column (zero) left as is. */
static ut_status rotation_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  ut_tensor *a = n->in[0];
  ut_tensor *dr = ut_rotation_theta(g, ut_shift(g, a, (float)(M_PI / 2)));
  ut_tensor *prod = ut_reshape(g, ut_mul(g, grad, dr), UT_SHAPE(n->shape.d[0], 6));
  grad_in[0] = ut_reshape(g, ut_sum(g, prod, 1u << 1), a->shape);
  return ut_graph_status(g);
}

static const ut_op_def op_rotation = { "rotation_theta", 0, rotation_shape, rotation_forward, rotation_backward };

/* ---- public ------------------------------------------------------------------------------------ */

ut_tensor *ut_affine_grid_sample_to(ut_graph *g, ut_tensor *x, ut_tensor *theta, int64_t out_h, int64_t out_w) {
  return sample(g, x, theta, out_h, out_w);
}

ut_tensor *ut_affine_grid_sample(ut_graph *g, ut_tensor *x, ut_tensor *theta) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  if (x->shape.rank != 4) {
    ut_graph_fail(g, fail_shape("grid_sample", "x", x, "an f32 [B, C, H, W] tensor"));
    return NULL;
  }
  return sample(g, x, theta, x->shape.d[2], x->shape.d[3]);
}

ut_tensor *ut_rotation_theta(ut_graph *g, ut_tensor *angle) {
  return ut_node_new(g, &op_rotation, 1, &angle, NULL, 0, NULL, 0);
}

/* Matrices as [B, 6] rows, whatever the caller's layout; NULL (with the graph's error) when t
 * is not a batch of 2x3 matrices. */
static ut_tensor *as_rows(ut_graph *g, const char *op, const char *what, ut_tensor *t) {
  if (!t) return ut_graph_fail(g, ut_graph_status(g));
  ut_shape s = t->shape;
  if (!((s.rank == 3 && s.d[1] == 2 && s.d[2] == 3) || (s.rank == 2 && s.d[1] == 6))) {
    ut_graph_fail(g, fail_shape(op, what, t, "[B, 2, 3] or [B, 6]"));
    return NULL;
  }
  return ut_reshape(g, t, UT_SHAPE(s.d[0], 6));
}

/* With each matrix extended by the row (0, 0, 1): out[b] = first[b] x second[b], written as a
 * broadcast product [B, 2, 3, 1] * [B, 1, 3, 3] summed over the middle axis (three terms in a
 * fixed order), so it is exact for the small integers of flips and quarter turns. */
ut_tensor *ut_affine_compose(ut_graph *g, ut_tensor *first, ut_tensor *second) {
  ut_tensor *a = as_rows(g, "affine_compose", "first", first), *b = as_rows(g, "affine_compose", "second", second);
  if (!a || !b) return NULL;
  int64_t n = a->shape.d[0];
  if (b->shape.d[0] != n) {
    char s[64];
    snprintf(s, sizeof s, "of batch %lld like the first", (long long)n);
    ut_graph_fail(g, fail_shape("affine_compose", "second", second, s));
    return NULL;
  }
  float *row = ut_graph_alloc(g, (size_t)n * 3 * sizeof *row);
  if (!row) {
    ut_fail(UT_ERR_HOST_MEMORY, "affine_compose: out of host memory");
    return ut_graph_fail(g, UT_ERR_HOST_MEMORY);
  }
  for (int64_t i = 0; i < n; i++) row[3 * i + 2] = 1.0f;
  ut_tensor *b3 = ut_reshape(g, ut_concat(g, b, ut_constant(g, UT_SHAPE(n, 3), row)), UT_SHAPE(n, 1, 3, 3));
  ut_tensor *prod = ut_mul(g, ut_reshape(g, a, UT_SHAPE(n, 2, 3, 1)), b3);
  return ut_reshape(g, ut_sum(g, prod, 1u << 2), UT_SHAPE(n, 2, 3));
}

static int check_batch(ut_graph *g, const char *op, int64_t batch) {
  if (batch >= 1 && batch <= ((int64_t)1 << 28)) return 1;
  ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: batch %lld must be between 1 and 2^28", op, (long long)batch);
  ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  return 0;
}

/* Column k of u [B, K] as [B, 1]. */
static ut_tensor *column(ut_graph *g, ut_tensor *u, int k) { return ut_slice_channels(g, u, k, 1); }

/* u = U(0, 1) [B, 4] per run: u0 picks the area, u1 and u2 the centre, u3 the flip. The side
 * fraction is r = sqrt(area); the centre lies anywhere that keeps the crop inside the image,
 * (1 - r)(2u - 1) in normalized coordinates. u3 is an odd multiple of 2^-24 (cl/random.cl), never
 * 0.5, so sign(u3 - 0.5) is -1 (flip) or +1 with probability exactly 1/2 each. */
ut_tensor *ut_random_resized_crop_theta(ut_graph *g, const char *name, int64_t batch, float scale_min, float scale_max,
                                        int flip) {
  if (!g) return NULL;
  if (!check_batch(g, "random_resized_crop_theta", batch)) return NULL;
  if (!(scale_min > 0.0f && scale_min <= scale_max && scale_max <= 1.0f)) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "random_resized_crop_theta '%s': scale range [%g, %g] must satisfy 0 < min <= max <= 1",
            name ? name : "", (double)scale_min, (double)scale_max);
    return ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  }
  ut_tensor *u = ut_random_uniform(g, name, UT_SHAPE(batch, 4));
  if (!u) return NULL;
  ut_tensor *r = ut_sqrt(g, ut_shift(g, ut_scale(g, column(g, u, 0), scale_max - scale_min), scale_min));
  ut_tensor *room = ut_shift(g, ut_neg(g, r), 1.0f);
  ut_tensor *cx = ut_mul(g, room, ut_shift(g, ut_scale(g, column(g, u, 1), 2.0f), -1.0f));
  ut_tensor *cy = ut_mul(g, room, ut_shift(g, ut_scale(g, column(g, u, 2), 2.0f), -1.0f));
  ut_tensor *rx = flip ? ut_mul(g, r, ut_sign(g, ut_shift(g, column(g, u, 3), -0.5f))) : r;
  ut_tensor *zero = ut_scale(g, r, 0.0f);
  ut_tensor *t = ut_concat(g, ut_concat(g, ut_concat(g, rx, zero), cx), ut_concat(g, ut_concat(g, zero, r), cy));
  return ut_reshape(g, t, UT_SHAPE(batch, 2, 3));
}

ut_tensor *ut_random_rotation_theta(ut_graph *g, const char *name, int64_t batch, float degrees) {
  if (!g) return NULL;
  if (!check_batch(g, "random_rotation_theta", batch)) return NULL;
  if (!(degrees >= 0.0f && degrees <= 360.0f)) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "random_rotation_theta '%s': degrees %g must be in [0, 360]", name ? name : "",
            (double)degrees);
    return ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  }
  ut_tensor *u = ut_random_uniform(g, name, UT_SHAPE(batch));
  float span = (float)(degrees * M_PI / 180.0);
  return ut_rotation_theta(g, ut_scale(g, ut_shift(g, ut_scale(g, u, 2.0f), -1.0f), span));
}
