/* Nodes, graphs and the op table. An op is one ut_op_def: a shape rule run when the node is
 * made, a forward launcher run when a plan is compiled, and a backward builder run by
 * ut_backward. Adding an op means one definition in engine/ops/ and its kernels in cl/. */
#ifndef UT_GRAPH_INTERNAL_H
#define UT_GRAPH_INTERNAL_H

#include "untangle.h"

#define UT_MAX_INPUTS 6
#define UT_MAX_ATTRS 8

typedef struct ut_plan ut_plan;
typedef struct ut_op_def ut_op_def;

struct ut_tensor {
  int id; /* position in the graph: inputs always have smaller ids */
  ut_graph *g;
  const ut_op_def *op;
  ut_dtype dtype;
  ut_shape shape;
  int n_in;
  ut_tensor *in[UT_MAX_INPUTS];
  int64_t iattr[UT_MAX_ATTRS]; /* op-specific integer attributes */
  float fattr[UT_MAX_ATTRS];   /* op-specific float attributes */
  char name[96];
  ut_store_tensor *store;      /* param and state nodes: the persistent tensor */
  float *const_values;         /* constant nodes: host copy uploaded at compile time */
  int64_t *counter;            /* random and optimizer nodes: a store counter bumped per run */
  ut_hparam *hparam;           /* optimizer nodes: a changeable learning rate */
  ut_tensor *grad;             /* param nodes: gradient from the last ut_backward */
  size_t workspace;            /* floats of scratch the launches need while the node runs, set by
                                  the shape rule (it may depend on the device); the plan places it
                                  in the arena (ut_plan_workspace) */
  const void *op_data;         /* graph-owned data of ops whose inputs do not fit in[] (the
                                  gradient reduction: the list of gradients it packs) */
};

/* A node that writes store tensors in place has no output of its own (flag UT_OP_UPDATE);
 * a view shares its input's memory (UT_OP_VIEW); a source needs no launch (UT_OP_SOURCE).
 * UT_OP_INPLACE: each output element is computed from the inputs' elements at its own index
 * (and from broadcast operands), by the work-item that writes it, so the planner may give
 * the output the memory of an input with as many elements that dies at this node. */
enum { UT_OP_VIEW = 1, UT_OP_UPDATE = 2, UT_OP_SOURCE = 4, UT_OP_INPLACE = 8 };

struct ut_op_def {
  const char *name;
  unsigned flags;
  /* Sets n->shape (and n->dtype if not F32) from the inputs and attributes, or fails with a
   * message naming the op and the shapes. */
  ut_status (*shape)(ut_tensor *n);
  /* Appends the node's launches to the plan (plan_internal.h). NULL for sources and views. */
  ut_status (*forward)(ut_plan *p, ut_tensor *n);
  /* Given dL/dn, sets grad_in[i] = dL/d(input i) for each input (NULL where none), built out
   * of graph ops so gradients are themselves differentiable. NULL: not differentiable. */
  ut_status (*backward)(ut_graph *g, ut_tensor *n, ut_tensor *grad, ut_tensor **grad_in);
};

struct ut_hparam {
  char name[64];
  float value;
  ut_hparam *next;
};

/* One ut_adam / ut_sgd call on a graph: the parameters it lists (memory of the graph). */
typedef struct ut_graph_optimizer {
  const char *kind, *name;
  ut_tensor_list params;
  struct ut_graph_optimizer *next;
} ut_graph_optimizer;

struct ut_graph {
  ut_runtime *rt;
  ut_store *st;
  ut_tensor **nodes;
  int n_nodes, cap_nodes;
  ut_status status; /* first build error */
  char first_error[1024]; /* its message, kept because later calls overwrite ut_last_error() */
  ut_hparam *hparams;
  ut_graph_optimizer *optimizers; /* engine/optim.c: so one parameter gets one optimiser */
  void **owned; /* lists and buffers freed with the graph */
  int n_owned, cap_owned;
  /* Data-parallel training (engine/reduce.c): the share of the batch this graph computes
   * (random sources draw its rows of the whole batch's stream) and the callback every
   * optimiser added after ut_graph_set_reducer hands its gradients to. */
  int share_index, share_count, share_blocks;
  ut_gradient_reducer reducer;
  void *reducer_user;
};

/* engine/reduce.c: when the graph has a reducer, the node that hands the gradients of
 * `params` (those that have one) to it, packed, and writes the results back in place. It is
 * made before the optimiser's updates, so the schedule runs it after every gradient and before
 * any update. Without a reducer it makes nothing and returns UT_OK. */
ut_status ut_gradient_reduce_node(ut_graph *g, const char *optimizer, ut_tensor_list params);

/* Makes a node: checks inputs (a NULL input makes the result NULL without a new message),
 * copies attributes, runs the shape rule. On failure records the graph's first error. */
ut_tensor *ut_node_new(ut_graph *g, const ut_op_def *op, int n_in, ut_tensor *const *in,
                       const int64_t *iattr, int n_iattr, const float *fattr, int n_fattr);

/* Records a build failure in the graph (keeps the first) and returns NULL. */
ut_tensor *ut_graph_fail(ut_graph *g, ut_status s);

/* Memory the graph frees with itself. */
void *ut_graph_alloc(ut_graph *g, size_t bytes);

/* A source node over a store tensor that ut_params does not list (optimizer moments). */
ut_tensor *ut_state(ut_graph *g, ut_store_tensor *t);

/* NumPy-style broadcast of two shapes; UT_OK or UT_ERR_SHAPE (no message set). */
ut_status ut_broadcast_shape(ut_shape a, ut_shape b, ut_shape *out);

/* Op definitions shared across files. */
extern const ut_op_def ut_op_param, ut_op_state, ut_op_input, ut_op_constant;

/* Store internals used by the plan: the device buffer of a store tensor. */
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
cl_mem ut_store_tensor_buffer(const ut_store_tensor *t);
/* Store internals used by the optimisers: a slot that engine/optim.c fills with its registry of
 * optimiser names (kind and parameter set per name), kept for the store's life and released by
 * free_fn when the store is freed. Checkpoints do not carry it. */
void **ut_store_optimizer_slot(ut_store *st, void (*free_fn)(void *));

#endif
