/* Shared by the ops that broadcast: shapes right-aligned into 4-D, and the strides an operand
 * is read with (0 along a dimension it is stretched over). */
#ifndef UT_OPS_BROADCAST_H
#define UT_OPS_BROADCAST_H

#include "graph_internal.h"

/* The shape as 4 dimensions, leading ones padded with 1. */
void ut_dims4(ut_shape s, int d[4]);
/* Row-major strides of `operand` when read at the positions of `out` (same rank after padding). */
void ut_bcast_strides(ut_shape operand, ut_shape out, int strides[4]);

/* The 2-D view of a broadcast that cl/elementwise.cl's *_rows kernels read: `out` as
 * [rows, cols], cols the product of its padded dims from `split` on, and each operand's element
 * (p, q) at (p % r[0]) * r[1] + q * r[2]. An operand fits at a split when its trailing dims
 * (from split on) all equal the output's or are all 1, and its leading dims are 1 up to some
 * point and then equal the output's. Returns the split with the most columns at which both
 * operands fit, filling ra and rb, or -1 when none does. */
int ut_bcast_rows(ut_shape a, ut_shape b, ut_shape out, int ra[4], int rb[4]);

#endif
