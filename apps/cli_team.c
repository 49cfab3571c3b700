/* --mpi for the training commands (cli_team.h). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_team.h"
#ifdef UNTANGLE_HAVE_MPI
#include "kit_mpi.h"
#endif

void cli_team_help(FILE *out) {
#ifdef UNTANGLE_HAVE_MPI
  fprintf(out, "      --mpi              train data-parallel over the processes of 'mpirun -np N': each takes\n"
               "                         batch / N images of every batch (the batch must split evenly), the\n"
               "                         gradients are averaged, rank 0 writes the files; --device takes one\n"
               "                         device per rank (0,1,...), else rank r uses the r-th GPU\n");
#else
  (void)out;
#endif
}

int cli_team_open(const char *cmd, int want, kit_team **team) {
  *team = NULL;
  int launched = kit_team_launched_size();
  if (!want) {
    if (launched > 1) {
      fprintf(stderr, "untangle %s: this process is one of %d that mpirun started; add --mpi to train them as one "
              "data-parallel job (alone, each would train the whole model and overwrite the others' files)\n", cmd,
              launched);
      return CLI_USAGE;
    }
    return CLI_OK;
  }
#ifdef UNTANGLE_HAVE_MPI
  kit_team *t = kit_mpi_open(NULL, NULL);
  if (!t) {
    fprintf(stderr, "untangle %s: --mpi: %s\n", cmd, ut_last_error());
    return CLI_FAILED;
  }
  if (t->size == 1) {
    kit_mpi_close(t, 0);
    return CLI_OK;
  }
  if (t->rank != 0 && !freopen("/dev/null", "w", stdout)) {
    fprintf(stderr, "untangle %s: rank %d cannot silence its standard output\n", cmd, t->rank);
    kit_mpi_close(t, 1);
    return CLI_FAILED;
  }
  *team = t;
  return CLI_OK;
#else
  fprintf(stderr, "untangle %s: --mpi: this untangle was built without MPI (UNTANGLE_MPI was OFF, or CMake found "
          "none); install an MPI (Debian: libopenmpi-dev openmpi-bin) and rebuild with -DUNTANGLE_MPI=ON\n", cmd);
  return CLI_USAGE;
#endif
}

void cli_team_close(kit_team *team, int failed) {
#ifdef UNTANGLE_HAVE_MPI
  if (team) kit_mpi_close(team, failed);
#else
  (void)team;
  (void)failed;
#endif
}

int cli_team_run(const char *cmd, int want, int (*train)(const void *options, kit_team *team), const void *options) {
  kit_team *team = NULL;
  int rc = cli_team_open(cmd, want, &team);
  if (rc != CLI_OK) return rc;
  rc = train(options, team);
  cli_team_close(team, rc != CLI_OK);
  return rc;
}

const char *cli_team_device(const char *cmd, const char *device, const kit_team *team, char *buf, size_t size) {
  int rank = team ? team->rank : 0, ranks = team ? team->size : 1;
  if (strchr(device, ',')) {
    const char *at = device;
    for (int i = 0; i < rank && at; i++) {
      at = strchr(at, ',');
      if (at) at++;
    }
    size_t len = at ? strcspn(at, ",") : 0;
    if (!at || !len || len >= size) {
      fprintf(stderr, "untangle %s: --device '%s' names no device for rank %d of %d; expected one entry per rank\n",
              cmd, device, rank, ranks);
      return NULL;
    }
    memcpy(buf, at, len);
    buf[len] = '\0';
    return buf;
  }
  if (!team || (strcmp(device, "best") && strcmp(device, "gpu"))) return device;
  ut_device_info *all = NULL;
  int n = 0, gpus = 0;
  if (ut_devices_list(&all, &n) != UT_OK) return device;
  for (int i = 0; i < n; i++) gpus += all[i].type == UT_DEVICE_GPU;
  for (int i = 0, k = 0; gpus && i < n; i++)
    if (all[i].type == UT_DEVICE_GPU && k++ == rank % gpus) snprintf(buf, size, "%d", all[i].index);
  free(all);
  return gpus ? buf : device;
}
