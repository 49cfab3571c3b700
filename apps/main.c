/* The process entry of the `untangle` program: where OpenBLAS runs old kernels on this
 * processor it first starts itself again with better ones, then runs the command line
 * (untangle.c). Kept apart from the dispatcher so that the CLI fuzz target, which calls
 * untangle_main in its own process many times, never replaces that process. */
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "untangle.h"

/* Where OpenBLAS fell back to old kernels on a processor it does not know (engine/blas_kernels.c),
 * the program starts itself again with OPENBLAS_CORETYPE naming the kernels that fit, once: the
 * variable is then set, and a user's own OPENBLAS_CORETYPE is never overridden. What OpenBLAS
 * chose by itself travels in $UNTANGLE_BLAS_DETECTED, for 'untangle devices' to report. If the
 * new start fails, the program goes on with the old kernels. */
static void restart_with_better_blas(char **argv) {
  const char *better = ut_blas_better_kernels();
  if (!better || getenv("OPENBLAS_CORETYPE")) return;
  if (setenv(CLI_BLAS_DETECTED_ENV, ut_blas_kernels(), 1) || setenv("OPENBLAS_CORETYPE", better, 1)) return;
  execv("/proc/self/exe", argv);
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv(CLI_BLAS_DETECTED_ENV);
}

int main(int argc, char **argv) {
  restart_with_better_blas(argv);
  return untangle_main(argc, argv);
}
