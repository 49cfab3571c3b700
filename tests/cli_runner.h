/* Runs the `untangle` program as a user would, for the command-line suites. The program is
 * found next to the test in the build tree (../apps/untangle) or at $UNTANGLE_EXE; it runs
 * through the shell with both output streams captured in files. */
#ifndef UT_CLI_RUNNER_H
#define UT_CLI_RUNNER_H

#include <stddef.h>
#include <string.h>

#include "test_support.h"

typedef struct {
  int status; /* exit status, or -1 when it did not exit normally */
  char *out, *err;
} cli_result;

/* The program's path: $UNTANGLE_EXE, else ../apps/untangle next to the test (fails the test
 * when it is not there). */
const char *cli_program(void);

/* Runs `untangle <args>` (args is shell text) and captures stdout and stderr. */
cli_result cli_run(const char *args);
/* The same with shell text before the program ("mpiexec -np 2", say). */
cli_result cli_run_under(const char *launcher, const char *args);
void cli_result_free(cli_result *r);

/* A whole file as a terminated string (malloc'd); *len gets its length when len is not NULL. */
char *cli_slurp(const char *path, size_t *len);

/* Fails the test unless each of the named files is byte for byte the same in both folders (a
 * resumed run against the whole run, say). */
void assert_same_files(const char *dir_a, const char *dir_b, const char *const *names, int n);

#define assert_contains(text, what) \
  ck_assert_msg(strstr((text), (what)) != NULL, "expected \"%s\" in:\n%s", (what), (text))

#endif
