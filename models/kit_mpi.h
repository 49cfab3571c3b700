/* A team (kit_team.h) over MPI: the processes that mpirun started, one per device. Compiled
 * only when CMake finds MPI (UNTANGLE_MPI); UNTANGLE_HAVE_MPI is then defined. */
#ifndef UNTANGLE_MODELS_KIT_MPI_H
#define UNTANGLE_MODELS_KIT_MPI_H

#include "kit_team.h"

/* Initialises MPI and returns the team of MPI_COMM_WORLD, or NULL with a message. MPI errors
 * are returned rather than fatal, so a failed collective (a rank died) becomes a message. */
kit_team *kit_mpi_open(int *argc, char ***argv);

/* Ends MPI. `failed`: this rank stops on an error, and the job is aborted so that the other
 * ranks do not wait for it in a collective. */
void kit_mpi_close(kit_team *t, int failed);

#endif
