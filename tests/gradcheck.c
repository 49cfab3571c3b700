#include "gradcheck.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each check names its parameters "gc<n>.x<i>" with a fresh n, so several checks can share a
 * caller's store without clashing shapes. Tests are single-threaded. */
static unsigned gc_sequence;

int64_t gc_numel(ut_shape s) {
  int64_t n = 1;
  for (int i = 0; i < s.rank; i++) n *= s.d[i];
  return n;
}

float *gc_random_values(uint64_t seed, int64_t n, float lo, float hi) {
  float *x = malloc((size_t)n * sizeof *x);
  uint64_t s = seed;
  if (x) test_fill_uniform(&s, x, n, lo, hi);
  return x;
}

ut_tensor *gc_build_grad_of(ut_graph *g, ut_tensor **in, void *ctx) {
  const gc_second_order *so = ctx;
  ut_tensor *y = so->inner(g, in, so->ctx);
  if (!y) return NULL;
  float *v = gc_random_values(77, gc_numel(ut_tensor_shape(y)), -1, 1);
  ut_tensor *l = ut_sum_all(g, ut_mul(g, ut_square(g, y), ut_constant(g, ut_tensor_shape(y), v)));
  free(v);
  if (ut_backward(g, l, (ut_tensor_list){ so->n_inputs, in }) != UT_OK) return NULL;
  return ut_grad(g, in[0]);
}

static gc_result gc_failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static gc_result gc_failf(const char *fmt, ...) {
  gc_result r = { .ok = 0, .worst_ratio = INFINITY };
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r.msg, sizeof r.msg, fmt, ap);
  va_end(ap);
  return r;
}

static double dflt(double v, double d) { return v > 0 ? v : d; }

/* splitmix64, for W and the sampled indices. */
static uint64_t gc_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double dot_w(const float *out, const float *w, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)out[i] * (double)w[i];
  return s;
}

/* The elements to perturb: all of them, or max_samples distinct ones chosen with a fixed seed
 * that always include the first and the last. Returns the count; *idx is malloc'd. */
static int pick_indices(int64_t n, int max_samples, uint64_t *rng, int64_t **idx) {
  if (n <= max_samples) {
    *idx = malloc((size_t)n * sizeof **idx);
    for (int64_t i = 0; i < n; i++) (*idx)[i] = i;
    return (int)n;
  }
  *idx = malloc((size_t)max_samples * sizeof **idx);
  int k = 0;
  (*idx)[k++] = 0;
  (*idx)[k++] = n - 1;
  while (k < max_samples) {
    int64_t j = (int64_t)(gc_next(rng) % (uint64_t)n);
    int seen = 0;
    for (int i = 0; i < k && !seen; i++) seen = (*idx)[i] == j;
    if (!seen) (*idx)[k++] = j;
  }
  return k;
}

typedef struct {
  ut_graph *g;
  ut_tensor *x[GC_MAX_INPUTS];
  ut_tensor *out;
} gc_built;

/* Makes the inputs as parameters holding the case's values and runs the builder. */
static ut_status build_params(const gc_case *c, ut_store *st, unsigned seq, gc_built *b, char *why, size_t why_size) {
  b->g = ut_graph_new(test_runtime(), st);
  if (!b->g) {
    snprintf(why, why_size, "ut_graph_new: %s", ut_last_error());
    return UT_ERR_STATE;
  }
  for (int i = 0; i < c->n_inputs; i++) {
    char name[64];
    snprintf(name, sizeof name, "gc%u.x%d", seq, i);
    b->x[i] = ut_param(b->g, name, c->shapes[i], (ut_init){ UT_INIT_ZERO, 0, 0 });
    if (!b->x[i]) {
      snprintf(why, why_size, "ut_param(%s): %s", name, ut_last_error());
      return UT_ERR_STATE;
    }
  }
  b->out = c->build(b->g, b->x, c->ctx);
  if (!b->out) {
    snprintf(why, why_size, "the builder returned NULL (graph status %s): %s",
             ut_status_name(ut_graph_status(b->g)), ut_last_error());
    return UT_ERR_STATE;
  }
  return UT_OK;
}

/* One parameter under test: its store tensor, host values and analytical gradient. */
typedef struct {
  const char *name;
  ut_store_tensor *st;
  ut_shape shape;
  int64_t n;
  float *values;
  float *grad; /* all zero when ut_grad gave NULL */
  int grad_null;
} gc_param;

gc_result gc_gradcheck(const gc_case *c) {
  const double h = dflt(c->h, 1e-2), rel = dflt(c->rel_tol, 2e-2), abs_tol = dflt(c->abs_tol, 1e-3);
  const int max_samples = c->max_samples > 0 ? c->max_samples : 64;
  const char *label = c->label ? c->label : "gradcheck";
  uint64_t rng = c->seed ? c->seed : 1;
  if (c->n_inputs < 0 || c->n_inputs > GC_MAX_INPUTS || !c->build)
    return gc_failf("%s: bad case (n_inputs %d, build %s)", label, c->n_inputs, c->build ? "set" : "NULL");

  gc_result res = { .ok = 0 };
  char why[768] = "";
  unsigned seq = ++gc_sequence;
  ut_store *st = c->store ? c->store : ut_store_new(test_runtime(), 1234);
  gc_built bb = { 0 }, bf = { 0 };
  ut_plan *pb = NULL, *pf = NULL;
  gc_param *prm = NULL;
  int n_prm = 0;
  float *w = NULL, *out0 = NULL, *outp = NULL;
  int64_t *idx = NULL;

  if (!st) {
    res = gc_failf("%s: ut_store_new: %s", label, ut_last_error());
    goto done;
  }
  if (build_params(c, st, seq, &bb, why, sizeof why) != UT_OK) {
    res = gc_failf("%s: %s", label, why);
    goto done;
  }
  for (int i = 0; i < c->n_inputs; i++) {
    char name[64];
    snprintf(name, sizeof name, "gc%u.x%d", seq, i);
    ut_store_tensor *t = ut_store_find(st, name);
    if (!t || ut_store_tensor_write(st, t, c->values[i]) != UT_OK) {
      res = gc_failf("%s: cannot set %s: %s", label, name, t ? ut_last_error() : "not in the store");
      goto done;
    }
  }

  /* loss = sum(out * W) and its gradients. */
  ut_shape oshape = ut_tensor_shape(bb.out);
  int64_t n_out = gc_numel(oshape);
  w = malloc((size_t)n_out * sizeof *w);
  out0 = malloc((size_t)n_out * sizeof *out0);
  outp = malloc((size_t)n_out * sizeof *outp);
  for (int64_t i = 0; i < n_out; i++) {
    double u = (double)(gc_next(&rng) >> 11) / 9007199254740992.0;
    w[i] = (float)(u * 2 - 1);
    if (fabsf(w[i]) < 0.1f) w[i] = w[i] < 0 ? -0.5f : 0.5f; /* no element should barely count */
    if (c->weights) w[i] = c->weights[i];
  }
  ut_tensor *loss = ut_sum_all(bb.g, ut_mul(bb.g, bb.out, ut_constant(bb.g, oshape, w)));
  if (!loss) {
    res = gc_failf("%s: building loss = sum(out * W) failed: %s", label, ut_last_error());
    goto done;
  }
  ut_tensor_list params;
  if (c->check_params) {
    params = ut_params(bb.g, "");
  } else {
    params.n = c->n_inputs;
    params.t = bb.x;
  }
  ut_status s = ut_backward(bb.g, loss, params);
  if (s != UT_OK) {
    res = gc_failf("%s: ut_backward -> %s: %s", label, ut_status_name(s), ut_last_error());
    goto done;
  }
  n_prm = params.n;
  prm = calloc((size_t)n_prm, sizeof *prm);
  ut_tensor *outs[2 + 64];
  int n_outs = 0;
  outs[n_outs++] = loss;
  outs[n_outs++] = bb.out;
  ut_tensor *grads[64];
  if (n_prm > 64) {
    res = gc_failf("%s: too many parameters (%d)", label, n_prm);
    goto done;
  }
  for (int j = 0; j < n_prm; j++) {
    ut_tensor *p = params.t[j];
    gc_param *q = &prm[j];
    q->name = ut_tensor_name(p);
    q->shape = ut_tensor_shape(p);
    q->n = gc_numel(q->shape);
    q->st = ut_store_find(st, q->name);
    if (!q->st) {
      res = gc_failf("%s: parameter node %s has no store tensor of that name", label, q->name);
      goto done;
    }
    q->values = malloc((size_t)q->n * sizeof *q->values);
    q->grad = calloc((size_t)q->n, sizeof *q->grad);
    grads[j] = ut_grad(bb.g, p);
    q->grad_null = grads[j] == NULL;
    if (grads[j]) {
      char a[64], b[64];
      if (!ut_shape_equal(ut_tensor_shape(grads[j]), q->shape)) {
        res = gc_failf("%s: the gradient of %s has shape %s, the parameter %s", label, q->name,
                       ut_shape_str(ut_tensor_shape(grads[j]), a, sizeof a), ut_shape_str(q->shape, b, sizeof b));
        goto done;
      }
      outs[n_outs++] = grads[j];
    }
  }
  pb = ut_plan_compile(bb.g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = n_outs });
  if (!pb) {
    res = gc_failf("%s: ut_plan_compile (backward plan): %s", label, ut_last_error());
    goto done;
  }
  if ((s = ut_plan_run(pb)) != UT_OK || (s = ut_read(pb, bb.out, out0)) != UT_OK) {
    res = gc_failf("%s: backward plan run/read -> %s: %s", label, ut_status_name(s), ut_last_error());
    goto done;
  }
  float loss_dev = 0;
  if ((s = ut_read(pb, loss, &loss_dev)) != UT_OK) {
    res = gc_failf("%s: reading the loss -> %s: %s", label, ut_status_name(s), ut_last_error());
    goto done;
  }
  for (int j = 0; j < n_prm; j++) {
    if (!prm[j].grad_null && (s = ut_read(pb, grads[j], prm[j].grad)) != UT_OK) {
      res = gc_failf("%s: reading the gradient of %s -> %s: %s", label, prm[j].name, ut_status_name(s), ut_last_error());
      goto done;
    }
    if ((s = ut_store_tensor_read(st, prm[j].st, prm[j].values)) != UT_OK) {
      res = gc_failf("%s: reading %s from the store -> %s: %s", label, prm[j].name, ut_status_name(s), ut_last_error());
      goto done;
    }
  }
  /* The device's f32 loss must agree with the host's dot product of its own output. */
  {
    double l_host = dot_w(out0, w, n_out), mag = 0;
    for (int64_t i = 0; i < n_out; i++) mag += fabs((double)out0[i] * w[i]);
    if (!(fabs(loss_dev - l_host) <= (1e-6 * sqrt((double)n_out) + 2e-6) * mag + 1e-6)) {
      res = gc_failf("%s: device loss sum(out*W) = %.9g, host %.9g (sum |out*W| = %.3g)", label, loss_dev, l_host, mag);
      goto done;
    }
  }
  if (c->expect) {
    int64_t at = 0;
    double r = test_compare(out0, c->expect, n_out, dflt(c->fwd_abs_tol, 1e-6), dflt(c->fwd_rel_tol, 1e-5), &at);
    if (!(r <= 1)) {
      res = gc_failf("%s: forward output[%lld] = %.9g, reference %.9g (ratio %.3g)", label, (long long)at, out0[at],
                     c->expect[at], r);
      goto done;
    }
  }
  if (c->expect_shape.rank && !ut_shape_equal(c->expect_shape, oshape)) {
    char a[64], b[64];
    res = gc_failf("%s: output shape %s, expected %s", label, ut_shape_str(oshape, a, sizeof a),
                   ut_shape_str(c->expect_shape, b, sizeof b));
    goto done;
  }
  for (int i = 0; c->expect_grad && i < c->n_inputs; i++) {
    if (!c->expect_grad[i]) continue;
    const gc_param *q = NULL;
    for (int j = 0; j < n_prm && !q; j++)
      if (ut_store_find(st, prm[j].name) == ut_store_find(st, ut_tensor_name(bb.x[i]))) q = &prm[j];
    if (!q) {
      res = gc_failf("%s: input %d is not among the differentiated parameters", label, i);
      goto done;
    }
    int64_t at = 0;
    double r = test_compare(q->grad, c->expect_grad[i], q->n, dflt(c->grad_abs_tol, 1e-6), dflt(c->grad_rel_tol, 1e-5), &at);
    if (!(r <= 1)) {
      char sh[64];
      res = gc_failf("%s: d(loss)/d(%s%s)[%lld] = %.9g, host reference %.9g (ratio %.3g over all %lld elements%s)", label,
                     q->name, ut_shape_str(q->shape, sh, sizeof sh), (long long)at, q->grad[at], c->expect_grad[i][at], r,
                     (long long)q->n, q->grad_null ? "; ut_grad gave NULL, taken as 0" : "");
      goto done;
    }
  }

  /* The forward-only plan: a second graph over the same store finds the same parameters. */
  bf.g = ut_graph_new(test_runtime(), st);
  for (int i = 0; i < c->n_inputs; i++) {
    char name[64];
    snprintf(name, sizeof name, "gc%u.x%d", seq, i);
    bf.x[i] = ut_param(bf.g, name, c->shapes[i], (ut_init){ UT_INIT_ZERO, 0, 0 });
  }
  bf.out = c->build(bf.g, bf.x, c->ctx);
  if (!bf.out) {
    res = gc_failf("%s: the builder failed on the forward graph: %s", label, ut_last_error());
    goto done;
  }
  pf = ut_plan_compile(bf.g, &(ut_plan_cfg){ .outputs = &bf.out, .n_outputs = 1 });
  if (!pf) {
    res = gc_failf("%s: ut_plan_compile (forward plan): %s", label, ut_last_error());
    goto done;
  }

  double worst = 0;
  int worst_p = -1, checked = 0;
  int64_t worst_i = 0;
  double worst_num = 0;
  for (int j = 0; j < n_prm; j++) {
    gc_param *q = &prm[j];
    int k = pick_indices(q->n, max_samples, &rng, &idx);
    for (int t = 0; t < k; t++) {
      int64_t e = idx[t];
      float x0 = q->values[e];
      float xp = (float)(x0 + h), xm = (float)(x0 - h);
      double lp, lm;
      q->values[e] = xp;
      if ((s = ut_store_tensor_write(st, q->st, q->values)) != UT_OK || (s = ut_plan_run(pf)) != UT_OK ||
          (s = ut_read(pf, bf.out, outp)) != UT_OK) {
        q->values[e] = x0;
        res = gc_failf("%s: forward run -> %s: %s", label, ut_status_name(s), ut_last_error());
        goto done;
      }
      lp = dot_w(outp, w, n_out);
      q->values[e] = xm;
      if ((s = ut_store_tensor_write(st, q->st, q->values)) != UT_OK || (s = ut_plan_run(pf)) != UT_OK ||
          (s = ut_read(pf, bf.out, outp)) != UT_OK) {
        q->values[e] = x0;
        res = gc_failf("%s: forward run -> %s: %s", label, ut_status_name(s), ut_last_error());
        goto done;
      }
      lm = dot_w(outp, w, n_out);
      q->values[e] = x0;
      double num = (lp - lm) / ((double)xp - (double)xm);
      double ana = q->grad[e];
      double r = fabs(ana - num) / (abs_tol + rel * fabs(num));
      if (!(r <= worst)) {
        worst = isnan(r) ? INFINITY : r;
        worst_p = j;
        worst_i = e;
        worst_num = num;
      }
      checked++;
    }
    free(idx);
    idx = NULL;
    if ((s = ut_store_tensor_write(st, q->st, q->values)) != UT_OK) {
      res = gc_failf("%s: restoring %s -> %s: %s", label, q->name, ut_status_name(s), ut_last_error());
      goto done;
    }
  }
  res.worst_ratio = worst;
  res.checked = checked;
  res.ok = worst <= 1;
  if (worst_p >= 0) {
    gc_param *q = &prm[worst_p];
    char sh[64];
    snprintf(res.msg, sizeof res.msg,
             "%s: %s d(loss)/d(%s%s)[%lld] analytic %.7g numeric %.7g (ratio %.3g; abs %g rel %g h %g; "
             "%d elements checked%s)",
             label, res.ok ? "worst" : "gradient mismatch:", q->name, ut_shape_str(q->shape, sh, sizeof sh),
             (long long)worst_i, (double)q->grad[worst_i], worst_num, worst, abs_tol, rel, h, checked,
             q->grad_null ? "; ut_grad gave NULL, taken as 0" : "");
  } else {
    snprintf(res.msg, sizeof res.msg, "%s: nothing to check", label);
  }

done:
  free(idx);
  ut_plan_free(pf);
  ut_plan_free(pb);
  ut_graph_free(bf.g);
  ut_graph_free(bb.g);
  for (int j = 0; j < n_prm && prm; j++) {
    free(prm[j].values);
    free(prm[j].grad);
  }
  free(prm);
  free(w);
  free(out0);
  free(outp);
  if (!c->store) ut_store_free(st);
  return res;
}

gc_result gc_forward(const gc_case *c) {
  const char *label = c->label ? c->label : "forward";
  if (c->n_inputs < 0 || c->n_inputs > GC_MAX_INPUTS || !c->build || !c->expect)
    return gc_failf("%s: bad case (n_inputs %d, build and expect needed)", label, c->n_inputs);
  gc_result res = { .ok = 0 };
  ut_store *st = c->store ? c->store : ut_store_new(test_runtime(), 1234);
  ut_graph *g = st ? ut_graph_new(test_runtime(), st) : NULL;
  ut_plan *p = NULL;
  float *out = NULL;
  ut_tensor *x[GC_MAX_INPUTS];
  if (!g) {
    res = gc_failf("%s: store/graph: %s", label, ut_last_error());
    goto done;
  }
  for (int i = 0; i < c->n_inputs; i++) {
    char name[32];
    snprintf(name, sizeof name, "in%d", i);
    x[i] = ut_input(g, name, UT_F32, c->shapes[i]);
  }
  ut_tensor *y = c->build(g, x, c->ctx);
  if (!y) {
    res = gc_failf("%s: the builder returned NULL (graph status %s): %s", label, ut_status_name(ut_graph_status(g)),
                   ut_last_error());
    goto done;
  }
  ut_shape shape = ut_tensor_shape(y);
  if (c->expect_shape.rank && !ut_shape_equal(c->expect_shape, shape)) {
    char a[64], b[64];
    res = gc_failf("%s: output shape %s, expected %s", label, ut_shape_str(shape, a, sizeof a),
                   ut_shape_str(c->expect_shape, b, sizeof b));
    goto done;
  }
  p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &y, .n_outputs = 1 });
  if (!p) {
    res = gc_failf("%s: ut_plan_compile: %s", label, ut_last_error());
    goto done;
  }
  ut_status s = UT_OK;
  for (int i = 0; i < c->n_inputs && s == UT_OK; i++) s = ut_upload(p, x[i], c->values[i]);
  int64_t n = gc_numel(shape);
  out = malloc((size_t)n * sizeof *out);
  if (s != UT_OK || (s = ut_plan_run(p)) != UT_OK || (s = ut_read(p, y, out)) != UT_OK) {
    res = gc_failf("%s: upload/run/read -> %s: %s", label, ut_status_name(s), ut_last_error());
    goto done;
  }
  int64_t at = 0;
  double r = test_compare(out, c->expect, n, dflt(c->fwd_abs_tol, 1e-6), dflt(c->fwd_rel_tol, 1e-5), &at);
  res.worst_ratio = r;
  res.checked = (int)n;
  res.ok = r <= 1;
  snprintf(res.msg, sizeof res.msg, "%s: %s output[%lld] = %.9g, reference %.9g (ratio %.3g over %lld elements)", label,
           res.ok ? "worst" : "forward mismatch:", (long long)at, out[at], c->expect[at], r, (long long)n);

done:
  free(out);
  ut_plan_free(p);
  ut_graph_free(g);
  if (!c->store) ut_store_free(st);
  return res;
}
