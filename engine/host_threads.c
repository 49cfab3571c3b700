/* Host work split over threads (host_threads.h).
 *
 * The threads are kept for the life of the process and woken for each call, instead of being
 * created per call. A thread created per call starts on the creating thread's core and can wait
 * there, behind the caller's own share, while the other core idles: `perf sched timehist` of
 * LORD's L1 step on 2 cores showed a new thread waiting 3.7 ms for the caller's core while the
 * other one was idle for 11 ms, and the direct convolution's shares took 8-10 ms of wall time
 * for 4.3-4.5 ms of CPU time (benchmarks/README.md, "Host threads kept between calls"). A
 * sleeping thread that is woken is placed on an idle core by the scheduler's wake-up path.
 *
 * One call at a time uses the kept threads. A call made while another one does (a share that
 * splits its own work, or two runtimes used from two threads) runs its shares one after the
 * other on its own thread: the same shares, so the same results. */
#include "host_threads.h"

#include <pthread.h>

enum { MAX_THREADS = 64 };

typedef struct {
  int (*fn)(void *ctx, int64_t lo, int64_t hi);
  void *ctx;
  int64_t lo, hi;
  int failed;
} share;

static void run_share(share *s) { s->failed = s->fn(s->ctx, s->lo, s->hi); }

static struct {
  pthread_mutex_t busy;       /* held by the call that uses the workers */
  pthread_mutex_t lock;       /* guards the fields below */
  pthread_cond_t wake, done;  /* a new round for the workers; the round's last share done */
  int workers;                /* started so far; worker i takes shares[i] when i < active */
  unsigned long round;        /* counts the calls; a worker runs when it changes */
  int active, pending;        /* this round's workers, and those of them still running */
  share *shares;
  unsigned long first_round[MAX_THREADS]; /* the round when worker i started: it waits for the next */
  int atfork_set;
} pool = { .busy = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER,
           .done = PTHREAD_COND_INITIALIZER };

static void *worker(void *arg) {
  const int index = (int)(intptr_t)arg;
  pthread_mutex_lock(&pool.lock);
  unsigned long seen = pool.first_round[index];
  for (;;) {
    while (pool.round == seen) pthread_cond_wait(&pool.wake, &pool.lock);
    seen = pool.round;
    if (index >= pool.active) continue;
    share *s = &pool.shares[index];
    pthread_mutex_unlock(&pool.lock);
    run_share(s);
    pthread_mutex_lock(&pool.lock);
    if (--pool.pending == 0) pthread_cond_signal(&pool.done);
  }
  return NULL;
}

/* fork() copies only the calling thread: the child starts with no workers. The pool is held
 * across the fork so that its locks are free and its counts true in both processes. */
static void before_fork(void) {
  pthread_mutex_lock(&pool.busy);
  pthread_mutex_lock(&pool.lock);
}
static void after_fork_parent(void) {
  pthread_mutex_unlock(&pool.lock);
  pthread_mutex_unlock(&pool.busy);
}
static void after_fork_child(void) {
  pool.workers = 0;
  pthread_cond_init(&pool.wake, NULL);
  pthread_cond_init(&pool.done, NULL);
  pthread_mutex_unlock(&pool.lock);
  pthread_mutex_unlock(&pool.busy);
}

/* Starts workers until there are `wanted` (called holding busy, not lock; a worker that
 * cannot start leaves its shares to the caller). A worker may first take the lock after the
 * round it was started for has begun, so it is told that round instead of reading it. */
static void start_workers(int wanted) {
  if (!pool.atfork_set) pool.atfork_set = pthread_atfork(before_fork, after_fork_parent, after_fork_child) == 0;
  if (!pool.atfork_set) return; /* without the handlers a forked child could wait for workers it lacks */
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  while (pool.workers < wanted) {
    pthread_t tid;
    pool.first_round[pool.workers] = pool.round;
    if (pthread_create(&tid, &attr, worker, (void *)(intptr_t)pool.workers) != 0) break;
    pthread_mutex_lock(&pool.lock);
    pool.workers++;
    pthread_mutex_unlock(&pool.lock);
  }
  pthread_attr_destroy(&attr);
}

int ut_host_parallel(int threads, int64_t items, int (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx) {
  if (threads > items) threads = (int)items;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  if (threads < 1) threads = 1;
  share shares[MAX_THREADS];
  for (int t = 0; t < threads; t++) shares[t] = (share){ fn, ctx, items * t / threads, items * (t + 1) / threads, 0 };
  int helpers = 0;
  const int own_pool = threads > 1 && pthread_mutex_trylock(&pool.busy) == 0;
  if (own_pool) {
    start_workers(threads - 1);
    helpers = pool.workers < threads - 1 ? pool.workers : threads - 1;
    pthread_mutex_lock(&pool.lock);
    pool.shares = shares;
    pool.active = pool.pending = helpers;
    pool.round++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
  }
  for (int t = helpers; t < threads; t++) run_share(&shares[t]);
  if (own_pool) {
    pthread_mutex_lock(&pool.lock);
    while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool.busy);
  }
  int failed = 0;
  for (int t = 0; t < threads; t++) failed |= shares[t].failed;
  return failed;
}
