/* The compiled form of a plan, shared by plan.c (which builds it) and exec.c (which runs it). */
#ifndef UT_SCHEDULE_H
#define UT_SCHEDULE_H

#include "clblast_gemm.h"
#include "plan_internal.h"

#define UT_MAX_KERNEL_ARGS 32

typedef enum { UT_LAUNCH_KERNEL, UT_LAUNCH_GEMM, UT_LAUNCH_HOST } ut_launch_kind;

struct ut_launch {
  ut_launch_kind kind;
  ut_plan *plan;
  ut_tensor *node;
  char kernel_name[64];
  cl_kernel kernel;
  int n_args;
  cl_uint dims;
  size_t global[2], local[2];
  int local_set;
  ut_launch_prepare_fn prepare;
  ut_gemm_args gemm;
  ut_clblast_gemm clblast; /* the call made of `gemm` on devices that run GEMMs through CLBlast */
  ut_host_fn host_fn; /* host launches: the function, its own copy of its arguments, operands */
  void *host_args;
  ut_host_operand host_ops[UT_HOST_MAP_MAX];
  int n_host_ops;
  ut_status status; /* first failure while setting it up */
  cl_event event;   /* profiling: this run's event */
  /* profiling, GEMMs only: a marker enqueued just before. CLBlast may run several kernels for
   * one GEMM (padding, transposes, then the GEMM) and its event covers only the last, so a
   * GEMM's time runs from the end of this marker to the end of `event`. */
  cl_event start_event;
  double total_ms;  /* profiling: device time summed over runs */
  int timed_runs;
};

struct ut_plan {
  ut_graph *g;
  ut_runtime *rt;
  int n_nodes;       /* graph nodes covered (those that existed at compile time) */
  ut_loc *loc;       /* per node id; buf NULL for nodes outside the schedule */
  unsigned char *in_plan, *readable;
  ut_launch *launches;
  int n_launches, cap_launches;
  cl_mem arena;
  size_t *workspace_off; /* per node id: its workspace's offset in the arena */
  cl_mem gemm_temp;
  size_t gemm_temp_bytes;
  int64_t **counters; /* distinct counters bumped once per run */
  int n_counters;
  ut_plan_stats stats;
  ut_status status; /* first launch set-up failure */
  ut_launch spare;  /* handed out when the schedule cannot grow; never run */
};

/* Bumps the counters, refreshes per-run arguments, enqueues every launch and waits. */
ut_status ut_schedule_run(ut_plan *p);

/* Runs every CLBlast GEMM launch once, so CLBlast builds its kernels while the plan compiles
 * rather than inside the first step, and checks the arguments of host GEMMs (host_gemm.h). Their results land in the arena, which holds nothing yet that
 * a GEMM's output could overlap (constants are never shared), so this changes no result. */
ut_status ut_schedule_warm_gemms(ut_plan *p);

#endif
