/* The configuration field table (models/kit_config.h): every kind out to JSON and back, each
 * refusal with its message, optional fields, comparison, command-line overrides; and the two
 * models on it (LORD, spirals) still read the JSON their earlier, hand-written code wrote. */
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kit_config.h"
#include "lord.h"
#include "spirals_internal.h"
#include "test_support.h"

typedef enum { SHAPE_ROUND = 0, SHAPE_SQUARE, SHAPE_STAR } shape_kind;

typedef struct {
  int count;
  int64_t big;
  float rate;
  uint64_t seed;
  shape_kind shape;
  char label[KIT_STRING_MAX];
  int added_later;
} demo_cfg;

static const char *const shape_names[] = { "round", "square", "star", NULL };

static const kit_field demo_fields[] = {
  { "count", KIT_FIELD_INT, offsetof(demo_cfg, count), NULL, 0 },
  { "big", KIT_FIELD_I64, offsetof(demo_cfg, big), NULL, 0 },
  { "rate", KIT_FIELD_F32, offsetof(demo_cfg, rate), NULL, 0 },
  { "seed", KIT_FIELD_SEED, offsetof(demo_cfg, seed), NULL, 0 },
  { "shape", KIT_FIELD_ENUM, offsetof(demo_cfg, shape), shape_names, 0 },
  { "label", KIT_FIELD_STRING, offsetof(demo_cfg, label), NULL, 0 },
  { "added_later", KIT_FIELD_INT, offsetof(demo_cfg, added_later), NULL, 1 },
};
static const kit_config_table demo = { "demo configuration", demo_fields, 7 };

static demo_cfg demo_value(void) {
  demo_cfg c = { .count = -7, .big = INT64_MIN + 1, .rate = 3e-4f, .seed = UINT64_MAX, .shape = SHAPE_STAR,
                 .added_later = 5 };
  strcpy(c.label, "two words \"quoted\"");
  return c;
}

/* expr gives status, and ut_last_error() holds every one of the strings after it. */
#define ASSERT_ERROR(expr, status, ...)                                                      \
  do {                                                                                       \
    ck_assert_int_eq((expr), (status));                                                      \
    const char *const parts_[] = { __VA_ARGS__, NULL };                                      \
    for (int k_ = 0; parts_[k_]; k_++)                                                       \
      ck_assert_msg(strstr(ut_last_error(), parts_[k_]) != NULL, "'%s' is not in: %s",       \
                    parts_[k_], ut_last_error());                                            \
  } while (0)

START_TEST(test_round_trip) {
  demo_cfg c = demo_value(), back;
  memset(&back, 0x5a, sizeof back);
  char *json = kit_config_to_json(&demo, &c);
  ck_assert_ptr_nonnull(json);
  ck_assert_str_eq(json, "{\"added_later\":5,\"big\":-9223372036854775807,\"count\":-7,\"label\":\"two words "
                         "\\\"quoted\\\"\",\"rate\":0.0003,\"seed\":\"18446744073709551615\",\"shape\":\"star\"}");
  ck_assert_ut_ok(kit_config_from_json(&demo, json, &back));
  char why[128];
  ck_assert_msg(!kit_config_differs(&demo, &c, &back, why, sizeof why), "%s", why);
  ck_assert_int_eq(back.count, -7);
  ck_assert(back.big == INT64_MIN + 1);
  ck_assert(back.rate == 3e-4f);
  ck_assert(back.seed == UINT64_MAX);
  ck_assert_int_eq(back.shape, SHAPE_STAR);
  ck_assert_str_eq(back.label, c.label);
  ck_assert_int_eq(back.added_later, 5);
  free(json);

  /* floats: the shortest decimal that reads back to the same float, for awkward ones too */
  static const float rates[] = { 0.1f, 1.0f, 1e-5f, 3.14159274f, 1e30f, -2.5e-38f, 16777217.0f, 0.0f };
  for (int i = 0; i < (int)(sizeof rates / sizeof rates[0]); i++) {
    c.rate = rates[i];
    json = kit_config_to_json(&demo, &c);
    ck_assert_ut_ok(kit_config_from_json(&demo, json, &back));
    ck_assert_msg(back.rate == c.rate, "%.9g came back as %.9g from %s", (double)c.rate, (double)back.rate, json);
    free(json);
  }
  c.rate = 0.1f;
  json = kit_config_to_json(&demo, &c);
  ck_assert_ptr_nonnull(strstr(json, "\"rate\":0.1,"));
  free(json);
  /* a float field reads any JSON number */
  ck_assert_ut_ok(kit_config_from_json(&demo, "{\"count\":1,\"big\":2,\"rate\":3,\"seed\":\"4\",\"shape\":\"round\","
                                              "\"label\":\"\"}", &back));
  ck_assert(back.rate == 3.0f && back.seed == 4 && back.shape == SHAPE_ROUND && back.label[0] == '\0');
}
END_TEST

START_TEST(test_optional_fields) {
  demo_cfg c = demo_value();
  c.added_later = 42;
  /* absent: the value already in the struct stays */
  ck_assert_ut_ok(kit_config_from_json(&demo, "{\"count\":1,\"big\":2,\"rate\":0.5,\"seed\":\"4\",\"shape\":\"square\","
                                              "\"label\":\"x\"}", &c));
  ck_assert_int_eq(c.added_later, 42);
  ck_assert_int_eq(c.count, 1);
  ck_assert_int_eq(c.shape, SHAPE_SQUARE);
  /* present: read as any other field */
  ck_assert_ut_ok(kit_config_from_json(&demo, "{\"count\":1,\"big\":2,\"rate\":0.5,\"seed\":\"4\",\"shape\":\"square\","
                                              "\"label\":\"x\",\"added_later\":-3}", &c));
  ck_assert_int_eq(c.added_later, -3);
}
END_TEST

START_TEST(test_json_errors) {
  demo_cfg c = demo_value(), before = c;
  static const char base[] = "\"count\":1,\"big\":2,\"rate\":0.5,\"seed\":\"4\",\"shape\":\"square\"";
  char json[512];
  ASSERT_ERROR(kit_config_from_json(&demo, "not json", &c), UT_ERR_FORMAT, "demo configuration", "not JSON");
  ASSERT_ERROR(kit_config_from_json(&demo, "[1, 2]", &c), UT_ERR_FORMAT, "demo configuration", "not a JSON object");
  snprintf(json, sizeof json, "{%s,\"label\":\"x\",\"colour\":1}", base);
  ASSERT_ERROR(kit_config_from_json(&demo, json, &c), UT_ERR_FORMAT, "demo configuration", "unknown field \"colour\"");
  snprintf(json, sizeof json, "{%s}", base);
  ASSERT_ERROR(kit_config_from_json(&demo, json, &c), UT_ERR_FORMAT, "demo configuration", "\"label\" is missing");
  ASSERT_ERROR(kit_config_from_json(&demo, "{\"count\":\"1\",\"big\":2,\"rate\":0.5,\"seed\":\"4\",\"shape\":\"square\","
                                           "\"label\":\"x\"}", &c),
               UT_ERR_FORMAT, "demo configuration", "\"count\" is \"1\"", "whole number");
  ASSERT_ERROR(kit_config_from_json(&demo, "{\"count\":4294967296,\"big\":2,\"rate\":0.5,\"seed\":\"4\",\"shape\":"
                                           "\"square\",\"label\":\"x\"}", &c),
               UT_ERR_FORMAT, "\"count\" is 4294967296", "2147483647");
  ASSERT_ERROR(kit_config_from_json(&demo, "{\"count\":1,\"big\":2.5,\"rate\":0.5,\"seed\":\"4\",\"shape\":\"square\","
                                           "\"label\":\"x\"}", &c),
               UT_ERR_FORMAT, "\"big\" is 2.5", "whole number");
  ASSERT_ERROR(kit_config_from_json(&demo, "{\"count\":1,\"big\":2,\"rate\":true,\"seed\":\"4\",\"shape\":\"square\","
                                           "\"label\":\"x\"}", &c),
               UT_ERR_FORMAT, "\"rate\" is true", "finite number");
  ASSERT_ERROR(kit_config_from_json(&demo, "{\"count\":1,\"big\":2,\"rate\":1e39,\"seed\":\"4\",\"shape\":\"square\","
                                           "\"label\":\"x\"}", &c),
               UT_ERR_FORMAT, "\"rate\"", "finite number");
  ASSERT_ERROR(kit_config_from_json(&demo, "{\"count\":1,\"big\":2,\"rate\":0.5,\"seed\":4,\"shape\":\"square\","
                                           "\"label\":\"x\"}", &c),
               UT_ERR_FORMAT, "\"seed\" is 4", "decimal number");
  ASSERT_ERROR(kit_config_from_json(&demo, "{\"count\":1,\"big\":2,\"rate\":0.5,\"seed\":\"18446744073709551616\","
                                           "\"shape\":\"square\",\"label\":\"x\"}", &c),
               UT_ERR_FORMAT, "\"seed\" is \"18446744073709551616\"");
  ASSERT_ERROR(kit_config_from_json(&demo, "{\"count\":1,\"big\":2,\"rate\":0.5,\"seed\":\"-1\",\"shape\":\"square\","
                                           "\"label\":\"x\"}", &c),
               UT_ERR_FORMAT, "\"seed\" is \"-1\"");
  ASSERT_ERROR(kit_config_from_json(&demo, "{\"count\":1,\"big\":2,\"rate\":0.5,\"seed\":\"4\",\"shape\":\"hexagon\","
                                           "\"label\":\"x\"}", &c),
               UT_ERR_FORMAT, "\"shape\" is \"hexagon\"", "one of round, square or star");
  snprintf(json, sizeof json, "{%s,\"label\":\"%064d\"}", base, 0);
  ASSERT_ERROR(kit_config_from_json(&demo, json, &c), UT_ERR_FORMAT, "\"label\"", "at most 63 bytes");
  snprintf(json, sizeof json, "{%s,\"label\":null}", base);
  ASSERT_ERROR(kit_config_from_json(&demo, json, &c), UT_ERR_FORMAT, "\"label\" is null");
  /* a refused JSON leaves the struct as it was, even where fields before the bad one parsed */
  char why[128];
  ck_assert_msg(!kit_config_differs(&demo, &c, &before, why, sizeof why), "changed: %s", why);
  ck_assert_int_eq(c.added_later, before.added_later);

  /* values JSON cannot hold */
  c.rate = NAN;
  ck_assert_ptr_null(kit_config_to_json(&demo, &c));
  ck_assert_msg(strstr(ut_last_error(), "rate") != NULL, "%s", ut_last_error());
  c = before;
  c.shape = (shape_kind)7;
  ck_assert_ptr_null(kit_config_to_json(&demo, &c));
  ck_assert_msg(strstr(ut_last_error(), "shape") != NULL, "%s", ut_last_error());
}
END_TEST

START_TEST(test_differs) {
  demo_cfg a = demo_value(), b = a;
  char why[128];
  ck_assert_int_eq(kit_config_differs(&demo, &a, &b, why, sizeof why), 0);
  /* bytes after a string's terminator do not count */
  memset(b.label + strlen(b.label) + 1, 'z', 8);
  ck_assert_int_eq(kit_config_differs(&demo, &a, &b, why, sizeof why), 0);
  b.rate = 0.01f;
  b.shape = SHAPE_ROUND;
  ck_assert_int_eq(kit_config_differs(&demo, &a, &b, why, sizeof why), 1);
  ck_assert_str_eq(why, "rate = 0.0003, not 0.01");
  b = a;
  b.shape = SHAPE_ROUND;
  ck_assert_int_eq(kit_config_differs(&demo, &a, &b, why, sizeof why), 1);
  ck_assert_str_eq(why, "shape = star, not round");
  b = a;
  strcpy(b.label, "other");
  ck_assert_int_eq(kit_config_differs(&demo, &a, &b, why, sizeof why), 1);
  ck_assert_str_eq(why, "label = \"two words \"quoted\"\", not \"other\"");
  b = a;
  b.seed = 1;
  ck_assert_int_eq(kit_config_differs(&demo, &a, &b, why, sizeof why), 1);
  ck_assert_str_eq(why, "seed = 18446744073709551615, not 1");
  /* floats by their bits: -0 is not 0 */
  b = a;
  a.rate = 0.0f;
  b.rate = -0.0f;
  ck_assert_int_eq(kit_config_differs(&demo, &a, &b, why, sizeof why), 1);
}
END_TEST

START_TEST(test_set) {
  demo_cfg c = demo_value();
  ck_assert_ut_ok(kit_config_set(&demo, &c, "count", "64"));
  ck_assert_int_eq(c.count, 64);
  ck_assert_ut_ok(kit_config_set(&demo, &c, "big", "-9000000000"));
  ck_assert(c.big == -9000000000LL);
  ck_assert_ut_ok(kit_config_set(&demo, &c, "rate", "2.5e-4"));
  ck_assert(c.rate == 2.5e-4f);
  ck_assert_ut_ok(kit_config_set(&demo, &c, "seed", "18446744073709551615"));
  ck_assert(c.seed == UINT64_MAX);
  ck_assert_ut_ok(kit_config_set(&demo, &c, "shape", "square"));
  ck_assert_int_eq(c.shape, SHAPE_SQUARE);
  ck_assert_ut_ok(kit_config_set(&demo, &c, "label", "cats"));
  ck_assert_str_eq(c.label, "cats");
  ck_assert_ut_ok(kit_config_set(&demo, &c, "added_later", "9"));
  ck_assert_int_eq(c.added_later, 9);

  demo_cfg before = c;
  ASSERT_ERROR(kit_config_set(&demo, &c, "count", "12x"), UT_ERR_INVALID_ARGUMENT, "demo configuration",
               "count expects a whole number", "'12x'");
  ASSERT_ERROR(kit_config_set(&demo, &c, "count", "3000000000"), UT_ERR_INVALID_ARGUMENT, "count", "'3000000000'");
  ASSERT_ERROR(kit_config_set(&demo, &c, "count", ""), UT_ERR_INVALID_ARGUMENT, "count", "''");
  ASSERT_ERROR(kit_config_set(&demo, &c, "big", "99999999999999999999"), UT_ERR_INVALID_ARGUMENT, "big", "whole number");
  ASSERT_ERROR(kit_config_set(&demo, &c, "rate", "fast"), UT_ERR_INVALID_ARGUMENT, "rate expects a finite number", "'fast'");
  ASSERT_ERROR(kit_config_set(&demo, &c, "rate", "inf"), UT_ERR_INVALID_ARGUMENT, "rate", "'inf'");
  ASSERT_ERROR(kit_config_set(&demo, &c, "seed", "-1"), UT_ERR_INVALID_ARGUMENT, "seed expects a decimal number", "'-1'");
  ASSERT_ERROR(kit_config_set(&demo, &c, "shape", "hexagon"), UT_ERR_INVALID_ARGUMENT,
               "shape expects one of round, square or star", "'hexagon'");
  char long_label[80];
  memset(long_label, 'a', 64);
  long_label[64] = '\0';
  ASSERT_ERROR(kit_config_set(&demo, &c, "label", long_label), UT_ERR_INVALID_ARGUMENT, "label expects text of at most 63");
  ASSERT_ERROR(kit_config_set(&demo, &c, "colour", "red"), UT_ERR_INVALID_ARGUMENT, "demo configuration has no field 'colour'",
               "count, big, rate");
  char why[128];
  ck_assert_msg(!kit_config_differs(&demo, &c, &before, why, sizeof why), "changed: %s", why);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The models on the table read what their earlier code wrote. These strings are the output of
 * lord_cfg_to_json and spirals_cfg_to_json before the move (json_pack with 17-digit doubles, a
 * hand-written table in field order), pasted as they were.
 */
static const char *const lord_legacy[2] = {
  "{\"batch\":128,\"channels\":3,\"class_dim\":256,\"content_decay\":9.9999997473787516e-5,\"content_dim\":128,"
  "\"content_std\":1.0,\"enc_channels\":64,\"enc_hidden\":256,\"epochs1\":200,\"epochs2\":200,\"gen_channels\":256,"
  "\"head_channels\":64,\"lr_emb\":0.0030000000260770321,\"lr_enc\":9.9999997473787516e-5,\"lr_gen\":"
  "0.00030000001424923539,\"lr_min\":9.9999997473787516e-6,\"n_classes\":10,\"n_images\":1000,\"recon\":\"l1\","
  "\"seed\":\"1\",\"size\":64}",
  "{\"batch\":32,\"channels\":1,\"class_dim\":64,\"content_decay\":9.9999997473787516e-5,\"content_dim\":32,"
  "\"content_std\":0.10000000149011612,\"enc_channels\":16,\"enc_hidden\":128,\"epochs1\":60,\"epochs2\":30,"
  "\"gen_channels\":32,\"head_channels\":16,\"lr_emb\":0.0099999997764825821,\"lr_enc\":0.00030000001424923539,"
  "\"lr_gen\":0.0010000000474974513,\"lr_min\":0.0,\"n_classes\":10,\"n_images\":70000,\"recon\":\"vgg-random\","
  "\"seed\":\"18446744073709551615\",\"size\":32}",
};

static lord_cfg lord_legacy_cfg(int i) {
  if (i == 0) return lord_preset(LORD_PRESET_DEFAULT, 3, 1000, 10);
  lord_cfg c = lord_preset(LORD_PRESET_SMALL, 1, 70000, 10);
  c.recon = LORD_RECON_VGG_RANDOM;
  c.seed = UINT64_MAX;
  c.content_std = 0.1f;
  c.lr_min = 0;
  return c;
}

static const char *const spirals_legacy[2] = {
  "{\"n_train\":512,\"n_test\":512,\"batch\":0,\"turns\":1.5,\"noise\":0.03,\"depth\":2,\"width\":64,\"activation\":"
  "\"tanh\",\"lr\":0.01,\"seed\":1}",
  "{\"n_train\":512,\"n_test\":512,\"batch\":64,\"turns\":2.25,\"noise\":0.1,\"depth\":3,\"width\":7,\"activation\":"
  "\"leaky_relu\",\"lr\":0.0003,\"seed\":9223372036854775807}",
};

static spirals_cfg spirals_legacy_cfg(int i) {
  spirals_cfg s = spirals_default_cfg();
  if (i == 1) {
    s.act = MLP_ACT_LEAKY_RELU;
    s.batch = 64;
    s.noise = 0.1f;
    s.lr = 3e-4f;
    s.seed = (uint64_t)INT64_MAX;
    s.turns = 2.25f;
    s.depth = 3;
    s.width = 7;
  }
  return s;
}

/* Two JSON objects with the same keys and values, numbers compared as the floats they hold. */
static void assert_same_json(const char *want, const char *got) {
  json_t *a = json_loads(want, 0, NULL), *b = json_loads(got, 0, NULL);
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert_int_eq(json_object_size(a), json_object_size(b));
  const char *key;
  json_t *va;
  json_object_foreach(a, key, va) {
    json_t *vb = json_object_get(b, key);
    ck_assert_msg(vb != NULL, "%s is missing from %s", key, got);
    if (json_is_real(va) || json_is_real(vb))
      ck_assert_msg(json_is_number(vb) && (float)json_number_value(va) == (float)json_number_value(vb),
                    "%s differs: %s against %s", key, want, got);
    else ck_assert_msg(json_equal(va, vb), "%s differs: %s against %s", key, want, got);
  }
  json_decref(a);
  json_decref(b);
}

START_TEST(test_lord_reads_earlier_json) {
  for (int i = 0; i < 2; i++) {
    lord_cfg want = lord_legacy_cfg(i), got;
    memset(&got, 0, sizeof got);
    ck_assert_ut_ok(lord_cfg_from_json(lord_legacy[i], &got));
    char why[256];
    ck_assert_msg(!lord_cfg_differs(&want, &got, why, sizeof why), "case %d: %s", i, why);
    /* what it writes now: the same keys and values (floats in their shortest form) */
    char *json = lord_cfg_to_json(&want);
    ck_assert_ptr_nonnull(json);
    assert_same_json(lord_legacy[i], json);
    lord_cfg again;
    ck_assert_ut_ok(lord_cfg_from_json(json, &again));
    ck_assert_msg(!lord_cfg_differs(&want, &again, why, sizeof why), "case %d: %s", i, why);
    free(json);
  }
  /* the checks still apply after reading, and the message still says what differs */
  lord_cfg a = lord_legacy_cfg(0), b = a;
  b.gen_channels = 32;
  char why[256];
  ck_assert(lord_cfg_differs(&a, &b, why, sizeof why));
  ck_assert_str_eq(why, "gen_channels = 256, not 32");
  char *json = lord_cfg_to_json(&(lord_cfg){ .size = 40, .channels = 3, .n_images = 1, .n_classes = 1 });
  ck_assert_ptr_nonnull(json);
  ASSERT_ERROR(lord_cfg_from_json(json, &b), UT_ERR_INVALID_ARGUMENT, "size 40");
  free(json);
  ASSERT_ERROR(lord_cfg_from_json("{\"size\": 64}", &b), UT_ERR_FORMAT, "LORD configuration", "missing");
}
END_TEST

START_TEST(test_spirals_reads_earlier_json) {
  for (int i = 0; i < 2; i++) {
    spirals_cfg want = spirals_legacy_cfg(i), got;
    memset(&got, 0, sizeof got);
    ck_assert_ut_ok(spirals_cfg_from_json(spirals_legacy[i], &got));
    char why[256];
    ck_assert_msg(!spirals_cfg_diff(&want, &got, why, sizeof why), "case %d: %s", i, why);
    char *json = spirals_cfg_to_json(&want);
    ck_assert_ptr_nonnull(json);
    assert_same_json(spirals_legacy[i], json);
    ck_assert_ptr_nonnull(strstr(json, i ? "\"seed\":9223372036854775807," : "\"seed\":1,"));
    spirals_cfg again;
    ck_assert_ut_ok(spirals_cfg_from_json(json, &again));
    ck_assert_msg(!spirals_cfg_diff(&want, &again, why, sizeof why), "case %d: %s", i, why);
    free(json);
  }
  spirals_cfg a = spirals_default_cfg(), b = a;
  b.lr = 0.02f;
  char why[256];
  ck_assert(spirals_cfg_diff(&a, &b, why, sizeof why));
  ck_assert_str_eq(why, "lr = 0.01, not 0.02");
  ASSERT_ERROR(spirals_cfg_from_json("{\"n_train\":512}", &b), UT_ERR_FORMAT, "spirals.config", "missing");
}
END_TEST

static Suite *kit_config_suite(void) {
  Suite *s = suite_create("kit_config");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_round_trip);
  tcase_add_test(tc, test_optional_fields);
  tcase_add_test(tc, test_json_errors);
  tcase_add_test(tc, test_differs);
  tcase_add_test(tc, test_set);
  tcase_add_test(tc, test_lord_reads_earlier_json);
  tcase_add_test(tc, test_spirals_reads_earlier_json);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(kit_config_suite()); }
