/* Style clustering (issue 4, "Style clustering", the paper's domain-translation extension):
 * images are grouped by k-means over Gram-matrix style features, and the cluster ids replace
 * the class labels so LORD can treat in-domain styles as classes.
 *
 * The style feature of an image is the Gram matrix of the ReLU output of one 3x3 convolution
 * with 64 filters (padding 1, stride 1): with F [64, H*W] the activations of one image,
 * G = F F^T / (H W), and the feature is G's upper triangle (diagonal included) row by row,
 * 64 * 65 / 2 = 2080 numbers. The convolution is VGG16's first layer (torchvision
 * features.0.weight / .bias, applied to images in [0, 1] without normalisation, as
 * lord-pytorch feeds VGG) when weights are given, otherwise a fixed random layer drawn from
 * the seed. The convolution and the Gram matrices run on the device, a batch of images at a
 * time, so device memory stays bounded for any n; k-means runs on the host.
 *
 *   int32_t *cluster = malloc(n * sizeof *cluster);
 *   style_cluster_report rep;
 *   style_cluster(rt, images, n, 3, 32, 32, 10, 1, NULL, NULL, cluster, &rep);
 */
#ifndef UNTANGLE_MODELS_STYLE_CLUSTER_H
#define UNTANGLE_MODELS_STYLE_CLUSTER_H

#include "untangle.h"
#include "untangle_data.h"

#define STYLE_CHANNELS 64
#define STYLE_FEATURES (STYLE_CHANNELS * (STYLE_CHANNELS + 1) / 2)

typedef struct {
  int64_t batch;      /* images per device run */
  int max_iterations; /* cap on Lloyd iterations */
} style_cfg;

/* Batches of 32 images, at most 300 Lloyd iterations. */
style_cfg style_default_cfg(void);

typedef struct {
  int64_t feature_dim; /* STYLE_FEATURES */
  int iterations;      /* Lloyd iterations run (assignment + update) */
  int converged;       /* 1 when the last iteration changed no assignment, 0 when capped */
  int empty_refills;   /* times an empty cluster was given the point farthest from its centre */
  double inertia;      /* sum over images of the squared distance to their cluster's centre */
} style_cluster_report;

/* Clusters n images (float [n, c, h, w], values in [0, 1]) into k style clusters and writes
 * each image's cluster id (0 .. k-1) into labels_out[n]. conv_w [64, c, 3, 3] and conv_b [64]
 * give the convolution (conv_b may be NULL: no bias); with conv_w NULL a layer is drawn from
 * the seed as nn.Conv2d initialises one (uniform in +-1/sqrt(9 c), bias too). k-means uses
 * k-means++ seeding from the seed, then Lloyd iterations until no assignment changes or the
 * cap. report may be NULL. Needs 1 <= k <= n. */
ut_status style_cluster(ut_runtime *rt, const float *images, int64_t n, int64_t c, int64_t h, int64_t w, int k,
                        uint64_t seed, const float *conv_w, const float *conv_b, int32_t *labels_out,
                        style_cluster_report *report);
/* The same with chosen settings (NULL: style_default_cfg()). */
ut_status style_cluster_cfg(ut_runtime *rt, const float *images, int64_t n, int64_t c, int64_t h, int64_t w, int k,
                            uint64_t seed, const float *conv_w, const float *conv_b, const style_cfg *cfg,
                            int32_t *labels_out, style_cluster_report *report);

/* Writes a copy of data set ds to out_path (atomically) whose classes are k style clusters of
 * its images, named "style-000", ...; images and content labels are kept, and the source
 * object records k, the seed and the layer. The convolution as in style_cluster (conv_w NULL:
 * the seed's random layer). Features are computed a chunk of images at a time, so memory holds
 * n x STYLE_FEATURES floats but not the images. report may be NULL. */
ut_status style_cluster_dataset(ut_runtime *rt, const ut_dataset *ds, int k, uint64_t seed, const float *conv_w,
                                const float *conv_b, const char *out_path, style_cluster_report *report);

/* The two halves, for tests and for callers that want the features themselves.
 * style_random_conv writes the seed's random layer (w [64, c, 3, 3], b [64]).
 * style_features writes the Gram features of n images into features [n, STYLE_FEATURES]
 * (conv_w required; conv_b may be NULL), `batch` images per device run (0: 32).
 * style_kmeans clusters n points x [n, d] on the host as style_cluster does. */
void style_random_conv(uint64_t seed, int64_t c, float *w, float *b);
ut_status style_features(ut_runtime *rt, const float *images, int64_t n, int64_t c, int64_t h, int64_t w,
                         const float *conv_w, const float *conv_b, int64_t batch, float *features);
ut_status style_kmeans(const float *x, int64_t n, int64_t d, int k, uint64_t seed, int max_iterations, int32_t *labels_out,
                       style_cluster_report *report);

#endif
