#include "broadcast.h"

void ut_dims4(ut_shape s, int d[4]) {
  for (int i = 0; i < 4; i++) {
    int k = s.rank - 4 + i;
    d[i] = k >= 0 ? (int)s.d[k] : 1;
  }
}

void ut_bcast_strides(ut_shape operand, ut_shape out, int strides[4]) {
  int od[4], xd[4];
  ut_dims4(out, od);
  ut_dims4(operand, xd);
  int stride = 1;
  for (int i = 3; i >= 0; i--) {
    strides[i] = (xd[i] == 1 && od[i] != 1) ? 0 : stride;
    stride *= xd[i];
  }
}
