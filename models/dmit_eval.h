/* DMIT's evaluation (`untangle eval` of a DMIT run, issue 13): how well a trained run keeps
 * content, style and domain apart, on the run's held-out images (dmit_run_split), every figure
 * beside a baseline computed on the same images.
 *
 *  domain judge  an image_classifier trained on real training images labelled by domain: its
 *                held-out accuracy, and the share of translations (every held-out input into
 *                every other domain, with a prior style) it judges as the target domain, next
 *                to the share for the input copied unchanged.
 *  content kept  where the data has content labels: the translation of an input into domain t
 *                with the style the style encoder finds in a reference image of t (another
 *                (class, view); with style labels, of style k), against the true image of the
 *                input's (class, view) in t (and style k): mean pixel L1 (pixels in [0, 1]),
 *                next to the input copied.
 *  diversity     mean pairwise L1 between translations of one input into one domain with 4
 *                prior styles, next to the same for real images of that domain: with style
 *                labels, the input's (class, view) in its styles there; otherwise random images.
 *  leakage       probes (probe.h) on the codes of many images (the run's training and held-out
 *                images alike, up to probe_images per domain), scored over probe_folds folds of
 *                whole (class, view) groups: the codes of one object seen in every domain and
 *                style are all trained on or all scored, and every code is scored once. Domain
 *                (and style, with style labels) from content codes, view and class from style
 *                codes, each next to chance (the majority label's share of the scored codes);
 *                and the directions that must be informative so a collapsed code cannot look
 *                disentangled: view and class from content codes, style from style codes.
 *                Where the domain sits: domain from the content code's channel means, and from
 *                the code with every channel standardised over its positions; and the share of
 *                the full codes' variance that their domain means explain, the quantity the
 *                training term w_content_invariance lowers within each batch.
 *  content discriminator  on the same content codes: the share whose own domain it rates
 *                most real among all domains (chance 1 / domains where they are balanced), and
 *                its mean output for the own domain and for the others; whether the
 *                adversary that should make content codes domain-free still sees the domain.
 * Every random choice follows from cfg.seed.
 */
#ifndef UNTANGLE_MODELS_DMIT_EVAL_H
#define UNTANGLE_MODELS_DMIT_EVAL_H

#include <stdio.h>

#include "dmit.h"
#include "probe.h"
#include "untangle_data.h"

typedef struct {
  uint64_t seed;
  int64_t max_images;   /* held-out images per domain at most */
  int judge_epochs;
  double judge_min_accuracy; /* the judge's held-out accuracy needed before it judges, in [0, 1] */
  int64_t judge_images; /* real training images that train the judge, at most (spread over the domains) */
  int64_t probe_images; /* images per domain whose codes the probes see, at most */
  int probe_folds;      /* folds of (class, view) groups the probes are scored over (2 ..) */
  void (*on_part)(void *user, const char *part);
  void *user;
} dmit_eval_cfg;

/* Seed 1, 200 images per domain, the judge trained 5 epochs on up to 3000 images and needing
 * 0.9 held-out accuracy (below it dmit_evaluate stops with UT_ERR_STATE), the probes
 * on up to 1000 images per domain in 5 folds. */
dmit_eval_cfg dmit_eval_default_cfg(void);

/* One probe scored over folds: accuracies and chance over every scored code. */
typedef struct {
  int measured;
  int folds;
  int64_t n_scored; /* codes scored, each once */
  int64_t n_train;  /* codes trained on, the fewest of any fold */
  double linear, mlp, chance;
} dmit_eval_probe;

/* How much of the variance of codes [n, d] their domains (int32 [n] in [0, domains), domains <=
 * DMIT_MAX_DOMAINS) explain: sum over dimensions of the between-domain variance of the
 * dimension's means (each domain weighted by its share of the codes) over the sum of the
 * dimension's variances; of the codes' squares with power 2. 0 where there is no variance. */
double dmit_domain_variance_share(const float *codes, int64_t n, int64_t d, const int32_t *domain, int domains,
                                  int power);

/* Probes labels (int32 [n] in [0, classes)) from features [n, d] over `folds` folds of
 * groups (int64 [n]; samples of one group share a fold, drawn from the seed): each fold's
 * samples are scored by probes trained on the other folds' samples. Chance is the majority
 * label's share of all n. Not measured (p->measured 0, UT_OK) with fewer than 2 classes or
 * groups than folds. */
ut_status dmit_probe_folds(ut_runtime *rt, const float *features, int64_t n, int64_t d, const int32_t *labels,
                           int classes, const int64_t *groups, int folds, uint64_t seed, dmit_eval_probe *p);

typedef struct {
  int n_domains, n_styles; /* n_styles 0: the set has no style attribute */
  int64_t n_inputs;        /* held-out inputs over all domains */
  double judge_heldout_accuracy;
  int64_t n_translations;
  double judged_target, copy_judged_target;
  int64_t n_content;       /* translations with a true image (0: no content labels) */
  double content_l1, content_copy_l1;
  double diversity, real_diversity;
  int64_t n_codes;         /* images whose codes the probes and the content discriminator see */
  dmit_eval_probe domain_from_content, style_from_content, view_from_style, class_from_style; /* leakage */
  dmit_eval_probe view_from_content, class_from_content, style_from_style;                    /* informative */
  /* Where in the content code the domain is: its channels' spatial means alone, and the code
   * with each channel standardised over its positions (what the content discriminator's
   * instance-normalised blocks see), pooled as the others. */
  dmit_eval_probe domain_from_channel_means, domain_from_normalised;
  /* Over the probes' images: the domains' between-group variance of every dimension of the
   * full codes as a share of that dimension's variance, summed over dimensions (0: every domain
   * has the same mean code; 1: the domain is all the codes vary by), for the codes and for their
   * squares (the term's first and second moments). */
  double domain_mean_share, domain_square_share;
  double content_dis_accuracy, content_dis_chance, content_dis_own, content_dis_other;
} dmit_eval_report;

ut_status dmit_evaluate(ut_runtime *rt, dmit_model *m, const ut_dataset *ds, const dmit_eval_cfg *cfg,
                        dmit_eval_report *r);
void dmit_eval_print(FILE *out, const dmit_eval_report *r);
/* The report as JSON (malloc'd), with the run, data and device named. */
char *dmit_eval_json(const dmit_eval_report *r, const char *run, const char *data, const char *device);

#endif
