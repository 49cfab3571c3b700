/* Host access to device memory on CPU devices whose buffers are host memory (PoCL's): a
 * blocking map of a buffer returns its storage without a copy, so host code (OpenBLAS, the
 * host convolution) works on the very floats the kernels use. Several operands may share one
 * buffer (the plan's arena, usually); they are mapped as one span per distinct buffer, so no
 * two maps ever overlap. */
#ifndef UT_HOST_MAP_H
#define UT_HOST_MAP_H

#include "plan_internal.h"

typedef struct {
  struct {
    cl_mem buf;
    size_t lo, hi;
    cl_map_flags flags;
    float *ptr;
  } span[UT_HOST_MAP_MAX];
  int n_spans;
  float *ptr[UT_HOST_MAP_MAX]; /* per operand: its first float (a dummy for an empty one) */
  float empty;
} ut_host_map;

/* Maps the operands (blocking: the queue is in order, so earlier launches have finished).
 * On failure nothing stays mapped. `what` names the work in a message. */
ut_status ut_host_map_begin(ut_runtime *rt, ut_host_map *m, const ut_host_operand *ops, int n, const char *what);

/* Unmaps every span, releasing the memory to the work enqueued after; returns `st` unless
 * it was UT_OK and an unmap failed. */
ut_status ut_host_map_end(ut_runtime *rt, ut_host_map *m, ut_status st);

#endif
