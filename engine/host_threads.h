/* Splitting host work over threads (host code of CPU devices: the host convolution). */
#ifndef UT_HOST_THREADS_H
#define UT_HOST_THREADS_H

#include <stdint.h>

/* Runs fn(ctx, lo, hi) over `items` items in up to `threads` contiguous shares: the first ones
 * on worker threads kept from call to call, the last on the calling thread (and the shares of
 * any worker that cannot start, or of every worker while another call is using them: then the
 * caller runs all its shares in turn). fn returns 0, or nonzero on a failure; the result is
 * nonzero when any share failed. Each item must have its own output, so the results do not
 * depend on the number of threads or on which thread runs a share. */
int ut_host_parallel(int threads, int64_t items, int (*fn)(void *ctx, int64_t lo, int64_t hi), void *ctx);

#endif
