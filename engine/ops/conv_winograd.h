/* Winograd F(2x2, 3x3) convolution on the host for wide 3x3 layers (conv_winograd.c). */
#ifndef UT_CONV_WINOGRAD_H
#define UT_CONV_WINOGRAD_H

#include "conv_internal.h"

/* Whether the forward pass of gm with o outputs runs as Winograd F(2x2, 3x3): a 3x3 kernel,
 * stride 1, zero padding 1, channels wide enough in and out and images not too small
 * (conv_winograd.c says where it was measured). The input gradient of such a layer is the
 * same kind of convolution (flipped kernel, conv_internal.h), so it qualifies through
 * ut_conv_flipped. */
int ut_conv_winograd_suits(const ut_conv_geom *gm, int64_t o);

/* Floats of workspace one pass (a forward pass or input gradient; or a weight gradient) needs
 * on `threads` threads. */
size_t ut_conv_winograd_workspace(const ut_conv_geom *gm, int64_t o, int threads, int weight_gradient);

/* y [b, o, oh, ow] = conv(x [b, c, h, w], w [o, c, 3, 3]) (+ bias [o]), on `threads` threads,
 * with `workspace` of ut_conv_winograd_workspace floats. With `flipped`, w is instead the
 * kernel [c, o, 3, 3] of the convolution whose input gradient this pass is, and is read
 * turned and with its channel axes swapped (ut_conv_flipped). */
void ut_conv_winograd_forward(const ut_conv_geom *gm, int64_t o, const float *x, const float *w, int flipped, const float *bias,
                              float *y, float *workspace, int threads);

/* dw [o, c, 3, 3] = the weight gradient of that convolution for dy [b, o, oh, ow] and x, with
 * ut_conv_winograd_workspace(gm, o, threads, 1) floats of workspace. */
void ut_conv_winograd_grad_weight(const ut_conv_geom *gm, int64_t o, const float *dy, const float *x, float *dw,
                                  float *workspace, int threads);

#endif
