/* The parts of a team every model shares (kit_team.h). */
#include <stdlib.h>

#include "kit_team.h"

int kit_team_rows(const kit_team *t, int batch) { return t && t->size > 1 ? batch / t->size : batch; }

ut_status kit_team_check_batch(const kit_team *t, const char *model, int batch) {
  if (!t || t->size <= 1 || batch % t->size == 0) return UT_OK;
  return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: batch %d does not split into %d equal shares, one per process; use a "
                 "batch that is a multiple of %d", model, batch, t->size, t->size);
}

ut_status kit_team_prepare_blocks(const kit_team *t, ut_graph *g, int blocks) {
  if (!t || t->size <= 1) return UT_OK;
  ut_status st = ut_graph_set_share_blocks(g, t->rank, t->size, blocks);
  return st == UT_OK ? ut_graph_set_reducer(g, t->reduce, t->user) : st;
}

ut_status kit_team_prepare(const kit_team *t, ut_graph *g) { return kit_team_prepare_blocks(t, g, 1); }

ut_tensor *kit_team_mean(const kit_team *t, ut_graph *g, ut_tensor *x) {
  if (!t || t->size <= 1) return x;
  return ut_scale(g, ut_team_sum(g, x, t->sum, t->user), 1.0f / (float)t->size);
}

int kit_team_launched_size(void) {
  static const char *const vars[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS" };
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    if (v && atoi(v) > 0) return atoi(v);
  }
  return 0;
}
