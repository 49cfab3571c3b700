/* The pieces ut_conv2d is built from (engine/ops/conv.c), shared with the transposed
 * convolution (engine/ops/conv_transpose.c), which is the same pieces in adjoint order. Each
 * maker returns a graph node (or a view) whose backward builder emits the adjoint piece, so
 * anything composed of them differentiates to any order. Layouts are described in cl/conv.cl. */
#ifndef UT_CONV_INTERNAL_H
#define UT_CONV_INTERNAL_H

#include "graph_internal.h"

/* One convolution's geometry, seen from the image side: the image [b, c, h, w] that im2col
 * reads and col2im writes, the kernel, stride and padding, and the output size (oh, ow) that
 * ut_conv_geom_check fills in. */
typedef struct {
  int64_t b, c, h, w;   /* the image batch */
  int64_t kh, kw;       /* kernel */
  int64_t stride, pad;
  int reflect;
  int64_t oh, ow;       /* output size */
} ut_conv_geom;

/* Fills in oh and ow and checks that the geometry makes sense; on failure sets the last error
 * (naming `op`, the image and the kernel) and returns its status. */
ut_status ut_conv_geom_check(const char *op, ut_conv_geom *gm);

/* x [B, C, H, W] -> col [C*kh*kw, B*OH*OW]. */
ut_tensor *ut_conv_im2col(ut_graph *g, ut_tensor *x, const ut_conv_geom *gm);
/* col [C*kh*kw, B*OH*OW] -> [B, C, H, W], the adjoint of im2col as a deterministic gather, plus
 * bias [C] per channel when bias is not NULL (its gradient is the sum over B, H, W). */
ut_tensor *ut_conv_col2im(ut_graph *g, ut_tensor *col, ut_tensor *bias, const ut_conv_geom *gm);
/* y [B, C, H, W] -> [C, B*H*W] (a view when B is 1). */
ut_tensor *ut_conv_to_channel_major(ut_graph *g, ut_tensor *y);
/* t [C, nb*oh*ow] (+ bias [C]) -> [nb, C, oh, ow] (a view when nb is 1 and there is no bias). */
ut_tensor *ut_conv_to_batch_major(ut_graph *g, ut_tensor *t, ut_tensor *bias, int64_t nb, int64_t oh, int64_t ow);

#endif
