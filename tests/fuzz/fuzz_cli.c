/* The `untangle` command line (apps/: untangle_main, the command table and every command's
 * option parser) on any argument vector. The first input byte picks a command (or none: the first
 * argument then names it), the rest is split at NUL bytes into up to 24 arguments, and two
 * unknown options end the vector. Whatever the fuzzed arguments say, the parser reaches an
 * unknown option before any work starts: each fuzzed option can take at most the next element
 * as its value, so at least one of the two is read as an option. An argument "--" would end
 * the options and let the stops through as file names, so inputs holding one are skipped.
 *
 * So the program never opens a device or writes a file; as a second guard the process has no
 * OpenCL platform to find (OCL_ICD_VENDORS names an empty folder), and the check below fails
 * the input if a command ever gets as far as failing at its work (exit status 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_support.h"

/* apps/untangle.c: the command line, without main.c's process entry (which may start the
 * process again). */
int untangle_main(int argc, char **argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

enum { MAX_ARGS = 24 };
static const char *const prefixes[][3] = {
  { "train", "lord", NULL }, { "train", "spirals", NULL }, { "data", "synth", NULL }, { "data", "import", NULL },
  { "data", "idx", NULL },   { "data", "info", NULL },     { "translate", NULL },      { "grid", NULL },
  { "devices", NULL },       { "help", NULL },             { "train", NULL },          { NULL },
};
enum { N_PREFIXES = (int)(sizeof prefixes / sizeof prefixes[0]) };

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  const char *dir = fuzz_dir();
  char vendors[4096];
  snprintf(vendors, sizeof vendors, "%s/no-icd", dir);
  FUZZ_CHECK(mkdir(vendors, 0700) == 0);
  setenv("OCL_ICD_VENDORS", vendors, 1);
  unsetenv("UNTANGLE_DEVICE");
  unsetenv("POSIXLY_CORRECT"); /* getopt must keep permuting, so the stops are read after file names */
  (void)argc;
  (void)argv;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  char *args[MAX_ARGS + 8];
  int n = 0;
  args[n++] = strdup("untangle");
  const char *const *prefix = prefixes[data[0] % N_PREFIXES];
  for (int i = 0; prefix[i]; i++) args[n++] = strdup(prefix[i]);
  /* Each argument its own allocation of its exact length, so reading past one is an ASan report. */
  int skip = 0;
  for (size_t at = 1; at < size && n < MAX_ARGS;) {
    const uint8_t *end = memchr(data + at, 0, size - at);
    size_t len = end ? (size_t)(end - (data + at)) : size - at;
    char *a = malloc(len + 1);
    FUZZ_CHECK(a != NULL);
    memcpy(a, data + at, len);
    a[len] = '\0';
    skip |= strcmp(a, "--") == 0;
    args[n++] = a;
    at += len + 1;
  }
  args[n++] = strdup("--untangle-fuzz-stop");
  args[n++] = strdup("--untangle-fuzz-stop");
  args[n] = NULL;
  if (!skip) {
    int rc = untangle_main(n, args);
    /* Help and version exit 0, everything else is a usage error: never work done or failed. */
    FUZZ_CHECK(rc == 0 || rc == 2);
  }
  for (int i = 0; i < n; i++) free(args[i]);
  return 0;
}
