/* The model kit's layers that own parameters of one paper's design: StyleGAN2's equalized
 * learning rate (EqualLinear, EqualConv2d / ConvLayer) and modulated convolution layer,
 * batch normalization with its running statistics, and DMIT's CBIN. Each creates its
 * parameters with ut_param under a name prefix and composes engine ops (untangle_ops.h), so it
 * follows the engine's conventions: a failing call returns NULL and records the error in the
 * graph, a NULL input gives NULL, and everything is differentiable to any order. */
#ifndef UNTANGLE_KIT_LAYERS_H
#define UNTANGLE_KIT_LAYERS_H

#include "untangle.h"

/* ---------------------------------------------------------------------------------------------
 * Equalized learning rate and modulated convolution (StyleGAN2).
 */

/* Equalized learning rate (StyleGAN2's EqualLinear / EqualConv2d / ConvLayer). */
typedef struct {
  float lr_mul;    /* 0 means 1 */
  float bias_init; /* the bias's initial value */
  int no_bias;     /* no bias at all */
  int activate;    /* the bias goes into ut_fused_leaky_relu instead of being added */
} kit_equal_cfg;
/* x [B, in] -> [B, out_features] with weight `prefix`.w [out, in] initialised N(0, 1 / lr_mul^2)
 * and used times lr_mul / sqrt(in), and bias `prefix`.b [out] initialised to bias_init and used
 * times lr_mul; with activate, fused_leaky_relu(x W^T, b lr_mul), else x W^T + b lr_mul. As
 * rosinality's EqualLinear(in, out, bias, bias_init, lr_mul, activation="fused_lrelu" or None). */
ut_tensor *kit_equal_linear(ut_graph *g, ut_tensor *x, const char *prefix, int64_t out_features, kit_equal_cfg cfg);
/* The convolution counterpart: weight `prefix`.w [out, C, kernel, kernel] ~ N(0, 1 / lr_mul^2)
 * used times lr_mul / sqrt(C kernel^2), bias `prefix`.b [out]; `conv` gives stride and padding.
 * With activate it is rosinality's ConvLayer(activate=True) without the downsampling blur
 * (apply ut_upfirdn2d first): conv without bias, then ut_fused_leaky_relu with the bias. */
ut_tensor *kit_equal_conv2d(ut_graph *g, ut_tensor *x, const char *prefix, int64_t out_channels, int kernel,
                            ut_conv_cfg conv, kit_equal_cfg cfg);

/* ut_modulated_conv2d with its parameters, as rosinality's ModulatedConv2d: weight `prefix`.w
 * [out_channels, C, kernel, kernel] ~ N(0, 1) used times 1 / sqrt(C kernel^2), and the style
 * from kit_equal_linear(latent [B, D], "`prefix`.mod", C) with bias_init 1. No bias or
 * activation (StyledConv adds ut_fused_leaky_relu, ToRGB a bias). */
ut_tensor *kit_modulated_conv2d_layer(ut_graph *g, ut_tensor *x, ut_tensor *latent, const char *prefix,
                                      int64_t out_channels, int kernel, ut_modconv_cfg cfg);

/* ---------------------------------------------------------------------------------------------
 * Normalisation layers with parameters or running statistics.
 */

/* Batch normalization settings; a zeroed struct (or NULL) is nn.BatchNorm2d's default in
 * training mode: affine, eps 1e-5, momentum 0.1. */
typedef struct {
  int eval;       /* 0: training mode; 1: evaluation mode (the running statistics, no update) */
  int no_affine;  /* 1: no weight and bias (affine=False) */
  float eps;      /* added to the variance inside the root; 0 means 1e-5 */
  float momentum; /* weight of the new batch in the running averages; 0 means 0.1 */
} kit_batch_norm_cfg;
/* Batch normalization as nn.BatchNorm1d/2d: x [B, C], [B, C, L] or [B, C, H, W] is normalized
 * per channel (dimension 1) with statistics over every other dimension, then times weight
 * `prefix`.w and plus bias `prefix`.b (parameters [C], initialised to 1 and 0; none with
 * no_affine). Training mode uses the batch's mean and biased variance, (x - mean) /
 * sqrt(var + eps), and adds an update node that, once per plan run, sets the store tensors
 * `prefix`.running_mean and `prefix`.running_var ([C], created as 0 and 1; not parameters, so
 * ut_params skips them, but checkpoints keep them) to (1 - momentum) running + momentum *
 * batch statistic, with the unbiased variance (times n / (n - 1), n = B*H*W) for running_var,
 * exactly as PyTorch; it needs more than one value per channel. Evaluation mode computes
 * x * a + (b - running_mean * a) with a = w / sqrt(running_var + eps), as PyTorch's inference
 * kernel. Built from elementwise ops and reductions, so it is differentiable to any order in x,
 * w and b (the running statistics get no gradient). Use one mode per prefix in a graph: a node
 * that reads the running statistics after their update in the same graph is refused. */
ut_tensor *kit_batch_norm(ut_graph *g, ut_tensor *x, const char *prefix, const kit_batch_norm_cfg *cfg);

/* DMIT's CBIN (models/modules/cbin.py, num_con > 0, affine False): instance_norm(x, eps 1e-5)
 * + tanh(code W^T + b) broadcast over H and W, for x [B, C, H, W] and code [B, n]. The linear
 * layer's weight `prefix`.w [C, n] ~ N(0, 0.02) and bias `prefix`.b [C] = 0 follow DMIT's
 * "gaussian" init; with sn non-NULL the weight is spectrally normalised (DMIT wraps it in
 * spectral_norm) with u, v stored under `prefix`; NULL means a plain linear layer. */
ut_tensor *kit_cbin(ut_graph *g, ut_tensor *x, ut_tensor *code, const char *prefix, const ut_sn_cfg *sn);

#endif
