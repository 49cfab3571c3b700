/* A training run must survive being killed and a full disk. `untangle train spirals` writes a
 * checkpoint after every step here (--save-every 1); half of the kills come at random moments,
 * half the moment a write is seen under way, and the test counts those that land inside a write
 * (a temporary file left next to the checkpoint). After each SIGKILL the checkpoint must load through the
 * model's own loader at a step no earlier than before, and the next run resumes from it. With
 * a file-size limit the write fails: the program must say so and exit 1, and the previous
 * checkpoint must be untouched, byte for byte.
 *
 * The program is found next to this test in the build tree (../apps/untangle) or at
 * $UNTANGLE_EXE, and runs on $UNTANGLE_TEST_DEVICE (default best). */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_runner.h"
#include "spirals.h"

enum { KILLS = 20 };

static char exe[PATH_MAX], run_dir[PATH_MAX], ckpt[PATH_MAX + 32], out_log[PATH_MAX + 32];

static void setup(void) {
  snprintf(exe, sizeof exe, "%s", cli_program());
  snprintf(run_dir, sizeof run_dir, "%s", test_tmp_path("crash-run"));
  snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", run_dir);
  snprintf(out_log, sizeof out_log, "%s", test_tmp_path("crash.log"));
}

/* The end of the last run's output, for failure messages (Check refuses very long ones). */
static const char *log_tail(void) {
  static char tail[2048];
  size_t len;
  char *log = cli_slurp(out_log, &len);
  snprintf(tail, sizeof tail, "%s", log + (len > sizeof tail - 1 ? len - (sizeof tail - 1) : 0));
  free(log);
  return tail;
}

/* Starts `untangle train spirals --out DIR --steps N --save-every 1 [--resume]` with both
 * output streams in out_log. fsize_limit > 0 caps the size of any file it writes (SIGXFSZ
 * ignored, so a write past it fails with EFBIG instead of killing the process). */
static pid_t start_training(long steps, int resume, rlim_t fsize_limit) {
  char steps_text[32];
  snprintf(steps_text, sizeof steps_text, "%ld", steps);
  char *argv[] = { exe, "train", "spirals", "--out", run_dir, "--steps", steps_text, "--save-every", "1",
                   "--device", (char *)test_device_select(), resume ? "--resume" : NULL, NULL };
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_msg(pid >= 0, "fork failed");
  if (pid == 0) {
    int fd = open(out_log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) _exit(126);
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
    if (fsize_limit > 0) {
      signal(SIGXFSZ, SIG_IGN);
      struct rlimit rl = { fsize_limit, fsize_limit };
      if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(126);
    }
    execv(exe, argv);
    _exit(127);
  }
  return pid;
}

static int wait_status(pid_t pid) {
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  return st;
}

/* The step of the checkpoint, loaded through the model's loader (which checks every tensor). */
static int64_t checkpoint_step(void) {
  ut_runtime *rt = test_runtime();
  spirals_cfg cfg;
  ck_assert_ut_ok(spirals_read_config(rt, ckpt, &cfg));
  spirals_trainer *t = spirals_new(rt, &cfg);
  ck_assert_ut_ptr(t);
  ck_assert_ut_ok(spirals_load(t, ckpt));
  int64_t step = spirals_step(t);
  spirals_free(t);
  return step;
}

/* Removes the temporary files a killed write leaves next to the checkpoint; returns how many. */
static int remove_leftovers(void) {
  DIR *d = opendir(run_dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (!strstr(e->d_name, ".tmp-")) continue;
    char path[PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/%s", run_dir, e->d_name);
    ck_assert_int_eq(unlink(path), 0);
    n++;
  }
  closedir(d);
  return n;
}

/* The run folder and the log, once a test has passed. */
static void cleanup(void) {
  remove_leftovers();
  unlink(ckpt);
  rmdir(run_dir);
  unlink(out_log);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_for(double seconds) {
  struct timespec ts = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* Whether a checkpoint write is under way: its temporary file exists next to the checkpoint. */
static int writing(void) {
  DIR *d = opendir(run_dir);
  int found = 0;
  for (struct dirent *e; d && !found && (e = readdir(d));) found = strstr(e->d_name, ".tmp-") != NULL;
  if (d) closedir(d);
  return found;
}

/* Waits until a checkpoint write of run `pid` is under way, for at most `limit` seconds. */
static void wait_for_write(pid_t pid, double limit) {
  for (double t0 = now(); now() - t0 < limit && !writing();)
    if (waitpid(pid, NULL, WNOHANG) == pid) ck_abort_msg("a run ended before it was killed:\n%s", log_tail());
}

START_TEST(test_sigkill_at_random_moments) {
  setup();
  /* A first checkpoint (building the programs when the cache is cold), then the time a resumed
   * run of 10 steps takes from start to exit sets the range of the kill moments. */
  int st = wait_status(start_training(10, 0, 0));
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the first run failed:\n%s", log_tail());
  double t0 = now();
  st = wait_status(start_training(20, 1, 0));
  double run_time = now() - t0;
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "resuming failed:\n%s", log_tail());
  int64_t step = checkpoint_step();
  ck_assert_int_eq(step, 20);

  uint64_t rng = 20240607;
  int killed = 0, during_write = 0;
  for (int i = 0; i < KILLS; i++) {
    /* Far more steps than it can reach: the run is always killed, or fails. Every other kill
     * comes at a random moment of the run; the others as soon as a write is seen under way,
     * since a write is a short part of a step (the parameters are read back from the device
     * before the file is opened) and random moments alone seldom meet one. */
    pid_t pid = start_training(1000000, 1, 0);
    float u;
    test_fill_uniform(&rng, &u, 1, 0.0f, 1.0f);
    if (i % 2) wait_for_write(pid, 60 + 10 * run_time);
    else sleep_for(0.05 + (double)u * 1.5 * run_time);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    st = wait_status(pid);
    ck_assert_msg(WIFSIGNALED(st), "run %d ended before it was killed (status %d):\n%s", i, st, log_tail());
    killed++;
    during_write += remove_leftovers() > 0;
    int64_t now_step = checkpoint_step();
    ck_assert_msg(now_step >= step, "run %d: the checkpoint went back from step %lld to %lld", i, (long long)step,
                  (long long)now_step);
    step = now_step;
  }
  /* The last checkpoint resumes and the run finishes. */
  st = wait_status(start_training(step + 3, 1, 0));
  char *log = cli_slurp(out_log, NULL);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "resuming after the kills failed:\n%s", log);
  char resumed[64];
  snprintf(resumed, sizeof resumed, "at step %lld", (long long)step);
  assert_contains(log, resumed);
  free(log);
  ck_assert_int_eq(checkpoint_step(), step + 3);
  ck_assert_int_eq(killed, KILLS);
  fprintf(stderr, "crash safety: %d kills, %d of them during a checkpoint write, last checkpoint at step %lld\n",
          killed, during_write, (long long)step);
  ck_assert_msg(during_write > 0, "no kill landed inside a checkpoint write");
  cleanup();
}
END_TEST

START_TEST(test_disk_full_keeps_previous_checkpoint) {
  setup();
  int st = wait_status(start_training(5, 0, 0));
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the first run failed:\n%s", log_tail());
  remove_leftovers();
  size_t before_len, after_len;
  char *before = cli_slurp(ckpt, &before_len);
  /* Any file above 4 KiB fails: the checkpoint is about 54 KiB. */
  st = wait_status(start_training(10, 1, 4096));
  char *log = cli_slurp(out_log, NULL);
  ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "a run on a full disk exited with status %d:\n%s", st, log);
  assert_contains(log, "cannot write the checkpoint");
  assert_contains(log, "File too large");
  assert_contains(log, ckpt);
  char *after = cli_slurp(ckpt, &after_len);
  ck_assert_msg(after_len == before_len && memcmp(before, after, before_len) == 0,
                "the previous checkpoint changed after a failed write");
  ck_assert_int_eq(remove_leftovers(), 0); /* the failed write cleaned up after itself */
  ck_assert_int_eq(checkpoint_step(), 5);
  free(before);
  free(after);
  free(log);
  cleanup();
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("crash_safety");
  TCase *tc = tcase_create("crash_safety");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_sigkill_at_random_moments);
  tcase_add_test(tc, test_disk_full_keeps_previous_checkpoint);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(suite()); }
