/* Model configurations as a table of fields: one row per struct member (its JSON name, kind and
 * offset) drives writing the JSON kept in checkpoints, reading it back, comparing two
 * configurations and setting one field from the command line, so a new setting is one row and
 * the four can never fall out of step.
 *
 *   static const char *const recon_names[] = { "l1", "vgg", NULL };
 *   static const kit_field fields[] = {
 *     { "size", KIT_FIELD_INT, offsetof(my_cfg, size) },
 *     { "recon", KIT_FIELD_ENUM, offsetof(my_cfg, recon), recon_names },
 *     { "flip", KIT_FIELD_INT, offsetof(my_cfg, flip), NULL, 1 },   // added later: optional
 *     { "seed", KIT_FIELD_SEED, offsetof(my_cfg, seed) },
 *   };
 *   static const kit_config_table table = { "my configuration", fields, 4 };
 *   char *json = kit_config_to_json(&table, &cfg);
 *
 * The JSON is one flat object, keys sorted. Integers are JSON integers; floats are written as the
 * shortest decimal that reads back to the same float ("lr":0.0003) and read from any JSON number;
 * seeds are decimal strings (JSON integers are signed and often read as doubles); enums and
 * strings are JSON strings.
 */
#ifndef UNTANGLE_MODELS_KIT_CONFIG_H
#define UNTANGLE_MODELS_KIT_CONFIG_H

#include <stddef.h>

#include "untangle.h"

typedef enum {
  KIT_FIELD_INT,    /* int */
  KIT_FIELD_I64,    /* int64_t */
  KIT_FIELD_F32,    /* float, finite */
  KIT_FIELD_SEED,   /* uint64_t, travels as a decimal string */
  KIT_FIELD_ENUM,   /* int (or an enum type), travels as one of enum_names */
  KIT_FIELD_STRING, /* char[KIT_STRING_MAX], terminated */
} kit_field_kind;

#define KIT_STRING_MAX 64

typedef struct {
  const char *name;
  kit_field_kind kind;
  size_t offset;                 /* offsetof(struct, member) */
  const char *const *enum_names; /* KIT_FIELD_ENUM: names of 0, 1, ..., NULL-terminated */
  int optional;                  /* 1: absent in the JSON keeps the value already in the struct (fields added later) */
} kit_field;

typedef struct {
  const char *what; /* "LORD configuration": starts every message */
  const kit_field *fields;
  int n_fields;
} kit_config_table;

/* The configuration as compact JSON, keys sorted (malloc'd). NULL when out of memory or when a
 * value has no JSON form (a float that is not finite, an enum outside its names), with
 * ut_last_error() saying which. */
char *kit_config_to_json(const kit_config_table *t, const void *cfg);

/* Fills cfg from JSON written by kit_config_to_json (or by hand). Every key must be a field and
 * every field not marked optional must be present; an optional field that is absent keeps the
 * value already in cfg. Not JSON, not an object, an unknown key, a missing field, a wrong type,
 * an integer out of range, a seed that is not a decimal number, an unknown enum name or a string
 * of KIT_STRING_MAX bytes or more is UT_ERR_FORMAT naming `what` and the field; cfg is then left
 * unchanged. Range checks of the model (a size that must be a multiple of 16) are the caller's. */
ut_status kit_config_from_json(const kit_config_table *t, const char *json, void *cfg);

/* 1 when a and b differ in some field (floats compare by their bits: "the same configuration"
 * means the same computation), with "name = <a's value>, not <b's value>" of the first such field
 * in table order written to why; 0 when they are the same. */
int kit_config_differs(const kit_config_table *t, const void *a, const void *b, char *why, size_t size);

/* Sets one field from text, as a command-line override gives it ("batch", "64"): whole numbers
 * in range for INT and I64, any finite number for F32, a decimal unsigned 64-bit number for SEED,
 * one of the names for ENUM, fewer than KIT_STRING_MAX bytes for STRING. An unknown field or a
 * value of the wrong form is UT_ERR_INVALID_ARGUMENT naming the field and what was expected, and
 * leaves cfg unchanged. */
ut_status kit_config_set(const kit_config_table *t, void *cfg, const char *field, const char *value);

#endif
