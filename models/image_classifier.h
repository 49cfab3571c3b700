/* A small CNN that tells classes of images apart, trained by `untangle eval` on the real
 * images of a data set and independent of the model under test. It judges translations
 * (issue 4, eval part d, the paper's facial-expression protocol): the share of translations
 * it assigns to the target class measures how well the class was transferred.
 *
 *   image_classifier *clf;
 *   image_classifier_train(rt, images, n, 3, 64, 64, labels, n_classes, 1, 5, &clf);
 *   printf("held-out accuracy %.3f\n", image_classifier_get_report(clf)->heldout_accuracy);
 *   image_classifier_predict(clf, translations, m, predicted);
 *   image_classifier_free(clf);
 *
 * The network: three 3x3 convolutions with stride 2 and padding 1 (width, 2 width, 4 width
 * channels), each followed by leaky ReLU (slope 0.2), a global average pool (or, with
 * `flatten`, the whole last feature map) and one linear layer to the class logits; inputs in
 * [0, 1] are mapped to [-1, 1] first. Everything follows
 * from the seed (split, minibatch order, initial weights).
 */
#ifndef UNTANGLE_MODELS_IMAGE_CLASSIFIER_H
#define UNTANGLE_MODELS_IMAGE_CLASSIFIER_H

#include "untangle.h"

typedef struct {
  int64_t width;        /* channels of the first convolution (the others have 2x and 4x) */
  int64_t batch;        /* images per Adam step, and per chunk when predicting */
  float lr;             /* Adam's learning rate */
  double heldout_share; /* share of the images kept out of training to score it; may be 0 */
  int flip;             /* 1: each training image is mirrored left to right with probability 1/2
                           (seeded), for classes that a mirror image keeps */
  int flatten;          /* 1: the linear layer reads the last feature map where it lies instead of
                           its average, for classes told apart by where things are in the image */
} image_classifier_cfg;

/* Width 32, batch 32, Adam at 1e-3, 10% held out, no mirroring, average pool. */
image_classifier_cfg image_classifier_default_cfg(void);

typedef struct {
  double train_accuracy;   /* on the training part, after the last epoch */
  double heldout_accuracy; /* on the held-out part; NAN when nothing was held out */
  double final_loss;       /* mean training cross-entropy over the last epoch; NAN without epochs */
  int64_t n_train, n_heldout;
  int epochs;
} image_classifier_report;

typedef struct image_classifier image_classifier;

/* Trains the CNN for `epochs` passes over a seeded share of images (float [n, c, h, w], values
 * in [0, 1]) with labels (int32 [n], each in [0, n_classes)), then scores it on the training
 * and the held-out parts. *out gets the classifier (free with image_classifier_free) or NULL
 * on failure. Needs n >= 2, n_classes >= 2 and h, w >= 1; a label out of range is an
 * UT_ERR_INVALID_ARGUMENT naming its sample. The images are not kept. */
ut_status image_classifier_train(ut_runtime *rt, const float *images, int64_t n, int64_t c, int64_t h, int64_t w,
                                 const int32_t *labels, int n_classes, uint64_t seed, int epochs,
                                 image_classifier **out);
/* The same with chosen settings (NULL: image_classifier_default_cfg()). */
ut_status image_classifier_train_cfg(ut_runtime *rt, const float *images, int64_t n, int64_t c, int64_t h, int64_t w,
                                     const int32_t *labels, int n_classes, uint64_t seed, int epochs,
                                     const image_classifier_cfg *cfg, image_classifier **out);

/* Writes the most likely class (ties: the lowest) of each of n images (float [n, c, h, w] of
 * the size it was trained on) into out[n]. */
ut_status image_classifier_predict(image_classifier *clf, const float *images, int64_t n, int32_t *out);

/* Accuracies and counts from training; the pointer lives as long as the classifier. */
const image_classifier_report *image_classifier_get_report(const image_classifier *clf);
/* The number of classes it was trained on (predictions lie in 0 .. that - 1); 0 for NULL. */
int image_classifier_classes(const image_classifier *clf);

void image_classifier_free(image_classifier *clf);

#endif
