/* The regression losses, as means over all elements. Both operands must have one shape, so a
 * broadcast cannot silently change what is averaged. */
#include "error.h"
#include "graph_internal.h"

static int same_shapes(ut_graph *g, const char *loss, ut_tensor *a, ut_tensor *b) {
  if (!a || !b) return 0;
  if (ut_shape_equal(a->shape, b->shape)) return 1;
  char sa[64], sb[64];
  ut_fail(UT_ERR_SHAPE, "%s: shapes differ: %s ('%s') vs %s ('%s')", loss, ut_shape_str(a->shape, sa, sizeof sa), a->name,
          ut_shape_str(b->shape, sb, sizeof sb), b->name);
  ut_graph_fail(g, UT_ERR_SHAPE);
  return 0;
}

ut_tensor *ut_l1_loss(ut_graph *g, ut_tensor *a, ut_tensor *b) {
  if (!same_shapes(g, "l1_loss", a, b)) return ut_graph_fail(g, ut_graph_status(g));
  return ut_mean_all(g, ut_abs(g, ut_sub(g, a, b)));
}

ut_tensor *ut_mse_loss(ut_graph *g, ut_tensor *a, ut_tensor *b) {
  if (!same_shapes(g, "mse_loss", a, b)) return ut_graph_fail(g, ut_graph_status(g));
  return ut_mean_all(g, ut_square(g, ut_sub(g, a, b)));
}
