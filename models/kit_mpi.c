/* A team over MPI (kit_mpi.h).
 *
 * One collective per optimiser per step: the gradients the engine hands over packed (every
 * gradient of one ut_adam call) are summed with one MPI_Allreduce and divided by the team's
 * size. A per-image table (sparse_rows) travels as the rows of the whole batch only: every
 * rank draws the whole batch, so every rank knows the same sorted list of rows without
 * exchanging it, and a row outside the list has a zero gradient on every rank. */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kit_mpi.h"

#define MAX_TABLES 4
#define CHUNK (1 << 28) /* floats per MPI call: counts are int */

typedef struct {
  char param[128];
  int stream;
  int32_t *rows; /* the current step's rows, sorted, each once */
  int n_rows, cap_rows;
} table;

typedef struct {
  kit_team team; /* first, so a kit_team * is an mpi_team * */
  double comm_seconds;
  table tables[MAX_TABLES];
  int n_tables;
  float *buf;
  size_t cap;
} mpi_team;

static ut_status mpi_failed(int rc, const char *what, int rank) {
  char msg[MPI_MAX_ERROR_STRING] = "";
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  return ut_fail(UT_ERR_STATE, "rank %d: %s failed: %s (another rank has probably stopped; its message, or "
                 "mpirun's, names it)", rank, what, msg);
}

/* Sums n floats over the team in place, in chunks an int counts. */
static ut_status allreduce(mpi_team *t, float *v, size_t n, const char *what) {
  double t0 = ut_seconds();
  for (size_t done = 0; done < n;) {
    int count = n - done > CHUNK ? CHUNK : (int)(n - done);
    int rc = MPI_Allreduce(MPI_IN_PLACE, v + done, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_failed(rc, what, t->team.rank);
    done += (size_t)count;
  }
  t->comm_seconds += ut_seconds() - t0;
  return UT_OK;
}

static const table *table_of(const mpi_team *t, const char *param) {
  for (int i = 0; i < t->n_tables; i++)
    if (!strcmp(t->tables[i].param, param)) return &t->tables[i];
  return NULL;
}

/* Copies between the engine's packed gradients and the message: whole gradients, and the
 * listed rows of sparse tables. to_message: values -> buf; else buf -> values. */
static size_t pack(mpi_team *t, const ut_gradient_pack *p, float *values, int to_message) {
  size_t at = 0;
  for (int i = 0; i < p->n; i++) {
    float *g = values + p->offsets[i];
    size_t n = (size_t)ut_shape_numel(p->shapes[i]);
    const table *tb = table_of(t, p->params[i]);
    if (!tb) {
      if (t->buf) memcpy(to_message ? t->buf + at : g, to_message ? g : t->buf + at, n * sizeof *g);
      at += n;
      continue;
    }
    size_t width = n / (size_t)p->shapes[i].d[0];
    for (int r = 0; r < tb->n_rows; r++, at += width)
      if (t->buf) {
        float *row = g + (size_t)tb->rows[r] * width;
        memcpy(to_message ? t->buf + at : row, to_message ? row : t->buf + at, width * sizeof *g);
      }
  }
  return at;
}

static ut_status reduce(void *user, const ut_gradient_pack *p, float *values) {
  mpi_team *t = user;
  for (int i = 0; i < p->n; i++) {
    const table *tb = table_of(t, p->params[i]);
    for (int r = 0; tb && r < tb->n_rows; r++)
      if (tb->rows[r] < 0 || tb->rows[r] >= p->shapes[i].d[0])
        return ut_fail(UT_ERR_INVALID_ARGUMENT, "row %d of '%s' is outside its %lld rows", tb->rows[r], p->params[i],
                       (long long)p->shapes[i].d[0]);
  }
  float *keep = t->buf;
  t->buf = NULL;
  size_t n = pack(t, p, values, 1); /* sizing only */
  t->buf = keep;
  if (n > t->cap) {
    float *grown = realloc(t->buf, n * sizeof *grown);
    if (!grown) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for %zu gradient values", n);
    t->buf = grown;
    t->cap = n;
  }
  pack(t, p, values, 1);
  ut_status st = allreduce(t, t->buf, n, "summing the gradients");
  if (st != UT_OK) return st;
  float scale = 1.0f / (float)t->team.size;
  for (size_t i = 0; i < n; i++) t->buf[i] *= scale;
  pack(t, p, values, 0);
  return UT_OK;
}

static int compare_rows(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

static ut_status begin_step(void *user, const ut_batch *const *batches, int n_streams) {
  mpi_team *t = user;
  for (int i = 0; i < t->n_tables; i++) {
    table *tb = &t->tables[i];
    if (tb->stream >= n_streams || !batches[tb->stream]->indices)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "table '%s' follows stream %d, which the trainer does not have",
                     tb->param, tb->stream);
    const ut_batch *b = batches[tb->stream];
    if (b->n > tb->cap_rows) {
      int32_t *grown = realloc(tb->rows, (size_t)b->n * sizeof *grown);
      if (!grown) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the rows of '%s'", tb->param);
      tb->rows = grown;
      tb->cap_rows = b->n;
    }
    memcpy(tb->rows, b->indices, (size_t)b->n * sizeof *tb->rows);
    qsort(tb->rows, (size_t)b->n, sizeof *tb->rows, compare_rows);
    int unique = 0;
    for (int r = 0; r < b->n; r++)
      if (!unique || tb->rows[unique - 1] != tb->rows[r]) tb->rows[unique++] = tb->rows[r];
    tb->n_rows = unique;
  }
  return UT_OK;
}

static ut_status sparse_rows(void *user, const char *param, int stream) {
  mpi_team *t = user;
  if (table_of(t, param)) return UT_OK;
  if (t->n_tables == MAX_TABLES || strlen(param) >= sizeof t->tables[0].param)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "sparse table '%s': too many tables or too long a name", param);
  table *tb = &t->tables[t->n_tables++];
  *tb = (table){ .stream = stream };
  snprintf(tb->param, sizeof tb->param, "%s", param);
  return UT_OK;
}

static ut_status sum(void *user, float *values, int n) {
  return allreduce(user, values, (size_t)n, "summing values over the ranks");
}

static ut_status agree(void *user, uint64_t checksum, int64_t step) {
  mpi_team *t = user;
  uint64_t *all = malloc((size_t)t->team.size * sizeof *all);
  if (!all) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the checksums");
  double t0 = ut_seconds();
  int rc = MPI_Allgather(&checksum, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
  t->comm_seconds += ut_seconds() - t0;
  if (rc != MPI_SUCCESS) {
    free(all);
    return mpi_failed(rc, "comparing parameter checksums", t->team.rank);
  }
  char differ[256] = "";
  int n_differ = 0;
  for (int r = 1; r < t->team.size; r++)
    if (all[r] != all[0]) {
      size_t len = strlen(differ);
      if (len < sizeof differ - 16) snprintf(differ + len, sizeof differ - len, "%s%d", n_differ ? ", " : "", r);
      n_differ++;
    }
  uint64_t first = all[0];
  free(all);
  if (!n_differ) return UT_OK;
  return ut_fail(UT_ERR_STATE, "the ranks' parameters diverged after step %lld: rank%s %s hold%s another checksum "
                 "than rank 0 (%016llx); stopping, the last checkpoint is kept", (long long)step,
                 n_differ > 1 ? "s" : "", differ, n_differ > 1 ? "" : "s", (unsigned long long)first);
}

static double comm_seconds(void *user) { return ((mpi_team *)user)->comm_seconds; }

/* When a rank dies, mpirun ends the others with SIGTERM while they wait in a collective, before
 * any MPI call of theirs can fail: say so on the way out. A signal handler can only write a
 * text made in advance, hence this one static buffer, written once in kit_mpi_open. */
static char stopped_text[256];

static void on_sigterm(int sig) {
  (void)sig;
  ssize_t ignored = write(STDERR_FILENO, stopped_text, strlen(stopped_text));
  (void)ignored;
  _exit(143);
}

kit_team *kit_mpi_open(int *argc, char ***argv) {
  int rc = MPI_Init(argc, argv);
  if (rc != MPI_SUCCESS) {
    ut_fail(UT_ERR_STATE, "MPI_Init failed (error %d)", rc);
    return NULL;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  mpi_team *t = calloc(1, sizeof *t);
  if (!t) {
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the MPI team");
    MPI_Finalize();
    return NULL;
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &t->team.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &t->team.size);
  t->team.user = t;
  t->team.reduce = reduce;
  t->team.begin_step = begin_step;
  t->team.sparse_rows = sparse_rows;
  t->team.sum = sum;
  t->team.agree = agree;
  t->team.comm_seconds = comm_seconds;
  snprintf(stopped_text, sizeof stopped_text, "untangle: rank %d of %d stopped by mpirun: another rank ended (mpirun "
           "names it); files written so far are intact\n", t->team.rank, t->team.size);
  signal(SIGTERM, on_sigterm);
  return &t->team;
}

void kit_mpi_close(kit_team *team, int failed) {
  if (!team) return;
  mpi_team *t = (mpi_team *)team;
  if (failed && team->size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
  for (int i = 0; i < t->n_tables; i++) free(t->tables[i].rows);
  free(t->buf);
  free(t);
  MPI_Finalize();
}
