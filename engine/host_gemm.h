/* GEMMs of a CPU device run on the host with OpenBLAS, in place on the memory of the device's
 * buffers. On a CPU device whose memory is host memory (PoCL's), a blocking map of a buffer
 * returns its storage without a copy, so OpenBLAS works on the very floats the kernels use;
 * CLBlast's OpenCL kernels reach a small fraction of OpenBLAS's speed on the same cores. */
#ifndef UT_HOST_GEMM_H
#define UT_HOST_GEMM_H

#include "plan_internal.h"

/* Decides whether this runtime's GEMMs run on the host and sets rt->host_gemm: yes on a CPU
 * device with host-unified memory unless $UNTANGLE_CPU_GEMM is "clblast". When they do, sets
 * OpenBLAS to one thread: the engine splits host products over the device's compute units
 * itself. Fails on any other value of $UNTANGLE_CPU_GEMM than "clblast", "openblas" or empty. */
ut_status ut_host_gemm_choose(ut_runtime *rt);

/* Checks that OpenBLAS can take these arguments (leading dimensions, 32-bit sizes), so a plan
 * reports a bad GEMM when it compiles rather than when it runs. */
ut_status ut_host_gemm_check(const ut_gemm_args *a);

/* C = alpha op(A) op(B) + beta C for every batch entry, on the host, split over the device's
 * compute units by batch entries or by blocks of C's rows or columns. The blocking maps wait
 * for the queue's earlier work (the queue is in order) and the unmaps release the memory to
 * the work enqueued after. *ms gets the host time of the products alone, without that wait. */
ut_status ut_host_gemm_run(ut_runtime *rt, const ut_gemm_args *a, double *ms);

#endif
