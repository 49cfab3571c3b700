/* The MLP builder. It only composes public engine calls, so everything it builds is already
 * differentiable and planned like any other graph. */
#include "mlp.h"

#include <stdio.h>
#include <string.h>

static const char *const activation_names[] = {
  [MLP_ACT_NONE] = "none",     [MLP_ACT_RELU] = "relu",       [MLP_ACT_LEAKY_RELU] = "leaky_relu",
  [MLP_ACT_TANH] = "tanh",     [MLP_ACT_SIGMOID] = "sigmoid",
};
enum { activation_count = (int)(sizeof activation_names / sizeof activation_names[0]) };

const char *mlp_activation_name(mlp_activation act) {
  if ((int)act < 0 || (int)act >= activation_count) return NULL;
  return activation_names[act];
}

int mlp_activation_parse(const char *name) {
  for (int i = 0; name && i < activation_count; i++)
    if (strcmp(name, activation_names[i]) == 0) return i;
  return -1;
}

ut_tensor *mlp_activate(ut_graph *g, ut_tensor *x, mlp_activation act) {
  switch (act) {
  case MLP_ACT_NONE: return x;
  case MLP_ACT_RELU: return ut_relu(g, x);
  case MLP_ACT_LEAKY_RELU: return ut_leaky_relu(g, x, 0.2f);
  case MLP_ACT_TANH: return ut_tanh(g, x);
  case MLP_ACT_SIGMOID: return ut_sigmoid(g, x);
  }
  return NULL;
}

ut_status mlp_cfg_check(const mlp_cfg *cfg, char *why, size_t why_size) {
  char scratch[8];
  if (!why) {
    why = scratch;
    why_size = sizeof scratch;
  }
  if (!cfg) {
    snprintf(why, why_size, "no MLP configuration");
    return UT_ERR_INVALID_ARGUMENT;
  }
  if (!cfg->prefix || !cfg->prefix[0]) {
    snprintf(why, why_size, "the MLP needs a parameter name prefix");
    return UT_ERR_INVALID_ARGUMENT;
  }
  if (cfg->n_hidden < 0 || cfg->n_hidden > MLP_MAX_LAYERS - 1) {
    snprintf(why, why_size, "%d hidden layers: expected 0 to %d", cfg->n_hidden, MLP_MAX_LAYERS - 1);
    return UT_ERR_INVALID_ARGUMENT;
  }
  for (int i = 0; i < cfg->n_hidden; i++) {
    if (cfg->hidden[i] < 1) {
      snprintf(why, why_size, "hidden layer %d has width %lld: expected at least 1", i + 1,
               (long long)cfg->hidden[i]);
      return UT_ERR_INVALID_ARGUMENT;
    }
  }
  if (cfg->out_features < 1) {
    snprintf(why, why_size, "%lld output features: expected at least 1", (long long)cfg->out_features);
    return UT_ERR_INVALID_ARGUMENT;
  }
  if (!mlp_activation_name(cfg->hidden_act) || !mlp_activation_name(cfg->output_act)) {
    snprintf(why, why_size, "unknown activation");
    return UT_ERR_INVALID_ARGUMENT;
  }
  why[0] = '\0';
  return UT_OK;
}

ut_tensor *mlp_forward(ut_graph *g, ut_tensor *x, const mlp_cfg *cfg) {
  if (!g || !x || mlp_cfg_check(cfg, NULL, 0) != UT_OK) return NULL;
  ut_tensor *h = x;
  for (int i = 0; i <= cfg->n_hidden; i++) {
    int last = i == cfg->n_hidden;
    char name[256];
    snprintf(name, sizeof name, "%s.fc%d", cfg->prefix, i + 1);
    h = ut_linear(g, h, name, last ? cfg->out_features : cfg->hidden[i]);
    h = mlp_activate(g, h, last ? cfg->output_act : cfg->hidden_act);
  }
  return h;
}

int64_t mlp_parameter_count(const mlp_cfg *cfg, int64_t in_features) {
  if (mlp_cfg_check(cfg, NULL, 0) != UT_OK) return 0;
  int64_t count = 0, in = in_features;
  for (int i = 0; i <= cfg->n_hidden; i++) {
    int64_t out = i == cfg->n_hidden ? cfg->out_features : cfg->hidden[i];
    count += out * in + out;
    in = out;
  }
  return count;
}
