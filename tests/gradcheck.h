/* Checks an op (or any small subgraph) two ways, for the Check suites:
 *
 *  - gc_gradcheck: analytical gradients from ut_backward against central finite differences.
 *    Each input becomes a parameter "gc<n>.x<i>" holding the given values; the checker builds
 *    out = build(g, inputs, ctx) and loss = sum(out * W) with a fixed random constant W (so
 *    every output element matters), runs ut_backward over the inputs (and, when asked, over
 *    the parameters the builder made itself), then perturbs input elements by +-h through
 *    ut_store_tensor_write and re-runs a forward-only plan. The loss of each perturbed run is
 *    the dot product of the read output with W, taken on the host in double, so the f32
 *    rounding of a device-side sum does not swamp the difference.
 *
 *  - gc_forward: runs build over ut_input tensors uploaded from the given values and compares
 *    the output (and its shape) with a host reference.
 *
 * Both return a result instead of asserting, so a test can also check that a wrong gradient is
 * caught; gc_assert_* wrap them for the usual case. A failure message names the check, the
 * tensor, the worst element's index and both values.
 *
 *   static ut_tensor *build_tanh(ut_graph *g, ut_tensor **in, void *ctx) { return ut_tanh(g, in[0]); }
 *   float x[7]; ...
 *   gc_assert_gradcheck(&(gc_case){ .label = "tanh", .n_inputs = 1, .shapes = (ut_shape[]){ UT_SHAPE(7) },
 *                                  .values = (const float *[]){ x }, .build = build_tanh });
 */
#ifndef UT_GRADCHECK_H
#define UT_GRADCHECK_H

#include "test_support.h"

#define GC_MAX_INPUTS 8

typedef ut_tensor *(*gc_build_fn)(ut_graph *g, ut_tensor **inputs, void *ctx);

typedef struct {
  const char *label;          /* names the check in messages */
  int n_inputs;               /* 1 .. GC_MAX_INPUTS */
  const ut_shape *shapes;     /* per input */
  const float *const *values; /* per input: ut_shape_numel(shape) host values */
  gc_build_fn build;
  void *ctx;
  /* Optional: a store to work in (parameters the builder finds there keep their values).
   * NULL: a fresh store for this check, freed after it. */
  ut_store *store;

  /* Gradient check (gc_gradcheck). Zero means the default in brackets. */
  double h;          /* perturbation [1e-2] */
  double rel_tol;    /* [2e-2] */
  double abs_tol;    /* [1e-3] */
  int max_samples;   /* elements perturbed per tensor; smaller tensors are checked whole [64] */
  int check_params;  /* also differentiate the parameters the builder creates (ut_linear) */
  uint64_t seed;     /* for W and the sampled elements [1] */
  const float *weights; /* W (one per output element); NULL: random in +-[0.1, 1) from seed */
  /* Optional host references of the analytical gradients of the inputs (entries may be NULL),
   * compared over every element: for loss = sum(out * W) they are W times the derivative. */
  const float *const *expect_grad;
  double grad_rel_tol; /* [1e-5] */
  double grad_abs_tol; /* [1e-6] */

  /* Forward reference: gc_forward always needs it; gc_gradcheck also compares the output of
   * its backward plan with it when given. */
  const float *expect;
  double fwd_rel_tol; /* [1e-5] */
  double fwd_abs_tol; /* [1e-6] */
  ut_shape expect_shape; /* rank 0: not checked */
} gc_case;

typedef struct {
  int ok;
  double worst_ratio; /* largest |a - n| / (abs_tol + rel_tol |n|); <= 1 passes */
  int checked;        /* elements compared */
  char msg[1024];     /* the reason when !ok, else a summary */
} gc_result;

gc_result gc_gradcheck(const gc_case *c);
gc_result gc_forward(const gc_case *c);

/* Variadic so that a compound literal with commas can be passed directly. */
#define gc_assert_gradcheck(...)               \
  do {                                         \
    gc_result gc_r_ = gc_gradcheck(__VA_ARGS__); \
    ck_assert_msg(gc_r_.ok, "%s", gc_r_.msg);  \
  } while (0)

#define gc_assert_forward(...)                 \
  do {                                         \
    gc_result gc_r_ = gc_forward(__VA_ARGS__); \
    ck_assert_msg(gc_r_.ok, "%s", gc_r_.msg);  \
  } while (0)

/* A product of the first `rank` dimensions (ut_shape_numel without the engine, for hosts). */
int64_t gc_numel(ut_shape s);

/* n uniform values in [lo, hi) from a fixed seed, malloc'd (the caller frees them). */
float *gc_random_values(uint64_t seed, int64_t n, float lo, float hi);

/* Gradient of a gradient. With a gc_second_order as ctx, gc_build_grad_of builds
 * d/d(in[0]) of sum(inner(in)^2 * V) for a fixed V, so that a checker run on it exercises the
 * backward ops' own backward. */
typedef struct {
  gc_build_fn inner;
  void *ctx;
  int n_inputs;
} gc_second_order;
ut_tensor *gc_build_grad_of(ut_graph *g, ut_tensor **in, void *ctx);

#endif
