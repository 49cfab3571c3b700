/* Random sources: tensors of uniform (0, 1) or standard normal values, fresh every run, from
 * Philox 4x32-10 (cl/random.cl, engine/philox.h for the element -> counter mapping).
 *
 * The stream of node "<name>" has key hash64(name, store seed) and its run number is the store
 * counter "rng.<name>", which the plan bumps once at the start of every run (the first run sees
 * 1; store initialisation uses run 0, so a parameter of the same name never repeats it) and
 * which checkpoints save. Within one graph a name is one use: a second random node of that name is
 * refused (it would draw the same sample). Graphs over one store may share a name on purpose:
 * that is how two plans (a D step and a G step) can see the same noise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "plan_internal.h"

/* Integer attributes: the shape, then the 64-bit key. */
enum { ATTR_RANK = 0, ATTR_DIM0 = 1, ATTR_KEY = 1 + UT_MAX_RANK, N_ATTRS };

/* Kernel arguments of random_uniform and random_normal, in the order forward() sets them; the
 * run number is refreshed by index before every run. */
enum { ARG_OUT = 0, ARG_OUT_OFF, ARG_N, ARG_KEY_LO, ARG_KEY_HI, ARG_RUN_LO, ARG_RUN_HI };

static ut_status random_shape(ut_tensor *n) {
  n->shape = (ut_shape){ .rank = (int)n->iattr[ATTR_RANK] };
  for (int i = 0; i < n->shape.rank && i < UT_MAX_RANK; i++) n->shape.d[i] = n->iattr[ATTR_DIM0 + i];
  return UT_OK;
}

static void random_prepare(ut_launch *l, const ut_tensor *n) {
  uint64_t run = (uint64_t)*n->counter;
  ut_launch_set_uint(l, ARG_RUN_LO, (unsigned)run);
  ut_launch_set_uint(l, ARG_RUN_HI, (unsigned)(run >> 32));
}

static ut_status random_forward(ut_plan *p, ut_tensor *n, const char *kernel) {
  size_t count = (size_t)ut_shape_numel(n->shape);
  /* A graph computing share i of N of a batch draws the i-th window of the whole batch's
   * stream, of every block when the batch is made of several (ut_graph_set_share_blocks). */
  int shares = n->g->share_count > 1 ? n->g->share_count : 1, blocks = n->g->share_blocks > 1 ? n->g->share_blocks : 1;
  if (n->shape.d[0] % blocks)
    return ut_fail(UT_ERR_SHAPE, "random source '%s': its first dimension %lld does not split into the batch's %d "
                   "blocks", n->name, (long long)n->shape.d[0], blocks);
  if (shares > 1 && (uint64_t)shares * count + 3 > UINT32_MAX)
    return ut_fail(UT_ERR_SHAPE, "random source '%s': %d shares of %zu elements exceed the 2^32 elements a stream "
                   "indexes", n->name, shares, count);
  size_t per_block = count / (size_t)blocks;
  uint64_t key;
  memcpy(&key, &n->iattr[ATTR_KEY], sizeof key);
  for (int b = 0; b < blocks; b++) {
    uint64_t first = ((uint64_t)b * (uint64_t)shares + (uint64_t)(shares > 1 ? n->g->share_index : 0)) * per_block;
    ut_loc out = ut_plan_loc(p, n);
    out.off += (size_t)b * per_block;
    ut_launch *l = ut_plan_kernel(p, n, "random", kernel);
    ut_arg_loc(l, out); /* ARG_OUT, ARG_OUT_OFF */
    ut_arg_uint(l, (unsigned)per_block);
    ut_arg_uint(l, (unsigned)key);
    ut_arg_uint(l, (unsigned)(key >> 32));
    ut_arg_uint(l, 0); /* ARG_RUN_LO, ARG_RUN_HI: set by random_prepare */
    ut_arg_uint(l, 0);
    ut_arg_uint(l, (unsigned)first);
    ut_launch_on_run(l, random_prepare);
    /* One work-item per Philox block that overlaps the window. */
    ut_launch_range(l, (size_t)((first + per_block + 3) / 4 - first / 4), 0);
  }
  return UT_OK;
}

static ut_status uniform_forward(ut_plan *p, ut_tensor *n) { return random_forward(p, n, "random_uniform"); }
static ut_status normal_forward(ut_plan *p, ut_tensor *n) { return random_forward(p, n, "random_normal"); }

/* No backward: a random source depends on nothing, so no gradient flows through it. */
static const ut_op_def op_random_uniform = { "random_uniform", 0, random_shape, uniform_forward, NULL };
static const ut_op_def op_random_normal = { "random_normal", 0, random_shape, normal_forward, NULL };

static ut_tensor *random_node(ut_graph *g, const ut_op_def *op, const char *name, ut_shape shape) {
  if (!g) return NULL;
  if (!name || !*name) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: a random tensor needs a name (it keys the stream)", op->name);
    return ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
  }
  /* The kernel counts elements in 32 bits; the graph checks the rest of the shape. */
  int64_t numel = 1;
  int valid = shape.rank >= 1 && shape.rank <= UT_MAX_RANK;
  for (int i = 0; valid && i < shape.rank; i++) {
    valid = shape.d[i] >= 1 && shape.d[i] <= (int64_t)UINT32_MAX && numel <= (int64_t)UINT32_MAX / shape.d[i];
    if (valid) numel *= shape.d[i];
  }
  if (!valid) {
    char b[128];
    ut_fail(UT_ERR_SHAPE, "%s '%s': shape %s (rank %d) must have 1 to %d positive dimensions and fewer than 2^32 "
            "elements", op->name, name, shape.rank >= 0 && shape.rank <= UT_MAX_RANK ? ut_shape_str(shape, b, sizeof b) : "?",
            shape.rank, UT_MAX_RANK);
    return ut_graph_fail(g, UT_ERR_SHAPE);
  }
  size_t len = strlen(name) + sizeof "rng.";
  char *counter_name = malloc(len);
  if (!counter_name) {
    ut_fail(UT_ERR_HOST_MEMORY, "%s '%s': out of host memory", op->name, name);
    return ut_graph_fail(g, UT_ERR_HOST_MEMORY);
  }
  snprintf(counter_name, len, "rng.%s", name);
  int64_t *counter = ut_store_counter(ut_graph_store(g), counter_name);
  free(counter_name);
  if (!counter) return ut_graph_fail(g, UT_ERR_HOST_MEMORY);
  /* One stream per use: a second node of the same name would draw the very same sample (same
   * key, same run counter), which a model almost never means (two dropout layers, two noise
   * terms). Across graphs a shared name stays allowed: two plans may see the same noise. */
  for (int i = 0; i < g->n_nodes; i++) {
    const ut_tensor *o = g->nodes[i];
    if (o->counter == counter && (o->op == &op_random_uniform || o->op == &op_random_normal)) {
      ut_fail(UT_ERR_INVALID_ARGUMENT, "%s '%s': this graph already draws from stream 'rng.%s' (node %s '%s'), so both "
              "would get the same sample; give each use its own name", op->name, name, name, o->op->name, o->name);
      return ut_graph_fail(g, UT_ERR_INVALID_ARGUMENT);
    }
  }

  int64_t a[N_ATTRS] = { 0 };
  a[ATTR_RANK] = shape.rank;
  for (int i = 0; i < shape.rank; i++) a[ATTR_DIM0 + i] = shape.d[i];
  uint64_t key = ut_hash64(name, strlen(name), ut_store_seed(ut_graph_store(g)));
  memcpy(&a[ATTR_KEY], &key, sizeof key); /* all 64 bits, without a signed conversion */
  ut_tensor *t = ut_node_new(g, op, 0, NULL, a, N_ATTRS, NULL, 0);
  if (!t) return NULL;
  t->counter = counter;
  return ut_name(t, name);
}

ut_tensor *ut_random_uniform(ut_graph *g, const char *name, ut_shape shape) {
  return random_node(g, &op_random_uniform, name, shape);
}

ut_tensor *ut_random_normal(ut_graph *g, const char *name, ut_shape shape) {
  return random_node(g, &op_random_normal, name, shape);
}
