/* Shared by the ops that broadcast: shapes right-aligned into 4-D, and the strides an operand
 * is read with (0 along a dimension it is stretched over). */
#ifndef UT_OPS_BROADCAST_H
#define UT_OPS_BROADCAST_H

#include "graph_internal.h"

/* The shape as 4 dimensions, leading ones padded with 1. */
void ut_dims4(ut_shape s, int d[4]);
/* Row-major strides of `operand` when read at the positions of `out` (same rank after padding). */
void ut_bcast_strides(ut_shape operand, ut_shape out, int strides[4]);

#endif
