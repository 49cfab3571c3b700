/* Graphs: nodes in creation order (a topological order), sources (inputs, constants,
 * parameters, optimizer state), parameter lists and hyperparameters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "graph_internal.h"

/* ---- shapes -------------------------------------------------------------------------------- */

int64_t ut_shape_numel(ut_shape s) {
  int64_t n = 1;
  for (int i = 0; i < s.rank; i++) n *= s.d[i];
  return n;
}

char *ut_shape_str(ut_shape s, char *buf, size_t size) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < s.rank && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)s.d[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
  return buf;
}

int ut_shape_equal(ut_shape a, ut_shape b) {
  if (a.rank != b.rank) return 0;
  for (int i = 0; i < a.rank; i++)
    if (a.d[i] != b.d[i]) return 0;
  return 1;
}

ut_status ut_broadcast_shape(ut_shape a, ut_shape b, ut_shape *out) {
  ut_shape r = { .rank = a.rank > b.rank ? a.rank : b.rank };
  for (int i = 0; i < r.rank; i++) {
    int ia = a.rank - r.rank + i, ib = b.rank - r.rank + i;
    int64_t da = ia >= 0 ? a.d[ia] : 1, db = ib >= 0 ? b.d[ib] : 1;
    if (da != db && da != 1 && db != 1) return UT_ERR_SHAPE;
    r.d[i] = da == 1 ? db : da;
  }
  *out = r;
  return UT_OK;
}

static int shape_valid(ut_shape s) {
  if (s.rank < 1 || s.rank > UT_MAX_RANK) return 0;
  for (int i = 0; i < s.rank; i++)
    if (s.d[i] < 1 || s.d[i] > ((int64_t)1 << 32)) return 0;
  return ut_shape_numel(s) <= ((int64_t)1 << 32);
}

/* ---- graphs and nodes ------------------------------------------------------------------------ */

ut_graph *ut_graph_new(ut_runtime *rt, ut_store *st) {
  if (!rt || !st) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_graph_new needs a runtime and a store");
    return NULL;
  }
  ut_graph *g = calloc(1, sizeof *g);
  if (!g) ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for a graph");
  else {
    g->rt = rt;
    g->st = st;
  }
  return g;
}

void ut_graph_free(ut_graph *g) {
  if (!g) return;
  for (int i = 0; i < g->n_nodes; i++) {
    free(g->nodes[i]->const_values);
    free(g->nodes[i]);
  }
  for (int i = 0; i < g->n_owned; i++) free(g->owned[i]);
  for (ut_hparam *h = g->hparams, *next; h; h = next) {
    next = h->next;
    free(h);
  }
  free(g->owned);
  free(g->nodes);
  free(g);
}

ut_runtime *ut_graph_runtime(const ut_graph *g) { return g->rt; }
ut_store *ut_graph_store(const ut_graph *g) { return g->st; }
ut_status ut_graph_status(const ut_graph *g) { return g ? g->status : UT_ERR_INVALID_ARGUMENT; }
int ut_graph_node_count(const ut_graph *g) { return g ? g->n_nodes : 0; }

ut_tensor *ut_graph_fail(ut_graph *g, ut_status s) {
  if (s == UT_OK) s = ut_fail(UT_ERR_INVALID_ARGUMENT, "a NULL tensor was passed to a graph call");
  if (g && g->status == UT_OK) {
    g->status = s;
    snprintf(g->first_error, sizeof g->first_error, "%s", ut_last_error());
  }
  return NULL;
}

void *ut_graph_alloc(ut_graph *g, size_t bytes) {
  if (g->n_owned == g->cap_owned) {
    int cap = g->cap_owned ? 2 * g->cap_owned : 16;
    void **grown = realloc(g->owned, (size_t)cap * sizeof *grown);
    if (!grown) return NULL;
    g->owned = grown;
    g->cap_owned = cap;
  }
  void *p = calloc(1, bytes ? bytes : 1);
  if (p) g->owned[g->n_owned++] = p;
  return p;
}

ut_tensor *ut_node_new(ut_graph *g, const ut_op_def *op, int n_in, ut_tensor *const *in, const int64_t *iattr,
                       int n_iattr, const float *fattr, int n_fattr) {
  if (!g) return NULL;
  for (int i = 0; i < n_in; i++) {
    if (!in[i]) return ut_graph_fail(g, g->status != UT_OK ? g->status : UT_ERR_INVALID_ARGUMENT);
    if (in[i]->g != g) {
      ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: input %d ('%s') belongs to another graph", op->name, i, in[i]->name);
      return ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
    }
  }
  if (g->n_nodes == g->cap_nodes) {
    int cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
    ut_tensor **grown = realloc(g->nodes, (size_t)cap * sizeof *grown);
    if (!grown) {
      ut_fail(UT_ERR_HOST_MEMORY, "out of host memory adding a node");
      return ut_graph_fail(g, UT_ERR_HOST_MEMORY);
    }
    g->nodes = grown;
    g->cap_nodes = cap;
  }
  ut_tensor *n = calloc(1, sizeof *n);
  if (!n) {
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory adding a node");
    return ut_graph_fail(g, UT_ERR_HOST_MEMORY);
  }
  n->g = g;
  n->op = op;
  n->id = g->n_nodes;
  n->n_in = n_in;
  for (int i = 0; i < n_in; i++) n->in[i] = in[i];
  for (int i = 0; i < n_iattr && i < UT_MAX_ATTRS; i++) n->iattr[i] = iattr[i];
  for (int i = 0; i < n_fattr && i < UT_MAX_ATTRS; i++) n->fattr[i] = fattr[i];
  snprintf(n->name, sizeof n->name, "%s#%d", op->name, n->id);
  ut_status st = op->shape ? op->shape(n) : UT_OK;
  if (st == UT_OK && !shape_valid(n->shape)) {
    char b[64];
    st = ut_fail(UT_ERR_SHAPE, "%s: result shape %s is empty, negative or too large", op->name,
                 ut_shape_str(n->shape, b, sizeof b));
  }
  if (st != UT_OK) {
    free(n);
    return ut_graph_fail(g, st);
  }
  g->nodes[g->n_nodes++] = n;
  return n;
}

ut_shape ut_tensor_shape(const ut_tensor *t) { return t ? t->shape : (ut_shape){ 0 }; }
ut_dtype ut_tensor_dtype(const ut_tensor *t) { return t ? t->dtype : UT_F32; }
const char *ut_tensor_name(const ut_tensor *t) { return t ? t->name : "(null)"; }
const char *ut_tensor_op(const ut_tensor *t) { return t ? t->op->name : "(null)"; }

ut_tensor *ut_name(ut_tensor *t, const char *name) {
  if (t && name) snprintf(t->name, sizeof t->name, "%s", name);
  return t;
}

/* ---- sources ---------------------------------------------------------------------------------- */

/* Sources keep their shape in the integer attributes: rank, then the dimensions. */
static void shape_to_attrs(ut_shape s, int64_t a[UT_MAX_ATTRS]) {
  a[0] = s.rank;
  for (int i = 0; i < UT_MAX_RANK; i++) a[1 + i] = i < s.rank ? s.d[i] : 0;
}

static ut_status source_shape(ut_tensor *n) {
  n->shape.rank = (int)n->iattr[0];
  if (n->shape.rank < 1 || n->shape.rank > UT_MAX_RANK)
    return ut_fail(UT_ERR_SHAPE, "%s: rank %d is outside 1..%d", n->op->name, n->shape.rank, UT_MAX_RANK);
  for (int i = 0; i < n->shape.rank; i++) n->shape.d[i] = n->iattr[1 + i];
  n->dtype = (ut_dtype)n->iattr[5];
  return UT_OK;
}

const ut_op_def ut_op_input = { "input", UT_OP_SOURCE, source_shape, NULL, NULL };
const ut_op_def ut_op_constant = { "constant", UT_OP_SOURCE, source_shape, NULL, NULL };
const ut_op_def ut_op_param = { "param", UT_OP_SOURCE, source_shape, NULL, NULL };
const ut_op_def ut_op_state = { "state", UT_OP_SOURCE, source_shape, NULL, NULL };

static ut_tensor *source(ut_graph *g, const ut_op_def *op, ut_dtype dtype, ut_shape shape) {
  int64_t a[UT_MAX_ATTRS] = { 0 };
  shape_to_attrs(shape, a);
  a[5] = dtype;
  return ut_node_new(g, op, 0, NULL, a, 6, NULL, 0);
}

ut_tensor *ut_input(ut_graph *g, const char *name, ut_dtype dtype, ut_shape shape) {
  if (dtype != UT_F32 && dtype != UT_I32) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "input '%s': unknown dtype %d", name ? name : "", (int)dtype);
    return ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  }
  return ut_name(source(g, &ut_op_input, dtype, shape), name);
}

ut_tensor *ut_constant(ut_graph *g, ut_shape shape, const float *values) {
  ut_tensor *t = source(g, &ut_op_constant, UT_F32, shape);
  if (!t) return NULL;
  size_t bytes = (size_t)ut_shape_numel(shape) * sizeof(float);
  t->const_values = malloc(bytes);
  if (!t->const_values) {
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for a constant of %zu bytes", bytes);
    return ut_graph_fail(g, UT_ERR_HOST_MEMORY);
  }
  memcpy(t->const_values, values, bytes);
  return t;
}

ut_tensor *ut_scalar(ut_graph *g, float value) { return ut_constant(g, UT_SHAPE(1), &value); }

/* One node per store tensor and graph, so every use of a parameter adds to one gradient. */
static ut_tensor *store_source(ut_graph *g, const ut_op_def *op, ut_store_tensor *t) {
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->store == t) return g->nodes[i];
  ut_tensor *n = source(g, op, UT_F32, ut_store_tensor_shape(t));
  if (n) {
    n->store = t;
    ut_name(n, ut_store_tensor_name(t));
  }
  return n;
}

ut_tensor *ut_param(ut_graph *g, const char *name, ut_shape shape, ut_init init) {
  if (!g) return NULL;
  ut_store_tensor *t = ut_store_tensor_get(g->st, name, shape, init);
  if (!t) return ut_graph_fail(g, UT_ERR_SHAPE);
  return store_source(g, &ut_op_param, t);
}

ut_tensor *ut_state(ut_graph *g, ut_store_tensor *t) { return t ? store_source(g, &ut_op_state, t) : NULL; }

ut_tensor_list ut_params(ut_graph *g, const char *prefix) {
  ut_tensor_list l = { 0 };
  if (!g) return l;
  size_t plen = prefix ? strlen(prefix) : 0;
  l.t = ut_graph_alloc(g, (size_t)g->n_nodes * sizeof *l.t);
  if (!l.t) return l;
  for (int i = 0; i < g->n_nodes; i++) {
    ut_tensor *n = g->nodes[i];
    if (n->op == &ut_op_param && (!plen || !strncmp(n->name, prefix, plen))) l.t[l.n++] = n;
  }
  return l;
}

ut_tensor_list ut_params_join(ut_graph *g, ut_tensor_list a, ut_tensor_list b) {
  ut_tensor_list l = { 0 };
  l.t = ut_graph_alloc(g, (size_t)(a.n + b.n) * sizeof *l.t);
  if (!l.t) return l;
  for (int i = 0; i < a.n; i++) l.t[l.n++] = a.t[i];
  for (int i = 0; i < b.n; i++) l.t[l.n++] = b.t[i];
  return l;
}

/* ---- hyperparameters ------------------------------------------------------------------------ */

ut_hparam *ut_hparam_new(ut_graph *g, const char *name, float value) {
  ut_hparam *h = calloc(1, sizeof *h);
  if (!h) {
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for a hyperparameter");
    return NULL;
  }
  snprintf(h->name, sizeof h->name, "%s", name ? name : "");
  h->value = value;
  h->next = g->hparams;
  g->hparams = h;
  return h;
}

void ut_hparam_set(ut_hparam *h, float value) { h->value = value; }
float ut_hparam_get(const ut_hparam *h) { return h->value; }
