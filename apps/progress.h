/* The training progress line on stderr: step / total, the caller's metrics, steps per second
 * and the time left. On a terminal one line is redrawn in place (at most ten times a second);
 * into a file or pipe a line is written every tenth of the run, so logs stay short. */
#ifndef UNTANGLE_APPS_PROGRESS_H
#define UNTANGLE_APPS_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
  FILE *out;
  int tty;
  char label[64];
  int64_t first, total;  /* the step this run started at, and the step it ends at */
  int64_t last_step;     /* the step of the last line written */
  int64_t next_line;     /* not a terminal: the step of the next line */
  double start, last_draw;
} progress;

/* Starts timing. `first` is the step already done when timing starts (non-zero when resuming,
 * and the first step for a trainer that reports it before starting the clock, so that step's
 * plan compilation stays out of the rate): the rate and the time left count only steps after
 * it, and show '?' until there is one. Into a file the first line is the step after `first`. */
void progress_begin(progress *p, FILE *out, const char *label, int64_t first, int64_t total);

/* Reports that `step` steps are done; `metrics` ("loss 0.0123") goes into the line as is. */
void progress_update(progress *p, int64_t step, const char *metrics);

/* Writes the final line (and ends the terminal line). */
void progress_end(progress *p, int64_t step, const char *metrics);

/* Seconds since progress_begin. */
double progress_elapsed(const progress *p);

#endif
