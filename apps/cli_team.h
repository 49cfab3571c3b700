/* `--mpi` for the training commands: data-parallel training over the processes mpirun
 * started (models/kit_team.h), one per device. Shared so every model's command says the same
 * thing, and says why when this untangle was built without MPI. */
#ifndef UNTANGLE_APPS_CLI_TEAM_H
#define UNTANGLE_APPS_CLI_TEAM_H

#include <stdio.h>

#include "kit_team.h"

/* The --mpi line of a command's help; nothing in a build without MPI. */
void cli_team_help(FILE *out);

/* With --mpi (`want`), joins the team of this job (NULL when mpirun started one process).
 * Refuses, with a message naming the command, --mpi in a build without MPI, and a process
 * that mpirun started among several without --mpi (each would train alone and overwrite the
 * others' files). Ranks other than 0 stop writing to stdout. CLI_OK or CLI_USAGE/CLI_FAILED. */
int cli_team_open(const char *cmd, int want, kit_team **team);

/* Ends the team; `failed` when this rank stops on an error (the job is then aborted, so no
 * rank waits for this one). */
void cli_team_close(kit_team *team, int failed);

/* A training command's run on its team: cli_team_open, then train(options, team), then
 * cli_team_close (aborting the job when train failed); train's status, or the open's refusal. */
int cli_team_run(const char *cmd, int want, int (*train)(const void *options, kit_team *team), const void *options);

/* The device of this rank: the rank-th entry of a comma-separated --device list (an error,
 * written into buf, when the list is shorter than the team), or on a team with the default
 * selection ("best" or "gpu") the rank-th GPU (ranks share GPUs round-robin when there are
 * fewer), else `device` itself. NULL after printing an error. */
const char *cli_team_device(const char *cmd, const char *device, const kit_team *team, char *buf, size_t size);

#endif
