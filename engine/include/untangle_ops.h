/* untangle's ops, grouped by family: every graph-building call that makes nodes out of other
 * nodes. Included at the end of untangle.h (include that); the conventions are its own: a
 * failing call returns NULL and records the error in the graph, and a NULL input gives NULL.
 */
#ifndef UNTANGLE_OPS_H
#define UNTANGLE_OPS_H

#include "untangle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Elementwise ops and activations.
 */

/* Elementwise, with broadcasting: shapes are aligned at their last dimension (NumPy rules),
 * and a dimension of 1 stretches to the other's size. */
ut_tensor *ut_add(ut_graph *g, ut_tensor *a, ut_tensor *b);
ut_tensor *ut_sub(ut_graph *g, ut_tensor *a, ut_tensor *b);
ut_tensor *ut_mul(ut_graph *g, ut_tensor *a, ut_tensor *b);
ut_tensor *ut_div(ut_graph *g, ut_tensor *a, ut_tensor *b);
ut_tensor *ut_scale(ut_graph *g, ut_tensor *x, float s);  /* x * s */
ut_tensor *ut_shift(ut_graph *g, ut_tensor *x, float s);  /* x + s */
ut_tensor *ut_neg(ut_graph *g, ut_tensor *x);
ut_tensor *ut_abs(ut_graph *g, ut_tensor *x);
ut_tensor *ut_sign(ut_graph *g, ut_tensor *x);            /* -1, 0 or 1; gradient 0 */
ut_tensor *ut_exp(ut_graph *g, ut_tensor *x);
ut_tensor *ut_log(ut_graph *g, ut_tensor *x);
ut_tensor *ut_sqrt(ut_graph *g, ut_tensor *x);
ut_tensor *ut_square(ut_graph *g, ut_tensor *x);
ut_tensor *ut_relu(ut_graph *g, ut_tensor *x);
ut_tensor *ut_leaky_relu(ut_graph *g, ut_tensor *x, float slope);
ut_tensor *ut_tanh(ut_graph *g, ut_tensor *x);
ut_tensor *ut_sigmoid(ut_graph *g, ut_tensor *x);
/* 1 where x > 0, `below` elsewhere: the derivative of relu (below = 0) and leaky relu. */
ut_tensor *ut_step(ut_graph *g, ut_tensor *x, float below);

/* log(1 + exp(x)) elementwise, computed without overflow; its derivative is sigmoid(x). The
 * non-saturating GAN losses are means of softplus(-D) and softplus(D). */
ut_tensor *ut_softplus(ut_graph *g, ut_tensor *x);

/* ---------------------------------------------------------------------------------------------
 * Shapes, slices, reductions and broadcasts.
 */

/* Shape: a view of the same memory with another shape of the same element count. */
ut_tensor *ut_reshape(ut_graph *g, ut_tensor *x, ut_shape shape);
/* Materialises a broadcast of x to `shape` (the gradient of a reduction). */
ut_tensor *ut_broadcast(ut_graph *g, ut_tensor *x, ut_shape shape);

/* Reductions. `axes` is a bit mask of the dimensions to reduce (bit i = dimension i); the
 * reduced dimensions stay with size 1. ut_sum_all / ut_mean_all give a [1] tensor. */
ut_tensor *ut_sum(ut_graph *g, ut_tensor *x, unsigned axes);
ut_tensor *ut_mean(ut_graph *g, ut_tensor *x, unsigned axes);
ut_tensor *ut_sum_all(ut_graph *g, ut_tensor *x);
ut_tensor *ut_mean_all(ut_graph *g, ut_tensor *x);
/* Sums x down to `shape` over the dimensions that broadcasting stretched. */
ut_tensor *ut_sum_to(ut_graph *g, ut_tensor *x, ut_shape shape);

/* Concatenation along dimension 1 (channels of [B, C, H, W], features of [B, F]); a and b
 * must agree in every other dimension. Its gradient is two slices. */
ut_tensor *ut_concat(ut_graph *g, ut_tensor *a, ut_tensor *b);
/* Channels [start, start + count) of x along dimension 1 (a copy, not a view). Asking for all
 * of x returns x itself. Its gradient places the slice in zeros (ut_pad_channels). */
ut_tensor *ut_slice_channels(ut_graph *g, ut_tensor *x, int64_t start, int64_t count);
/* Places x at channels [start, start + C) of a zero tensor with `total` channels along
 * dimension 1: the adjoint of ut_slice_channels. total == C with start 0 returns x. */
ut_tensor *ut_pad_channels(ut_graph *g, ut_tensor *x, int64_t start, int64_t total);

/* Batch entries [start, start + count) of x (rank 1 to 4) along dimension 0, as a copy, e.g.
 * the two domains of a concatenated batch. Asking for all of x returns x itself. Its gradient
 * places the slice in zeros of x's shape. */
ut_tensor *ut_slice_batch(ut_graph *g, ut_tensor *x, int64_t start, int64_t count);

/* ---------------------------------------------------------------------------------------------
 * Matrix products.
 */

/* Matrix product of 2-D tensors: op(a) [M,K] x op(b) [K,N], op = transpose when asked. */
ut_tensor *ut_matmul(ut_graph *g, ut_tensor *a, ut_tensor *b, int transpose_a, int transpose_b);
/* x [B, in] -> [B, out] with parameters `prefix`.w [out, in] and `prefix`.b [out], initialised
 * as PyTorch's nn.Linear. */
ut_tensor *ut_linear(ut_graph *g, ut_tensor *x, const char *prefix, int64_t out_features);

/* Batched matrix product: op(a[i]) x op(b[i]) for each i of the first dimension, with a
 * [B, M, K] (or [B, K, M] with transpose_a), b [B, K, N] (or [B, N, K] with transpose_b), giving
 * [B, M, N], as torch.bmm (with transposes). One strided-batched CLBlast GEMM; differentiable
 * in a and b, to any order. */
ut_tensor *ut_batched_matmul(ut_graph *g, ut_tensor *a, ut_tensor *b, int transpose_a, int transpose_b);
/* Gram matrices of feature maps: x [B, C, H, W] (or [B, C, N]) -> [B, C, C] with
 * G[b] = F F^T / (C * H * W), F = x[b] viewed as [C, H*W], the per-image normalization of
 * Gatys-style style losses (the PyTorch neural-transfer tutorial's gram_matrix for one image,
 * which divides by B*C*H*W). Differentiable to any order. */
ut_tensor *ut_gram(ut_graph *g, ut_tensor *x);

/* ---------------------------------------------------------------------------------------------
 * Convolutions.
 */

typedef enum {
  UT_PAD_ZERO = 0,    /* zeros outside the image (nn.Conv2d's padding) */
  UT_PAD_REFLECT = 1, /* the image mirrored at its border pixel, as nn.ReflectionPad2d; pad < H, W */
} ut_pad_mode;
/* Square stride and padding; the kernel size comes from the weight. A stride of 0 means 1, so
 * a zeroed struct is an unpadded stride-1 convolution. */
typedef struct {
  int stride, pad;
  ut_pad_mode pad_mode;
} ut_conv_cfg;
#define UT_CONV(stride_, pad_) ((ut_conv_cfg){ .stride = (stride_), .pad = (pad_), .pad_mode = UT_PAD_ZERO })
#define UT_CONV_REFLECT(stride_, pad_) ((ut_conv_cfg){ .stride = (stride_), .pad = (pad_), .pad_mode = UT_PAD_REFLECT })

/* 2-D cross-correlation as nn.Conv2d: x [B, C, H, W], w [O, C, kh, kw], bias [O] or NULL give
 * [B, O, (H + 2 pad - kh) / stride + 1, (W + 2 pad - kw) / stride + 1]. Computed a chunk of
 * the batch at a time as im2col into a scratch area that lives only while the op runs and a
 * GEMM (on CPU devices with host memory: on the host with OpenBLAS); the weight gradient
 * recomputes the columns instead of keeping them. Differentiable in x, w and bias, to any
 * order. */
ut_tensor *ut_conv2d(ut_graph *g, ut_tensor *x, ut_tensor *w, ut_tensor *bias, ut_conv_cfg cfg);
/* A convolution layer with parameters `prefix`.w [out_channels, C, kernel, kernel] and, when
 * with_bias, `prefix`.b [out_channels], initialised as PyTorch's nn.Conv2d. */
ut_tensor *ut_conv2d_layer(ut_graph *g, ut_tensor *x, const char *prefix, int64_t out_channels, int kernel,
                           ut_conv_cfg cfg, int with_bias);

/* Transposed 2-D convolution as nn.ConvTranspose2d (groups 1, dilation 1): x [B, C, H, W],
 * w [C, O, kh, kw] (PyTorch's layout, input channels first), bias [O] or NULL give
 * [B, O, (H - 1) * stride - 2 * pad + kh + output_padding, (W - 1) * stride - 2 * pad + kw +
 * output_padding]. It is the adjoint of ut_conv2d with the same weight: the convolution's
 * input-gradient op (a GEMM and a col2im per chunk), plus the bias. */
ut_tensor *ut_conv_transpose2d(ut_graph *g, ut_tensor *x, ut_tensor *w, ut_tensor *bias, int stride, int pad,
                               int output_padding);

/* A transposed convolution layer with parameters `prefix`.w [C, out_channels, kernel, kernel]
 * and, when with_bias, `prefix`.b [out_channels], initialised as PyTorch's nn.ConvTranspose2d
 * (uniform within 1/sqrt(out_channels * kernel^2) for both, PyTorch's fan-in of that layout). */
ut_tensor *ut_conv_transpose2d_layer(ut_graph *g, ut_tensor *x, const char *prefix, int64_t out_channels, int kernel,
                                     int stride, int pad, int output_padding, int with_bias);

/* ---------------------------------------------------------------------------------------------
 * Pooling and resampling.
 */

/* Nearest-neighbour upsampling by two, as nn.Upsample(scale_factor=2): x [B, C, H, W] ->
 * [B, C, 2H, 2W], each pixel copied into a 2x2 block. Its gradient is the 2x2 window sum. */
ut_tensor *ut_upsample_nearest2x(ut_graph *g, ut_tensor *x);
/* Average pooling over 2x2 windows with stride 2, as nn.AvgPool2d(2): x [B, C, H, W] ->
 * [B, C, H/2, W/2] rounded down, so an odd last row or column is dropped (and gets a zero
 * gradient). H and W must be at least 2. */
ut_tensor *ut_avg_pool2x2(ut_graph *g, ut_tensor *x);
/* The mean over H and W: x [B, C, H, W] -> [B, C, 1, 1], as nn.AdaptiveAvgPool2d(1); reshape
 * to [B, C] for a linear layer. */
ut_tensor *ut_global_avg_pool(ut_graph *g, ut_tensor *x);

/* Max pooling over kernel x kernel windows with the given stride, no padding, as
 * nn.MaxPool2d(kernel, stride): x [B, C, H, W] -> [B, C, (H - kernel) / stride + 1, ...].
 * A stride of 0 means the kernel size (PyTorch's default); H and W must be at least kernel.
 * The gradient goes to the first maximum of each window (ties: the lowest index in row-major
 * window order; a NaN counts as the maximum, as PyTorch propagates it). Differentiable to any
 * order: the gradient is a scatter to the chosen elements, whose own gradient is a gather. */
ut_tensor *ut_max_pool2d(ut_graph *g, ut_tensor *x, int kernel, int stride);

/* Average pooling as nn.AvgPool2d(kernel, stride, pad, ceil_mode=False, count_include_pad):
 * x [B, C, H, W] -> [B, C, (H + 2 pad - kernel) / stride + 1, ...], each output the window's
 * sum divided by kernel^2 (count_include_pad != 0) or by the number of image elements in the
 * window (0; UNIT's and DMIT's AvgPool2d(3, 2, 1, count_include_pad=False) between
 * discriminator scales). A stride of 0 means the kernel size; pad must be at most kernel / 2,
 * as PyTorch requires. Linear, with its adjoint as gradient, so differentiable to any order. */
ut_tensor *ut_avg_pool2d(ut_graph *g, ut_tensor *x, int kernel, int stride, int pad, int count_include_pad);

/* Bilinear upsampling by two, as nn.Upsample(scale_factor=2, mode='bilinear',
 * align_corners=False) (F.interpolate likewise): x [B, C, H, W] -> [B, C, 2H, 2W], each output
 * a 0.75/0.25 mix of its two nearest source pixels per axis, the border pixel repeated at the
 * edges. Its gradient is the adjoint map written as a gather (deterministic); differentiable
 * to any order. */
ut_tensor *ut_upsample_bilinear2x(ut_graph *g, ut_tensor *x);

/* ---------------------------------------------------------------------------------------------
 * Normalisation.
 */

/* Instance normalization, as nn.InstanceNorm2d: each (sample, channel) plane of x [B, C, H, W]
 * becomes (x - mean) / sqrt(var + eps) with the biased variance over H, W (PyTorch uses
 * eps = 1e-5), then times weight and plus bias, each an optional [C] tensor (NULL: no affine
 * part). One fused kernel per (sample, channel) plane forward and backward; differentiable to
 * any order. */
ut_tensor *ut_instance_norm(ut_graph *g, ut_tensor *x, ut_tensor *weight, ut_tensor *bias, float eps);
/* Adaptive instance normalization: instance-normalized x [B, C, H, W] times scale [B, C] plus
 * bias [B, C], per sample and channel (the scale and bias usually come from an MLP on a code).
 * With eps = 1e-5 this equals LORD's PyTorch AdaIN, which runs F.batch_norm in training mode
 * over the (1, B*C, H, W) view (biased variance, eps inside the root). */
ut_tensor *ut_adain(ut_graph *g, ut_tensor *x, ut_tensor *scale, ut_tensor *bias, float eps);
/* Layer normalization over every dimension but the batch (C, H, W of [B, C, H, W], or F of
 * [B, F]) with the biased variance and eps inside the root (F.layer_norm; DMIT's variant),
 * then an optional per-channel [C] weight and bias along dimension 1 (MUNIT/UNIT decoders).
 * UNIT's own variant (unbiased std, eps added to the std) is not this one. */
ut_tensor *ut_layer_norm(ut_graph *g, ut_tensor *x, ut_tensor *weight, ut_tensor *bias, float eps);

/* The update node of a running average, as batch normalization keeps its running statistics
 * (kit_batch_norm in models/kit_layers.h): once per plan run, after `batch_stat` is computed,
 * running = (1 - momentum) running + momentum * factor * batch_stat, in place. `running` is a
 * store tensor (usually a ut_state) with as many elements as the f32 `batch_stat`, whose shape
 * may differ ([C] against [1, C, 1, 1]). Nothing is differentiated through it. The plan refuses
 * a graph in which another node reads `running` after this update. Returns the update node, or
 * NULL on failure (recorded in the graph). */
ut_tensor *ut_running_average(ut_graph *g, ut_tensor *running, ut_tensor *batch_stat, float momentum, float factor);

/* ---------------------------------------------------------------------------------------------
 * Embeddings and one-hot codes.
 */

/* Rows of table [N, D] (usually a parameter) picked by indices (an int32 [B] input):
 * out[b] = table[indices[b]], shape [B, D], as nn.Embedding. The gradient with respect to the
 * table is dense [N, D] (zero in rows no index picked, so Adam updates every row as LORD's
 * PyTorch code does) and repeated indices add up; it is computed without atomics, in a fixed
 * order, so runs are bit-reproducible. Indices are checked only on the device: one outside
 * [0, N) reads a zero row and adds nothing to the gradient; nothing out of bounds is touched. */
ut_tensor *ut_embedding(ut_graph *g, ut_tensor *table, ut_tensor *indices);

/* labels (int32 [B]) -> [B, classes] f32 with 1 at each label and 0 elsewhere; a label
 * outside [0, classes) gives a row of zeros. Not differentiable (nothing to differentiate). */
ut_tensor *ut_one_hot(ut_graph *g, ut_tensor *labels, int64_t classes);

/* ---------------------------------------------------------------------------------------------
 * Losses.
 */

/* Losses, as [1] tensors. */
ut_tensor *ut_l1_loss(ut_graph *g, ut_tensor *a, ut_tensor *b);  /* mean |a - b| */
ut_tensor *ut_mse_loss(ut_graph *g, ut_tensor *a, ut_tensor *b); /* mean (a - b)^2 */

/* Losses, as [1] tensors holding a mean over all elements. */
/* Binary cross-entropy on logits, as F.binary_cross_entropy_with_logits: mean of
 * max(x, 0) - x y + log(1 + exp(-|x|)), stable for any x; targets has the logits' shape. */
ut_tensor *ut_bce_with_logits(ut_graph *g, ut_tensor *logits, ut_tensor *targets);
/* The same against one target value for every element (1 for real, 0 for fake). */
ut_tensor *ut_bce_with_logits_const(ut_graph *g, ut_tensor *logits, float target);

/* Cross-entropy of logits [B, K] against integer labels (int32 [B]), as F.cross_entropy with
 * mean reduction: mean over b of logsumexp(logits[b]) - logits[b, labels[b]]. The
 * log-sum-exp subtracts each row's max for stability; that max is a constant to autograd,
 * which is exact to any order because log-sum-exp does not depend on the shift. */
ut_tensor *ut_cross_entropy(ut_graph *g, ut_tensor *logits, ut_tensor *labels);

/* ---------------------------------------------------------------------------------------------
 * Random numbers and stochastic layers.
 */

/* Random numbers from Philox 4x32-10, fresh every run: element i of run r uses the counter
 * (i, r) under a key from (store seed, name), so a seed gives the same noise on every device.
 * The run count is the store counter "rng.<name>", saved with checkpoints. A name is one use
 * per graph: a second random node of the same name in one graph (directly or through
 * ut_dropout, ut_gaussian_noise, ut_reparameterize, the random theta ops) would draw the same
 * sample, so it is refused (UT_ERR_INVALID_ARGUMENT naming the stream). Graphs over one store
 * may share a name, to see the same noise in two plans. */
ut_tensor *ut_random_uniform(ut_graph *g, const char *name, ut_shape shape);
ut_tensor *ut_random_normal(ut_graph *g, const char *name, ut_shape shape);

/* Dropout in training mode, as nn.Dropout(p): each element of x is zeroed with probability p
 * and the others are scaled by 1 / (1 - p), so the expectation is x. The mask is
 * ut_random_uniform(g, name, shape of x) > p: a fresh Philox draw every run, reproducible from
 * the store seed, `name` and the run counter "rng.<name>" (give each layer its own name: a
 * second call with one name in a graph is refused, as it would draw the same mask). Its
 * gradient is the same mask and scale applied to the incoming gradient. There is no
 * evaluation mode: a model in evaluation simply does not call it (nn.Dropout is the identity
 * there). p = 0 returns x; p = 1 gives zeros; p outside [0, 1] is an error. */
ut_tensor *ut_dropout(ut_graph *g, ut_tensor *x, const char *name, float p);

/* Additive Gaussian noise: x + sigma * z with z = ut_random_normal(g, name, shape of x), fresh
 * every run (LORD's content noise with sigma 1, OverLORD's with 0.1 / 0.01, UNIT's
 * GaussianNoiseLayer with 1); as with dropout, one name is one draw and one use per graph.
 * The gradient with respect to x passes straight through. Call it in training only; sigma = 0
 * returns x. */
ut_tensor *ut_gaussian_noise(ut_graph *g, ut_tensor *x, const char *name, float sigma);

/* The VAE reparameterization z = mu + exp(0.5 logvar) * eps, eps = ut_random_normal(g, name,
 * shape of mu), fresh every run (DMIT's style encoder, CMI-VAE's z1); one name per use in a
 * graph, as ut_random_normal. mu and logvar have the same shape; z is differentiable in both
 * (eps is a constant of each run). */
ut_tensor *ut_reparameterize(ut_graph *g, ut_tensor *mu, ut_tensor *logvar, const char *name);

/* ---------------------------------------------------------------------------------------------
 * Geometric transforms (OverLORD's T).
 */

/* Affine bilinear resampling: x [B, C, H, W] sampled through theta, one row-major 2x3 matrix
 * per sample as [B, 2, 3] or [B, 6] in normalized coordinates, gives [B, C, H, W]; exactly
 * F.grid_sample(x, F.affine_grid(theta, x.shape, align_corners=False), mode='bilinear',
 * padding_mode='zeros', align_corners=False). Output pixel (i, j) at xn = (2j + 1) / W - 1,
 * yn = (2i + 1) / H - 1 reads x at (theta[0] xn + theta[1] yn + theta[2], theta[3] xn + ...);
 * points outside the image read zeros. The identity, a mirror (theta[0] = -1) and quarter turns
 * copy pixels exactly. Differentiable in x (the adjoint, computed as a gather without atomics,
 * to any order) and in theta (first order: second derivatives through theta's gradient are not
 * computed). The adjoint's cost per input pixel grows as (2 / scale + 1)^2 for a zoom by
 * `scale`, up to the whole image for a singular theta. */
ut_tensor *ut_affine_grid_sample(ut_graph *g, ut_tensor *x, ut_tensor *theta);
/* The same with an output of out_h x out_w pixels (F.affine_grid's size [B, C, out_h, out_w]);
 * with the identity theta this is F.interpolate(x, (out_h, out_w), mode='bilinear',
 * align_corners=False) without antialiasing. */
ut_tensor *ut_affine_grid_sample_to(ut_graph *g, ut_tensor *x, ut_tensor *theta, int64_t out_h, int64_t out_w);
/* The matrix of "sample with first, then sample the result with second": each 2x3 matrix
 * extended by the row (0, 0, 1), out[b] = first[b] x second[b], as [B, 2, 3]. Sampling x with it
 * equals the two samplings in sequence wherever no resampling or border loss intervenes
 * (exactly for flips and quarter turns). Built from elementwise ops and a sum, differentiable. */
ut_tensor *ut_affine_compose(ut_graph *g, ut_tensor *first, ut_tensor *second);
/* angle [B] or [B, 1] in radians -> [B, 2, 3] with rows (cos, -sin, 0), (sin, cos, 0): sampled
 * with ut_affine_grid_sample it turns a square image counter-clockwise by the angle about its
 * centre, as torchvision's rotate (pi/2 gives torch.rot90(x, 1, (2, 3)) up to the rounding of
 * cos(pi/2) in f32; theta (0, -1, 0; 1, 0, 0) gives it exactly). Differentiable. */
ut_tensor *ut_rotation_theta(ut_graph *g, ut_tensor *angle);
/* A fresh random crop matrix [B, 2, 3] per run from the Philox stream `name` (see
 * ut_random_uniform): torchvision's RandomResizedCrop(size, scale=(scale_min, scale_max),
 * ratio=(1, 1)) followed, when flip is non-zero, by RandomHorizontalFlip(0.5), for square
 * images (OverLORD's AugmentedDataset: scale [0.6, 1] or [0.8, 1], flip on). The area fraction
 * is U(scale_min, scale_max), the crop's side its square root r, its centre uniform over the
 * positions that keep it inside the image; theta = (+-r, 0, cx; 0, r, cy). Unlike torchvision
 * the crop is not rounded to whole pixels, and where it touches the image's edge the outermost
 * output pixels take a weight of up to (1 - r) / 2 from the zero padding of
 * ut_affine_grid_sample, where torchvision repeats the edge. 0 < scale_min <= scale_max <= 1. */
ut_tensor *ut_random_resized_crop_theta(ut_graph *g, const char *name, int64_t batch, float scale_min, float scale_max,
                                        int flip);
/* A fresh random rotation matrix [B, 2, 3] per run (as ut_rotation_theta) by an angle uniform
 * in [-degrees, +degrees] from the Philox stream `name`, as torchvision's
 * RandomRotation(degrees) with zero fill. Combine with a crop by ut_affine_compose(rotation,
 * crop) (rotate the image, then crop the rotated image). */
ut_tensor *ut_random_rotation_theta(ut_graph *g, const char *name, int64_t batch, float degrees);
/* Masking (OverLORD's localized correlation, image times hair mask) needs no op of its own:
 * ut_mul(g, x [B, C, H, W], mask [B, 1, H, W]) broadcasts the mask over the channels, and its
 * gradient sums back over them (x * mask in PyTorch). */

/* ---------------------------------------------------------------------------------------------
 * StyleGAN2's FIR resampling, modulated convolution and fused leaky ReLU.
 */

/* FIR resampling, as StyleGAN2's upfirdn2d (rosinality's op/upfirdn2d.py, square case). */
typedef struct {
  const float *kernel; /* 1-D taps, at most 7; NULL: StyleGAN2's [1, 3, 3, 1] */
  int taps;            /* how many (ignored when kernel is NULL) */
  int up, down;        /* integer factors; 0 means 1 */
  int pad0, pad1;      /* zeros before and after each row and column of the upsampled image; < 0 crops */
  float gain;          /* factor of the normalised 2-D kernel (up^2 after upsampling); 0 means 1 */
} ut_fir_cfg;
/* Depthwise FIR filtering of x [B, C, H, W]: every plane is upsampled by inserting up - 1 zeros
 * after each pixel, padded by pad0 / pad1, convolved (a true convolution, kernel flipped) with
 * gain * outer(k, k) / sum(k)^2 and decimated by down, giving [B, C, OH, OW] with
 * OH = (H * up + pad0 + pad1 - taps) / down + 1 (likewise OW). Matches
 * upfirdn2d(x, make_kernel(k) * gain, up, down, (pad0, pad1)) of rosinality's stylegan2-pytorch,
 * so Blur(k, pad, upsample_factor) is { k, pad0, pad1, gain = factor^2 }. Its gradient is the
 * same filter with the kernel flipped and the factors exchanged (the adjoint), differentiable
 * again. */
ut_tensor *ut_upfirdn2d(ut_graph *g, ut_tensor *x, ut_fir_cfg cfg);
/* StyleGAN2's Upsample([1, 3, 3, 1], factor 2): [B, C, H, W] -> [B, C, 2H, 2W], up 2, pads
 * (2, 1), gain 4 (the ToRGB skip path). */
ut_tensor *ut_fir_upsample2x(ut_graph *g, ut_tensor *x);
/* StyleGAN2's Downsample([1, 3, 3, 1], factor 2): [B, C, H, W] -> [B, C, H/2, W/2] (H, W even;
 * odd sizes round down), down 2, pads (1, 1). */
ut_tensor *ut_fir_downsample2x(ut_graph *g, ut_tensor *x);

typedef struct {
  int demodulate; /* divide by sqrt(sum of the sample's modulated weights^2 + 1e-8) per output channel */
  int up;         /* stride-2 transposed convolution then the [1, 3, 3, 1] blur: output 2H x 2W */
} ut_modconv_cfg;
/* StyleGAN2's modulated convolution (rosinality's ModulatedConv2d without its own weight
 * scale: pass the effective weight): x [B, C, H, W], w [O, C, k, k], style [B, C]. Sample b is
 * convolved with w[o, c] * style[b, c] (times 1 / sqrt(sum_{c,i,j} (w[o, c, i, j] style[b, c])^2
 * + 1e-8) when demodulating), with padding k / 2 and stride 1, giving [B, O, H, W] for odd k;
 * with up, conv_transpose2d(stride 2, padding 0) with that weight in [C, O, k, k] layout
 * followed by upfirdn2d with [1, 3, 3, 1], gain 4 and pads ((p + 1) / 2 + 1, p / 2 + 1),
 * p = 3 - k (floor division), giving [B, O, 2H, 2W]. Computed exactly without per-sample
 * weights: the input is scaled by the style, one shared-weight convolution runs over the
 * batch, and the demodulation factor is sum_c style^2 * sum_ij w^2 as one matmul. Differentiable
 * in x, w and style to any order. */
ut_tensor *ut_modulated_conv2d(ut_graph *g, ut_tensor *x, ut_tensor *w, ut_tensor *style, ut_modconv_cfg cfg);

/* StyleGAN2's fused_leaky_relu: leaky_relu(x + bias, 0.2) * sqrt(2), the bias [C] (or NULL)
 * added along dimension 1 of x [B, C] or [B, C, H, W]. Differentiable to any order. */
ut_tensor *ut_fused_leaky_relu(ut_graph *g, ut_tensor *x, ut_tensor *bias);

/* ---------------------------------------------------------------------------------------------
 * Spectral normalization.
 */

/* Spectral normalization, as torch.nn.utils.spectral_norm with one power iteration. */
typedef struct {
  int dim;    /* the weight dimension of the matrix's rows: 0 (Linear, Conv2d) or 1 (ConvTranspose2d) */
  int frozen; /* no power iteration and no update (PyTorch's eval mode): sigma from the stored u, v */
  float eps;  /* normalisation floor, 0 means 1e-12 */
} ut_sn_cfg;
/* w / sigma for a weight w (rank 2 to 4) read as the matrix W [d_dim, numel / d_dim]. The
 * vectors u [d_dim] and v [numel / d_dim] live in the store as "`prefix`.u" and "`prefix`.v"
 * (created N(0, 1) and normalised). Each run first does one power iteration,
 * v = normalize(W^T u), u = normalize(W v), written back to the store at the end of the run by
 * an update node, then sigma = u . (W v); unless frozen, when the stored u, v are used as they
 * are. As in PyTorch, u and v are constants to the gradient: d sigma / dW = u v^T. Calling it
 * again in the same graph with the same prefix returns the first result, so u is updated once
 * per run. */
ut_tensor *ut_spectral_norm(ut_graph *g, ut_tensor *w, const char *prefix, ut_sn_cfg cfg);

#ifdef __cplusplus
}
#endif
#endif
