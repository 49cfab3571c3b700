/* Running a plan: uploads, the schedule itself, reads, and the per-launch profile. A run
 * enqueues every launch back to back and waits once at the end, and before each GEMM that
 * runs on the host (host_gemm.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "host_gemm.h"
#include "host_map.h"
#include "schedule.h"

static ut_status check_member(ut_plan *p, const ut_tensor *t, const char *what) {
  if (!t || t->g != p->g || t->id >= p->n_nodes || !p->in_plan[t->id])
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: tensor '%s' is not part of this plan", what, t ? t->name : "(null)");
  return UT_OK;
}

ut_status ut_upload(ut_plan *p, ut_tensor *input, const void *src) {
  ut_status st = check_member(p, input, "ut_upload");
  if (st != UT_OK) return st;
  if (input->op != &ut_op_input) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_upload: '%s' is not an input", input->name);
  ut_loc l = p->loc[input->id];
  st = ut_runtime_write(p->rt, l.buf, l.off * sizeof(float), (size_t)ut_shape_numel(input->shape) * 4, src);
  if (st != UT_OK) ut_error_prefix("uploading input '%s'", input->name);
  return st;
}

ut_status ut_read(ut_plan *p, ut_tensor *t, float *dst) {
  ut_status st = check_member(p, t, "ut_read");
  if (st != UT_OK) return st;
  if (!p->readable[t->id])
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_read: '%s' is an intermediate whose memory is reused; list it in ut_plan_cfg.outputs",
                   t->name);
  ut_loc l = p->loc[t->id];
  st = ut_runtime_read(p->rt, l.buf, l.off * sizeof(float), (size_t)ut_shape_numel(t->shape) * sizeof(float), dst);
  if (st != UT_OK) ut_error_prefix("reading '%s'", t->name);
  return st;
}

/* A host launch's failure (its message already set), named by its node. */
static ut_status host_failure(const ut_launch *l, ut_status st) {
  if (st != UT_OK) ut_error_prefix("node '%s'", l->node->name);
  return st;
}

static ut_status enqueue_gemm(ut_plan *p, ut_launch *l, cl_event *ev) {
  ut_status st = ut_clblast_gemm_enqueue(&l->clblast, &p->rt->queue, ev, p->gemm_temp);
  if (st != UT_OK) ut_error_prefix("node '%s'", l->node->name);
  return st;
}

/* A host launch (ut_plan_host): maps its operands, runs it, unmaps; *ms gets the host time of
 * the function alone, without the wait for earlier launches. */
static ut_status run_host(ut_plan *p, ut_launch *l, double *ms) {
  ut_host_map m;
  char what[96];
  snprintf(what, sizeof what, "host launch '%s'", l->kernel_name);
  ut_status st = ut_host_map_begin(p->rt, &m, l->host_ops, l->n_host_ops, what);
  if (st == UT_OK) {
    double t0 = (1e3 * ut_seconds());
    st = l->host_fn(l->host_args, m.ptr);
    *ms = (1e3 * ut_seconds()) - t0;
    st = ut_host_map_end(p->rt, &m, st);
  }
  return st;
}

ut_status ut_schedule_run(ut_plan *p) {
  for (int i = 0; i < p->n_counters; i++) (*p->counters[i])++;
  int timing = p->rt->profiling;
  for (int i = 0; i < p->n_launches; i++) {
    ut_launch *l = &p->launches[i];
    if (l->prepare) l->prepare(l, l->node);
    cl_event *ev = timing ? &l->event : NULL;
    if (l->kind == UT_LAUNCH_HOST || (l->kind == UT_LAUNCH_GEMM && p->rt->host_gemm)) {
      double ms;
      ut_status st = l->kind == UT_LAUNCH_HOST ? run_host(p, l, &ms) : ut_host_gemm_run(p->rt, &l->gemm, &ms);
      if (st != UT_OK) return host_failure(l, st);
      /* Profiling: host work has no OpenCL event, so its host time (the work alone, not the
       * wait for earlier launches) goes straight into the sums the profile reads; its
       * `event` stays NULL, so the loop over events after the run passes it by. */
      if (timing) {
        l->total_ms += ms;
        l->timed_runs++;
      }
      continue;
    }
    if (l->kind == UT_LAUNCH_GEMM) {
      if (timing && clEnqueueMarkerWithWaitList(p->rt->queue, 0, NULL, &l->start_event) != CL_SUCCESS)
        l->start_event = NULL;
      ut_status st = enqueue_gemm(p, l, ev);
      if (st != UT_OK) return st;
      continue;
    }
    cl_int err = clEnqueueNDRangeKernel(p->rt->queue, l->kernel, l->dims, NULL, l->global, l->local_set ? l->local : NULL,
                                        0, NULL, ev);
    if (err != CL_SUCCESS)
      return ut_fail_cl(err, "clEnqueueNDRangeKernel", "kernel '%s' of node '%s' (%s)", l->kernel_name, l->node->name,
                        l->node->op->name);
  }
  cl_int err = clFinish(p->rt->queue);
  if (err != CL_SUCCESS) return ut_fail_cl(err, "clFinish", "after a run of %d launches on %s", p->n_launches, p->rt->info.name);
  if (timing)
    for (int i = 0; i < p->n_launches; i++) {
      ut_launch *l = &p->launches[i];
      cl_ulong t0 = 0, t1 = 0;
      if (!l->event) continue;
      cl_ulong marker_end = 0;
      if (l->start_event &&
          clGetEventProfilingInfo(l->start_event, CL_PROFILING_COMMAND_END, sizeof marker_end, &marker_end, NULL) !=
              CL_SUCCESS)
        marker_end = 0;
      if (l->start_event) clReleaseEvent(l->start_event);
      l->start_event = NULL;
      if (clGetEventProfilingInfo(l->event, CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) == CL_SUCCESS &&
          clGetEventProfilingInfo(l->event, CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) == CL_SUCCESS) {
        if (marker_end && marker_end < t0) t0 = marker_end;
        l->total_ms += (double)(t1 - t0) * 1e-6;
        l->timed_runs++;
      }
      clReleaseEvent(l->event);
      l->event = NULL;
    }
  return UT_OK;
}

ut_status ut_schedule_warm_gemms(ut_plan *p) {
  for (int i = 0; i < p->n_launches; i++)
    if (p->launches[i].kind == UT_LAUNCH_GEMM) {
      /* A host GEMM has no kernels to build; checking its arguments is all there is to do. */
      ut_status st = p->rt->host_gemm ? host_failure(&p->launches[i], ut_host_gemm_check(&p->launches[i].gemm))
                                       : enqueue_gemm(p, &p->launches[i], NULL);
      if (st != UT_OK) return st;
    }
  cl_int err = clFinish(p->rt->queue);
  return err == CL_SUCCESS ? UT_OK : ut_fail_cl(err, "clFinish", "after warming the plan's GEMMs");
}

ut_status ut_plan_run(ut_plan *p) {
  if (!p) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_plan_run: no plan");
  return ut_schedule_run(p);
}

/* ---- profile table ---------------------------------------------------------------------------- */

typedef struct {
  char *s;
  size_t len, cap;
} text;

static void append(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(text *t, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (t->s && t->len + (size_t)n < t->cap) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = (t->cap + (size_t)n + 1) * 2;
    char *grown = realloc(t->s, cap);
    if (!grown) return;
    t->s = grown;
    t->cap = cap;
  }
}

/* Checks that there are times to report; *runs gets the number of timed runs. */
static ut_status profile_ready(const ut_plan *p, double *total_ms, int *runs) {
  if (!p->rt->profiling)
    return ut_fail(UT_ERR_STATE, "profiling is off: open the runtime with .profiling = 1");
  *total_ms = 0;
  *runs = 0;
  for (int i = 0; i < p->n_launches; i++) {
    *total_ms += p->launches[i].total_ms;
    if (p->launches[i].timed_runs > *runs) *runs = p->launches[i].timed_runs;
  }
  return *runs ? UT_OK : ut_fail(UT_ERR_STATE, "no timed run yet: run the plan first");
}

ut_status ut_plan_profile(ut_plan *p, ut_profile_entry **entries, int *count) {
  double total = 0;
  int runs = 0;
  ut_status st = profile_ready(p, &total, &runs);
  if (st != UT_OK) return st;
  ut_profile_entry *e = calloc((size_t)p->n_launches + 1, sizeof *e);
  if (!e) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the profile");
  for (int i = 0; i < p->n_launches; i++) {
    const ut_launch *l = &p->launches[i];
    e[i] = (ut_profile_entry){ .node = l->node->name, .op = l->node->op->name, .kernel = l->kernel_name,
                               .shape = l->node->shape, .node_index = l->node->id,
                               .ms = l->timed_runs ? l->total_ms / l->timed_runs : 0 };
  }
  *entries = e;
  *count = p->n_launches;
  return UT_OK;
}

void ut_plan_profile_reset(ut_plan *p) {
  for (int i = 0; i < p->n_launches; i++) {
    p->launches[i].total_ms = 0;
    p->launches[i].timed_runs = 0;
  }
}

ut_status ut_plan_profile_table(ut_plan *p, char **table_out) {
  double total = 0;
  int runs = 0;
  ut_status st = profile_ready(p, &total, &runs);
  if (st != UT_OK) return st;
  text t = { 0 };
  append(&t, "%-32s %-16s %-22s %-18s %10s %7s\n", "node", "op", "shape", "kernel", "ms/run", "share");
  for (int i = 0; i < p->n_launches; i++) {
    ut_launch *l = &p->launches[i];
    char shape[64];
    double ms = l->timed_runs ? l->total_ms / l->timed_runs : 0;
    append(&t, "%-32.32s %-16.16s %-22.22s %-18.18s %10.4f %6.1f%%\n", l->node->name, l->node->op->name,
           ut_shape_str(l->node->shape, shape, sizeof shape), l->kernel_name, ms,
           total > 0 ? 100.0 * l->total_ms / total : 0.0);
  }
  append(&t, "%-32s %-16s %-22s %-18s %10.4f %6.1f%%\n", "total", "", "", "", total / runs, 100.0);
  if (!t.s) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the profile table");
  *table_out = t.s;
  return UT_OK;
}
