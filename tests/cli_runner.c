/* The command-line runner of the CLI suites (cli_runner.h). */
#include "cli_runner.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

const char *cli_program(void) {
  static char path[PATH_MAX];
  const char *env = getenv("UNTANGLE_EXE");
  if (env && *env) return env;
  char self[PATH_MAX - 32]; /* leaves room for the suffix below */
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  ck_assert_msg(n > 0, "cannot find this test's own path; set UNTANGLE_EXE");
  self[n] = '\0';
  *strrchr(self, '/') = '\0';
  snprintf(path, sizeof path, "%s/../apps/untangle", self);
  ck_assert_msg(access(path, X_OK) == 0, "no program at %s (build it, or set UNTANGLE_EXE)", path);
  return path;
}

char *cli_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot read %s", path);
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  for (size_t got; (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
    n += got;
    if (cap - n < 1024) buf = realloc(buf, cap *= 2);
  }
  buf[n] = '\0';
  fclose(f);
  if (len) *len = n;
  return buf;
}

cli_result cli_run(const char *args) { return cli_run_under("", args); }

cli_result cli_run_under(const char *launcher, const char *args) {
  char out_path[4096], err_path[4096], cmd[16384];
  snprintf(out_path, sizeof out_path, "%s", test_tmp_path("cli.out"));
  snprintf(err_path, sizeof err_path, "%s", test_tmp_path("cli.err"));
  snprintf(cmd, sizeof cmd, "%s '%s' %s >'%s' 2>'%s'", launcher, cli_program(), args, out_path, err_path);
  int w = system(cmd);
  cli_result r = { .status = WIFEXITED(w) ? WEXITSTATUS(w) : -1, .out = cli_slurp(out_path, NULL),
                   .err = cli_slurp(err_path, NULL) };
  unlink(out_path);
  unlink(err_path);
  return r;
}

void cli_result_free(cli_result *r) {
  free(r->out);
  free(r->err);
}

void assert_same_files(const char *dir_a, const char *dir_b, const char *const *names, int n) {
  for (int f = 0; f < n; f++) {
    char a_path[4200], b_path[4200];
    size_t la = 0, lb = 0;
    snprintf(a_path, sizeof a_path, "%s/%s", dir_a, names[f]);
    snprintf(b_path, sizeof b_path, "%s/%s", dir_b, names[f]);
    char *a = cli_slurp(a_path, &la), *b = cli_slurp(b_path, &lb);
    int same = a && b && la == lb && !memcmp(a, b, la);
    free(a);
    free(b);
    ck_assert_msg(same, "%s differs from %s (or one is missing)", b_path, a_path);
  }
}
