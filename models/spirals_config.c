/* The spirals configuration: defaults, checks, and its JSON form in checkpoint metadata. One
 * table of fields drives writing, reading and comparing, so a new setting is one line. */
#include <math.h>
#include <stddef.h>

#include "kit_config.h"
#include "spirals.h"
#include "spirals_internal.h"

static const char *const activation_names[] = {
  [MLP_ACT_NONE] = "none", [MLP_ACT_RELU] = "relu",       [MLP_ACT_LEAKY_RELU] = "leaky_relu",
  [MLP_ACT_TANH] = "tanh", [MLP_ACT_SIGMOID] = "sigmoid", [MLP_ACT_SIGMOID + 1] = NULL,
};
_Static_assert(sizeof(mlp_activation) == sizeof(int), "the activation travels as a KIT_FIELD_ENUM, an int");

/* The seed travels as a JSON integer here (spirals checkpoints always wrote it so), not as the
 * kit's decimal string: KIT_FIELD_I64 over the uint64_t member, which spirals_cfg_check keeps at
 * most INT64_MAX (int64_t and uint64_t share their representation there). */
static const kit_field fields[] = {
  { "n_train", KIT_FIELD_I64, offsetof(spirals_cfg, n_train), NULL, 0 },
  { "n_test", KIT_FIELD_I64, offsetof(spirals_cfg, n_test), NULL, 0 },
  { "batch", KIT_FIELD_I64, offsetof(spirals_cfg, batch), NULL, 0 },
  { "turns", KIT_FIELD_F32, offsetof(spirals_cfg, turns), NULL, 0 },
  { "noise", KIT_FIELD_F32, offsetof(spirals_cfg, noise), NULL, 0 },
  { "depth", KIT_FIELD_INT, offsetof(spirals_cfg, depth), NULL, 0 },
  { "width", KIT_FIELD_I64, offsetof(spirals_cfg, width), NULL, 0 },
  { "activation", KIT_FIELD_ENUM, offsetof(spirals_cfg, act), activation_names, 0 },
  { "lr", KIT_FIELD_F32, offsetof(spirals_cfg, lr), NULL, 0 },
  { "seed", KIT_FIELD_I64, offsetof(spirals_cfg, seed), NULL, 0 },
};
static const kit_config_table table = { SPIRALS_CONFIG_KEY, fields, (int)(sizeof fields / sizeof fields[0]) };

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

char *spirals_cfg_to_json(const spirals_cfg *cfg) { return kit_config_to_json(&table, cfg); }

ut_status spirals_cfg_from_json(const char *text, spirals_cfg *out) {
  spirals_cfg cfg = spirals_default_cfg();
  ut_status s = kit_config_from_json(&table, text, &cfg);
  if (s == UT_OK) *out = cfg;
  return s;
}

int spirals_cfg_diff(const spirals_cfg *a, const spirals_cfg *b, char *why, size_t size) {
  return kit_config_differs(&table, a, b, why, size);
}
