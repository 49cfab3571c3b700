/* The progress line. */
#include "progress.h"

#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "untangle.h"

void progress_begin(progress *p, FILE *out, const char *label, int64_t first, int64_t total) {
  memset(p, 0, sizeof *p);
  p->out = out;
  p->tty = isatty(fileno(out));
  snprintf(p->label, sizeof p->label, "%s", label);
  p->first = first;
  p->total = total;
  p->last_step = -1;
  p->next_line = first + 1;
  p->start = ut_seconds();
}

double progress_elapsed(const progress *p) { return ut_seconds() - p->start; }

#define MIN_RATE_SECONDS 0.001

static void format_duration(double s, char *buf, size_t size) {
  if (!(s >= 0) || s > 1e7) {
    snprintf(buf, size, "?");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else
    snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

static void draw(progress *p, int64_t step, const char *metrics, double now, int final) {
  double elapsed = now - p->start;
  /* Nothing to divide before a step after `first` has been timed (the trainers start the clock
   * at their first step, which once showed as 164446.6 steps/s), nor over a few microseconds. */
  double rate = elapsed >= MIN_RATE_SECONDS ? (double)(step - p->first) / elapsed : 0;
  char eta[32], took[32], speed[32];
  format_duration(rate > 0 ? (double)(p->total - step) / rate : -1, eta, sizeof eta);
  format_duration(elapsed, took, sizeof took);
  if (rate > 0) snprintf(speed, sizeof speed, "%.1f", rate);
  else snprintf(speed, sizeof speed, "?");
  /* \r and "erase to end of line" redraw in place; a file gets whole lines instead. */
  fprintf(p->out, "%s%s step %lld/%lld  %s  %s steps/s  %s %s%s", p->tty ? "\r" : "", p->label, (long long)step,
          (long long)p->total, metrics ? metrics : "", speed, final ? "took" : "ETA", final ? took : eta,
          p->tty ? "\033[K" : "\n");
  if (p->tty && final) fputc('\n', p->out);
  fflush(p->out);
  p->last_step = step;
  p->last_draw = now;
}

void progress_update(progress *p, int64_t step, const char *metrics) {
  double now = ut_seconds();
  if (p->tty) {
    if (now - p->last_draw >= 0.1) draw(p, step, metrics, now, 0);
    return;
  }
  if (step >= p->next_line && step < p->total) {
    draw(p, step, metrics, now, 0);
    int64_t tenth = (p->total - p->first) / 10;
    while (p->next_line <= step) p->next_line += tenth > 0 ? tenth : 1;
  }
}

void progress_end(progress *p, int64_t step, const char *metrics) { draw(p, step, metrics, ut_seconds(), 1); }
