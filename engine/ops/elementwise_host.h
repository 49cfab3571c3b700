/* Activations and their gradient on the host, for CPU devices whose memory is host memory
 * (elementwise_host.c). */
#ifndef UT_ELEMENTWISE_HOST_H
#define UT_ELEMENTWISE_HOST_H

#include "plan_internal.h"

/* Whether node n runs on the host: the runtime runs host work (its host_gemm) and n is relu,
 * leaky_relu or leaky_relu_grad. */
int ut_elementwise_host_takes(ut_plan *p, const ut_tensor *n);
/* Appends node n as host work (where ut_elementwise_host_takes). */
ut_status ut_elementwise_host(ut_plan *p, ut_tensor *n);

#endif
