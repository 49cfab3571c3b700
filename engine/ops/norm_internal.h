/* Instance norm and AdaIN inside the engine: the fused ops of norm_fused.c behind the public
 * calls, and the composites of norm.c that were the layers before them and stay as their
 * reference in the tests (tests/test_ops_norm_fused.c). */
#ifndef UT_NORM_INTERNAL_H
#define UT_NORM_INTERNAL_H

#include "graph_internal.h"

/* Where a fused normalisation reads its scale and bias: one value per channel ([C] tensors,
 * instance norm's weight and bias) or one per (sample, channel) plane ([B, C], AdaIN's). */
typedef enum { UT_NORM_PER_CHANNEL, UT_NORM_PER_PLANE } ut_norm_params;

/* y = (x - mean) / sqrt(var + eps) * scale + bias with the statistics of each (b, c) plane of
 * x [B, C, H, W] (biased variance); scale and bias may each be NULL (1 and 0). One fused op,
 * differentiable to any order; the shape rule checks the operands against `params`. `width`:
 * the work-items per plane, 0 for the device's choice (1 on CPUs); tests ask for more to run
 * the local-memory reduction where the device would not use it. It is rounded down to a power
 * of two the device allows, and applies to the gradient's ops too. */
ut_tensor *ut_plane_norm(ut_graph *g, ut_tensor *x, ut_tensor *scale, ut_tensor *bias, ut_norm_params params, float eps,
                         int width);

/* The composites of mean, sub, square, sqrt, div, mul and add that ut_instance_norm and
 * ut_adain were before the fused ops; same arguments, checks and messages as those. */
ut_tensor *ut_instance_norm_reference(ut_graph *g, ut_tensor *x, ut_tensor *weight, ut_tensor *bias, float eps);
ut_tensor *ut_adain_reference(ut_graph *g, ut_tensor *x, ut_tensor *scale, ut_tensor *bias, float eps);

#endif
