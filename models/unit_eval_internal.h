/* Host-side helpers of UNIT's evaluation (unit_eval.c), kept here so tests can check them with
 * known numbers. They are static inline so a test can use them without linking the evaluation
 * (and through it the trainer). Images are float CHW with `pixels` pixels per channel and at
 * most 3 channels. */
#ifndef UNTANGLE_MODELS_UNIT_EVAL_INTERNAL_H
#define UNTANGLE_MODELS_UNIT_EVAL_INTERNAL_H

#include <math.h>
#include <stdint.h>

/* Below this a channel counts as flat: colour matching shifts it to the target mean. */
#define UNIT_EVAL_FLAT_STD 1e-6

/* Per-channel mean and (population) standard deviation of one image, two-pass in double. */
static inline void unit_eval_channel_stats(const float *chw, int channels, int64_t pixels, double *mean, double *std) {
  for (int c = 0; c < channels; c++) {
    const float *p = chw + (int64_t)c * pixels;
    double s = 0, v = 0;
    for (int64_t i = 0; i < pixels; i++) s += p[i];
    double mu = pixels > 0 ? s / (double)pixels : 0;
    for (int64_t i = 0; i < pixels; i++) v += ((double)p[i] - mu) * ((double)p[i] - mu);
    mean[c] = mu;
    std[c] = pixels > 0 ? sqrt(v / (double)pixels) : 0;
  }
}

/* The colour-matched baseline: each channel standardised by its own statistics and given the
 * target's, out = (x - mean) / std * target_std + target_mean, clamped to [0, 1] (pixels stay
 * pixels). A flat channel (std below UNIT_EVAL_FLAT_STD) becomes target_mean. */
static inline void unit_eval_colour_match(const float *chw, int channels, int64_t pixels, const double *target_mean,
                                          const double *target_std, float *out) {
  double mean[3], std[3];
  unit_eval_channel_stats(chw, channels, pixels, mean, std);
  for (int c = 0; c < channels; c++) {
    const float *p = chw + (int64_t)c * pixels;
    float *o = out + (int64_t)c * pixels;
    double gain = std[c] < UNIT_EVAL_FLAT_STD ? 0 : target_std[c] / std[c];
    for (int64_t i = 0; i < pixels; i++) {
      double v = ((double)p[i] - mean[c]) * gain + target_mean[c];
      o[i] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
    }
  }
}

/* Sum of |a - b| over n values, in double. */
static inline double unit_eval_l1_sum(const float *a, const float *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += fabs((double)a[i] - (double)b[i]);
  return s;
}

#endif
