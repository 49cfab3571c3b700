/* untangle: a graph engine for training image-translation models on any OpenCL device.
 *
 * Define once, run many times:
 *
 *   ut_runtime *rt = ut_runtime_open(&(ut_device_query){ .select = "best" });
 *   ut_store   *st = ut_store_new(rt, 1234);
 *   ut_graph   *g  = ut_graph_new(rt, st);
 *   ut_tensor  *x  = ut_input(g, "x", UT_F32, UT_SHAPE(B, 2));
 *   ut_tensor  *h  = ut_linear(g, x, "mlp.fc1", 32);
 *   ut_tensor  *l  = ut_mse(g, h, ut_input(g, "y", UT_F32, UT_SHAPE(B, 32)));
 *   ut_backward(g, l, ut_params(g, "mlp."));
 *   ut_adam(g, ut_params(g, "mlp."), &(ut_adam_cfg){ .lr = 1e-3f });
 *   ut_plan    *p  = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = (ut_tensor *[]){ l }, .n_outputs = 1 });
 *   for (...) { ut_upload(p, x, batch); ut_plan_run(p); ut_read(p, l, &loss); }
 *
 * Every call that can fail returns a status (UT_OK is 0) or NULL, and ut_last_error() then
 * describes the failure in words: the OpenCL error's name, the call, and the node or kernel.
 * Graph-building calls accept NULL inputs and return NULL, so a model can be built in one go
 * and checked once; the graph remembers its first error and ut_plan_compile reports it.
 *
 * This header holds the core (errors, devices, runtime, shapes, store, graphs and sources,
 * autograd, optimisers, plans); the ops are declared in untangle_ops.h, included at its end.
 * Layers that own parameters of one paper's design (equalized learning rate, modulated
 * convolution, batch normalization, CBIN) and the GAN and KL losses live in the model kit
 * (models/kit_layers.h, models/kit_losses.h), written with this API alone.
 */
#ifndef UNTANGLE_H
#define UNTANGLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Status codes. OpenCL's own codes (0 and negative, down to about -72) pass through unchanged;
 * untangle's own codes sit in a separate range from -3001 down, clear of CLBlast's (-1004..-2050), so a raw cl_int is also a status.
 */
typedef int ut_status;
enum {
  UT_OK = 0,
  UT_ERR_INVALID_ARGUMENT = -3001, /* a caller passed something the call cannot use */
  UT_ERR_SHAPE = -3002,            /* tensor shapes do not fit the op */
  UT_ERR_NO_DEVICE = -3003,        /* no OpenCL device matches the selection */
  UT_ERR_BUILD = -3004,            /* an OpenCL program failed to build (log in the message) */
  UT_ERR_IO = -3005,               /* a file could not be read or written */
  UT_ERR_FORMAT = -3006,           /* a file is corrupt, truncated or not what it should be */
  UT_ERR_MISMATCH = -3007,         /* a file is valid but does not match what is loaded */
  UT_ERR_HOST_MEMORY = -3008,      /* malloc failed */
  UT_ERR_NOT_FOUND = -3009,        /* a named thing does not exist */
  UT_ERR_BLAS = -3010,             /* CLBlast reported an error of its own */
  UT_ERR_STATE = -3011,            /* the call does not fit the object's state */
};

/* The description of the last failure on this thread (never NULL; "" when there was none).
 * Thread-local like errno, so that a failed ut_runtime_open can still explain itself. */
const char *ut_last_error(void);

/* The symbolic name of a status: "CL_OUT_OF_RESOURCES", "UT_ERR_SHAPE", ... */
const char *ut_status_name(ut_status s);

/* Sets this thread's last-error message (printf-style) and returns `status`, so code built on
 * the engine (models, apps) reports failures the same way: `return ut_fail(UT_ERR_IO, ...)`. */
ut_status ut_fail(ut_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "prefix: " to the last-error message, to add the file or step to a lower error. */
void ut_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Seconds on a monotonic clock from an arbitrary origin: for timing work, not for dates. */
double ut_seconds(void);

/* ---------------------------------------------------------------------------------------------
 * Devices and the runtime.
 */
typedef enum { UT_DEVICE_CPU = 1, UT_DEVICE_GPU = 2, UT_DEVICE_ACCELERATOR = 4, UT_DEVICE_OTHER = 8 } ut_device_type;

typedef struct {
  int index;                 /* position in the flat list over all platforms */
  char platform[128];
  char platform_version[128];
  char name[128];
  char vendor[128];
  char driver_version[64];
  char device_version[64];   /* "OpenCL 3.0 ..." */
  char opencl_c_version[64]; /* "OpenCL C 1.2 ..." */
  ut_device_type type;
  unsigned compute_units;
  unsigned clock_mhz;
  uint64_t global_mem_bytes;
  uint64_t local_mem_bytes;
  uint64_t max_alloc_bytes;
  unsigned base_align_bytes; /* CL_DEVICE_MEM_BASE_ADDR_ALIGN in bytes: sub-buffers start at multiples */
  size_t max_work_group_size;
  int fp16;
  int fp64;
} ut_device_info;

/* Lists every device of every OpenCL platform into a malloc'd array (*out, free with free()).
 * A machine with no OpenCL platform yields 0 devices and UT_OK. */
ut_status ut_devices_list(ut_device_info **out, int *count);

const char *ut_device_type_name(ut_device_type t);

/* The host BLAS that CPU devices' GEMMs and convolutions run on (OpenBLAS): the name of the
 * kernels it chose for this processor ("SkylakeX", "Haswell", "Prescott", ...); and where it
 * did not know the processor and fell back to kernels that use neither AVX2 nor AVX-512 on one
 * that has them, the OPENBLAS_CORETYPE that would use them (NULL otherwise). OpenBLAS reads
 * OPENBLAS_CORETYPE once, when it is loaded: only a new process takes it (the program starts
 * itself again with it, apps/main.c). */
const char *ut_blas_kernels(void);
const char *ut_blas_better_kernels(void);

/* The vector width, in floats, of the direct convolution loops that CPU devices run on the host
 * for layers of few channels: 16 (AVX-512) on an x86-64-v4 processor in a GCC x86-64 build, 8
 * otherwise or where $UNTANGLE_CONV_LANES is 8. 0, with the last error set, when that variable
 * holds anything else (a runtime then fails to open). */
int ut_host_conv_lanes(void);

typedef struct {
  /* NULL or "best": the GPU with most compute units, else the first CPU, else device 0.
   * "gpu" / "cpu": the device of that kind with most compute units. A decimal number: that index of the flat
   * list. Anything else: the first device whose name or platform contains it (any case). */
  const char *select;
  /* Where compiled programs are cached; NULL means $XDG_CACHE_HOME/untangle or
   * ~/.cache/untangle. The empty string disables the cache. */
  const char *cache_dir;
  int profiling; /* create the queue with profiling so plans can time every launch */
} ut_device_query;

typedef struct ut_runtime ut_runtime;

/* Opens the selected device: context, in-order queue, CLBlast. NULL on failure. */
ut_runtime *ut_runtime_open(const ut_device_query *query);
void ut_runtime_close(ut_runtime *rt);
const ut_device_info *ut_runtime_device(const ut_runtime *rt);

typedef struct {
  unsigned programs_built;     /* compiled from source in this runtime */
  unsigned programs_cached;    /* loaded from the on-disk cache */
  unsigned cache_rejected;     /* cache entries found corrupt and rebuilt */
} ut_runtime_stats;
ut_runtime_stats ut_runtime_get_stats(const ut_runtime *rt);

/* Waits until the device has finished all queued work. */
ut_status ut_runtime_finish(ut_runtime *rt);

/* ---------------------------------------------------------------------------------------------
 * Shapes and tensors.
 */
#define UT_MAX_RANK 4
typedef enum { UT_F32 = 0, UT_I32 = 1 } ut_dtype;
typedef struct {
  int rank;
  int64_t d[UT_MAX_RANK];
} ut_shape;
#define UT_SHAPE_N_(...) (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define UT_SHAPE(...) ((ut_shape){ .rank = (int)UT_SHAPE_N_(__VA_ARGS__), .d = { __VA_ARGS__ } })

int64_t ut_shape_numel(ut_shape s);
/* Writes "[2, 3, 4]" into buf (always terminated) and returns buf. */
char *ut_shape_str(ut_shape s, char *buf, size_t size);
int ut_shape_equal(ut_shape a, ut_shape b);

/* ---------------------------------------------------------------------------------------------
 * The store: named persistent tensors (parameters, embeddings, optimizer moments) and named
 * 64-bit counters (optimizer steps, random streams), shared by every graph and plan of one
 * runtime. Checkpoints are safetensors files.
 */
typedef struct ut_store ut_store;
typedef struct ut_store_tensor ut_store_tensor;

/* `seed` drives every parameter initialisation, so a seed gives the same model on any device. */
ut_store *ut_store_new(ut_runtime *rt, uint64_t seed);
void ut_store_free(ut_store *st);
uint64_t ut_store_seed(const ut_store *st);

typedef enum {
  UT_INIT_ZERO = 0,
  UT_INIT_CONST,          /* every element = a */
  UT_INIT_UNIFORM,        /* U(a, b) */
  UT_INIT_NORMAL,         /* N(a, b^2) */
  UT_INIT_FAN_IN_UNIFORM, /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = numel / d[0]
                             (PyTorch's default for Linear and Conv weights); a = fan_in
                             when non-zero (biases take the fan-in of their weight) */
} ut_init_kind;
typedef struct {
  ut_init_kind kind;
  float a, b;
} ut_init;

/* Finds the named tensor, or creates and initialises it. Creating it again with another
 * shape fails. Initial values come from Philox keyed by (store seed, name). */
ut_store_tensor *ut_store_tensor_get(ut_store *st, const char *name, ut_shape shape, ut_init init);
ut_store_tensor *ut_store_find(ut_store *st, const char *name);
int ut_store_count(const ut_store *st);
ut_store_tensor *ut_store_at(ut_store *st, int i);
const char *ut_store_tensor_name(const ut_store_tensor *t);
ut_shape ut_store_tensor_shape(const ut_store_tensor *t);
ut_status ut_store_tensor_read(ut_store *st, const ut_store_tensor *t, float *dst);
ut_status ut_store_tensor_write(ut_store *st, ut_store_tensor *t, const float *src);

/* Named counters, created at 0 on first use. The pointer stays valid for the store's life. */
int64_t *ut_store_counter(ut_store *st, const char *name);

/* Free-form string metadata saved into and loaded from a checkpoint's __metadata__ (model
 * config, epoch). Setting NULL removes a key. */
ut_status ut_store_set_meta(ut_store *st, const char *key, const char *value);
const char *ut_store_get_meta(const ut_store *st, const char *key);

/* Writes every tensor, counter and metadata entry to `path` atomically: a temporary file in
 * the same folder is written, flushed, synced and renamed over `path`. */
ut_status ut_store_save(ut_store *st, const char *path);

/* Loads a checkpoint. Every tensor already in the store must be in the file with the same
 * shape; tensors only in the file are added. On any failure (truncated, corrupt, mismatched)
 * the error names the file, the tensor and what was expected, and the store is unchanged. */
ut_status ut_store_load(ut_store *st, const char *path);

/* Metadata entry `key` of the checkpoint at `path`, read on the host without a store or a
 * device (which model wrote a run). *value gets a malloc'd copy, or NULL when the file has no
 * such key; a file that is not a valid checkpoint fails as ut_store_load would. */
ut_status ut_checkpoint_meta(const char *path, const char *key, char **value);

/* Marks every tensor whose name starts with `prefix` as external: data the store uses but does
 * not own, such as pretrained VGG weights. Checkpoints leave external tensors out, and loading
 * one does not require them. */
ut_status ut_store_set_external(ut_store *st, const char *prefix);

/* Reads every tensor of a safetensors file (f32) into the store under "<prefix><name>",
 * creating tensors the store lacks; a tensor it has must have the file's shape. Counters and
 * metadata of the file are ignored. On failure the error names the file and the tensor, and
 * no tensor has been created or changed unless the device failed while values were written. */
ut_status ut_store_import(ut_store *st, const char *path, const char *prefix);

/* ---------------------------------------------------------------------------------------------
 * Graphs. A tensor is a node of a DAG; node order is a topological order.
 */
typedef struct ut_graph ut_graph;
typedef struct ut_tensor ut_tensor;
typedef struct {
  int n;
  ut_tensor **t;
} ut_tensor_list; /* owned by the graph */

ut_graph *ut_graph_new(ut_runtime *rt, ut_store *st);
void ut_graph_free(ut_graph *g);
ut_runtime *ut_graph_runtime(const ut_graph *g);
ut_store *ut_graph_store(const ut_graph *g);
/* The first error met while building, or UT_OK. */
ut_status ut_graph_status(const ut_graph *g);
/* Records a build failure in the graph (the first one is kept, with the message ut_last_error()
 * holds at that moment) and returns NULL, so code that composes ops (the model kit) refuses its
 * arguments the way the ops do: `ut_fail(UT_ERR_SHAPE, "..."); return ut_graph_fail(g,
 * UT_ERR_SHAPE);`. With UT_OK it stands for "an input was NULL": the graph's earlier error is
 * kept, or, when there was none, an invalid-argument error saying so is recorded. */
ut_tensor *ut_graph_fail(ut_graph *g, ut_status s);

ut_shape ut_tensor_shape(const ut_tensor *t);
/* The element type of a node: UT_F32, or UT_I32 for indices and labels. */
ut_dtype ut_tensor_dtype(const ut_tensor *t);
const char *ut_tensor_name(const ut_tensor *t);
const char *ut_tensor_op(const ut_tensor *t);
/* Names a node for error messages and profiles; returns t. */
ut_tensor *ut_name(ut_tensor *t, const char *name);

/* Sources. An input is uploaded before each run; a constant is uploaded once at compile time;
 * a parameter is a store tensor (created with `init` if the store lacks it). */
ut_tensor *ut_input(ut_graph *g, const char *name, ut_dtype dtype, ut_shape shape);
ut_tensor *ut_constant(ut_graph *g, ut_shape shape, const float *values);
ut_tensor *ut_scalar(ut_graph *g, float value); /* a [1] constant */
ut_tensor *ut_param(ut_graph *g, const char *name, ut_shape shape, ut_init init);
/* Every parameter of this graph whose name starts with prefix, in creation order. */
ut_tensor_list ut_params(ut_graph *g, const char *prefix);
/* Concatenation of two lists (a new graph-owned list). */
ut_tensor_list ut_params_join(ut_graph *g, ut_tensor_list a, ut_tensor_list b);
/* An int32 constant (fixed indices or labels known when the graph is built), uploaded once at
 * compile time like ut_constant. Useful wherever ut_embedding, ut_one_hot or ut_cross_entropy
 * take indices that do not change between runs. */
ut_tensor *ut_constant_i32(ut_graph *g, ut_shape shape, const int32_t *values);
/* A source over a store tensor that is not a parameter (running statistics, optimizer moments):
 * ut_params does not list it, so it gets no gradient and no optimiser, and only update nodes
 * (such as ut_running_average) write it; checkpoints keep it. A NULL `t` (a failed
 * ut_store_tensor_get, whose message is set) gives NULL without failing the graph. */
ut_tensor *ut_state(ut_graph *g, ut_store_tensor *t);

/* ---------------------------------------------------------------------------------------------
 * Autograd and optimizers.
 */
/* Appends nodes computing d(loss)/d(p) for every p in params; loss must have one element.
 * Parameters outside `params` get no gradient. Backward nodes are ordinary differentiable
 * nodes, so ut_backward can run again over a graph that already holds gradients. */
ut_status ut_backward(ut_graph *g, ut_tensor *loss, ut_tensor_list params);
/* The gradient of p from the last ut_backward that covered it, or NULL. */
ut_tensor *ut_grad(ut_graph *g, ut_tensor *p);

/* A learning rate the host may change between runs (schedules). */
typedef struct ut_hparam ut_hparam;
ut_hparam *ut_hparam_new(ut_graph *g, const char *name, float value);
void ut_hparam_set(ut_hparam *h, float value);
float ut_hparam_get(const ut_hparam *h);

typedef struct {
  float lr;            /* used when lr_param is NULL */
  ut_hparam *lr_param; /* a changeable learning rate */
  float beta1, beta2;  /* 0 means the defaults 0.9 and 0.999 */
  float eps;           /* 0 means 1e-8 */
  float weight_decay;  /* L2 added to the gradient, as torch.optim.Adam */
  const char *name;    /* names the step counter and moments; default "adam" */
} ut_adam_cfg;
/* Adds one Adam update per parameter (moments in the store as "<param>.<name>.m" / ".v",
 * the step count in counter "<name>.step"). Needs ut_backward over these params first.
 * One name is one optimiser per store: the store remembers the kind and the parameter set of
 * the first call with a name, and a later call with that name, in any graph over the store,
 * must list the same set (rebuilding a plan, or after a checkpoint load, keeps working and
 * continues the step count); otherwise it is refused (UT_ERR_INVALID_ARGUMENT naming the
 * optimiser and the first parameter that differs: give each optimiser a distinct name). Also
 * refused: a parameter listed twice, and a parameter already listed by another optimiser of
 * this graph. A refusal also fails the graph. */
ut_status ut_adam(ut_graph *g, ut_tensor_list params, const ut_adam_cfg *cfg);

typedef struct {
  float lr;
  ut_hparam *lr_param;
  float momentum;     /* 0: plain SGD */
  float weight_decay;
  const char *name;   /* names the momentum buffers; default "sgd" */
} ut_sgd_cfg;
/* Adds one SGD update per parameter (momentum in the store as "<param>.<name>.momentum"), under
 * the same rules as ut_adam: one kind and one parameter set per name and store, each parameter
 * listed once and by one optimiser per graph. */
ut_status ut_sgd(ut_graph *g, ut_tensor_list params, const ut_sgd_cfg *cfg);

/* ---------------------------------------------------------------------------------------------
 * The seam for data-parallel training. Several processes each compute the gradients of their
 * share of one batch; between the backward pass and the optimiser updates the gradients must
 * be combined (summed across processes, say) so that every process applies the same update.
 * The engine knows nothing of how: a graph may carry a reducer, a callback that receives the
 * gradients of one optimiser at once, packed into one host buffer, and replaces them in place.
 * A graph without a reducer compiles exactly as before (no extra node, identical results).
 */
typedef struct {
  const char *optimizer;       /* the ut_adam / ut_sgd name */
  int n;                       /* gradients packed, in the order the optimiser lists them */
  const char *const *params;   /* each one's parameter (store name) */
  const ut_shape *shapes;      /* each one's shape */
  const size_t *offsets;       /* where each starts in the buffer, in floats */
  size_t total;                /* floats in the buffer */
} ut_gradient_pack;

/* Called once per optimiser per run with the packed gradients in `values`, which it
 * overwrites with the values the updates must use. A status other than UT_OK fails the run
 * (set the message with ut_fail). */
typedef ut_status (*ut_gradient_reducer)(void *user, const ut_gradient_pack *pack, float *values);

/* Registers the reducer that optimisers added to g from now on route their gradients through
 * (one reduction node per ut_adam / ut_sgd call, run after every gradient and before any
 * update). Call it before ut_adam / ut_sgd; `user` must outlive every plan of g. */
ut_status ut_graph_set_reducer(ut_graph *g, ut_gradient_reducer fn, void *user);

/* Declares that g computes share `index` of `count` equal shares of a batch (the first
 * dimension of its batch inputs): random sources then draw the elements of that share of the
 * stream a graph over the whole batch would draw (elements [index * numel, (index + 1) *
 * numel)), so noise stays a function of the sample's row in the whole batch. Every random
 * source of g must therefore have the batch as its first dimension. Default: 0 of 1. Call it
 * before ut_plan_compile. */
ut_status ut_graph_set_share(ut_graph *g, int index, int count);

/* As ut_graph_set_share, for a batch made of `blocks` equal blocks one after another (DMIT's
 * domains, each a batch of its own) whose share is the index-th of `count` windows of every
 * block, laid out block after block: random sources draw, block by block, the elements of
 * that window of the whole batch's stream. Their first dimension must divide by `blocks`.
 * ut_graph_set_share(g, index, count) is blocks 1. */
ut_status ut_graph_set_share_blocks(ut_graph *g, int index, int count, int blocks);

/* Sums n floats in place over the processes that compute the shares of one batch, every
 * process getting the sums; a status other than UT_OK fails the run (with ut_fail's message). */
typedef ut_status (*ut_value_summer)(void *user, float *values, int n);

/* x summed over the processes of a data-parallel team, for a quantity of the whole batch inside
 * the forward pass (a ratio of two batch means, say): each process's x goes to `fn` (user:
 * `user`, which must outlive every plan of g) and every process gets the sum. The gradient
 * is the same sum of the processes' incoming gradients, the sum over processes being its own
 * transpose; with the reducer's mean over processes (every process computing one loss value
 * from the sum), the parameters' gradient is then the whole batch's. fn NULL: x itself (one
 * process, no node). f32 only; every process must build the same graph, so that the sums
 * of all meet in the same order. */
ut_tensor *ut_team_sum(ut_graph *g, ut_tensor *x, ut_value_summer fn, void *user);

/* ---------------------------------------------------------------------------------------------
 * Plans: a compiled, flat schedule of launches over one memory arena.
 */
typedef struct ut_plan ut_plan;
typedef struct {
  ut_tensor **outputs; /* tensors the host will read after a run; kept alive to the end */
  int n_outputs;
  int no_memory_reuse; /* give every intermediate its own memory (for tests and debugging) */
} ut_plan_cfg;

ut_plan *ut_plan_compile(ut_graph *g, const ut_plan_cfg *cfg);
void ut_plan_free(ut_plan *p);

typedef struct {
  size_t arena_peak_bytes;      /* the arena's size */
  size_t intermediate_bytes;    /* what the intermediates would take without reuse */
  int launches;                 /* kernel and GEMM launches per run */
  int nodes;                    /* graph nodes in the schedule */
  size_t gemm_copy_bytes;       /* per run, the scratch CLBlast fills with padded or transposed copies
                                   of GEMM operands (single products; 0 where GEMMs run on the host) */
  size_t gemm_copy_bytes_as_given; /* the same had every GEMM been called row-major at its buffer
                                      offsets, as the engine did before (a benchmark's comparison) */
} ut_plan_stats;
ut_plan_stats ut_plan_get_stats(const ut_plan *p);

/* Copies host data into an input (count = the input's element count). */
ut_status ut_upload(ut_plan *p, ut_tensor *input, const void *src);
/* Runs the schedule once and waits for it. */
ut_status ut_plan_run(ut_plan *p);
/* Reads a plan output, an input or a parameter into host memory. */
ut_status ut_read(ut_plan *p, ut_tensor *t, float *dst);

/* With profiling on (the runtime opened with .profiling = 1), the next runs record per-launch
 * device times; the table lists node, op, shape, ms and share of the step. */
ut_status ut_plan_profile_table(ut_plan *p, char **table_out /* malloc'd */);

/* The same per-launch record as data, for benchmarks: one entry per launch in schedule order.
 * The strings belong to the plan. `node_index` is the node's position in its graph (creation
 * order), so nodes made by ut_backward can be told from the forward ones. */
typedef struct {
  /* kernel: the OpenCL kernel's name, "clblast_sgemm", or "openblas_sgemm" (a CPU device's
   * GEMMs on the host) */
  const char *node, *op, *kernel;
  ut_shape shape;
  int node_index;
  double ms; /* device time per run, averaged over the timed runs */
} ut_profile_entry;
/* *entries is malloc'd (free with free()); fails when profiling is off or nothing was timed. */
ut_status ut_plan_profile(ut_plan *p, ut_profile_entry **entries, int *count);
/* Forgets the times recorded so far (to leave warm-up runs out). */
void ut_plan_profile_reset(ut_plan *p);
/* The number of nodes in the graph so far; the next node made gets this index. */
int ut_graph_node_count(const ut_graph *g);

#ifdef __cplusplus
}
#endif

/* The ops, grouped by family. */
#include "untangle_ops.h"

#endif
