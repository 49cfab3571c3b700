/* Not in DMIT (issue 13): a linear domain classifier on the whole content code and the content
 * encoder's confusion term against it (dmit_internal.h). The probes of `untangle eval` read the
 * domain from the codes along a direction of the whole population; the content discriminator
 * (convolutional, spectrally normalised, conditional) and the batch moment term did not remove
 * it (docs/dmit.md). A learnt linear classifier has the probes' form and, with its own
 * optimiser and memory across batches, tracks the population's direction; the encoder is then
 * asked to leave it unable to choose. Unlike the other networks it is not spectrally
 * normalised: the probes it stands for are not constrained either. */
#include <stdlib.h>

#include "dmit_internal.h"

ut_tensor *dmit_domain_logits(ut_graph *g, const dmit_cfg *c, ut_tensor *content) {
  if (!content) return ut_graph_fail(g, ut_graph_status(g));
  int64_t rows = ut_tensor_shape(content).d[0];
  ut_tensor *flat = ut_reshape(g, content, UT_SHAPE(rows, dmit_content_size(c)));
  return ut_linear(g, flat, DMIT_DOMAIN_CLS "linear", c->n_domains);
}

/* Cross-entropy of every row's logits against one label per row. The labels are fixed when the
 * graph is built: a batch's layout never changes between runs. */
static ut_tensor *cross_entropy_against(ut_graph *g, ut_tensor *logits, const int32_t *labels, int64_t n) {
  return ut_cross_entropy(g, logits, ut_constant_i32(g, UT_SHAPE(n), labels));
}

ut_tensor *dmit_domain_cls_loss(ut_graph *g, const dmit_cfg *c, ut_tensor *logits, int64_t rows) {
  int64_t n = (int64_t)c->n_domains * rows;
  int32_t *labels = malloc((size_t)n * sizeof *labels);
  if (!labels) {
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the domain labels");
    return ut_graph_fail(g, UT_ERR_HOST_MEMORY);
  }
  for (int64_t i = 0; i < n; i++) labels[i] = (int32_t)(i / rows);
  ut_tensor *loss = cross_entropy_against(g, logits, labels, n);
  free(labels);
  return loss;
}

/* The mean over the domains k of the cross-entropy against label k for every row, which is the
 * cross-entropy against the uniform distribution: log-sum-exp(logits) - mean_k logits[k]. */
ut_tensor *dmit_domain_confusion(ut_graph *g, const dmit_cfg *c, ut_tensor *logits) {
  if (!logits) return ut_graph_fail(g, ut_graph_status(g));
  int64_t n = ut_tensor_shape(logits).d[0];
  int32_t *labels = malloc((size_t)n * sizeof *labels);
  if (!labels) {
    ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the domain labels");
    return ut_graph_fail(g, UT_ERR_HOST_MEMORY);
  }
  ut_tensor *sum = NULL;
  for (int k = 0; k < c->n_domains; k++) {
    for (int64_t i = 0; i < n; i++) labels[i] = k;
    ut_tensor *term = cross_entropy_against(g, logits, labels, n);
    sum = sum ? ut_add(g, sum, term) : term;
  }
  free(labels);
  return ut_scale(g, sum, 1.0f / (float)c->n_domains);
}
