/* Optimizers as update nodes: one per parameter, writing the parameter and its state in
 * place. A plan runs every update of its graph after the gradients they read. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "plan_internal.h"

/* fattr: [0] beta1 or momentum, [1] beta2, [2] eps, [3] weight decay, [4] fixed lr. */
enum { ADAM_ARG_STEP_SIZE = 13, ADAM_ARG_BC2_SQRT = 14, SGD_ARG_LR = 9 };

static ut_status update_shape(ut_tensor *n) {
  for (int i = 1; i < n->n_in; i++)
    if (!ut_shape_equal(n->in[i]->shape, n->in[0]->shape)) {
      char a[64], b[64];
      return ut_fail(UT_ERR_SHAPE, "%s: '%s' has shape %s but parameter '%s' has %s", n->op->name, n->in[i]->name,
                     ut_shape_str(n->in[i]->shape, a, sizeof a), n->in[0]->name, ut_shape_str(n->in[0]->shape, b, sizeof b));
    }
  n->shape = n->in[0]->shape;
  return UT_OK;
}

static float current_lr(const ut_tensor *n) { return n->hparam ? n->hparam->value : n->fattr[4]; }

static void adam_prepare(ut_launch *l, const ut_tensor *n) {
  double t = (double)*n->counter;
  double bc1 = 1.0 - pow(n->fattr[0], t), bc2 = 1.0 - pow(n->fattr[1], t);
  ut_launch_set_float(l, ADAM_ARG_STEP_SIZE, (float)(current_lr(n) / bc1));
  ut_launch_set_float(l, ADAM_ARG_BC2_SQRT, (float)sqrt(bc2));
}

static ut_status adam_forward(ut_plan *p, ut_tensor *n) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "optim", "adam_update");
  for (int i = 0; i < 4; i++) ut_arg_tensor(l, n->in[i]);
  ut_arg_uint(l, (unsigned)count);
  for (int i = 0; i < 4; i++) ut_arg_float(l, n->fattr[i]);
  ut_arg_float(l, 0.0f); /* step size and bias correction: set before each run */
  ut_arg_float(l, 1.0f);
  ut_launch_on_run(l, adam_prepare);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static void sgd_prepare(ut_launch *l, const ut_tensor *n) { ut_launch_set_float(l, SGD_ARG_LR, current_lr(n)); }

static ut_status sgd_forward(ut_plan *p, ut_tensor *n) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  ut_launch *l = ut_plan_kernel(p, n, "optim", "sgd_update");
  for (int i = 0; i < 3; i++) ut_arg_tensor(l, n->in[i]);
  ut_arg_uint(l, (unsigned)count);
  ut_arg_float(l, n->fattr[0]);
  ut_arg_float(l, n->fattr[3]);
  ut_arg_float(l, current_lr(n));
  ut_launch_on_run(l, sgd_prepare);
  ut_launch_range(l, count, 0);
  return UT_OK;
}

static const ut_op_def op_adam = { "adam_update", UT_OP_UPDATE, update_shape, adam_forward, NULL };
static const ut_op_def op_sgd = { "sgd_update", UT_OP_UPDATE, update_shape, sgd_forward, NULL };

/* The optimizer state of parameter p: "<param>.<opt>.<what>", zero at the start. */
static ut_tensor *state_of(ut_graph *g, ut_tensor *p, const char *opt, const char *what) {
  char name[256];
  snprintf(name, sizeof name, "%s.%s.%s", p->name, opt, what);
  ut_store_tensor *t = ut_store_tensor_get(ut_graph_store(g), name, p->shape, (ut_init){ UT_INIT_ZERO, 0, 0 });
  return t ? ut_state(g, t) : ut_graph_fail(g, UT_ERR_STATE);
}

static ut_status check_params(ut_graph *g, ut_tensor_list params, const char *who) {
  if (!g) return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: no graph", who);
  if (g->status != UT_OK) return g->status;
  for (int i = 0; i < params.n; i++)
    if (!params.t[i] || params.t[i]->op != &ut_op_param)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: entry %d of the list is not a parameter", who, i);
  return UT_OK;
}

/* ---- one optimiser per name and per parameter ---------------------------------------------------
 *
 * An optimiser's name keys its step counter and moments in the store, which every graph over
 * that store shares. The store's registry remembers, per name, the kind and the sorted names of
 * the parameters first listed under it: a later call with that name (a rebuilt plan, a plan
 * rebuilt after a checkpoint load) must list the same set, so two different optimisers cannot
 * quietly share one step counter. Within one graph each parameter takes one optimiser. */

typedef struct {
  char *name;
  const char *kind;
  int n;
  char **params; /* sorted */
} registered;

typedef struct {
  registered *items;
  int n, cap;
} registry;

static void registry_free(void *p) {
  registry *r = p;
  if (!r) return;
  for (int i = 0; i < r->n; i++) {
    for (int j = 0; j < r->items[i].n; j++) free(r->items[i].params[j]);
    free(r->items[i].params);
    free(r->items[i].name);
  }
  free(r->items);
  free(r);
}

static const char *param_name(const ut_tensor *p) { return ut_store_tensor_name(p->store); }

static int compare_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *copy_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *c = malloc(n);
  if (c) memcpy(c, s, n);
  return c;
}

static ut_status refuse(ut_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ut_status refuse(ut_graph *g, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ut_fail(UT_ERR_INVALID_ARGUMENT, "%s", msg);
  ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  return UT_ERR_INVALID_ARGUMENT;
}

/* The set of `names` (sorted, n) against the registered one: the first name in only one of them
 * (*only_new says which), or NULL when they are the same. */
static const char *first_difference(const registered *r, const char *const *names, int n, int *only_new) {
  int i = 0, j = 0;
  while (i < r->n || j < n) {
    int c = i == r->n ? 1 : j == n ? -1 : strcmp(r->params[i], names[j]);
    if (c == 0) {
      i++, j++;
      continue;
    }
    *only_new = c > 0;
    return c > 0 ? names[j] : r->params[i];
  }
  return NULL;
}

/* Checks a call before its nodes are made; *sorted gets the sorted parameter names (malloc'd)
 * and *known the registry entry of the name when there is one. */
static ut_status claim_check(ut_graph *g, const char *kind, const char *name, ut_tensor_list params,
                             const char ***sorted, registered **known) {
  for (int i = 0; i < params.n; i++)
    for (int j = 0; j < i; j++)
      if (params.t[i] == params.t[j])
        return refuse(g, "%s '%s': parameter '%s' is listed twice", kind, name, param_name(params.t[i]));
  for (const ut_graph_optimizer *o = g->optimizers; o; o = o->next)
    for (int i = 0; i < params.n; i++)
      for (int j = 0; j < o->params.n; j++) {
        if (o->params.t[j] != params.t[i]) continue;
        if (!strcmp(o->name, name))
          return refuse(g, "%s '%s' is added twice to one graph (parameter '%s' would be updated twice)", kind, name,
                        param_name(params.t[i]));
        return refuse(g, "%s '%s': parameter '%s' is already updated by %s '%s' in this graph; a parameter takes one "
                      "optimiser per graph", kind, name, param_name(params.t[i]), o->kind, o->name);
      }
  const char **names = malloc((size_t)(params.n ? params.n : 1) * sizeof *names);
  if (!names) {
    ut_graph_fail(g, ut_fail(UT_ERR_HOST_MEMORY, "%s '%s': out of host memory", kind, name));
    return UT_ERR_HOST_MEMORY;
  }
  for (int i = 0; i < params.n; i++) names[i] = param_name(params.t[i]);
  qsort(names, (size_t)params.n, sizeof *names, compare_names);
  *sorted = names;
  *known = NULL;
  registry *r = *ut_store_optimizer_slot(ut_graph_store(g), registry_free);
  for (int i = 0; r && i < r->n; i++)
    if (!strcmp(r->items[i].name, name)) *known = &r->items[i];
  if (!*known) return UT_OK;
  if (strcmp((*known)->kind, kind))
    return refuse(g, "%s '%s': this store already has a %s optimiser named '%s' (the two would share their state); "
                  "give each optimiser a distinct cfg->name", kind, name, (*known)->kind, name);
  int only_new = 0;
  const char *differs = first_difference(*known, names, params.n, &only_new);
  if (differs)
    return refuse(g, "%s '%s': this store already has an optimiser of that name over other parameters ('%s' is %s); "
                  "two optimisers of one name share a step counter: give each a distinct cfg->name",
                  kind, name, differs, only_new ? "listed here but not there" : "listed there but not here");
  return UT_OK;
}

/* After the nodes are made: the name joins the store's registry (when new) and the graph's list. */
static ut_status claim_commit(ut_graph *g, const char *kind, const char *name, ut_tensor_list params,
                              const char **sorted, registered *known) {
  ut_graph_optimizer *o = ut_graph_alloc(g, sizeof *o);
  char *gname = o ? ut_graph_alloc(g, strlen(name) + 1) : NULL;
  ut_tensor **list = gname ? ut_graph_alloc(g, (size_t)params.n * sizeof *list) : NULL;
  if (!list) goto oom;
  memcpy(gname, name, strlen(name) + 1);
  if (params.n) memcpy(list, params.t, (size_t)params.n * sizeof *list);
  if (!known) {
    void **slot = ut_store_optimizer_slot(ut_graph_store(g), registry_free);
    if (!*slot && !(*slot = calloc(1, sizeof(registry)))) goto oom;
    registry *r = *slot;
    if (r->n == r->cap) {
      int cap = r->cap ? 2 * r->cap : 8;
      registered *grown = realloc(r->items, (size_t)cap * sizeof *grown);
      if (!grown) goto oom;
      r->items = grown;
      r->cap = cap;
    }
    registered e = { copy_string(name), kind, 0, calloc((size_t)(params.n ? params.n : 1), sizeof(char *)) };
    int ok = e.name && e.params;
    for (; ok && e.n < params.n; e.n++) ok = (e.params[e.n] = copy_string(sorted[e.n])) != NULL;
    if (!ok) {
      for (int i = 0; i < e.n; i++) free(e.params[i]);
      free(e.params);
      free(e.name);
      goto oom;
    }
    r->items[r->n++] = e;
  }
  *o = (ut_graph_optimizer){ .kind = kind, .name = gname, .params = { .t = list, .n = params.n },
                             .next = g->optimizers };
  g->optimizers = o;
  return UT_OK;
oom:
  ut_graph_fail(g, ut_fail(UT_ERR_HOST_MEMORY, "%s '%s': out of host memory", kind, name));
  return UT_ERR_HOST_MEMORY;
}

/* One update node per parameter that has a gradient; `state` names its state tensors. */
static ut_status add_updates(ut_graph *g, const char *kind, const char *name, ut_tensor_list params,
                             const ut_op_def *op, const char *const *state, int n_state, const float *f, int64_t *step,
                             ut_hparam *lr) {
  const char **sorted = NULL;
  registered *known = NULL;
  ut_status st = claim_check(g, kind, name, params, &sorted, &known);
  if (st == UT_OK) st = ut_gradient_reduce_node(g, name, params);
  for (int i = 0; st == UT_OK && i < params.n; i++) {
    ut_tensor *p = params.t[i];
    if (!p->grad) continue; /* as PyTorch: a parameter the loss does not reach is left alone */
    ut_tensor *in[2 + 2] = { p, p->grad };
    for (int k = 0; k < n_state; k++) in[2 + k] = state_of(g, p, name, state[k]);
    ut_tensor *u = ut_node_new(g, op, 2 + n_state, in, NULL, 0, f, 5);
    if (!u) st = g->status;
    else {
      u->counter = step;
      u->hparam = lr;
    }
  }
  if (st == UT_OK) st = g->status;
  if (st == UT_OK) st = claim_commit(g, kind, name, params, sorted, known);
  free(sorted);
  return st;
}

ut_status ut_adam(ut_graph *g, ut_tensor_list params, const ut_adam_cfg *cfg) {
  ut_status st = check_params(g, params, "ut_adam");
  if (st != UT_OK) return st;
  const char *name = cfg->name ? cfg->name : "adam";
  char counter[128];
  snprintf(counter, sizeof counter, "%s.step", name);
  int64_t *step = ut_store_counter(ut_graph_store(g), counter);
  if (!step) return ut_fail(UT_ERR_HOST_MEMORY, "ut_adam: no memory for the step counter");
  float f[5] = { cfg->beta1 ? cfg->beta1 : 0.9f, cfg->beta2 ? cfg->beta2 : 0.999f, cfg->eps ? cfg->eps : 1e-8f,
                 cfg->weight_decay, cfg->lr };
  static const char *const state[] = { "m", "v" };
  return add_updates(g, "adam", name, params, &op_adam, state, 2, f, step, cfg->lr_param);
}

ut_status ut_sgd(ut_graph *g, ut_tensor_list params, const ut_sgd_cfg *cfg) {
  ut_status st = check_params(g, params, "ut_sgd");
  if (st != UT_OK) return st;
  const char *name = cfg->name ? cfg->name : "sgd";
  float f[5] = { cfg->momentum, 0, 0, cfg->weight_decay, cfg->lr };
  static const char *const state[] = { "momentum" };
  return add_updates(g, "sgd", name, params, &op_sgd, state, 1, f, NULL, cfg->lr_param);
}
