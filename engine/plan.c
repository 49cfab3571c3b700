/* Compiling a graph into a plan: the nodes the outputs and updates need, in node order (a
 * topological order); the liveness of every intermediate; one arena where tensors whose
 * lifetimes do not overlap share memory (first fit over a list of free ranges); and the
 * launches each op appends, with their arguments set once, here.
 *
 * Placement rules:
 *   parameters and optimizer state live in their store buffers;
 *   views (reshape) share the memory of the tensor they view, which stays live as long as any
 *   of its views;
 *   inputs and constants are live for the whole step (uploaded before it, readable after it);
 *   outputs live to its end;
 *   a node's result is placed before the inputs that die at that node are freed, so no op
 *   writes over its own inputs, except an elementwise op (UT_OP_INPLACE), whose result takes
 *   the memory of an input of its size that dies there: ggml's allocator does the same, and
 *   it is what keeps a chain of activations and their gradients at one buffer each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "schedule.h"

/* Every arena tensor starts at a multiple of 256 bytes (coalesced access), or of the device's
 * base-address alignment where that is larger, so a GEMM operand can be a sub-buffer at offset 0
 * (clblast_gemm.h). */
#define ARENA_ALIGN_FLOATS 64
static size_t arena_align_floats(const ut_plan *p) {
  size_t device = p->rt->info.base_align_bytes / sizeof(float);
  return device > ARENA_ALIGN_FLOATS ? device : ARENA_ALIGN_FLOATS;
}

/* ---- free-range allocator ---------------------------------------------------------------------- */

typedef struct {
  size_t off, len;
} range;

typedef struct {
  range *free;
  int n, cap;
  size_t top; /* high-water mark */
} arena_alloc;

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

static int arena_take(arena_alloc *a, size_t len, size_t *off) {
  for (int i = 0; i < a->n; i++)
    if (a->free[i].len >= len) {
      *off = a->free[i].off;
      a->free[i].off += len;
      a->free[i].len -= len;
      if (a->free[i].len == 0) memmove(&a->free[i], &a->free[i + 1], (size_t)(a->n - i - 1) * sizeof(range)), a->n--;
      return 0;
    }
  /* Grow at the top, absorbing a free range that ends there. */
  if (a->n && a->free[a->n - 1].off + a->free[a->n - 1].len == a->top) {
    *off = a->free[a->n - 1].off;
    a->n--;
  } else {
    *off = a->top;
  }
  a->top = *off + len;
  return 0;
}

static int arena_give(arena_alloc *a, size_t off, size_t len) {
  if (a->n == a->cap) {
    int cap = a->cap ? 2 * a->cap : 32;
    range *grown = realloc(a->free, (size_t)cap * sizeof *grown);
    if (!grown) return -1;
    a->free = grown;
    a->cap = cap;
  }
  int i = 0;
  while (i < a->n && a->free[i].off < off) i++;
  memmove(&a->free[i + 1], &a->free[i], (size_t)(a->n - i) * sizeof(range));
  a->free[i] = (range){ off, len };
  a->n++;
  /* Merge with the neighbours so large tensors can reuse freed space. */
  if (i + 1 < a->n && a->free[i].off + a->free[i].len == a->free[i + 1].off) {
    a->free[i].len += a->free[i + 1].len;
    memmove(&a->free[i + 1], &a->free[i + 2], (size_t)(a->n - i - 2) * sizeof(range));
    a->n--;
  }
  if (i > 0 && a->free[i - 1].off + a->free[i - 1].len == a->free[i].off) {
    a->free[i - 1].len += a->free[i].len;
    memmove(&a->free[i], &a->free[i + 1], (size_t)(a->n - i - 1) * sizeof(range));
    a->n--;
  }
  return 0;
}

/* ---- launch construction (plan_internal.h) -------------------------------------------------------- */

ut_runtime *ut_plan_runtime(ut_plan *p) { return p->rt; }
ut_loc ut_plan_loc(ut_plan *p, const ut_tensor *t) { return p->loc[t->id]; }

size_t ut_plan_local_size(ut_plan *p) {
  size_t max = p->rt->info.max_work_group_size;
  return max < 256 ? max : 256;
}

static ut_launch *new_launch(ut_plan *p, ut_tensor *n, ut_launch_kind kind) {
  if (p->n_launches == p->cap_launches) {
    int cap = p->cap_launches ? 2 * p->cap_launches : 64;
    ut_launch *grown = realloc(p->launches, (size_t)cap * sizeof *grown);
    if (!grown) return NULL;
    p->launches = grown;
    p->cap_launches = cap;
  }
  ut_launch *l = &p->launches[p->n_launches++];
  memset(l, 0, sizeof *l);
  l->kind = kind;
  l->plan = p;
  l->node = n;
  return l;
}

ut_launch *ut_plan_kernel(ut_plan *p, ut_tensor *n, const char *source, const char *kernel) {
  ut_launch *l = new_launch(p, n, UT_LAUNCH_KERNEL);
  if (!l) {
    if (p->status == UT_OK) p->status = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the schedule");
    /* The spare absorbs the op's argument calls, so op code needs no checks of its own. */
    p->spare.status = p->status;
    p->spare.plan = p;
    return &p->spare;
  }
  snprintf(l->kernel_name, sizeof l->kernel_name, "%s", kernel);
  l->status = ut_runtime_kernel(p->rt, source, kernel, &l->kernel);
  return l;
}

static void set_arg(ut_launch *l, size_t size, const void *value) {
  if (l->status != UT_OK || l == &l->plan->spare) return;
  cl_int err = clSetKernelArg(l->kernel, (cl_uint)l->n_args, size, value);
  if (err != CL_SUCCESS)
    l->status = ut_fail_cl(err, "clSetKernelArg", "argument %d of kernel '%s'", l->n_args, l->kernel_name);
  l->n_args++;
}

void ut_arg_loc(ut_launch *l, ut_loc loc) {
  if (l == &l->plan->spare) return;
  cl_uint off = (cl_uint)loc.off;
  set_arg(l, sizeof(cl_mem), &loc.buf);
  set_arg(l, sizeof off, &off);
}
void ut_arg_tensor(ut_launch *l, const ut_tensor *t) {
  if (l != &l->plan->spare) ut_arg_loc(l, ut_plan_loc(l->plan, t));
}

ut_loc ut_plan_workspace(ut_plan *p, const ut_tensor *n) { return (ut_loc){ p->arena, p->workspace_off[n->id] }; }

void ut_arg_int(ut_launch *l, int v) { cl_int x = v; set_arg(l, sizeof x, &x); }
void ut_arg_uint(ut_launch *l, unsigned v) { cl_uint x = v; set_arg(l, sizeof x, &x); }
void ut_arg_float(ut_launch *l, float v) { cl_float x = v; set_arg(l, sizeof x, &x); }
void ut_arg_int4(ut_launch *l, const int v[4]) {
  cl_int4 x = { { v[0], v[1], v[2], v[3] } };
  set_arg(l, sizeof x, &x);
}
void ut_arg_local(ut_launch *l, size_t bytes) { set_arg(l, bytes, NULL); }
int ut_launch_next_arg(const ut_launch *l) { return l->n_args; }

void ut_launch_set_float(ut_launch *l, int index, float v) {
  cl_float x = v;
  if (l->status == UT_OK) clSetKernelArg(l->kernel, (cl_uint)index, sizeof x, &x);
}
void ut_launch_set_uint(ut_launch *l, int index, unsigned v) {
  cl_uint x = v;
  if (l->status == UT_OK) clSetKernelArg(l->kernel, (cl_uint)index, sizeof x, &x);
}
void ut_launch_on_run(ut_launch *l, ut_launch_prepare_fn fn) {
  if (l != &l->plan->spare) l->prepare = fn;
}

void ut_launch_range(ut_launch *l, size_t n, size_t local) {
  if (l == &l->plan->spare) return;
  if (!local) local = ut_plan_local_size(l->plan);
  l->dims = 1;
  l->local[0] = local;
  l->global[0] = round_up(n ? n : 1, local);
  l->local_set = 1;
}

void ut_launch_range2(ut_launch *l, size_t n0, size_t n1, size_t local0, size_t local1) {
  if (l == &l->plan->spare) return;
  l->dims = 2;
  l->local_set = local0 && local1;
  l->local[0] = local0 ? local0 : 1;
  l->local[1] = local1 ? local1 : 1;
  l->global[0] = round_up(n0 ? n0 : 1, l->local[0]);
  l->global[1] = round_up(n1 ? n1 : 1, l->local[1]);
}

/* A power of two no larger than `max` or than n (at least 1). */
static size_t pow2_upto(size_t n, size_t max) {
  size_t l = 1;
  while (l * 2 <= max && l * 2 <= n) l *= 2;
  return l;
}

void ut_launch_rows(ut_launch *l, size_t cols, size_t rows) {
  size_t group = ut_plan_local_size(l->plan), local0 = pow2_upto(cols, group);
  ut_launch_range2(l, cols, rows, local0, pow2_upto(rows, group / local0));
}

ut_status ut_plan_gemm(ut_plan *p, ut_tensor *n, const ut_gemm_args *a) {
  ut_launch *l = new_launch(p, n, UT_LAUNCH_GEMM);
  if (!l) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the schedule");
  l->gemm = *a;
  snprintf(l->kernel_name, sizeof l->kernel_name, p->rt->host_gemm ? "openblas_sgemm" : "clblast_sgemm");
  if (p->rt->host_gemm) return UT_OK;
  ut_status st = ut_clblast_gemm_prepare(p->rt, a, &l->clblast);
  if (st != UT_OK) return st;
  p->stats.gemm_copy_bytes += l->clblast.temp_bytes;
  p->stats.gemm_copy_bytes_as_given += l->clblast.as_given_temp_bytes;
  if (l->clblast.temp_bytes > p->gemm_temp_bytes) p->gemm_temp_bytes = l->clblast.temp_bytes;
  return UT_OK;
}

ut_status ut_plan_host(ut_plan *p, ut_tensor *n, const char *name, ut_host_fn fn, const void *args, size_t args_bytes,
                       const ut_host_operand *ops, int n_ops) {
  if (n_ops > UT_HOST_MAP_MAX) return ut_fail(UT_ERR_INVALID_ARGUMENT, "host launch '%s': %d operands, at most %d", name, n_ops, UT_HOST_MAP_MAX);
  void *copy = malloc(args_bytes ? args_bytes : 1);
  ut_launch *l = copy ? new_launch(p, n, UT_LAUNCH_HOST) : NULL;
  if (!l) {
    free(copy);
    return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the schedule");
  }
  memcpy(copy, args, args_bytes);
  snprintf(l->kernel_name, sizeof l->kernel_name, "%s", name);
  l->host_fn = fn;
  l->host_args = copy;
  memcpy(l->host_ops, ops, (size_t)n_ops * sizeof *ops);
  l->n_host_ops = n_ops;
  return UT_OK;
}

/* ---- compile ------------------------------------------------------------------------------------- */

static ut_tensor *storage_root(ut_tensor *t) {
  while (t->op->flags & UT_OP_VIEW) t = t->in[0];
  return t;
}

static int lives_in_store(const ut_tensor *t) { return t->store != NULL; }

static size_t tensor_floats(const ut_plan *p, const ut_tensor *t) {
  return round_up((size_t)ut_shape_numel(t->shape), arena_align_floats(p));
}

static ut_status add_counter(ut_plan *p, int64_t *c) {
  for (int i = 0; i < p->n_counters; i++)
    if (p->counters[i] == c) return UT_OK;
  int64_t **grown = realloc(p->counters, (size_t)(p->n_counters + 1) * sizeof *grown);
  if (!grown) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory compiling a plan");
  p->counters = grown;
  p->counters[p->n_counters++] = c;
  return UT_OK;
}

/* Marks what the outputs and the optimizer updates need. */
static void mark_needed(ut_plan *p, const ut_plan_cfg *cfg) {
  ut_graph *g = p->g;
  for (int i = 0; i < cfg->n_outputs; i++) p->in_plan[cfg->outputs[i]->id] = 1;
  for (int i = 0; i < p->n_nodes; i++)
    if (g->nodes[i]->op->flags & UT_OP_UPDATE) p->in_plan[i] = 1;
  for (int i = p->n_nodes - 1; i >= 0; i--)
    if (p->in_plan[i])
      for (int j = 0; j < g->nodes[i]->n_in; j++) p->in_plan[g->nodes[i]->in[j]->id] = 1;
}

/* An update writes a store tensor in place; any later read of it would see the new value. */
static ut_status check_update_order(ut_plan *p) {
  ut_graph *g = p->g;
  for (int i = 0; i < p->n_nodes; i++) {
    ut_tensor *u = g->nodes[i];
    if (!p->in_plan[i] || !(u->op->flags & UT_OP_UPDATE)) continue;
    for (int k = i + 1; k < p->n_nodes; k++) {
      if (!p->in_plan[k]) continue;
      for (int j = 0; j < g->nodes[k]->n_in; j++)
        if (g->nodes[k]->in[j] == u->in[0] && !(g->nodes[k]->op->flags & UT_OP_UPDATE))
          return ut_fail(UT_ERR_STATE, "node '%s' reads '%s' after its optimizer update; build the update last",
                         g->nodes[k]->name, u->in[0]->name);
    }
  }
  return UT_OK;
}

/* The input whose memory elementwise node t (at index i) may take: an arena tensor of t's
 * element count whose last reader is t; -1 if none. */
static int inplace_donor(const ut_plan *p, const ut_tensor *t, const int *last_use, const unsigned char *placed, int i) {
  if (!(t->op->flags & UT_OP_INPLACE)) return -1;
  for (int j = 0; j < t->n_in; j++) {
    const ut_tensor *r = storage_root(t->in[j]);
    if (last_use[r->id] == i && placed[r->id] && !lives_in_store(r) && r->op != &ut_op_input &&
        r->op != &ut_op_constant && r->dtype == t->dtype && ut_shape_numel(t->in[j]->shape) == ut_shape_numel(t->shape) &&
        tensor_floats(p, r) == tensor_floats(p, t))
      return r->id;
  }
  return -1;
}

static ut_status place_tensors(ut_plan *p, const ut_plan_cfg *cfg, size_t **offsets_out) {
  ut_graph *g = p->g;
  int n = p->n_nodes;
  int *last_use = malloc((size_t)n * sizeof *last_use);
  size_t *off = calloc((size_t)n, sizeof *off);
  unsigned char *placed = calloc((size_t)n, 1);
  arena_alloc a = { 0 };
  if (!last_use || !off || !placed) {
    free(last_use), free(off), free(placed);
    return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory compiling a plan");
  }
  for (int i = 0; i < n; i++) last_use[i] = -1;
  for (int i = 0; i < n; i++) {
    if (!p->in_plan[i]) continue;
    ut_tensor *t = g->nodes[i];
    for (int j = 0; j < t->n_in; j++) {
      int r = storage_root(t->in[j])->id;
      if (last_use[r] < i) last_use[r] = i;
    }
    int r = storage_root(t)->id;
    if (last_use[r] < i) last_use[r] = i;
  }
  for (int i = 0; i < cfg->n_outputs; i++) last_use[storage_root(cfg->outputs[i])->id] = n; /* to the end */
  /* Constants are uploaded once, and inputs stay readable after a run: neither is reused. */
  for (int i = 0; i < n; i++)
    if (p->in_plan[i] && (g->nodes[i]->op == &ut_op_constant || g->nodes[i]->op == &ut_op_input)) last_use[i] = n;

  size_t total = 0;
  /* Inputs and constants are written before the step starts, so they are placed first. */
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < n; i++) {
      ut_tensor *t = g->nodes[i];
      int is_early = t->op == &ut_op_input || t->op == &ut_op_constant;
      if (!p->in_plan[i] || placed[i] || (pass == 0) != is_early) continue;
      if (!lives_in_store(t) && !(t->op->flags & (UT_OP_VIEW | UT_OP_UPDATE))) {
        size_t len = tensor_floats(p, t);
        total += len;
        int donor = cfg->no_memory_reuse ? -1 : inplace_donor(p, t, last_use, placed, i);
        if (donor >= 0) {
          off[i] = off[donor];
          last_use[donor] = -2; /* its memory is this node's now: not freed below */
        } else if (cfg->no_memory_reuse) {
          off[i] = a.top;
          a.top += len;
        } else {
          arena_take(&a, len, &off[i]);
        }
        placed[i] = 1;
      }
      /* Scratch that lives only while this node runs: taken after its result (so it overlaps
       * neither that nor the inputs, which are still held) and given back at once. */
      size_t ws = pass == 1 ? t->workspace : 0;
      if (ws) {
        ws = round_up(ws, arena_align_floats(p));
        if (cfg->no_memory_reuse) {
          p->workspace_off[i] = a.top;
          a.top += ws;
        } else if (arena_take(&a, ws, &p->workspace_off[i]) != 0 || arena_give(&a, p->workspace_off[i], ws) != 0) {
          free(last_use), free(placed), free(a.free), free(off);
          return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory compiling a plan");
        }
      }
      if (pass == 0 || cfg->no_memory_reuse) continue;
      /* Free what dies here, after this node's own result is placed. */
      for (int j = 0; j < t->n_in; j++) {
        ut_tensor *r = storage_root(t->in[j]);
        if (last_use[r->id] == i && placed[r->id] && !lives_in_store(r)) {
          if (arena_give(&a, off[r->id], tensor_floats(p, r)) != 0) {
            free(last_use), free(placed), free(a.free), free(off);
            return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory compiling a plan");
          }
          last_use[r->id] = -2; /* freed once even if the node reads it twice */
        }
      }
    }
  p->stats.arena_peak_bytes = a.top * sizeof(float);
  p->stats.intermediate_bytes = total * sizeof(float);
  free(last_use), free(placed), free(a.free);
  *offsets_out = off;
  return UT_OK;
}

/* The refusal of a plan whose arena exceeds `limit` bytes: the three largest tensors it holds
 * and, when the graph has a batched input, the batch that would about fit (the arena grows
 * about linearly with the batch). */
static ut_status too_large(ut_plan *p, uint64_t limit, const char *why) {
  const ut_tensor *big[3] = { 0 };
  int64_t batch = 0;
  for (int i = 0; i < p->n_nodes; i++) {
    const ut_tensor *t = p->g->nodes[i];
    if (!p->in_plan[i] || lives_in_store(t) || (t->op->flags & (UT_OP_VIEW | UT_OP_UPDATE))) continue;
    if (t->op == &ut_op_input && !batch && t->shape.rank >= 2) batch = t->shape.d[0];
    for (int k = 0; k < 3; k++)
      if (!big[k] || ut_shape_numel(t->shape) > ut_shape_numel(big[k]->shape)) {
        memmove(&big[k + 1], &big[k], (size_t)(2 - k) * sizeof big[0]);
        big[k] = t;
        break;
      }
  }
  char list[600] = "", shape[64];
  for (int k = 0; k < 3 && big[k]; k++) {
    size_t len = strlen(list);
    snprintf(list + len, sizeof list - len, "%s'%s' %s (%.2f GiB)", k ? ", " : "", big[k]->name,
             ut_shape_str(big[k]->shape, shape, sizeof shape), (double)ut_shape_numel(big[k]->shape) * 4 / (1u << 30));
  }
  char hint[96] = "use a smaller batch";
  int64_t fits = batch ? (int64_t)((double)batch * (double)limit / (double)p->stats.arena_peak_bytes) : 0;
  if (batch > 1 && fits >= 1) snprintf(hint, sizeof hint, "a smaller batch, about %lld instead of %lld, would fit", (long long)fits, (long long)batch);
  return ut_fail(CL_MEM_OBJECT_ALLOCATION_FAILURE,
                 "the plan needs %.2f GiB of intermediate memory in one arena, more than %s allows (%.2f GiB: %s); its "
                 "largest tensors: %s; %s",
                 (double)p->stats.arena_peak_bytes / (1u << 30), p->rt->info.name, (double)limit / (1u << 30), why, list,
                 hint);
}

/* A tensor beyond the kernels' signed 32-bit element offsets cannot be indexed at all. */
static ut_status check_tensor_sizes(ut_plan *p) {
  for (int i = 0; i < p->n_nodes; i++) {
    const ut_tensor *t = p->g->nodes[i];
    char shape[64];
    if (p->in_plan[i] && ut_shape_numel(t->shape) > INT32_MAX)
      return ut_fail(CL_MEM_OBJECT_ALLOCATION_FAILURE,
                     "tensor '%s' %s has %lld elements, more than the %d that kernels can index with 32-bit offsets; "
                     "use a smaller batch", t->name, ut_shape_str(t->shape, shape, sizeof shape),
                     (long long)ut_shape_numel(t->shape), INT32_MAX);
  }
  return UT_OK;
}

static ut_status compile(ut_plan *p, const ut_plan_cfg *cfg) {
  ut_graph *g = p->g;
  if (g->status != UT_OK)
    return ut_fail(g->status, "the graph has a build error: %s", g->first_error);
  for (int i = 0; i < cfg->n_outputs; i++)
    if (!cfg->outputs[i] || cfg->outputs[i]->g != g)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "plan output %d is NULL or from another graph", i);
  mark_needed(p, cfg);
  ut_status st = check_update_order(p);
  if (st == UT_OK) st = check_tensor_sizes(p);
  if (st != UT_OK) return st;
  size_t *off = NULL;
  if ((st = place_tensors(p, cfg, &off)) != UT_OK) return st;
  /* Kernels index the arena with signed 32-bit element offsets (im2col of a 13 GB column
   * matrix crashed the H100's queue), and one buffer cannot exceed the device's largest
   * allocation: refuse the plan clearly rather than let a kernel run past. */
  uint64_t max_alloc = p->rt->info.max_alloc_bytes, addressable = (uint64_t)INT32_MAX * sizeof(float);
  uint64_t limit = max_alloc && max_alloc < addressable ? max_alloc : addressable;
  if ((uint64_t)p->stats.arena_peak_bytes > limit) {
    free(off);
    return too_large(p, limit, limit == max_alloc ? "its largest single allocation" : "32-bit element indices");
  }
  st = ut_runtime_alloc(p->rt, p->stats.arena_peak_bytes, "the plan's arena", &p->arena);
  for (int i = 0; st == UT_OK && i < p->n_nodes; i++) {
    ut_tensor *t = g->nodes[i];
    if (!p->in_plan[i]) continue;
    if (lives_in_store(t)) p->loc[i] = (ut_loc){ ut_store_tensor_buffer(t->store), 0 };
    else if (t->op->flags & UT_OP_VIEW) p->loc[i] = p->loc[storage_root(t)->id];
    else p->loc[i] = (ut_loc){ p->arena, off[i] };
  }
  free(off);
  for (int i = 0; i < cfg->n_outputs; i++) p->readable[cfg->outputs[i]->id] = 1;
  for (int i = 0; st == UT_OK && i < p->n_nodes; i++) {
    ut_tensor *t = g->nodes[i];
    if (!p->in_plan[i]) continue;
    p->stats.nodes++;
    if (t->op == &ut_op_input || lives_in_store(t)) p->readable[i] = 1;
    if (t->op == &ut_op_constant)
      st = ut_runtime_write(p->rt, p->loc[i].buf, p->loc[i].off * sizeof(float),
                            (size_t)ut_shape_numel(t->shape) * sizeof(float), t->const_values);
    if (st == UT_OK && t->counter) st = add_counter(p, t->counter);
    if (st == UT_OK && t->op->forward) {
      int first = p->n_launches;
      st = t->op->forward(p, t);
      if (st == UT_OK) st = p->status;
      for (int k = first; st == UT_OK && k < p->n_launches; k++) st = p->launches[k].status;
      if (st != UT_OK) ut_error_prefix("node '%s' (%s)", t->name, t->op->name);
    }
  }
  if (st == UT_OK && p->gemm_temp_bytes) st = ut_runtime_alloc(p->rt, p->gemm_temp_bytes, "GEMM scratch", &p->gemm_temp);
  if (st == UT_OK) st = ut_schedule_warm_gemms(p);
  p->stats.launches = p->n_launches;
  return st;
}

ut_plan *ut_plan_compile(ut_graph *g, const ut_plan_cfg *cfg) {
  if (!g) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_plan_compile: no graph");
    return NULL;
  }
  ut_plan_cfg none = { 0 };
  ut_plan *p = calloc(1, sizeof *p);
  if (p) {
    p->g = g;
    p->rt = g->rt;
    p->n_nodes = g->n_nodes;
    p->loc = calloc((size_t)g->n_nodes + 1, sizeof *p->loc);
    p->in_plan = calloc((size_t)g->n_nodes + 1, 1);
    p->readable = calloc((size_t)g->n_nodes + 1, 1);
    p->workspace_off = calloc((size_t)g->n_nodes + 1, sizeof *p->workspace_off);
  }
  if (!p || !p->loc || !p->in_plan || !p->readable || !p->workspace_off) {
    ut_plan_free(p);
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory compiling a plan");
    return NULL;
  }
  if (compile(p, cfg ? cfg : &none) != UT_OK) {
    ut_plan_free(p);
    return NULL;
  }
  return p;
}

void ut_plan_free(ut_plan *p) {
  if (!p) return;
  if (p->rt) clFinish(p->rt->queue);
  for (int i = 0; i < p->n_launches; i++) {
    if (p->launches[i].kernel) clReleaseKernel(p->launches[i].kernel);
    if (p->launches[i].event) clReleaseEvent(p->launches[i].event);
    if (p->launches[i].start_event) clReleaseEvent(p->launches[i].start_event);
    ut_clblast_gemm_release(&p->launches[i].clblast);
    free(p->launches[i].host_args);
  }
  if (p->arena) clReleaseMemObject(p->arena);
  if (p->gemm_temp) clReleaseMemObject(p->gemm_temp);
  free(p->launches);
  free(p->counters);
  free(p->loc);
  free(p->in_plan);
  free(p->readable);
  free(p->workspace_off);
  free(p);
}

ut_plan_stats ut_plan_get_stats(const ut_plan *p) { return p->stats; }
