/* Host work split over threads (host_threads.h). */
#include "host_threads.h"

#include <pthread.h>

enum { MAX_THREADS = 64 };

typedef struct {
  int (*fn)(void *ctx, int64_t lo, int64_t hi);
  void *ctx;
  int64_t lo, hi;
  int failed;
} share;

static void *run_share(void *arg) {
  share *s = arg;
  s->failed = s->fn(s->ctx, s->lo, s->hi);
  return NULL;
}

int ut_host_parallel(int threads, int64_t items, int (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx) {
  if (threads > items) threads = (int)items;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  if (threads < 1) threads = 1;
  share shares[MAX_THREADS];
  pthread_t tid[MAX_THREADS];
  int started[MAX_THREADS] = { 0 };
  for (int t = 0; t < threads; t++) {
    shares[t] = (share){ fn, ctx, items * t / threads, items * (t + 1) / threads, 0 };
    if (t < threads - 1) started[t] = pthread_create(&tid[t], NULL, run_share, &shares[t]) == 0;
  }
  int failed = 0;
  for (int t = 0; t < threads; t++)
    if (!started[t]) run_share(&shares[t]);
  for (int t = 0; t < threads; t++) {
    if (started[t]) pthread_join(tid[t], NULL);
    failed |= shares[t].failed;
  }
  return failed;
}
