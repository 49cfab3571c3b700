/* A multilayer perceptron built from ut_linear layers: the toy models' body, and later the
 * small classifiers that evaluate disentanglement (predicting a class from a content code). */
#ifndef UNTANGLE_MODELS_MLP_H
#define UNTANGLE_MODELS_MLP_H

#include "untangle.h"

typedef enum {
  MLP_ACT_NONE = 0,
  MLP_ACT_RELU,
  MLP_ACT_LEAKY_RELU, /* slope 0.2, the usual choice in GAN discriminators */
  MLP_ACT_TANH,
  MLP_ACT_SIGMOID,
} mlp_activation;

#define MLP_MAX_LAYERS 16

typedef struct {
  /* Parameter names are "<prefix>.fc<i>.w" and ".b", i = 1 .. n_hidden + 1, so two graphs
   * built with the same prefix share one set of parameters through the store. */
  const char *prefix;
  int n_hidden;                        /* hidden layers, 0 .. MLP_MAX_LAYERS - 1 */
  int64_t hidden[MLP_MAX_LAYERS - 1];  /* their widths */
  int64_t out_features;
  mlp_activation hidden_act;           /* after every hidden layer */
  mlp_activation output_act;           /* after the last layer; NONE gives raw logits */
} mlp_cfg;

/* Applies `act` to x (x itself for MLP_ACT_NONE). NULL in gives NULL out, like every builder. */
ut_tensor *mlp_activate(ut_graph *g, ut_tensor *x, mlp_activation act);

/* Builds the MLP over x [B, in] and returns its output [B, out_features]. NULL when building
 * failed (ut_graph_status says why) or when cfg is unusable: mlp_cfg_check gives the reason
 * for that in words, so callers taking a configuration from users check it first. */
ut_tensor *mlp_forward(ut_graph *g, ut_tensor *x, const mlp_cfg *cfg);

/* UT_OK when cfg describes a buildable MLP; otherwise UT_ERR_INVALID_ARGUMENT and `why`
 * (when not NULL) gets a sentence naming the field. */
ut_status mlp_cfg_check(const mlp_cfg *cfg, char *why, size_t why_size);

/* Number of weights and biases of the MLP for `in_features` inputs. */
int64_t mlp_parameter_count(const mlp_cfg *cfg, int64_t in_features);

/* "tanh", "relu", ...; NULL for an unknown value. mlp_activation_parse is its inverse and
 * returns -1 for an unknown name. */
const char *mlp_activation_name(mlp_activation act);
int mlp_activation_parse(const char *name);

#endif
