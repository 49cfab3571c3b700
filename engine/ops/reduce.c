/* Sums over chosen dimensions (kept with size 1), and the means and broadcast-undoing sums
 * built on them.
 *
 * A sum with few outputs and long reductions (a loss's mean, a bias gradient over (B, H, W))
 * is cut into parts so that every compute unit has work, and runs in two launches: partial
 * sums, then their totals in a fixed order. The partial sums live in the node's workspace,
 * which the planner places in the arena only while the node runs; the graph keeps one sum node,
 * so its gradient (a broadcast) and everything built on ut_sum stay as they were. */
#include <stdlib.h>
#include <string.h>

#include "broadcast.h"
#include "error.h"
#include "plan_internal.h"

/* ---- how a sum runs ----------------------------------------------------------------------------- */

typedef enum { SUM_GENERAL, SUM_ROWS, SUM_COLS } sum_path;

/* The launches of a sum (cl/reduce.cl explains the view and the kernels). */
typedef struct {
  sum_path path;
  int64_t outer, keep, inner; /* the input as [outer, keep, inner]; keep outputs */
  int64_t parts, chunk;       /* each output's reduction cut into parts of chunk (rows: elements,
                                 cols: rows of the view [outer, keep * inner]) */
  int groups;                 /* rows: a work-group per (output, part), else a work-item */
  size_t workspace;           /* floats of partial sums; 0: the first stage writes the output */
} sum_layout;

/* Below these, a part's share is too small to pay for the extra launch and partial sums. */
#define ROWS_MIN_CHUNK 16384 /* elements a part sums */
#define COLS_MIN_ROWS 64     /* rows a part of reduce_cols sums */

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Work-items (CPU rows and cols) or work-groups (GPU rows) wanted in flight: enough for every
 * compute unit several times over, so that uneven parts even out. */
static int64_t target_items(const ut_device_info *d, int per_cu) {
  return (int64_t)(d->compute_units ? d->compute_units : 1) * per_cu;
}

/* Interleaved work-groups suit GPUs (neighbouring work-items read neighbouring memory); a CPU's
 * work-item does better streaming through memory of its own. UNTANGLE_REDUCE=groups|items
 * overrides the choice (the tests run both on any device). */
static int rows_use_groups(const ut_device_info *d) {
  const char *env = getenv("UNTANGLE_REDUCE");
  if (env && !strcmp(env, "groups")) return 1;
  if (env && !strcmp(env, "items")) return 0;
  return d->type != UT_DEVICE_CPU;
}

/* Merges the padded 4-D dims of x into runs of reduced and kept dimensions (size-1 dims join
 * either) and picks a path: a run pattern of [reduced] kept [reduced] has a fast path. */
static sum_layout plan_sum(const ut_device_info *d, ut_shape xs, unsigned axes) {
  sum_layout s = { .path = SUM_GENERAL, .outer = 1, .keep = 1, .inner = 1, .parts = 1 };
  int xd[4], seen_keep = 0, seen_inner = 0;
  ut_dims4(xs, xd);
  for (int i = 0; i < 4; i++) {
    int dim = xs.rank - 4 + i;
    if (xd[i] == 1) continue;
    if (dim >= 0 && (axes & (1u << dim))) {
      if (seen_keep) seen_inner = 1, s.inner *= xd[i];
      else s.outer *= xd[i];
    } else {
      if (seen_inner) return s; /* kept dims on both sides of a reduced one */
      seen_keep = 1;
      s.keep *= xd[i];
    }
  }
  if (!seen_keep) s.inner = s.outer, s.outer = 1; /* a full sum: one contiguous row */
  int64_t n = s.outer * s.inner;
  int groups = rows_use_groups(d);
  /* Rows shorter than a vector waste a work-group each on a GPU, and a CPU's work-item a loop
   * per row when there are several per output: sum columns instead. */
  if (s.inner >= 8 || (s.outer == 1 && !groups)) {
    s.path = SUM_ROWS;
    s.groups = groups;
    int64_t want = target_items(d, s.groups ? 4 : 16);
    s.parts = s.keep >= want ? 1 : ceil_div(want, s.keep);
    int64_t most = n / ROWS_MIN_CHUNK > 1 ? n / ROWS_MIN_CHUNK : 1;
    if (s.parts > most) s.parts = most;
    s.chunk = ceil_div(ceil_div(n, s.parts), 64) * 64; /* whole vectors per part */
    s.parts = ceil_div(n, s.chunk);
    s.workspace = s.parts > 1 ? (size_t)(s.parts * s.keep) : 0;
  } else {
    s.path = SUM_COLS;
    int64_t cols = s.keep * s.inner, blocks = ceil_div(cols, 8);
    int64_t want = target_items(d, d->type == UT_DEVICE_CPU ? 16 : 256);
    s.parts = blocks >= want ? 1 : ceil_div(want, blocks);
    int64_t most = s.outer / COLS_MIN_ROWS > 1 ? s.outer / COLS_MIN_ROWS : 1;
    if (s.parts > most) s.parts = most;
    s.chunk = ceil_div(s.outer, s.parts);
    s.parts = ceil_div(s.outer, s.chunk);
    s.workspace = s.parts > 1 || s.inner > 1 ? (size_t)(s.parts * cols) : 0;
  }
  return s;
}

static ut_status sum_shape(ut_tensor *n) {
  ut_tensor *x = n->in[0];
  unsigned axes = (unsigned)n->iattr[0];
  if (axes >> x->shape.rank)
    return ut_fail(UT_ERR_SHAPE, "sum: axis mask 0x%x names dimensions beyond rank %d of '%s'", axes, x->shape.rank, x->name);
  n->shape = x->shape;
  for (int i = 0; i < x->shape.rank; i++)
    if (axes & (1u << i)) n->shape.d[i] = 1;
  n->workspace = plan_sum(ut_runtime_device(n->g->rt), x->shape, axes).workspace;
  return UT_OK;
}

/* A power of two no larger than max and, when the work allows, small enough that `items`
 * work-items make several work-groups per compute unit. */
static size_t pow2_local(int64_t items, int64_t groups_wanted, size_t max) {
  size_t l = 1;
  while (l * 2 <= max && (int64_t)(l * 2) * groups_wanted <= items) l *= 2;
  return l;
}

/* A power of two: the tree in the kernel halves the group each step. */
static size_t group_size(ut_plan *p, int64_t n_red) {
  size_t max = ut_plan_local_size(p), g = 1;
  while (g * 2 <= max && (int64_t)g < n_red) g *= 2;
  return g;
}

static ut_status sum_general(ut_plan *p, ut_tensor *n) {
  ut_tensor *x = n->in[0];
  int xd[4], keep[4], red[4], xs[4];
  ut_dims4(x->shape, xd);
  ut_bcast_strides(x->shape, x->shape, xs);
  unsigned axes = (unsigned)n->iattr[0];
  int64_t n_red = 1;
  for (int i = 0; i < 4; i++) {
    int dim = x->shape.rank - 4 + i; /* the original dimension behind padded slot i */
    int reduced = dim >= 0 && (axes & (1u << dim));
    keep[i] = reduced ? 1 : xd[i];
    red[i] = reduced ? xd[i] : 1;
    n_red *= red[i];
  }
  size_t local = group_size(p, n_red);
  ut_launch *l = ut_plan_kernel(p, n, "reduce", "reduce_sum");
  ut_arg_tensor(l, n);
  ut_arg_tensor(l, x);
  ut_arg_uint(l, (unsigned)n_red);
  ut_arg_int4(l, keep);
  ut_arg_int4(l, red);
  ut_arg_int4(l, xs);
  ut_arg_local(l, local * sizeof(float));
  ut_launch_range(l, (size_t)ut_shape_numel(n->shape) * local, local);
  return UT_OK;
}

/* The first stage writes the node's output when it leaves one sum per output, else the
 * workspace; reduce_finish then adds each output's partial sums. */
static ut_status sum_forward(ut_plan *p, ut_tensor *n) {
  ut_tensor *x = n->in[0];
  const ut_device_info *d = ut_runtime_device(ut_plan_runtime(p));
  sum_layout s = plan_sum(d, x->shape, (unsigned)n->iattr[0]);
  if (s.path == SUM_GENERAL) return sum_general(p, n);
  if (s.workspace > n->workspace)
    return ut_fail(UT_ERR_STATE, "sum '%s': needs %zu floats of partial sums, the node has %zu (the device or "
                   "UNTANGLE_REDUCE changed after the node was made)", n->name, s.workspace, n->workspace);
  ut_loc ws = ut_plan_workspace(p, n);
  ut_launch *l;
  if (s.path == SUM_ROWS) {
    l = ut_plan_kernel(p, n, "reduce", s.groups ? "reduce_rows_group" : "reduce_rows");
  } else {
    l = ut_plan_kernel(p, n, "reduce", "reduce_cols");
  }
  if (s.workspace) ut_arg_loc(l, ws);
  else ut_arg_tensor(l, n);
  ut_arg_tensor(l, x);
  if (s.path == SUM_ROWS) {
    ut_arg_uint(l, (unsigned)s.outer);
    ut_arg_uint(l, (unsigned)s.keep);
    ut_arg_uint(l, (unsigned)s.inner);
    ut_arg_uint(l, (unsigned)s.chunk);
    ut_arg_uint(l, (unsigned)s.parts);
    int64_t items = s.keep * s.parts;
    if (s.groups) {
      size_t local = group_size(p, ceil_div(s.chunk < s.outer * s.inner ? s.chunk : s.outer * s.inner, 8));
      ut_arg_local(l, local * sizeof(float));
      ut_launch_range(l, (size_t)items * local, local);
    } else {
      ut_launch_range(l, (size_t)items, pow2_local(items, target_items(d, 4), 64));
    }
  } else {
    int64_t cols = s.keep * s.inner, blocks = ceil_div(cols, 8);
    ut_arg_uint(l, (unsigned)s.outer);
    ut_arg_uint(l, (unsigned)cols);
    ut_arg_uint(l, (unsigned)s.chunk);
    size_t local0 = pow2_local(blocks * s.parts, target_items(d, 4), 64);
    if ((int64_t)local0 > blocks) local0 = pow2_local(blocks, 1, 64);
    ut_launch_range2(l, (size_t)blocks, (size_t)s.parts, local0, 1);
  }
  if (!s.workspace) return UT_OK;
  l = ut_plan_kernel(p, n, "reduce", "reduce_finish");
  ut_arg_tensor(l, n);
  ut_arg_loc(l, ws);
  ut_arg_uint(l, (unsigned)s.keep);
  ut_arg_uint(l, (unsigned)s.parts);
  ut_arg_uint(l, (unsigned)(s.path == SUM_ROWS ? s.keep : s.keep * s.inner));
  ut_arg_uint(l, (unsigned)(s.path == SUM_ROWS ? 1 : s.inner));
  ut_launch_range(l, (size_t)s.keep, pow2_local(s.keep, target_items(d, 1), 64));
  return UT_OK;
}

static ut_status sum_backward(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in) {
  grad_in[0] = ut_broadcast(g, grad, n->in[0]->shape);
  return UT_OK;
}

static const ut_op_def op_sum = { "sum", 0, sum_shape, sum_forward, sum_backward };

ut_tensor *ut_sum(ut_graph *g, ut_tensor *x, unsigned axes) {
  int64_t a = axes;
  return ut_node_new(g, &op_sum, 1, &x, &a, 1, NULL, 0);
}

ut_tensor *ut_mean(ut_graph *g, ut_tensor *x, unsigned axes) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  int64_t count = 1;
  for (int i = 0; i < x->shape.rank; i++)
    if (axes & (1u << i)) count *= x->shape.d[i];
  return ut_scale(g, ut_sum(g, x, axes), 1.0f / (float)count);
}

ut_tensor *ut_sum_all(ut_graph *g, ut_tensor *x) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  return ut_reshape(g, ut_sum(g, x, (1u << x->shape.rank) - 1), UT_SHAPE(1));
}

ut_tensor *ut_mean_all(ut_graph *g, ut_tensor *x) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  return ut_scale(g, ut_sum_all(g, x), 1.0f / (float)ut_shape_numel(x->shape));
}

ut_tensor *ut_sum_to(ut_graph *g, ut_tensor *x, ut_shape shape) {
  if (!x) return ut_graph_fail(g, ut_graph_status(g));
  if (ut_shape_equal(x->shape, shape)) return x;
  ut_shape check;
  if (shape.rank > x->shape.rank || ut_broadcast_shape(x->shape, shape, &check) != UT_OK || !ut_shape_equal(check, x->shape)) {
    char a[64], b[64];
    ut_fail(UT_ERR_SHAPE, "sum_to: %s ('%s') does not broadcast from %s", ut_shape_str(x->shape, a, sizeof a), x->name,
            ut_shape_str(shape, b, sizeof b));
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  unsigned axes = 0;
  int lead = x->shape.rank - shape.rank;
  for (int i = 0; i < x->shape.rank; i++)
    if (i < lead || (shape.d[i - lead] == 1 && x->shape.d[i] != 1)) axes |= 1u << i;
  ut_tensor *s = axes ? ut_sum(g, x, axes) : x;
  return ut_reshape(g, s, shape);
}
