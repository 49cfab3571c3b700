/* Chunked inference over a fixed-size plan (kit_infer.h). */
#include <stdlib.h>
#include <string.h>

#include "kit_infer.h"

static int64_t per_sample(const ut_tensor *t) {
  ut_shape s = ut_tensor_shape(t);
  return ut_shape_numel(s) / s.d[0];
}

ut_status kit_infer_compile(kit_infer *f) {
  ut_status st = ut_graph_status(f->g);
  if (st != UT_OK) return st;
  int64_t chunk = ut_tensor_shape(f->in[0]).d[0];
  for (int i = 0; i < f->n_in + f->n_out; i++) {
    ut_tensor *t = i < f->n_in ? f->in[i] : f->out[i - f->n_in];
    if (ut_tensor_shape(t).d[0] != chunk)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "inference plan: '%s' has %lld samples, the first input %lld",
                     ut_tensor_name(t), (long long)ut_tensor_shape(t).d[0], (long long)chunk);
  }
  f->p = ut_plan_compile(f->g, &(ut_plan_cfg){ .outputs = f->out, .n_outputs = f->n_out });
  return f->p ? UT_OK : UT_ERR_STATE;
}

int kit_infer_ready(const kit_infer *f) { return f->p != NULL; }

ut_status kit_infer_run(kit_infer *f, const float *const *in, float *const *out, int64_t n) {
  int64_t chunk = ut_tensor_shape(f->in[0]).d[0];
  float *buf[KIT_INFER_MAX] = { 0 }, *res[KIT_INFER_MAX] = { 0 };
  int64_t in_size[KIT_INFER_MAX], out_size[KIT_INFER_MAX];
  ut_status st = UT_OK;
  for (int i = 0; i < f->n_in; i++) {
    in_size[i] = per_sample(f->in[i]);
    if (!(buf[i] = malloc((size_t)(chunk * in_size[i]) * sizeof(float)))) st = UT_ERR_HOST_MEMORY;
  }
  for (int i = 0; i < f->n_out; i++) {
    out_size[i] = per_sample(f->out[i]);
    if (!(res[i] = malloc((size_t)(chunk * out_size[i]) * sizeof(float)))) st = UT_ERR_HOST_MEMORY;
  }
  if (st != UT_OK) ut_fail(st, "out of host memory for inference buffers");
  for (int64_t at = 0; st == UT_OK && at < n; at += chunk) {
    int64_t take = n - at < chunk ? n - at : chunk;
    for (int i = 0; st == UT_OK && i < f->n_in; i++) {
      memcpy(buf[i], in[i] + at * in_size[i], (size_t)(take * in_size[i]) * sizeof(float));
      for (int64_t k = take; k < chunk; k++) memcpy(buf[i] + k * in_size[i], buf[i], (size_t)in_size[i] * sizeof(float));
      st = ut_upload(f->p, f->in[i], buf[i]);
    }
    if (st == UT_OK) st = ut_plan_run(f->p);
    for (int i = 0; st == UT_OK && i < f->n_out; i++) {
      if (!out[i]) continue;
      if ((st = ut_read(f->p, f->out[i], res[i])) == UT_OK)
        memcpy(out[i] + at * out_size[i], res[i], (size_t)(take * out_size[i]) * sizeof(float));
    }
  }
  for (int i = 0; i < KIT_INFER_MAX; i++) {
    free(buf[i]);
    free(res[i]);
  }
  return st;
}

void kit_infer_free(kit_infer *f) {
  ut_plan_free(f->p);
  ut_graph_free(f->g);
  *f = (kit_infer){ 0 };
}
