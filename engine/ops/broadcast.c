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

/* Whether `operand` read at the positions of `out` fits the rows view at `split` (broadcast.h). */
static int rows_fit(const int xd[4], const int od[4], int split, int r[4]) {
  int full = 1, stretched = 1, inner = 1;
  for (int i = split; i < 4; i++) {
    full = full && xd[i] == od[i];
    stretched = stretched && xd[i] == 1;
    inner *= xd[i];
  }
  if (!full && !stretched) return 0;
  /* Leading dims: a run equal to the output's just before split, ones before that. */
  int t = split, period = 1;
  while (t > 0 && xd[t - 1] == od[t - 1]) period *= od[--t];
  for (int i = 0; i < t; i++)
    if (xd[i] != 1) return 0;
  r[0] = period;
  r[1] = full ? inner : 1;
  r[2] = full ? 1 : 0;
  r[3] = 0;
  return 1;
}

int ut_bcast_rows(ut_shape a, ut_shape b, ut_shape out, int ra[4], int rb[4]) {
  int ad[4], bd[4], od[4];
  ut_dims4(a, ad);
  ut_dims4(b, bd);
  ut_dims4(out, od);
  for (int split = 0; split <= 4; split++)
    if (rows_fit(ad, od, split, ra) && rows_fit(bd, od, split, rb)) return split;
  return -1;
}
