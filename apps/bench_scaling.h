/* `untangle bench --suite scaling`: data-parallel training against one process, measured by
 * running the program itself (one process, then `mpirun -np 2 ... --mpi`), each process on
 * one CPU thread. */
#ifndef UNTANGLE_APPS_BENCH_SCALING_H
#define UNTANGLE_APPS_BENCH_SCALING_H

#include <stdio.h>

/* Writes one JSON line (schema untangle-bench/1) per configuration to `out` and a summary to
 * stderr; `repeats` timed runs after one warm-up run each (fills the program cache). CLI_OK,
 * CLI_FAILED (a run failed: its output is shown) or CLI_USAGE (built without MPI). */
int bench_scaling(FILE *out, int quick, int repeats);

#endif
