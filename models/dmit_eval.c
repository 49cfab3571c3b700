/* DMIT's evaluation (dmit_eval.h). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dmit_eval.h"
#include "kit_random.h"
#include "dmit_train.h"
#include "image_classifier.h"

#define DIVERSITY_STYLES 4
#define POOLED_SIDE 4 /* content codes are average-pooled to at most this many pixels a side for the probes */

dmit_eval_cfg dmit_eval_default_cfg(void) {
  return (dmit_eval_cfg){ .seed = 1, .max_images = 200, .judge_epochs = 5, .judge_min_accuracy = 0.9, .judge_images = 3000, .probe_images = 1000,
                          .probe_folds = 5 };
}

static void part(const dmit_eval_cfg *cfg, const char *what) {
  if (cfg->on_part) cfg->on_part(cfg->user, what);
}

static double l1(const float *a, const float *b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += fabs((double)a[i] - (double)b[i]);
  return s / (double)n;
}

/* Where every (domain, class, content, style) image is, for the true images. */
typedef struct {
  int32_t *at;
  int classes, contents, styles, attr;
} lookup;

static int style_of(const ut_dataset *ds, const lookup *lk, int32_t i) {
  return lk->attr < 0 ? 0 : (int)lroundf(ut_dataset_attribute(ds, i, lk->attr));
}

static int64_t key(const lookup *lk, int d, int c, int v, int k) {
  return (((int64_t)d * lk->classes + c) * lk->contents + v) * lk->styles + k;
}

static int32_t find(const ut_dataset *ds, const lookup *lk, int32_t like, int d, int k) {
  if (!lk->at) return -1;
  return lk->at[key(lk, d, ut_dataset_class(ds, like), ut_dataset_content(ds, like), k)];
}

static ut_status build_lookup(const ut_dataset *ds, int n_domains, lookup *lk) {
  *lk = (lookup){ .classes = ut_dataset_n_classes(ds), .contents = ut_dataset_n_contents(ds), .styles = 1,
                  .attr = ut_dataset_find_attribute(ds, "style") };
  for (int32_t i = 0; lk->attr >= 0 && i < ut_dataset_count(ds); i++)
    if (style_of(ds, lk, i) + 1 > lk->styles) lk->styles = style_of(ds, lk, i) + 1;
  if (lk->contents < 1) return UT_OK;
  int64_t n = key(lk, n_domains, 0, 0, 0);
  if (n > (64 << 20)) return UT_OK;
  if (!(lk->at = malloc((size_t)n * sizeof *lk->at))) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  for (int64_t i = 0; i < n; i++) lk->at[i] = -1;
  for (int32_t i = 0; i < ut_dataset_count(ds); i++) {
    int k = style_of(ds, lk, i);
    if (k >= 0 && k < lk->styles)
      lk->at[key(lk, ut_dataset_domain(ds, i), ut_dataset_class(ds, i), ut_dataset_content(ds, i), k)] = i;
  }
  return UT_OK;
}

ut_status dmit_probe_folds(ut_runtime *rt, const float *x, int64_t n, int64_t d, const int32_t *labels, int classes,
                           const int64_t *groups, int folds, uint64_t seed, dmit_eval_probe *p) {
  *p = (dmit_eval_probe){ .folds = folds };
  if (!rt || !x || !labels || !groups || folds < 2)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "dmit_probe_folds: no runtime, features, labels or groups, or %d folds", folds);
  /* Groups are renumbered in order of appearance, then dealt to folds in a seeded order. */
  int64_t *id = malloc((size_t)n * sizeof *id), *first = malloc((size_t)n * sizeof *first);
  int64_t *perm = malloc((size_t)n * sizeof *perm), *fold_of = malloc((size_t)n * sizeof *fold_of);
  int64_t *counts = calloc((size_t)(classes > 0 ? classes : 1), sizeof *counts);
  float *fx = malloc((size_t)(n * d) * sizeof *fx);
  int32_t *fy = malloc((size_t)n * sizeof *fy);
  ut_status st = id && first && perm && fold_of && counts && fx && fy ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the probes");
  int64_t n_groups = 0;
  for (int64_t i = 0; st == UT_OK && i < n; i++) {
    int64_t g = 0;
    while (g < n_groups && groups[first[g]] != groups[i]) g++;
    if (g == n_groups) first[n_groups++] = i;
    id[i] = g;
  }
  if (st == UT_OK && classes >= 2 && n_groups >= folds) {
    kit_permutation(seed ^ 0x666f6c64ull, n_groups, perm); /* "fold" */
    for (int64_t r = 0; r < n_groups; r++) fold_of[perm[r]] = r % folds;
    probe_cfg pc = probe_default_cfg();
    double linear = 0, mlp = 0;
    p->n_train = n;
    for (int f = 0; st == UT_OK && f < folds; f++) {
      /* The other folds' samples first (trained on), then this fold's (scored). */
      int64_t m = 0;
      for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 0; i < n; i++)
          if ((fold_of[id[i]] == f) == pass) {
            memcpy(fx + m * d, x + i * d, (size_t)d * sizeof *fx);
            fy[m++] = labels[i];
          }
      int64_t n_test = 0;
      for (int64_t i = 0; i < n; i++) n_test += fold_of[id[i]] == f;
      probe_result r;
      st = probe_accuracy_split(rt, fx, n, n - n_test, d, fy, classes, seed + (uint64_t)f, &pc, &r);
      linear += r.linear_accuracy * (double)n_test;
      mlp += r.mlp_accuracy * (double)n_test;
      if (n - n_test < p->n_train) p->n_train = n - n_test;
    }
    int64_t most = 0;
    for (int64_t i = 0; st == UT_OK && i < n; i++)
      if (++counts[labels[i]] > most) most = counts[labels[i]];
    if (st == UT_OK)
      *p = (dmit_eval_probe){ .measured = 1, .folds = folds, .n_scored = n, .n_train = p->n_train,
                              .linear = linear / (double)n, .mlp = mlp / (double)n, .chance = (double)most / (double)n };
  }
  free(id);
  free(first);
  free(perm);
  free(fold_of);
  free(counts);
  free(fx);
  free(fy);
  return st;
}

double dmit_domain_variance_share(const float *codes, int64_t n, int64_t d, const int32_t *domain, int domains, int power) {
  double between = 0, total = 0, sum[DMIT_MAX_DOMAINS];
  int64_t count[DMIT_MAX_DOMAINS] = { 0 };
  for (int64_t i = 0; i < n; i++) count[domain[i]]++;
  for (int64_t k = 0; k < d; k++) {
    double all = 0, sq = 0;
    for (int g = 0; g < domains; g++) sum[g] = 0;
    for (int64_t i = 0; i < n; i++) {
      double v = codes[i * d + k];
      v = power == 1 ? v : v * v;
      sum[domain[i]] += v;
      all += v;
      sq += v * v;
    }
    double mean = all / (double)n;
    total += sq / (double)n - mean * mean;
    for (int g = 0; g < domains; g++)
      if (count[g]) between += (double)count[g] / (double)n * (sum[g] / (double)count[g] - mean) * (sum[g] / (double)count[g] - mean);
  }
  return total > 0 ? between / total : 0;
}

ut_status dmit_evaluate(ut_runtime *rt, dmit_model *m, const ut_dataset *ds, const dmit_eval_cfg *cfg,
                        dmit_eval_report *r) {
  const dmit_cfg *c = dmit_config(m);
  dmit_cfg check = *c;
  ut_status st = dmit_resolve_domains(ds, &check);
  if (st != UT_OK) return st;
  *r = (dmit_eval_report){ .n_domains = c->n_domains };
  dmit_split sp;
  if ((st = dmit_run_split(ds, c, &sp)) != UT_OK) return st;
  lookup lk;
  if ((st = build_lookup(ds, c->n_domains, &lk)) != UT_OK) {
    dmit_split_free(&sp);
    return st;
  }
  r->n_styles = lk.attr >= 0 ? lk.styles : 0;
  int N = c->n_domains;
  int64_t per = (int64_t)c->channels * c->size * c->size, n_in = 0, cap = cfg->max_images * N;
  int32_t *ids = malloc((size_t)cap * sizeof *ids), *dom = malloc((size_t)cap * sizeof *dom);
  int64_t big = cap > cfg->judge_images ? cap : cfg->judge_images;
  float *x = malloc((size_t)(cap * per) * sizeof *x), *y = malloc((size_t)(big * per) * sizeof *y);
  float *z = malloc((size_t)(cap * per) * sizeof *z), *styles = malloc((size_t)(cap * c->n_style) * sizeof *styles);
  int32_t *pred = malloc((size_t)big * sizeof *pred), *labels = malloc((size_t)big * sizeof *labels);
  int32_t *idx = malloc((size_t)cap * sizeof *idx), *truth = malloc((size_t)cap * sizeof *truth);
  if (!ids || !dom || !x || !y || !z || !styles || !pred || !labels || !idx || !truth)
    st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the evaluation");
  /* The held-out inputs, evenly spread over each domain's held-out images. */
  for (int d = 0; st == UT_OK && d < N; d++) {
    const int32_t *list = sp.n_test[d] ? sp.test[d] : sp.train[d];
    int64_t avail = sp.n_test[d] ? sp.n_test[d] : sp.n_train[d], take = avail < cfg->max_images ? avail : cfg->max_images;
    for (int64_t k = 0; k < take; k++, n_in++) {
      ids[n_in] = list[k * avail / take];
      dom[n_in] = d;
    }
  }
  r->n_inputs = n_in;
  if (st == UT_OK) st = dmit_load_images(ds, ids, (int)n_in, c->size, x);

  /* The domain judge. */
  image_classifier *judge = NULL;
  int64_t n_judge = 0;
  part(cfg, "domain judge");
  for (int d = 0; st == UT_OK && d < N; d++) {
    int64_t take = cfg->judge_images / N < sp.n_train[d] ? cfg->judge_images / N : sp.n_train[d];
    for (int64_t k = 0; k < take; k++, n_judge++) {
      idx[0] = sp.train[d][k * sp.n_train[d] / take];
      st = dmit_load_images(ds, idx, 1, c->size, y + n_judge * per);
      labels[n_judge] = d;
    }
  }
  if (st == UT_OK)
    st = image_classifier_train(rt, y, n_judge, c->channels, c->size, c->size, labels, N, cfg->seed, cfg->judge_epochs, &judge);
  if (st == UT_OK) r->judge_heldout_accuracy = image_classifier_get_report(judge)->heldout_accuracy;
  /* A judge that cannot tell real images' domains apart says nothing about translations. */
  if (st == UT_OK && cfg->judge_min_accuracy > 0 && isnan(r->judge_heldout_accuracy))
    st = ut_fail(UT_ERR_STATE, "the domain judge cannot be scored: its %lld real images leave none held out (raise "
                 "--judge-images, or set --judge-min-accuracy 0 to judge with an unscored judge)", (long long)n_judge);
  else if (st == UT_OK && cfg->judge_min_accuracy > 0 && !(r->judge_heldout_accuracy >= cfg->judge_min_accuracy))
    st = ut_fail(UT_ERR_STATE,
                 "the domain judge recognises only %.3f of its held-out real images after %d epochs on %lld (it must reach "
                 "%.2f before it judges translations): raise --judge-epochs, or lower --judge-min-accuracy",
                 r->judge_heldout_accuracy, cfg->judge_epochs, (long long)n_judge, cfg->judge_min_accuracy);

  /* Every input into every other domain with a prior style: judged, and (with a reference's
   * style) against the truth. */
  part(cfg, "translations");
  double judged = 0, copy_judged = 0, content = 0, copy_content = 0;
  int64_t n_judged = 0;
  if (st == UT_OK) st = image_classifier_predict(judge, x, n_in, pred);
  for (int t = 0; st == UT_OK && t < N; t++) {
    int64_t n = 0;
    for (int64_t i = 0; i < n_in; i++)
      if (dom[i] != t) {
        memcpy(z + n * per, x + i * per, (size_t)per * sizeof *z);
        idx[n++] = (int32_t)i;
      }
    dmit_prior_styles(c, cfg->seed * 131 + (uint64_t)t, n, styles);
    st = dmit_translate(m, z, n, t, styles, y);
    if (st == UT_OK) st = image_classifier_predict(judge, y, n, labels);
    for (int64_t k = 0; st == UT_OK && k < n; k++) {
      judged += labels[k] == t;
      copy_judged += pred[idx[k]] == t;
    }
    n_judged += n;
    /* References: a held-out image of t of another (class, view) in style k; the truth: the
     * input's (class, view) in t and style k. */
    int64_t m_ref = 0;
    int32_t *refs = labels; /* reused: the judge's answers are counted */
    for (int64_t k = 0; st == UT_OK && k < n && lk.at; k++) {
      int32_t in = ids[idx[k]];
      int64_t avail = sp.n_test[t] ? sp.n_test[t] : sp.n_train[t];
      const int32_t *list = sp.n_test[t] ? sp.test[t] : sp.train[t];
      int32_t ref = list[kit_hash64(cfg->seed ^ ((uint64_t)in << 8) ^ (uint64_t)t) % (uint64_t)avail];
      if (ut_dataset_class(ds, ref) == ut_dataset_class(ds, in) && ut_dataset_content(ds, ref) == ut_dataset_content(ds, in))
        continue;
      int32_t tr = find(ds, &lk, in, t, style_of(ds, &lk, ref));
      if (tr < 0) continue;
      memcpy(z + m_ref * per, x + idx[k] * per, (size_t)per * sizeof *z);
      refs[m_ref] = ref;
      truth[m_ref++] = tr;
    }
    if (st == UT_OK && m_ref > 0) {
      /* y: the references, then their styles; z's first m_ref: the inputs. */
      st = dmit_load_images(ds, refs, (int)m_ref, c->size, y);
      if (st == UT_OK) st = dmit_encode_style(m, y, m_ref, styles);
      if (st == UT_OK) st = dmit_translate(m, z, m_ref, t, styles, y);
      float *true_img = malloc((size_t)per * sizeof *true_img);
      if (!true_img) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
      for (int64_t k = 0; st == UT_OK && k < m_ref; k++) {
        st = dmit_load_images(ds, &truth[k], 1, c->size, true_img);
        content += l1(y + k * per, true_img, per);
        copy_content += l1(z + k * per, true_img, per);
      }
      free(true_img);
      r->n_content += m_ref;
    }
  }
  r->n_translations = n_judged;
  r->judged_target = n_judged ? judged / (double)n_judged : NAN;
  r->copy_judged_target = n_judged ? copy_judged / (double)n_judged : NAN;
  r->content_l1 = r->n_content ? content / (double)r->n_content : NAN;
  r->content_copy_l1 = r->n_content ? copy_content / (double)r->n_content : NAN;

  /* Diversity: each input into the next domain with DIVERSITY_STYLES prior styles. */
  part(cfg, "diversity");
  double div = 0, real_div = 0;
  int64_t n_div = 0, n_real = 0, n_d = n_in < 100 ? n_in : 100;
  float *one = malloc((size_t)(DIVERSITY_STYLES * per) * sizeof *one), *out = malloc((size_t)(DIVERSITY_STYLES * per) * sizeof *out);
  if (st == UT_OK && (!one || !out)) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  for (int64_t s = 0; st == UT_OK && s < n_d; s++) {
    int64_t i = s * n_in / n_d;
    int t = (dom[i] + 1) % N;
    for (int k = 0; k < DIVERSITY_STYLES; k++) memcpy(one + k * per, x + i * per, (size_t)per * sizeof *one);
    dmit_prior_styles(c, cfg->seed * 7919 + (uint64_t)i, DIVERSITY_STYLES, styles);
    st = dmit_translate(m, one, DIVERSITY_STYLES, t, styles, out);
    for (int a = 0; st == UT_OK && a < DIVERSITY_STYLES; a++)
      for (int b = a + 1; b < DIVERSITY_STYLES; b++, n_div++) div += l1(out + a * per, out + b * per, per);
    /* Real images of t: the input's (class, view) in each style, or random images. */
    int32_t real[DIVERSITY_STYLES];
    int n_r = 0;
    for (int k = 0; k < DIVERSITY_STYLES; k++) {
      int32_t j = r->n_styles > 1 && k < lk.styles ? find(ds, &lk, ids[i], t, k)
                                                   : sp.train[t][kit_hash64(cfg->seed + 17 * (uint64_t)i + (uint64_t)k) % (uint64_t)sp.n_train[t]];
      if (j >= 0) real[n_r++] = j;
    }
    if (st == UT_OK && n_r > 1) st = dmit_load_images(ds, real, n_r, c->size, one);
    for (int a = 0; st == UT_OK && n_r > 1 && a < n_r; a++)
      for (int b = a + 1; b < n_r; b++, n_real++) real_div += l1(one + a * per, one + b * per, per);
  }
  free(one);
  free(out);
  r->diversity = n_div ? div / (double)n_div : NAN;
  r->real_diversity = n_real ? real_div / (double)n_real : NAN;

  image_classifier_free(judge);
  judge = NULL;
  /* Leakage, the informative directions and the content discriminator, on the codes of many
   * images: held-out and training images of every domain, evenly spread. */
  part(cfg, "probes");
  free(ids);
  free(dom);
  free(x);
  ids = NULL;
  dom = NULL;
  x = NULL;
  int64_t n_p = 0;
  for (int d = 0; d < N; d++) n_p += sp.n_train[d] + sp.n_test[d] < cfg->probe_images ? sp.n_train[d] + sp.n_test[d] : cfg->probe_images;
  if (st == UT_OK && !(ids = malloc((size_t)n_p * sizeof *ids))) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  n_p = 0;
  for (int d = 0; st == UT_OK && d < N; d++) {
    int64_t avail = sp.n_train[d] + sp.n_test[d], take = avail < cfg->probe_images ? avail : cfg->probe_images;
    for (int64_t k = 0; k < take; k++) {
      int64_t j = k * avail / take;
      ids[n_p++] = j < sp.n_train[d] ? sp.train[d][j] : sp.test[d][j - sp.n_train[d]];
    }
  }
  r->n_codes = n_p;
  int64_t csize = dmit_content_size(c), side = c->size >> c->down_blocks, ch = csize / (side * side);
  int64_t f = side > POOLED_SIDE ? side / POOLED_SIDE : 1, ps = side / f, pd = ch * ps * ps;
  float *codes = NULL, *pooled = NULL, *score = NULL;
  int32_t *lab = NULL;
  int64_t *groups = NULL;
  if (st == UT_OK && (!(x = malloc((size_t)(n_p * per) * sizeof *x)) || !(codes = malloc((size_t)(n_p * csize) * sizeof *codes)) ||
                      !(pooled = malloc((size_t)(n_p * pd) * sizeof *pooled)) ||
                      !(score = malloc((size_t)(n_p * N) * sizeof *score)) || !(lab = malloc((size_t)n_p * 5 * sizeof *lab)) ||
                      !(groups = malloc((size_t)n_p * sizeof *groups))))
    st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory for the codes of %lld images", (long long)n_p);
  free(styles);
  styles = NULL;
  if (st == UT_OK && !(styles = malloc((size_t)(n_p * c->n_style) * sizeof *styles))) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  if (st == UT_OK) st = dmit_load_images(ds, ids, (int)n_p, c->size, x);
  if (st == UT_OK) st = dmit_encode_content(m, x, n_p, codes);
  if (st == UT_OK) st = dmit_encode_style(m, x, n_p, styles);
  for (int64_t i = 0; st == UT_OK && i < n_p; i++)
    for (int64_t k = 0; k < ch; k++)
      for (int64_t py = 0; py < ps; py++)
        for (int64_t px = 0; px < ps; px++) {
          double s = 0;
          for (int64_t u = 0; u < f; u++)
            for (int64_t v = 0; v < f; v++) s += codes[((i * ch + k) * side + py * f + u) * side + px * f + v];
          pooled[((i * ch + k) * ps + py) * ps + px] = (float)(s / (double)(f * f));
        }
  /* Labels: domain, view, class, style; groups: the (class, view) where the data has them. */
  int32_t *l_dom = lab, *l_view = lab + n_p, *l_class = lab + 2 * n_p, *l_sty = lab + 3 * n_p;
  int contents = ut_dataset_n_contents(ds), classes = ut_dataset_n_classes(ds);
  for (int64_t i = 0; st == UT_OK && i < n_p; i++) {
    l_dom[i] = ut_dataset_domain(ds, ids[i]);
    l_view[i] = ut_dataset_content(ds, ids[i]);
    l_class[i] = ut_dataset_class(ds, ids[i]);
    l_sty[i] = style_of(ds, &lk, ids[i]);
    groups[i] = contents > 0 ? (int64_t)l_class[i] * contents + l_view[i] : ids[i];
  }
  int K = cfg->probe_folds;
  uint64_t seed = cfg->seed;
  if (st == UT_OK) st = dmit_probe_folds(rt, pooled, n_p, pd, l_dom, N, groups, K, seed, &r->domain_from_content);
  if (st == UT_OK && r->n_styles > 1) st = dmit_probe_folds(rt, pooled, n_p, pd, l_sty, r->n_styles, groups, K, seed, &r->style_from_content);
  if (st == UT_OK && contents > 1) st = dmit_probe_folds(rt, styles, n_p, c->n_style, l_view, contents, groups, K, seed, &r->view_from_style);
  if (st == UT_OK && classes > 1) st = dmit_probe_folds(rt, styles, n_p, c->n_style, l_class, classes, groups, K, seed, &r->class_from_style);
  if (st == UT_OK && contents > 1) st = dmit_probe_folds(rt, pooled, n_p, pd, l_view, contents, groups, K, seed, &r->view_from_content);
  if (st == UT_OK && classes > 1) st = dmit_probe_folds(rt, pooled, n_p, pd, l_class, classes, groups, K, seed, &r->class_from_content);
  if (st == UT_OK && r->n_styles > 1) st = dmit_probe_folds(rt, styles, n_p, c->n_style, l_sty, r->n_styles, groups, K, seed, &r->style_from_style);

  /* The same codes split into their channel means and what is left once each channel is
   * standardised per image; `pooled` takes the second, pooled likewise. */
  float *means = NULL;
  if (st == UT_OK && !(means = malloc((size_t)(n_p * ch) * sizeof *means))) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  for (int64_t i = 0; st == UT_OK && i < n_p; i++)
    for (int64_t k = 0; k < ch; k++) {
      const float *plane = codes + (i * ch + k) * side * side;
      double mean = 0, var = 0;
      for (int64_t q = 0; q < side * side; q++) mean += plane[q];
      mean /= (double)(side * side);
      for (int64_t q = 0; q < side * side; q++) var += (plane[q] - mean) * (plane[q] - mean);
      double inv = 1.0 / sqrt(var / (double)(side * side) + 1e-5);
      means[i * ch + k] = (float)mean;
      for (int64_t py = 0; py < ps; py++)
        for (int64_t px = 0; px < ps; px++) {
          double s = 0;
          for (int64_t u = 0; u < f; u++)
            for (int64_t v = 0; v < f; v++) s += plane[(py * f + u) * side + px * f + v] - mean;
          pooled[((i * ch + k) * ps + py) * ps + px] = (float)(s * inv / (double)(f * f));
        }
    }
  if (st == UT_OK) st = dmit_probe_folds(rt, means, n_p, ch, l_dom, N, groups, K, seed, &r->domain_from_channel_means);
  if (st == UT_OK) st = dmit_probe_folds(rt, pooled, n_p, pd, l_dom, N, groups, K, seed, &r->domain_from_normalised);
  free(means);

  if (st == UT_OK) {
    r->domain_mean_share = dmit_domain_variance_share(codes, n_p, csize, l_dom, N, 1);
    r->domain_square_share = dmit_domain_variance_share(codes, n_p, csize, l_dom, N, 2);
  }

  /* The content discriminator on the full codes, paired with every domain. */
  for (int d = 0; st == UT_OK && d < N; d++) {
    float *col = pooled; /* reused: the pooled codes are no longer needed */
    st = dmit_content_dis_score(m, codes, n_p, d, col);
    for (int64_t i = 0; st == UT_OK && i < n_p; i++) score[i * N + d] = col[i];
  }
  if (st == UT_OK && n_p > 0) {
    int64_t right = 0, most = 0, *count = calloc((size_t)N, sizeof *count);
    double own = 0, other = 0;
    if (!count) st = ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
    for (int64_t i = 0; st == UT_OK && i < n_p; i++) {
      int best = 0;
      for (int d = 1; d < N; d++)
        if (score[i * N + d] > score[i * N + best]) best = d;
      right += best == l_dom[i];
      if (++count[l_dom[i]] > most) most = count[l_dom[i]];
      for (int d = 0; d < N; d++)
        if (d == l_dom[i]) own += score[i * N + d];
        else other += score[i * N + d];
    }
    free(count);
    r->content_dis_accuracy = (double)right / (double)n_p;
    r->content_dis_chance = (double)most / (double)n_p;
    r->content_dis_own = own / (double)n_p;
    r->content_dis_other = other / (double)(n_p * (N - 1));
  }
  free(score);
  free(lab);
  free(groups);
  free(codes);
  free(pooled);
  image_classifier_free(judge);
  free(ids);
  free(dom);
  free(x);
  free(y);
  free(z);
  free(styles);
  free(pred);
  free(labels);
  free(idx);
  free(truth);
  free(lk.at);
  dmit_split_free(&sp);
  return st;
}

static void print_probe(FILE *out, const char *what, const dmit_eval_probe *p) {
  if (p->measured)
    fprintf(out, "  %-26s linear %.3f  mlp %.3f  chance %.3f  (%lld codes scored over %d folds)\n", what, p->linear,
            p->mlp, p->chance, (long long)p->n_scored, p->folds);
  else
    fprintf(out, "  %-26s not measured\n", what);
}

void dmit_eval_print(FILE *out, const dmit_eval_report *r) {
  fprintf(out, "domain judge: held-out accuracy %.3f; translations judged as the target %.3f (copy %.3f), %lld\n",
          r->judge_heldout_accuracy, r->judged_target, r->copy_judged_target, (long long)r->n_translations);
  if (r->n_content)
    fprintf(out, "content kept: L1 %.4f against the true image in the reference's style (copy %.4f), %lld\n",
            r->content_l1, r->content_copy_l1, (long long)r->n_content);
  else
    fprintf(out, "content kept: not measured (no content labels)\n");
  fprintf(out, "diversity: %.4f between prior styles (real images of the domain %.4f)\n", r->diversity,
          r->real_diversity);
  fprintf(out, "leakage (want chance), codes of %lld images in folds of whole (class, view) groups:\n",
          (long long)r->n_codes);
  print_probe(out, "domain from content codes", &r->domain_from_content);
  print_probe(out, "style from content codes", &r->style_from_content);
  print_probe(out, "view from style codes", &r->view_from_style);
  print_probe(out, "class from style codes", &r->class_from_style);
  fprintf(out, "informative (want high):\n");
  print_probe(out, "view from content codes", &r->view_from_content);
  print_probe(out, "class from content codes", &r->class_from_content);
  print_probe(out, "style from style codes", &r->style_from_style);
  fprintf(out, "where the domain is in the content codes:\n");
  print_probe(out, "from their channel means", &r->domain_from_channel_means);
  print_probe(out, "channels standardised", &r->domain_from_normalised);
  fprintf(out, "  share of the codes' variance in their domain means %.4f, of their squares' %.4f\n", r->domain_mean_share,
          r->domain_square_share);
  fprintf(out,
          "content discriminator: rates the code's own domain most real for %.3f of the codes (chance %.3f); mean "
          "output %.3f with the own domain, %.3f with another\n",
          r->content_dis_accuracy, r->content_dis_chance, r->content_dis_own, r->content_dis_other);
}

static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *probe_json(const dmit_eval_probe *p) {
  if (!p->measured) return json_null();
  return json_pack("{s:o, s:o, s:o, s:I, s:I, s:i}", "linear", num(p->linear), "mlp", num(p->mlp), "chance",
                   num(p->chance), "n_scored", (json_int_t)p->n_scored, "n_train_min", (json_int_t)p->n_train, "folds",
                   p->folds);
}

char *dmit_eval_json(const dmit_eval_report *r, const char *run, const char *data, const char *device) {
  json_t *j = json_pack(
      "{s:s, s:s, s:s, s:s, s:i, s:i, s:I,"
      " s:{s:o, s:o, s:o, s:I},"
      " s:{s:o, s:o, s:I},"
      " s:{s:o, s:o},"
      " s:{s:o, s:o, s:o, s:o, s:I},"
      " s:{s:o, s:o, s:o},"
      " s:{s:o, s:o, s:o, s:o},"
      " s:{s:o, s:o, s:o, s:o, s:I}}",
      "model", "dmit", "run", run, "data", data, "device", device, "domains", r->n_domains, "styles", r->n_styles,
      "inputs", (json_int_t)r->n_inputs,
      "domain", "judge_heldout_accuracy", num(r->judge_heldout_accuracy), "judged_target", num(r->judged_target),
      "copy_judged_target", num(r->copy_judged_target), "n", (json_int_t)r->n_translations,
      "content_kept", "l1", num(r->content_l1), "copy_l1", num(r->content_copy_l1), "n", (json_int_t)r->n_content,
      "diversity", "translations", num(r->diversity), "real", num(r->real_diversity),
      "leakage", "domain_from_content", probe_json(&r->domain_from_content), "style_from_content",
      probe_json(&r->style_from_content), "view_from_style", probe_json(&r->view_from_style), "class_from_style",
      probe_json(&r->class_from_style), "n_codes", (json_int_t)r->n_codes,
      "informative", "view_from_content", probe_json(&r->view_from_content), "class_from_content",
      probe_json(&r->class_from_content), "style_from_style", probe_json(&r->style_from_style),
      "domain_in_content", "channel_means", probe_json(&r->domain_from_channel_means), "standardised_channels",
      probe_json(&r->domain_from_normalised), "variance_share_of_means", num(r->domain_mean_share),
      "variance_share_of_squares", num(r->domain_square_share),
      "content_discriminator", "accuracy", num(r->content_dis_accuracy), "chance", num(r->content_dis_chance),
      "own", num(r->content_dis_own), "other", num(r->content_dis_other), "n", (json_int_t)r->n_codes);
  char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
  json_decref(j);
  return text;
}
