/* Inference over any number of samples with a plan compiled for a fixed chunk: the caller
 * builds a graph whose inputs and outputs all have the chunk as their first dimension, and
 * kit_infer_run feeds it chunk by chunk (the last one padded with copies of its first
 * sample, whose results are dropped).
 *
 *   kit_infer f = { .g = ut_graph_new(rt, st) };
 *   f.in[0] = ut_input(f.g, "images", UT_F32, UT_SHAPE(16, 3, 32, 32)); f.n_in = 1;
 *   f.out[0] = my_network(f.g, f.in[0]);                                f.n_out = 1;
 *   kit_infer_compile(&f);
 *   kit_infer_run(&f, (const float *[]){ images }, (float *[]){ out }, n);
 *   kit_infer_free(&f);
 */
#ifndef UNTANGLE_MODELS_KIT_INFER_H
#define UNTANGLE_MODELS_KIT_INFER_H

#include "untangle.h"

#define KIT_INFER_MAX 4

typedef struct {
  ut_graph *g;
  ut_plan *p;
  ut_tensor *in[KIT_INFER_MAX], *out[KIT_INFER_MAX];
  int n_in, n_out;
} kit_infer;

/* Compiles the plan (outputs kept). The graph's error, or UT_ERR_INVALID_ARGUMENT when the
 * inputs and outputs disagree on the chunk. */
ut_status kit_infer_compile(kit_infer *f);
/* Whether it is compiled. */
int kit_infer_ready(const kit_infer *f);
/* Runs n samples: in[i] holds n samples of input i, out[j] receives n of output j (NULL:
 * not read). */
ut_status kit_infer_run(kit_infer *f, const float *const *in, float *const *out, int64_t n);
void kit_infer_free(kit_infer *f);

#endif
