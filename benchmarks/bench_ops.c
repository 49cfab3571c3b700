/* The ops suite: the convolution passes the models run (forward, backward-data, backward-weight,
 * at every LORD and VGG16 layer shape; bench_conv_cases) and AdaIN, instance norm and an
 * elementwise op (leaky ReLU) at the generator's largest activation.
 *
 * Each figure is device time summed over the launches of one pass:
 *   fwd          the launches of y = conv2d(x, w, b)
 *   bwd_data     the launches ut_backward adds for dL/dx, where L = sum(y * G)
 *   bwd_weight   the launches ut_backward adds for dL/dw and dL/db
 * The backward plans also hold the forward pass and the seed gradient of L (G itself); only
 * nodes made by ut_backward count, and the broadcast and multiply that form the seed are left
 * out. GFLOP/s counts the GEMM's 2 M N K.
 *
 * The normalisations and the elementwise op are timed twice: forward alone (the case keeps the
 * op's bare name, as in results from before the backward pass was timed) and as NAME.fwd_bwd, the
 * forward pass and the launches ut_backward adds for L = sum(y * G) down to x (and AdaIN's scale
 * and bias), the loss's own launches and the seed left out, as a training step runs them. GB/s
 * counts the least traffic each can do: forward one read of x and one write of y; forward and
 * backward that, plus reads of x and dL/dy and a write of dL/dx (the per-plane gradients of
 * scale and bias are too small to count).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_internal.h"
#include "lord.h"

enum { MAX_CONV = 24, N_POINTWISE = 3, POINTWISE_PASSES = 2 };
static const char *const pointwise_name[N_POINTWISE] = { "adain", "instance_norm", "leaky_relu" };

int bench_ops_count(const bench_ctx *c) {
  bench_conv cv[MAX_CONV];
  return BENCH_CONV_PASSES * bench_conv_cases(c->cfg->size, cv, MAX_CONV) + POINTWISE_PASSES * N_POINTWISE;
}

static int is_seed_op(const ut_profile_entry *e) { return !strcmp(e->op, "broadcast") || !strcmp(e->op, "mul"); }

/* Builds, uploads and times one plan; the graph is built by the caller up to `outs`. */
static bench_ms time_graph(bench_ctx *c, ut_graph *g, ut_tensor **outs, int n_outs, ut_tensor **inputs, int n_inputs,
                           bench_launches which) {
  bench_ms t = { 0 };
  ut_plan *p = ut_graph_status(g) == UT_OK ? ut_plan_compile(g, &(ut_plan_cfg){ .outputs = outs, .n_outputs = n_outs })
                                           : NULL;
  int ok = p != NULL;
  for (int i = 0; ok && i < n_inputs; i++) {
    float *v = bench_random(ut_shape_numel(ut_tensor_shape(inputs[i])), 11 + (uint64_t)i);
    ok = v && ut_upload(p, inputs[i], v) == UT_OK;
    free(v);
  }
  if (ok) t = bench_time_plan(c, p, which);
  ut_plan_free(p);
  return t;
}

/* The backward pass the suite times: adds the input G (to *inputs) and the loss L = sum(y * G),
 * differentiates L with respect to wrt and appends the gradients to outs. ok is 0 where the
 * backward pass could not be built; timing the plan then would time the forward pass under a
 * backward case's name. The loss's nodes are [loss_first, backward_first); ut_backward's follow. */
typedef struct {
  int ok, loss_first, backward_first;
} backward_nodes;

static backward_nodes add_backward(ut_graph *g, ut_tensor *y, ut_tensor_list wrt, ut_tensor **inputs, int *n_inputs,
                                   ut_tensor **outs, int *n_outs) {
  backward_nodes bn = { 0 };
  ut_tensor *gy = ut_input(g, "G", UT_F32, ut_tensor_shape(y));
  inputs[(*n_inputs)++] = gy;
  bn.loss_first = ut_graph_node_count(g);
  ut_tensor *loss = ut_sum_all(g, ut_mul(g, y, gy));
  bn.backward_first = ut_graph_node_count(g);
  bn.ok = ut_graph_status(g) == UT_OK && ut_backward(g, loss, wrt) == UT_OK;
  for (int i = 0; bn.ok && i < wrt.n; i++) outs[(*n_outs)++] = ut_grad(g, wrt.t[i]);
  return bn;
}

static void conv_pass(bench_ctx *c, const bench_conv *cv, int pass) {
  char shape[96], name[96], what[112];
  snprintf(shape, sizeof shape, "%dx%dx%dx%d k%d s%d o%d", cv->batch, cv->c, cv->hw, cv->hw, cv->k, cv->stride, cv->o);
  snprintf(name, sizeof name, "conv.%.39s.%s", cv->name, bench_conv_pass_name[pass]);
  snprintf(what, sizeof what, "ops %s", name);
  bench_step(c, what);
  ut_store *st = ut_store_new(c->rt, 7);
  ut_graph *g = ut_graph_new(c->rt, st);
  ut_shape xs = UT_SHAPE(cv->batch, cv->c, cv->hw, cv->hw);
  ut_tensor *x = pass == 1 ? ut_param(g, "x", xs, (ut_init){ UT_INIT_UNIFORM, -1, 1 }) : ut_input(g, "x", UT_F32, xs);
  ut_tensor *w = ut_param(g, "w", UT_SHAPE(cv->o, cv->c, cv->k, cv->k), (ut_init){ UT_INIT_FAN_IN_UNIFORM, 0, 0 });
  ut_tensor *b = ut_param(g, "b", UT_SHAPE(cv->o), (ut_init){ UT_INIT_FAN_IN_UNIFORM, (float)(cv->c * cv->k * cv->k), 0 });
  ut_tensor *y = ut_conv2d(g, x, w, b, UT_CONV(cv->stride, cv->pad));
  ut_tensor *inputs[2] = { x, NULL }, *outs[2] = { y, NULL };
  int n_inputs = pass == 1 ? 0 : 1, n_outs = 1;
  backward_nodes bn = { .ok = 1 };
  if (pass != 0) {
    ut_tensor *wb[2] = { w, b };
    ut_tensor_list wrt = pass == 1 ? (ut_tensor_list){ 1, &x } : (ut_tensor_list){ 2, wb };
    /* The gradients alone are the outputs, so the planner keeps just what they need. */
    n_outs = 0;
    bn = add_backward(g, y, wrt, inputs, &n_inputs, outs, &n_outs);
  }
  bench_launches counted = { 0, bn.backward_first, pass ? is_seed_op : NULL };
  bench_ms t = bn.ok ? time_graph(c, g, outs, n_outs, inputs, n_inputs, counted) : (bench_ms){ 0 };
  if (t.ok) {
    int64_t mnk[3];
    bench_conv_gemm(cv, pass, mnk);
    char gemm[64];
    snprintf(gemm, sizeof gemm, "%lldx%lldx%lld", (long long)mnk[0], (long long)mnk[1], (long long)mnk[2]);
    double flops = 2.0 * (double)mnk[0] * (double)mnk[1] * (double)mnk[2];
    bench_record r = { .suite = "ops", .name = name, .shape = shape, .ms = t, .repeats = c->repeats,
                       .gflops = flops / (t.median * 1e6), .gbps = -1,
                       .extra = json_pack("{s:s,s:s,s:i}", "pass", bench_conv_pass_name[pass], "gemm", gemm, "batch", cv->batch) };
    bench_emit(c, &r);
  } else {
    bench_failed(c, what);
  }
  ut_graph_free(g);
  ut_store_free(st);
}

/* AdaIN, instance norm or leaky ReLU over x [B, C, S, S]: forward alone, or with_backward the
 * forward and backward passes of a training step (the file's head says which launches count). */
static void pointwise(bench_ctx *c, int which, ut_shape xs, int with_backward) {
  char shape[64], name[48], what[128];
  snprintf(shape, sizeof shape, "%lldx%lldx%lldx%lld", (long long)xs.d[0], (long long)xs.d[1], (long long)xs.d[2],
           (long long)xs.d[3]);
  snprintf(name, sizeof name, "%s%s", pointwise_name[which], with_backward ? ".fwd_bwd" : "");
  snprintf(what, sizeof what, "ops %s %s", name, shape);
  bench_step(c, what);
  ut_store *st = ut_store_new(c->rt, 7);
  ut_graph *g = ut_graph_new(c->rt, st);
  /* What the backward pass differentiates must be parameters; forward alone, they are inputs. */
  ut_init uniform = { UT_INIT_UNIFORM, -1, 1 };
  ut_tensor *x = with_backward ? ut_param(g, "x", xs, uniform) : ut_input(g, "x", UT_F32, xs);
  ut_tensor *wrt[3] = { x }, *inputs[3] = { x }, *y;
  int n_wrt = 1, n_inputs = with_backward ? 0 : 1;
  if (which == 0) {
    ut_shape ps = UT_SHAPE(xs.d[0], xs.d[1]);
    for (int i = 1; i < 3; i++) {
      const char *pn = i == 1 ? "scale" : "bias";
      wrt[i] = with_backward ? ut_param(g, pn, ps, uniform) : ut_input(g, pn, UT_F32, ps);
      if (!with_backward) inputs[n_inputs++] = wrt[i];
    }
    n_wrt = 3;
    y = ut_adain(g, x, wrt[1], wrt[2], 1e-5f);
  } else if (which == 1) {
    y = ut_instance_norm(g, x, NULL, NULL, 1e-5f);
  } else {
    y = ut_leaky_relu(g, x, 0.01f);
  }
  /* y stays an output: the backward kernels read x, not y, so the planner would drop the
   * forward pass otherwise. */
  ut_tensor *outs[4] = { y };
  int n_outs = 1;
  bench_launches counted = { 0 };
  backward_nodes bn = { .ok = 1 };
  if (with_backward) {
    bn = add_backward(g, y, (ut_tensor_list){ n_wrt, wrt }, inputs, &n_inputs, outs, &n_outs);
    counted = (bench_launches){ bn.loss_first, bn.backward_first, is_seed_op };
  }
  bench_ms t = bn.ok ? time_graph(c, g, outs, n_outs, inputs, n_inputs, counted) : (bench_ms){ 0 };
  if (t.ok) {
    double bytes = (with_backward ? 5.0 : 2.0) * 4.0 * (double)ut_shape_numel(xs);
    bench_record r = { .suite = "ops", .name = name, .shape = shape, .ms = t, .repeats = c->repeats,
                       .gflops = -1, .gbps = bytes / (t.median * 1e6) };
    bench_emit(c, &r);
  } else {
    bench_failed(c, what);
  }
  ut_graph_free(g);
  ut_store_free(st);
}

ut_status bench_ops_run(bench_ctx *c) {
  bench_conv cv[MAX_CONV];
  int n_cv = bench_conv_cases(c->cfg->size, cv, MAX_CONV);
  for (int i = 0; i < n_cv; i++)
    for (int pass = 0; pass < BENCH_CONV_PASSES; pass++) conv_pass(c, &cv[i], pass);
  lord_cfg m = lord_preset(c->cfg->size == BENCH_SIZE_FULL ? LORD_PRESET_DEFAULT : LORD_PRESET_SMALL, 3, 1, 1);
  ut_shape xs = c->cfg->size == BENCH_SIZE_TINY ? UT_SHAPE(2, m.gen_channels, 8, 8)
                                                : UT_SHAPE(m.batch, m.gen_channels, m.size, m.size);
  for (int i = 0; i < N_POINTWISE; i++)
    for (int with_backward = 0; with_backward < POINTWISE_PASSES; with_backward++) pointwise(c, i, xs, with_backward);
  return UT_OK;
}
