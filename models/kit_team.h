/* A team: the processes that train one model data-parallel, one per device. The kit's trainer
 * and the models see it only through this table, so they build and run without MPI; the MPI
 * implementation is kit_mpi.c (compiled when CMake finds MPI), and tests may supply their own.
 *
 * How a step runs on a team of N (rank r):
 *  - every rank draws the whole batch B a single process would draw, and trains on its share:
 *    rows [r B / N, (r + 1) B / N) (B % N == 0, else the trainer refuses);
 *  - the model's training graphs take B / N rows (ut_graph_set_share: random noise is drawn
 *    for each sample's row of the whole batch) and carry the team's reducer
 *    (ut_graph_set_reducer), which sums each optimiser's gradients over the team and divides
 *    by N: every loss is a mean over its samples, so the mean over the shares' gradients is
 *    the whole batch's gradient, and every rank applies the same update;
 *  - the losses are averaged the same way, so losses.tsv reads as a single process's would;
 *  - a quantity of the whole batch inside the forward pass (a ratio of two batch means, as
 *    DMIT's diversity term) is the team's mean of the shares' values (kit_team_mean);
 *  - rank 0 alone writes checkpoints, losses.tsv and grids.
 */
#ifndef UNTANGLE_MODELS_KIT_TEAM_H
#define UNTANGLE_MODELS_KIT_TEAM_H

#include "untangle.h"
#include "untangle_data.h"

typedef struct kit_team {
  int rank, size;
  void *user;
  /* The reducer every training graph of the model registers, with `user`. */
  ut_gradient_reducer reduce;
  /* Before each step, with the whole batch of every stream: the reducer learns which rows
   * of the per-image tables the step touches (kit_mpi.c exchanges only those). */
  ut_status (*begin_step)(void *user, const ut_batch *const *batches, int n_streams);
  /* Declares that the gradient of parameter `param` is zero outside the rows named by the
   * indices of stream `stream`'s batches (a per-image embedding table): the reducer then
   * exchanges only the rows of the whole batch instead of the table. */
  ut_status (*sparse_rows)(void *user, const char *param, int stream);
  /* Sums n values over the team; every rank gets the sums. */
  ut_status (*sum)(void *user, float *values, int n);
  /* Whether every rank holds `checksum` (of its parameters and optimiser state) after `step`
   * steps; a failure names the ranks that differ. */
  ut_status (*agree)(void *user, uint64_t checksum, int64_t step);
  /* Seconds spent in communication so far (waiting for slower ranks included). */
  double (*comm_seconds)(void *user);
} kit_team;

/* How a model trains on a team: rows per graph and the graph settings. A model calls
 * kit_team_prepare on each training graph before it adds its optimisers. */
int kit_team_rows(const kit_team *t, int batch);
/* UT_OK when `batch` splits into equal shares over the team (or there is no team); else
 * UT_ERR_INVALID_ARGUMENT naming `model`, the batch and the team's size. */
ut_status kit_team_check_batch(const kit_team *t, const char *model, int batch);
ut_status kit_team_prepare(const kit_team *t, ut_graph *g);
/* As kit_team_prepare, for a model whose batch is `blocks` batches one after another, one per
 * stream of the trainer (DMIT's domains): the rank's rows are its share of each, in the same
 * order (the trainer's shares of the streams, laid end to end). */
ut_status kit_team_prepare_blocks(const kit_team *t, ut_graph *g, int blocks);
/* The mean over the team of x, a value each rank computes over its share (a mean over its
 * rows): the whole batch's value, inside the forward pass, on every rank; x itself alone.
 * Through ut_team_sum, whose gradient makes the reducer's mean over ranks the whole batch's. */
ut_tensor *kit_team_mean(const kit_team *t, ut_graph *g, ut_tensor *x);

/* How many processes the launcher (mpirun of Open MPI or MPICH, srun) started together with
 * this one, read from its environment without MPI; 0 when none says. A program built without
 * MPI uses it to refuse rather than train N copies that overwrite one another's files. */
int kit_team_launched_size(void);

#endif
