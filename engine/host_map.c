/* Mapping operands for host code (host_map.h). */
#include "host_map.h"

#include "error.h"

ut_status ut_host_map_begin(ut_runtime *rt, ut_host_map *m, const ut_host_operand *ops, int n, const char *what) {
  m->n_spans = 0;
  m->empty = 0;
  if (n > UT_HOST_MAP_MAX) return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %d operands, at most %d", what, n, UT_HOST_MAP_MAX);
  int which[UT_HOST_MAP_MAX];
  for (int i = 0; i < n; i++) {
    which[i] = -1;
    if (ops[i].floats == 0) continue;
    size_t lo = ops[i].loc.off, hi = lo + ops[i].floats;
    cl_map_flags flags = ops[i].write ? CL_MAP_READ | CL_MAP_WRITE : CL_MAP_READ;
    int j = 0;
    while (j < m->n_spans && m->span[j].buf != ops[i].loc.buf) j++;
    if (j == m->n_spans) {
      m->span[j].buf = ops[i].loc.buf;
      m->span[j].lo = lo, m->span[j].hi = hi, m->span[j].flags = flags, m->span[j].ptr = NULL;
      m->n_spans++;
    }
    if (lo < m->span[j].lo) m->span[j].lo = lo;
    if (hi > m->span[j].hi) m->span[j].hi = hi;
    m->span[j].flags |= flags;
    which[i] = j;
  }
  for (int j = 0; j < m->n_spans; j++) {
    cl_int err;
    void *p = clEnqueueMapBuffer(rt->queue, m->span[j].buf, CL_TRUE, m->span[j].flags, m->span[j].lo * sizeof(float),
                                 (m->span[j].hi - m->span[j].lo) * sizeof(float), 0, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
      ut_status st = ut_fail_cl(err, "clEnqueueMapBuffer", "of floats %zu to %zu for %s", m->span[j].lo, m->span[j].hi, what);
      return ut_host_map_end(rt, m, st);
    }
    m->span[j].ptr = p;
  }
  for (int i = 0; i < n; i++)
    m->ptr[i] = which[i] < 0 ? &m->empty : m->span[which[i]].ptr + (ops[i].loc.off - m->span[which[i]].lo);
  return UT_OK;
}

ut_status ut_host_map_end(ut_runtime *rt, ut_host_map *m, ut_status st) {
  for (int j = 0; j < m->n_spans; j++) {
    if (!m->span[j].ptr) continue;
    cl_int err = clEnqueueUnmapMemObject(rt->queue, m->span[j].buf, m->span[j].ptr, 0, NULL, NULL);
    if (err != CL_SUCCESS && st == UT_OK) st = ut_fail_cl(err, "clEnqueueUnmapMemObject", "after host work");
    m->span[j].ptr = NULL;
  }
  m->n_spans = 0;
  return st;
}
