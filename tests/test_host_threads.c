/* The host thread split (engine/host_threads.c): every item runs once in its share at any
 * thread count, a failing share is reported, the threads are kept and reused between calls,
 * and the calls that cannot use the kept threads still finish: one made from inside a share,
 * two made at once from two threads, and one made in a process forked after the threads were
 * started (fork copies only the calling thread). The suite needs no OpenCL device.
 * Those three run in a forked child with an alarm (expect_in_child). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host_threads.h"
#include "test_support.h"

enum { MAX_ITEMS = 256, ALARM_S = 30 };

typedef struct {
  int hits[MAX_ITEMS];
  int64_t fail_at; /* a share holding this item reports a failure (-1: none) */
  long tid[MAX_ITEMS];
} record;

static int count_items(void *ctx, int64_t lo, int64_t hi) {
  record *r = ctx;
  int failed = 0;
  for (int64_t i = lo; i < hi; i++) {
    r->hits[i]++;
    r->tid[i] = (long)syscall(SYS_gettid);
    failed |= i == r->fail_at;
  }
  return failed;
}

/* Runs count_items over `items` on `threads` threads; returns ut_host_parallel's result and
 * checks every item ran exactly once. */
static int run_and_check(record *r, int threads, int64_t items) {
  memset(r->hits, 0, sizeof r->hits);
  int failed = ut_host_parallel(threads, items, count_items, r);
  for (int64_t i = 0; i < items; i++)
    ck_assert_msg(r->hits[i] == 1, "%d threads, %ld items: item %ld ran %d times", threads, (long)items, (long)i, r->hits[i]);
  return failed;
}

START_TEST(test_every_item_runs_once) {
  static const int64_t item_counts[] = { 1, 2, 3, 7, 64, 255 };
  record r = { .fail_at = -1 };
  for (int threads = 1; threads <= 6; threads++)
    for (size_t k = 0; k < sizeof item_counts / sizeof *item_counts; k++)
      ck_assert_int_eq(run_and_check(&r, threads, item_counts[k]), 0);
}
END_TEST

START_TEST(test_a_failing_share_is_reported) {
  record r = { .fail_at = 0 };
  for (int threads = 1; threads <= 4; threads++)
    for (int64_t at = 0; at < 10; at += 3) {
      r.fail_at = at;
      ck_assert_msg(run_and_check(&r, threads, 10) != 0, "%d threads: the failure at item %ld was not reported", threads,
                    (long)at);
    }
}
END_TEST

/* Two shares, 40 calls: the first share runs on a kept worker, so on the same thread every
 * time, and never on the caller's. (With a thread started per call, each call's first share
 * had a new thread id.) */
START_TEST(test_threads_are_kept_between_calls) {
  record r = { .fail_at = -1 };
  const long caller = (long)syscall(SYS_gettid);
  long first = 0;
  for (int call = 0; call < 40; call++) {
    ck_assert_int_eq(run_and_check(&r, 2, 2), 0);
    ck_assert_msg(r.tid[0] != caller, "call %d: the first share ran on the calling thread", call);
    ck_assert_msg(r.tid[1] == caller, "call %d: the last share did not run on the calling thread", call);
    if (call == 0) first = r.tid[0];
    ck_assert_msg(r.tid[0] == first, "call %d: the first share ran on thread %ld, not the kept %ld", call, r.tid[0], first);
  }
}
END_TEST

/* Runs body in a forked child with an alarm, and fails unless it returns NULL in time. A call
 * that waits for a worker that never comes hangs rather than fails; the child's alarm turns
 * that into a failure here. (Not an alarm in this process: Check's own SIGALRM handler kills
 * the whole process group.) */
static void expect_in_child(const char *(*body)(void), const char *what) {
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_msg(pid >= 0, "fork failed");
  if (pid == 0) {
    signal(SIGALRM, SIG_DFL);
    alarm(ALARM_S);
    const char *err = body();
    if (err) fprintf(stderr, "%s: %s\n", what, err);
    _exit(err ? 1 : 0);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(!WIFSIGNALED(status) || WTERMSIG(status) != SIGALRM, "%s: still waiting after %d s", what, ALARM_S);
  ck_assert_msg(WIFEXITED(status), "%s: the child died by signal %d", what, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  ck_assert_msg(WEXITSTATUS(status) == 0, "%s: failed (its message is above)", what);
}

/* Every item of `r` over `items` ran exactly once, else what went wrong. */
static const char *each_once(const record *r, int items) {
  for (int i = 0; i < items; i++)
    if (r->hits[i] != 1) return "an item did not run exactly once";
  return NULL;
}

/* A share that splits its own items: the inner call finds the threads in use and runs its
 * shares on the share's own thread. */
static record inner[4];

static int split_again(void *ctx, int64_t lo, int64_t hi) {
  (void)ctx;
  int failed = 0;
  for (int64_t i = lo; i < hi; i++) {
    inner[i].fail_at = -1;
    memset(inner[i].hits, 0, sizeof inner[i].hits);
    failed |= ut_host_parallel(3, 50, count_items, &inner[i]);
  }
  return failed;
}

static const char *nested_call(void) {
  if (ut_host_parallel(2, 4, split_again, NULL)) return "a share failed";
  for (int s = 0; s < 4; s++)
    if (each_once(&inner[s], 50)) return each_once(&inner[s], 50);
  return NULL;
}

START_TEST(test_a_call_from_inside_a_share_finishes) { expect_in_child(nested_call, "a call from inside a share"); }
END_TEST

static void *call_repeatedly(void *arg) {
  record *r = arg;
  for (int call = 0; call < 200; call++) {
    memset(r->hits, 0, sizeof r->hits);
    if (ut_host_parallel(2, 100, count_items, r)) return "a share failed";
    if (each_once(r, 100)) return (void *)each_once(r, 100);
  }
  return NULL;
}

static const char *two_callers(void) {
  static record r[2];
  r[0].fail_at = r[1].fail_at = -1;
  pthread_t other;
  if (pthread_create(&other, NULL, call_repeatedly, &r[1]) != 0) return "cannot start a second thread";
  const char *mine = call_repeatedly(&r[0]);
  void *theirs;
  if (pthread_join(other, &theirs) != 0) return "cannot join the second thread";
  return mine ? mine : theirs;
}

START_TEST(test_calls_from_two_threads_at_once_finish) { expect_in_child(two_callers, "calls from two threads at once"); }
END_TEST

/* The parent has started its workers; the child has none of them and must still split work
 * over two threads. */
static const char *split_in_child(void) {
  static record r = { .fail_at = -1 };
  for (int call = 0; call < 20; call++) {
    memset(r.hits, 0, sizeof r.hits);
    if (ut_host_parallel(2, 8, count_items, &r)) return "a share failed";
    if (each_once(&r, 8)) return each_once(&r, 8);
  }
  return NULL;
}

START_TEST(test_a_forked_child_can_split_work) {
  record r = { .fail_at = -1 };
  ck_assert_int_eq(run_and_check(&r, 2, 8), 0);
  expect_in_child(split_in_child, "a child forked after the workers started");
  ck_assert_int_eq(run_and_check(&r, 2, 8), 0); /* and the parent's workers still serve it */
}
END_TEST

int main(void) {
  Suite *s = suite_create("host_threads");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_every_item_runs_once);
  tcase_add_test(tc, test_a_failing_share_is_reported);
  tcase_add_test(tc, test_threads_are_kept_between_calls);
  tcase_add_test(tc, test_a_call_from_inside_a_share_finishes);
  tcase_add_test(tc, test_calls_from_two_threads_at_once_finish);
  tcase_add_test(tc, test_a_forked_child_can_split_work);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
