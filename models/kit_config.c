/* Model configurations as a table of fields (kit_config.h): JSON out and in, comparison and
 * command-line overrides, all driven by the same rows. A value is first parsed into a
 * field_value and only copied into the caller's struct once every field has parsed, so a
 * refused JSON or override changes nothing. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kit_config.h"

typedef union {
  int i; /* INT and ENUM */
  int64_t i64;
  float f;
  uint64_t seed;
  char s[KIT_STRING_MAX];
} field_value;

static size_t field_size(kit_field_kind kind) {
  switch (kind) {
  case KIT_FIELD_INT:
  case KIT_FIELD_ENUM: return sizeof(int);
  case KIT_FIELD_I64: return sizeof(int64_t);
  case KIT_FIELD_F32: return sizeof(float);
  case KIT_FIELD_SEED: return sizeof(uint64_t);
  case KIT_FIELD_STRING: return KIT_STRING_MAX;
  }
  return 0;
}

static void value_load(const kit_field *f, const void *cfg, field_value *v) {
  memset(v, 0, sizeof *v);
  memcpy(v, (const char *)cfg + f->offset, field_size(f->kind));
  if (f->kind == KIT_FIELD_STRING) v->s[KIT_STRING_MAX - 1] = '\0';
}

static void value_store(const kit_field *f, void *cfg, const field_value *v) {
  memcpy((char *)cfg + f->offset, v, field_size(f->kind));
}

static const char *enum_name(const kit_field *f, int value) {
  if (!f->enum_names || value < 0) return NULL;
  for (int i = 0; f->enum_names[i]; i++)
    if (i == value) return f->enum_names[i];
  return NULL;
}

static int enum_parse(const kit_field *f, const char *name) {
  for (int i = 0; f->enum_names && f->enum_names[i]; i++)
    if (!strcmp(f->enum_names[i], name)) return i;
  return -1;
}

/* "one of a, b or c" */
static void enum_choices(const kit_field *f, char *buf, size_t size) {
  int n = 0;
  while (f->enum_names && f->enum_names[n]) n++;
  size_t used = (size_t)snprintf(buf, size, "one of ");
  for (int i = 0; i < n && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", f->enum_names[i]);
}

/* The shortest decimal that reads back as x: "lr":0.01 rather than 0.0099999997764825821. Nine
 * significant digits always suffice for a float. */
static double shortest_decimal(float x) {
  char buf[32];
  for (int digits = 1; digits < 9; digits++) {
    snprintf(buf, sizeof buf, "%.*g", digits, (double)x);
    if ((float)strtod(buf, NULL) == x) return strtod(buf, NULL);
  }
  return (double)x;
}

static void value_text(const kit_field *f, const field_value *v, char *buf, size_t size) {
  switch (f->kind) {
  case KIT_FIELD_INT: snprintf(buf, size, "%d", v->i); break;
  case KIT_FIELD_I64: snprintf(buf, size, "%lld", (long long)v->i64); break;
  case KIT_FIELD_F32: snprintf(buf, size, "%.9g", shortest_decimal(v->f)); break;
  case KIT_FIELD_SEED: snprintf(buf, size, "%llu", (unsigned long long)v->seed); break;
  case KIT_FIELD_ENUM: {
    const char *name = enum_name(f, v->i);
    if (name) snprintf(buf, size, "%s", name);
    else snprintf(buf, size, "%d (no name)", v->i);
    break;
  }
  case KIT_FIELD_STRING: snprintf(buf, size, "\"%s\"", v->s); break;
  }
}

/* A decimal unsigned 64-bit number: digits only, no sign, no spaces. */
static int parse_seed(const char *s, uint64_t *out) {
  if (!*s) return 0;
  uint64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return 0;
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10) return 0;
    v = v * 10 + d;
  }
  *out = v;
  return 1;
}

static const char *expected(const kit_field *f, char *buf, size_t size) {
  switch (f->kind) {
  case KIT_FIELD_INT: snprintf(buf, size, "a whole number from %d to %d", INT_MIN, INT_MAX); break;
  case KIT_FIELD_I64: snprintf(buf, size, "a whole number"); break;
  case KIT_FIELD_F32: snprintf(buf, size, "a finite number"); break;
  case KIT_FIELD_SEED: snprintf(buf, size, "a decimal number from 0 to %llu", (unsigned long long)UINT64_MAX); break;
  case KIT_FIELD_ENUM: enum_choices(f, buf, size); break;
  case KIT_FIELD_STRING: snprintf(buf, size, "text of at most %d bytes", KIT_STRING_MAX - 1); break;
  }
  return buf;
}

static const kit_field *find_field(const kit_config_table *t, const char *name) {
  for (int i = 0; i < t->n_fields; i++)
    if (!strcmp(t->fields[i].name, name)) return &t->fields[i];
  return NULL;
}

/* ---- JSON out ------------------------------------------------------------------------------------ */

static json_t *value_json(const kit_config_table *t, const kit_field *f, const field_value *v) {
  char buf[32];
  switch (f->kind) {
  case KIT_FIELD_INT: return json_integer(v->i);
  case KIT_FIELD_I64: return json_integer((json_int_t)v->i64);
  case KIT_FIELD_F32:
    if (!isfinite(v->f)) {
      ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %s is %g, which JSON cannot hold", t->what, f->name, (double)v->f);
      return NULL;
    }
    return json_real(shortest_decimal(v->f));
  case KIT_FIELD_SEED:
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v->seed);
    return json_string(buf);
  case KIT_FIELD_ENUM: {
    const char *name = enum_name(f, v->i);
    if (!name) ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %s is %d, which has no name", t->what, f->name, v->i);
    return name ? json_string(name) : NULL;
  }
  case KIT_FIELD_STRING: return json_string(v->s);
  }
  return NULL;
}

char *kit_config_to_json(const kit_config_table *t, const void *cfg) {
  json_t *obj = json_object();
  if (!obj) {
    ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", t->what);
    return NULL;
  }
  for (int i = 0; i < t->n_fields; i++) {
    field_value v;
    value_load(&t->fields[i], cfg, &v);
    json_t *j = value_json(t, &t->fields[i], &v);
    if (!j || json_object_set_new(obj, t->fields[i].name, j) != 0) {
      if (j) ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", t->what);
      json_decref(obj);
      return NULL;
    }
  }
  char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
  json_decref(obj);
  if (!text) ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", t->what);
  return text;
}

/* ---- JSON in ------------------------------------------------------------------------------------- */

static const char *json_kind(const json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a real number";
  case JSON_TRUE: return "true";
  case JSON_FALSE: return "false";
  case JSON_NULL: return "null";
  }
  return "?";
}

/* The field's value from JSON, or UT_ERR_FORMAT naming the field. */
static ut_status value_from_json(const kit_config_table *t, const kit_field *f, json_t *j, field_value *v) {
  char want[160];
  memset(v, 0, sizeof *v);
  int ok = 0;
  switch (f->kind) {
  case KIT_FIELD_INT:
    ok = json_is_integer(j) && json_integer_value(j) >= INT_MIN && json_integer_value(j) <= INT_MAX;
    if (ok) v->i = (int)json_integer_value(j);
    break;
  case KIT_FIELD_I64:
    ok = json_is_integer(j);
    if (ok) v->i64 = (int64_t)json_integer_value(j);
    break;
  case KIT_FIELD_F32:
    ok = json_is_number(j) && isfinite((float)json_number_value(j));
    if (ok) v->f = (float)json_number_value(j);
    break;
  case KIT_FIELD_SEED: ok = json_is_string(j) && parse_seed(json_string_value(j), &v->seed); break;
  case KIT_FIELD_ENUM:
    v->i = json_is_string(j) ? enum_parse(f, json_string_value(j)) : -1;
    ok = v->i >= 0;
    break;
  case KIT_FIELD_STRING:
    ok = json_is_string(j) && json_string_length(j) < KIT_STRING_MAX && strlen(json_string_value(j)) == json_string_length(j);
    if (ok) memcpy(v->s, json_string_value(j), json_string_length(j) + 1);
    break;
  }
  if (ok) return UT_OK;
  expected(f, want, sizeof want);
  if (json_is_string(j)) return ut_fail(UT_ERR_FORMAT, "%s: \"%s\" is \"%.80s\", expected %s", t->what, f->name,
                                        json_string_value(j), want);
  if (json_is_number(j))
    return ut_fail(UT_ERR_FORMAT, "%s: \"%s\" is %.17g, expected %s", t->what, f->name, json_number_value(j), want);
  return ut_fail(UT_ERR_FORMAT, "%s: \"%s\" is %s, expected %s", t->what, f->name, json_kind(j), want);
}

ut_status kit_config_from_json(const kit_config_table *t, const char *json, void *cfg) {
  json_error_t err;
  json_t *obj = json_loads(json ? json : "", 0, &err);
  if (!obj) return ut_fail(UT_ERR_FORMAT, "%s: not JSON (%s at line %d)", t->what, err.text, err.line);
  ut_status s = UT_OK;
  if (!json_is_object(obj)) s = ut_fail(UT_ERR_FORMAT, "%s: not a JSON object but %s", t->what, json_kind(obj));
  const char *key;
  json_t *j;
  if (s == UT_OK)
    json_object_foreach(obj, key, j) {
      if (find_field(t, key)) continue;
      s = ut_fail(UT_ERR_FORMAT, "%s: unknown field \"%s\"", t->what, key);
      break;
    }
  field_value *values = s == UT_OK ? calloc((size_t)(t->n_fields ? t->n_fields : 1), sizeof *values) : NULL;
  unsigned char *present = values ? calloc((size_t)(t->n_fields ? t->n_fields : 1), 1) : NULL;
  if (s == UT_OK && !present) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", t->what);
  for (int i = 0; s == UT_OK && i < t->n_fields; i++) {
    const kit_field *f = &t->fields[i];
    j = json_object_get(obj, f->name);
    if (!j) {
      if (!f->optional) s = ut_fail(UT_ERR_FORMAT, "%s: field \"%s\" is missing", t->what, f->name);
      continue;
    }
    s = value_from_json(t, f, j, &values[i]);
    present[i] = 1;
  }
  for (int i = 0; s == UT_OK && i < t->n_fields; i++)
    if (present[i]) value_store(&t->fields[i], cfg, &values[i]);
  free(values);
  free(present);
  json_decref(obj);
  return s;
}

/* ---- comparison and overrides -------------------------------------------------------------------- */

int kit_config_differs(const kit_config_table *t, const void *a, const void *b, char *why, size_t size) {
  for (int i = 0; i < t->n_fields; i++) {
    const kit_field *f = &t->fields[i];
    field_value va, vb;
    value_load(f, a, &va);
    value_load(f, b, &vb);
    /* value_load zero-fills, so a string compares up to its terminator only */
    if (f->kind == KIT_FIELD_STRING ? strcmp(va.s, vb.s) == 0 : memcmp(&va, &vb, field_size(f->kind)) == 0) continue;
    char ta[96], tb[96];
    value_text(f, &va, ta, sizeof ta);
    value_text(f, &vb, tb, sizeof tb);
    if (why && size) snprintf(why, size, "%s = %s, not %s", f->name, ta, tb);
    return 1;
  }
  if (why && size) why[0] = '\0';
  return 0;
}

static int parse_text(const kit_field *f, const char *text, field_value *v) {
  char *end = NULL;
  memset(v, 0, sizeof *v);
  errno = 0;
  switch (f->kind) {
  case KIT_FIELD_INT: {
    long long x = strtoll(text, &end, 10);
    if (errno || end == text || *end || x < INT_MIN || x > INT_MAX) return 0;
    v->i = (int)x;
    return 1;
  }
  case KIT_FIELD_I64: {
    long long x = strtoll(text, &end, 10);
    if (errno || end == text || *end) return 0;
    v->i64 = (int64_t)x;
    return 1;
  }
  case KIT_FIELD_F32: {
    float x = strtof(text, &end);
    if (end == text || *end || !isfinite(x)) return 0;
    v->f = x;
    return 1;
  }
  case KIT_FIELD_SEED: return parse_seed(text, &v->seed);
  case KIT_FIELD_ENUM: return (v->i = enum_parse(f, text)) >= 0;
  case KIT_FIELD_STRING:
    if (strlen(text) >= KIT_STRING_MAX) return 0;
    memcpy(v->s, text, strlen(text) + 1);
    return 1;
  }
  return 0;
}

ut_status kit_config_set(const kit_config_table *t, void *cfg, const char *field, const char *value) {
  const kit_field *f = field ? find_field(t, field) : NULL;
  if (!f) {
    char names[512];
    size_t used = 0;
    names[0] = '\0';
    for (int i = 0; i < t->n_fields && used < sizeof names; i++)
      used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", t->fields[i].name);
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s has no field '%s' (it has %s)", t->what, field ? field : "(null)", names);
  }
  field_value v;
  if (!value || !parse_text(f, value, &v)) {
    char want[160];
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %s expects %s, not '%s'", t->what, f->name, expected(f, want, sizeof want),
                   value ? value : "(null)");
  }
  value_store(f, cfg, &v);
  return UT_OK;
}
