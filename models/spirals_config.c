/* The spirals configuration: defaults, checks, and its JSON form in checkpoint metadata. One
 * table of fields drives writing, reading and comparing, so a new setting is one line. */
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spirals.h"
#include "spirals_internal.h"

typedef enum { FIELD_I64, FIELD_INT, FIELD_F32, FIELD_SEED, FIELD_ACT } field_kind;

static const struct {
  const char *name;
  field_kind kind;
  size_t offset;
} fields[] = {
  { "n_train", FIELD_I64, offsetof(spirals_cfg, n_train) },
  { "n_test", FIELD_I64, offsetof(spirals_cfg, n_test) },
  { "batch", FIELD_I64, offsetof(spirals_cfg, batch) },
  { "turns", FIELD_F32, offsetof(spirals_cfg, turns) },
  { "noise", FIELD_F32, offsetof(spirals_cfg, noise) },
  { "depth", FIELD_INT, offsetof(spirals_cfg, depth) },
  { "width", FIELD_I64, offsetof(spirals_cfg, width) },
  { "activation", FIELD_ACT, offsetof(spirals_cfg, act) },
  { "lr", FIELD_F32, offsetof(spirals_cfg, lr) },
  { "seed", FIELD_SEED, offsetof(spirals_cfg, seed) },
};
enum { field_count = (int)(sizeof fields / sizeof fields[0]) };

spirals_cfg spirals_default_cfg(void) {
  return (spirals_cfg){
    .n_train = 512,
    .n_test = 512,
    .batch = 0,
    .turns = 1.5f,
    .noise = 0.03f,
    .depth = 2,
    .width = 64,
    .act = MLP_ACT_TANH,
    .lr = 0.01f,
    .seed = 1,
  };
}

ut_status spirals_cfg_check(const spirals_cfg *cfg) {
  if (!cfg) return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals: no configuration");
  if (cfg->n_train < 2 || cfg->n_train % 2 || cfg->n_test < 2 || cfg->n_test % 2)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals: %lld training and %lld test points: expected even counts of at least 2",
                   (long long)cfg->n_train, (long long)cfg->n_test);
  if (cfg->batch < 0) return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals: batch %lld: expected 0 (full) or more", (long long)cfg->batch);
  if (!(cfg->turns > 0 && cfg->turns <= 100))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals: %g turns: expected more than 0 and at most 100", (double)cfg->turns);
  if (!(cfg->noise >= 0 && cfg->noise <= 10))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals: noise %g: expected 0 to 10", (double)cfg->noise);
  if (cfg->depth < 1 || cfg->depth > MLP_MAX_LAYERS - 1)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals: depth %d: expected 1 to %d hidden layers", cfg->depth, MLP_MAX_LAYERS - 1);
  if (cfg->width < 1 || cfg->width > 65536)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals: width %lld: expected 1 to 65536", (long long)cfg->width);
  if (!mlp_activation_name(cfg->act)) return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals: unknown activation %d", (int)cfg->act);
  if (!(cfg->lr > 0 && isfinite(cfg->lr)))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals: learning rate %g: expected a positive number", (double)cfg->lr);
  /* JSON integers are signed 64-bit, and the checkpoint keeps the seed as one. */
  if (cfg->seed > (uint64_t)INT64_MAX)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "spirals: seed %llu: expected at most %lld", (unsigned long long)cfg->seed,
                   (long long)INT64_MAX);
  return UT_OK;
}

mlp_cfg spirals_mlp_cfg(const spirals_cfg *cfg) {
  mlp_cfg m = { .prefix = "spirals.mlp", .n_hidden = cfg->depth, .out_features = 1, .hidden_act = cfg->act,
                .output_act = MLP_ACT_TANH };
  for (int i = 0; i < cfg->depth && i < MLP_MAX_LAYERS - 1; i++) m.hidden[i] = cfg->width;
  return m;
}

static size_t field_size(field_kind kind) {
  switch (kind) {
  case FIELD_I64: return sizeof(int64_t);
  case FIELD_INT: return sizeof(int);
  case FIELD_F32: return sizeof(float);
  case FIELD_SEED: return sizeof(uint64_t);
  case FIELD_ACT: return sizeof(mlp_activation);
  }
  return 0;
}

static void *field_ptr(spirals_cfg *cfg, int i) { return (char *)cfg + fields[i].offset; }
static const void *field_cptr(const spirals_cfg *cfg, int i) { return (const char *)cfg + fields[i].offset; }

/* The field as text, for messages: floats with enough digits to tell two apart. */
static void field_text(const spirals_cfg *cfg, int i, char *buf, size_t size) {
  const void *p = field_cptr(cfg, i);
  switch (fields[i].kind) {
  case FIELD_I64: snprintf(buf, size, "%lld", (long long)*(const int64_t *)p); break;
  case FIELD_INT: snprintf(buf, size, "%d", *(const int *)p); break;
  case FIELD_F32: snprintf(buf, size, "%.9g", (double)*(const float *)p); break;
  case FIELD_SEED: snprintf(buf, size, "%llu", (unsigned long long)*(const uint64_t *)p); break;
  case FIELD_ACT: {
    const char *name = mlp_activation_name(*(const mlp_activation *)p);
    snprintf(buf, size, "%s", name ? name : "?");
    break;
  }
  }
}

/* The shortest decimal that reads back as f, so the file says "lr": 0.01 rather than
 * 0.0099999997764825821; 9 significant digits always suffice for a float. */
static double shortest_decimal(float f) {
  char buf[32];
  for (int digits = 1; digits < 9; digits++) {
    snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
    if ((float)strtod(buf, NULL) == f) return strtod(buf, NULL);
  }
  return (double)f;
}

char *spirals_cfg_to_json(const spirals_cfg *cfg) {
  json_t *obj = json_object();
  if (!obj) return NULL;
  for (int i = 0; i < field_count; i++) {
    const void *p = field_cptr(cfg, i);
    json_t *v = NULL;
    switch (fields[i].kind) {
    case FIELD_I64: v = json_integer((json_int_t)*(const int64_t *)p); break;
    case FIELD_INT: v = json_integer(*(const int *)p); break;
    case FIELD_F32: v = json_real(shortest_decimal(*(const float *)p)); break;
    case FIELD_SEED: v = json_integer((json_int_t)*(const uint64_t *)p); break;
    case FIELD_ACT: v = json_string(mlp_activation_name(*(const mlp_activation *)p)); break;
    }
    if (!v || json_object_set_new(obj, fields[i].name, v) != 0) {
      json_decref(obj);
      return NULL;
    }
  }
  char *text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
  json_decref(obj);
  return text;
}

ut_status spirals_cfg_from_json(const char *text, spirals_cfg *out) {
  json_error_t err;
  json_t *obj = json_loads(text, 0, &err);
  if (!obj || !json_is_object(obj)) {
    json_decref(obj);
    return ut_fail(UT_ERR_FORMAT, "spirals.config is not a JSON object (%s)", obj ? "another JSON value" : err.text);
  }
  spirals_cfg cfg = spirals_default_cfg();
  ut_status s = UT_OK;
  for (int i = 0; i < field_count && s == UT_OK; i++) {
    json_t *v = json_object_get(obj, fields[i].name);
    void *p = field_ptr(&cfg, i);
    int ok = v != NULL;
    switch (fields[i].kind) {
    case FIELD_I64: ok = ok && json_is_integer(v); if (ok) *(int64_t *)p = json_integer_value(v); break;
    case FIELD_INT: ok = ok && json_is_integer(v); if (ok) *(int *)p = (int)json_integer_value(v); break;
    case FIELD_F32: ok = ok && json_is_number(v); if (ok) *(float *)p = (float)json_number_value(v); break;
    case FIELD_SEED: ok = ok && json_is_integer(v); if (ok) *(uint64_t *)p = (uint64_t)json_integer_value(v); break;
    case FIELD_ACT: {
      int act = ok && json_is_string(v) ? mlp_activation_parse(json_string_value(v)) : -1;
      ok = act >= 0;
      if (ok) *(mlp_activation *)p = (mlp_activation)act;
      break;
    }
    }
    if (!ok) s = ut_fail(UT_ERR_FORMAT, "spirals.config lacks a valid \"%s\"", fields[i].name);
  }
  json_decref(obj);
  if (s == UT_OK) *out = cfg;
  return s;
}

int spirals_cfg_diff(const spirals_cfg *a, const spirals_cfg *b, char *why, size_t size) {
  for (int i = 0; i < field_count; i++) {
    char ta[64], tb[64];
    field_text(a, i, ta, sizeof ta);
    field_text(b, i, tb, sizeof tb);
    /* Floats compare by their bits: "the same configuration" means the same computation. */
    if (memcmp(field_cptr(a, i), field_cptr(b, i), field_size(fields[i].kind)) != 0) {
      snprintf(why, size, "%s = %s, not %s", fields[i].name, ta, tb);
      return 1;
    }
  }
  return 0;
}
