/* Direct host convolution (conv_direct.c): tiled in registers, without a column matrix. */
#ifndef UT_CONV_DIRECT_H
#define UT_CONV_DIRECT_H

#include "conv_internal.h"

/* Whether the direct loops beat im2col + GEMM (conv_direct.c says where measured): stride 1,
 * and for the forward pass 4 or fewer output channels or a kernel wider than 1x1 on rows of 16
 * or more; for the weight gradient 4 or fewer output channels, or a 5-wide kernel with fewer
 * outputs than inputs. */
int ut_conv_direct_suits(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass);

/* The workspace floats a direct pass needs on `threads` threads (the packed weights of the
 * forward pass and each thread's padded planes). */
size_t ut_conv_direct_workspace(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass, int threads);

/* One pass over the whole batch on `threads` threads, operands as conv_host.c maps them:
 * forward (x, w, bias) -> y; grad weight (dy, x) -> dw; in a workspace of the size above. */
void ut_conv_direct_run(const ut_conv_geom *gm, int64_t o, ut_conv_pass pass, const float *in0, const float *in1,
                        const float *bias, float *out, float *workspace, int threads);

#endif
