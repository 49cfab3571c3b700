/* Direct host convolution for layers with few channels (conv_direct.c). */
#ifndef UT_CONV_DIRECT_H
#define UT_CONV_DIRECT_H

#include "conv_internal.h"

/* Whether the direct loops beat im2col + GEMM (conv_direct.c says where measured): the forward
 * pass and the weight gradient of a stride-1 convolution of at most 32 channels in and out,
 * with 4 or fewer outputs or output rows of 16 or more. */
int ut_conv_direct_suits(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass);

/* One pass over the whole batch on `threads` threads, operands as conv_host.c maps them:
 * forward (x, w, bias) -> y; grad weight (dy, x) -> dw; with vectors of `lanes` floats (8, or
 * 16 where ut_conv_direct_widest_lanes says so). The forward pass gives the same bits at
 * either width; the weight gradient sums its lanes in another grouping. */
ut_status ut_conv_direct_run(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass, const float *in0, const float *in1,
                             const float *bias, float *out, int threads, int lanes);

/* 16 where this build has the 16-float loops and the processor runs them (x86-64-v4), else 8. */
int ut_conv_direct_widest_lanes(void);

#endif
