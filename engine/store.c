/* The store: named persistent tensors on the device, named 64-bit counters and string metadata,
 * shared by every graph and plan of one runtime. Checkpoints go through safetensors.c; this file
 * decides what goes into them and how a load is staged so that a failure changes nothing. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "graph_internal.h"
#include "philox.h"
#include "runtime_internal.h"
#include "safetensors.h"

/* Reserved __metadata__ keys; user metadata may not start with UT_META_RESERVED. */
#define UT_META_RESERVED "untangle."
#define UT_META_FORMAT "untangle.format"
#define UT_META_COUNTER "untangle.counter."
#define UT_FORMAT_VERSION "1"

struct ut_store_tensor {
  char *name;
  ut_shape shape;
  size_t numel;
  cl_mem buf; /* at least 4 bytes, so an empty tensor still has a valid buffer */
};

/* Counters are allocated one by one so the int64_t a caller holds never moves. */
typedef struct {
  int64_t value;
  char *name;
} store_counter;

typedef struct {
  char *key, *value;
} store_meta;

struct ut_store {
  ut_runtime *rt;
  uint64_t seed;
  ut_store_tensor **tensors;
  int n_tensors, cap_tensors;
  store_counter **counters;
  int n_counters, cap_counters;
  store_meta *meta;
  int n_meta, cap_meta;
  char **external; /* name prefixes of tensors that checkpoints leave out */
  int n_external;
  void *optimizers; /* engine/optim.c's registry of optimiser names (not saved) */
  void (*optimizers_free)(void *);
};

/* Grows *arr to hold at least `need` items of `size` bytes; 0 when out of memory. */
static int reserve(void **arr, int *cap, int need, size_t size) {
  if (need <= *cap) return 1;
  int n = *cap ? *cap : 16;
  while (n < need) n *= 2;
  void *p = realloc(*arr, (size_t)n * size);
  if (!p) return 0;
  *arr = p;
  *cap = n;
  return 1;
}

ut_store *ut_store_new(ut_runtime *rt, uint64_t seed) {
  if (!rt) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_store_new: no runtime");
    return NULL;
  }
  ut_store *st = calloc(1, sizeof *st);
  if (!st) {
    ut_fail(UT_ERR_HOST_MEMORY, "ut_store_new: out of host memory");
    return NULL;
  }
  st->rt = rt;
  st->seed = seed;
  return st;
}

static void tensor_free(ut_store_tensor *t) {
  if (!t) return;
  if (t->buf) clReleaseMemObject(t->buf);
  free(t->name);
  free(t);
}

void ut_store_free(ut_store *st) {
  if (!st) return;
  if (st->optimizers_free) st->optimizers_free(st->optimizers);
  for (int i = 0; i < st->n_external; i++) free(st->external[i]);
  free(st->external);
  for (int i = 0; i < st->n_tensors; i++) tensor_free(st->tensors[i]);
  for (int i = 0; i < st->n_counters; i++) {
    free(st->counters[i]->name);
    free(st->counters[i]);
  }
  for (int i = 0; i < st->n_meta; i++) {
    free(st->meta[i].key);
    free(st->meta[i].value);
  }
  free(st->tensors);
  free(st->counters);
  free(st->meta);
  free(st);
}

uint64_t ut_store_seed(const ut_store *st) { return st ? st->seed : 0; }

void **ut_store_optimizer_slot(ut_store *st, void (*free_fn)(void *)) {
  st->optimizers_free = free_fn;
  return &st->optimizers;
}

/* ---------------------------------------------------------------------------------------------
 * Tensors.
 */

/* Element count of a shape, or -1 when the rank or a dimension is invalid or the byte size
 * would not fit a size_t. */
static int64_t checked_numel(ut_shape s) {
  if (s.rank < 0 || s.rank > UT_MAX_RANK) return -1;
  int64_t n = 1;
  for (int i = 0; i < s.rank; i++)
    if (s.d[i] < 0) return -1;
  for (int i = 0; i < s.rank; i++) {
    if (s.d[i] == 0) return 0;
    if (n > (int64_t)(SIZE_MAX / 4 < INT64_MAX ? SIZE_MAX / 4 : INT64_MAX) / s.d[i]) return -1;
    n *= s.d[i];
  }
  return n;
}

/* The initial values of tensor `name` (numel values into v), from Philox stream
 * (hash(name, seed), run 0) on the host, so every device starts from the same parameters. */
static ut_status init_values(const ut_store *st, const char *name, ut_shape shape, ut_init init, float *v, size_t n) {
  uint64_t key = ut_hash64(name, strlen(name), st->seed);
  switch (init.kind) {
  case UT_INIT_ZERO:
    memset(v, 0, n * sizeof *v);
    return UT_OK;
  case UT_INIT_CONST:
    for (size_t i = 0; i < n; i++) v[i] = init.a;
    return UT_OK;
  case UT_INIT_UNIFORM:
    ut_philox_fill_uniform(key, 0, 0, v, n);
    for (size_t i = 0; i < n; i++) v[i] = (float)(init.a + ((double)init.b - init.a) * v[i]);
    return UT_OK;
  case UT_INIT_NORMAL:
    ut_philox_fill_normal(key, 0, 0, v, n);
    for (size_t i = 0; i < n; i++) v[i] = (float)(init.a + (double)init.b * v[i]);
    return UT_OK;
  case UT_INIT_FAN_IN_UNIFORM: {
    double fan_in = init.a;
    if (!(fan_in >= 0)) return ut_fail(UT_ERR_INVALID_ARGUMENT, "store: tensor '%s': fan-in %g is negative", name, init.a);
    if (fan_in == 0) fan_in = shape.rank > 0 && shape.d[0] > 0 ? (double)n / (double)shape.d[0] : 1.0;
    if (fan_in == 0) fan_in = 1.0; /* an empty weight: any bound will do */
    double bound = 1.0 / sqrt(fan_in);
    ut_philox_fill_uniform(key, 0, 0, v, n);
    /* 2u - 1 is exact for u an odd multiple of 2^-24, so the range is symmetric. */
    for (size_t i = 0; i < n; i++) v[i] = (float)(bound * (2.0 * v[i] - 1.0));
    return UT_OK;
  }
  }
  return ut_fail(UT_ERR_INVALID_ARGUMENT, "store: tensor '%s': unknown init kind %d", name, (int)init.kind);
}

/* A tensor with its device buffer, not yet in the store; `values` (numel floats) or NULL. */
static ut_status tensor_create(ut_store *st, const char *name, ut_shape shape, size_t numel, const float *values,
                               ut_store_tensor **out) {
  ut_store_tensor *t = calloc(1, sizeof *t);
  if (t) t->name = strdup(name);
  if (!t || !t->name) {
    tensor_free(t);
    return ut_fail(UT_ERR_HOST_MEMORY, "store: tensor '%s': out of host memory", name);
  }
  t->shape = shape;
  t->numel = numel;
  char what[160];
  snprintf(what, sizeof what, "store tensor '%s'", name);
  ut_status s = ut_runtime_alloc(st->rt, numel ? numel * sizeof(float) : sizeof(float), what, &t->buf);
  if (s == UT_OK && values && numel) s = ut_runtime_write(st->rt, t->buf, 0, numel * sizeof(float), values);
  if (s != UT_OK) {
    tensor_free(t);
    return s;
  }
  *out = t;
  return UT_OK;
}

ut_store_tensor *ut_store_find(ut_store *st, const char *name) {
  if (!st || !name) return NULL;
  for (int i = 0; i < st->n_tensors; i++)
    if (strcmp(st->tensors[i]->name, name) == 0) return st->tensors[i];
  return NULL;
}

ut_store_tensor *ut_store_tensor_get(ut_store *st, const char *name, ut_shape shape, ut_init init) {
  char a[128], b[128];
  if (!st || !name || !*name) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_store_tensor_get: no store or no name");
    return NULL;
  }
  int64_t numel = checked_numel(shape);
  if (numel < 0) {
    ut_fail(UT_ERR_SHAPE, "store: tensor '%s': invalid shape (rank %d, %s)", name, shape.rank,
            shape.rank >= 0 && shape.rank <= UT_MAX_RANK ? ut_shape_str(shape, a, sizeof a) : "?");
    return NULL;
  }
  ut_store_tensor *t = ut_store_find(st, name);
  if (t) {
    if (ut_shape_equal(t->shape, shape)) return t;
    ut_fail(UT_ERR_SHAPE, "store: tensor '%s' exists with shape %s, asked for %s", name,
            ut_shape_str(t->shape, a, sizeof a), ut_shape_str(shape, b, sizeof b));
    return NULL;
  }
  if (!reserve((void **)&st->tensors, &st->cap_tensors, st->n_tensors + 1, sizeof *st->tensors)) {
    ut_fail(UT_ERR_HOST_MEMORY, "store: tensor '%s': out of host memory", name);
    return NULL;
  }
  float *v = malloc(numel ? (size_t)numel * sizeof *v : 1);
  if (!v) {
    ut_fail(UT_ERR_HOST_MEMORY, "store: tensor '%s': out of host memory for %" PRId64 " values", name, numel);
    return NULL;
  }
  ut_status s = init_values(st, name, shape, init, v, (size_t)numel);
  if (s == UT_OK) s = tensor_create(st, name, shape, (size_t)numel, v, &t);
  free(v);
  if (s != UT_OK) return NULL;
  st->tensors[st->n_tensors++] = t;
  return t;
}

int ut_store_count(const ut_store *st) { return st ? st->n_tensors : 0; }

ut_store_tensor *ut_store_at(ut_store *st, int i) {
  return st && i >= 0 && i < st->n_tensors ? st->tensors[i] : NULL;
}

const char *ut_store_tensor_name(const ut_store_tensor *t) { return t ? t->name : NULL; }

ut_shape ut_store_tensor_shape(const ut_store_tensor *t) { return t ? t->shape : (ut_shape){ 0 }; }

cl_mem ut_store_tensor_buffer(const ut_store_tensor *t) { return t ? t->buf : NULL; }

ut_status ut_store_tensor_read(ut_store *st, const ut_store_tensor *t, float *dst) {
  if (!st || !t || (!dst && t->numel)) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_store_tensor_read: NULL argument");
  if (!t->numel) return UT_OK;
  ut_status s = ut_runtime_read(st->rt, t->buf, 0, t->numel * sizeof(float), dst);
  if (s != UT_OK) ut_error_prefix("store: reading tensor '%s'", t->name);
  return s;
}

ut_status ut_store_tensor_write(ut_store *st, ut_store_tensor *t, const float *src) {
  if (!st || !t || (!src && t->numel)) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_store_tensor_write: NULL argument");
  if (!t->numel) return UT_OK;
  ut_status s = ut_runtime_write(st->rt, t->buf, 0, t->numel * sizeof(float), src);
  if (s != UT_OK) ut_error_prefix("store: writing tensor '%s'", t->name);
  return s;
}

/* ---------------------------------------------------------------------------------------------
 * Counters and metadata.
 */

static store_counter *counter_find(const ut_store *st, const char *name) {
  for (int i = 0; i < st->n_counters; i++)
    if (strcmp(st->counters[i]->name, name) == 0) return st->counters[i];
  return NULL;
}

int64_t *ut_store_counter(ut_store *st, const char *name) {
  if (!st || !name || !*name) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_store_counter: no store or no name");
    return NULL;
  }
  store_counter *c = counter_find(st, name);
  if (c) return &c->value;
  if (!reserve((void **)&st->counters, &st->cap_counters, st->n_counters + 1, sizeof *st->counters) ||
      !(c = calloc(1, sizeof *c)) || !(c->name = strdup(name))) {
    free(c);
    ut_fail(UT_ERR_HOST_MEMORY, "store: counter '%s': out of host memory", name);
    return NULL;
  }
  st->counters[st->n_counters++] = c;
  return &c->value;
}

static int meta_index(const ut_store *st, const char *key) {
  for (int i = 0; i < st->n_meta; i++)
    if (strcmp(st->meta[i].key, key) == 0) return i;
  return -1;
}

const char *ut_store_get_meta(const ut_store *st, const char *key) {
  if (!st || !key) return NULL;
  int i = meta_index(st, key);
  return i < 0 ? NULL : st->meta[i].value;
}

/* Sets, replaces or (value NULL) removes without checking the reserved prefix; takes nothing
 * over from the caller. */
static ut_status meta_put(ut_store *st, const char *key, const char *value) {
  int i = meta_index(st, key);
  if (!value) {
    if (i >= 0) {
      free(st->meta[i].key);
      free(st->meta[i].value);
      st->meta[i] = st->meta[--st->n_meta];
    }
    return UT_OK;
  }
  char *v = strdup(value);
  if (!v) return ut_fail(UT_ERR_HOST_MEMORY, "store: metadata '%s': out of host memory", key);
  if (i >= 0) {
    free(st->meta[i].value);
    st->meta[i].value = v;
    return UT_OK;
  }
  char *k = strdup(key);
  if (!k || !reserve((void **)&st->meta, &st->cap_meta, st->n_meta + 1, sizeof *st->meta)) {
    free(k);
    free(v);
    return ut_fail(UT_ERR_HOST_MEMORY, "store: metadata '%s': out of host memory", key);
  }
  st->meta[st->n_meta++] = (store_meta){ k, v };
  return UT_OK;
}

ut_status ut_store_set_meta(ut_store *st, const char *key, const char *value) {
  if (!st || !key || !*key) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_store_set_meta: no store or no key");
  if (strncmp(key, UT_META_RESERVED, strlen(UT_META_RESERVED)) == 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "store: metadata key '%s': keys starting with \"%s\" are reserved", key,
                   UT_META_RESERVED);
  return meta_put(st, key, value);
}

/* ---------------------------------------------------------------------------------------------
 * Checkpoints. Counters travel in __metadata__ as "untangle.counter.<name>" = decimal string,
 * next to "untangle.format" and the user's own keys.
 */

static int is_external(const ut_store *st, const char *name) {
  for (int i = 0; i < st->n_external; i++)
    if (strncmp(name, st->external[i], strlen(st->external[i])) == 0) return 1;
  return 0;
}

ut_status ut_store_set_external(ut_store *st, const char *prefix) {
  if (!st || !prefix || !*prefix) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_store_set_external: no store or no prefix");
  char **grown = realloc(st->external, (size_t)(st->n_external + 1) * sizeof *grown);
  if (!grown) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  st->external = grown;
  if (!(st->external[st->n_external] = strdup(prefix))) return ut_fail(UT_ERR_HOST_MEMORY, "out of host memory");
  st->n_external++;
  return UT_OK;
}

typedef struct {
  ut_store *st;
  const int *index; /* file tensor -> store tensor */
} save_source;

static ut_status fill_from_store(void *user, int index, float *dst) {
  save_source *src = user;
  return ut_store_tensor_read(src->st, src->st->tensors[src->index[index]], dst);
}

ut_status ut_store_save(ut_store *st, const char *path) {
  if (!st || !path || !*path) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_store_save: no store or no path");
  int n_pairs = 1 + st->n_counters + st->n_meta;
  ut_st_desc *desc = malloc((size_t)(st->n_tensors + 1) * sizeof *desc);
  ut_st_pair *pairs = calloc((size_t)n_pairs, sizeof *pairs);
  char(*values)[24] = malloc((size_t)(st->n_counters + 1) * sizeof *values);
  char fmt_key[] = UT_META_FORMAT, fmt_value[] = UT_FORMAT_VERSION;
  ut_status s = desc && pairs && values ? UT_OK : ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  /* index[] maps the file's tensors to the store's, external ones left out. */
  int *index = malloc((size_t)(st->n_tensors + 1) * sizeof *index), n_saved = 0;
  if (!index) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  for (int i = 0; s == UT_OK && i < st->n_tensors; i++)
    if (!is_external(st, st->tensors[i]->name)) {
      index[n_saved] = i;
      desc[n_saved++] = (ut_st_desc){ st->tensors[i]->name, st->tensors[i]->shape };
    }
  if (s == UT_OK) pairs[0] = (ut_st_pair){ fmt_key, fmt_value };
  for (int i = 0; s == UT_OK && i < st->n_counters; i++) {
    const store_counter *c = st->counters[i];
    size_t len = strlen(UT_META_COUNTER) + strlen(c->name) + 1;
    char *key = malloc(len);
    if (!key) {
      s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
      break;
    }
    snprintf(key, len, "%s%s", UT_META_COUNTER, c->name);
    snprintf(values[i], sizeof values[i], "%" PRId64, c->value);
    pairs[1 + i] = (ut_st_pair){ key, values[i] };
  }
  for (int i = 0; s == UT_OK && i < st->n_meta; i++)
    pairs[1 + st->n_counters + i] = (ut_st_pair){ st->meta[i].key, st->meta[i].value };
  save_source src = { st, index };
  if (s == UT_OK) s = ut_st_write(path, desc, n_saved, pairs, n_pairs, fill_from_store, &src);
  for (int i = 0; pairs && i < st->n_counters; i++) free(pairs[1 + i].key);
  free(values);
  free(pairs);
  free(desc);
  free(index);
  return s;
}

/* What a load will change, prepared completely (every allocation made) before anything is. */
typedef struct {
  ut_store_tensor **added;   /* per file tensor: a new tensor, or NULL when the store has it */
  store_counter **counters;  /* per file pair: the counter it sets (new ones not yet linked) */
  int64_t *counter_values;
  unsigned char *counter_new;
  char **meta_keys, **meta_values; /* per file pair: a user entry's copies */
} load_stage;

static void stage_free(load_stage *g, const ut_st_file *f) {
  for (int i = 0; g->added && i < f->n_tensors; i++) tensor_free(g->added[i]);
  for (int i = 0; i < f->n_meta; i++) {
    if (g->counter_new && g->counter_new[i] && g->counters[i]) {
      free(g->counters[i]->name);
      free(g->counters[i]);
    }
    if (g->meta_keys) free(g->meta_keys[i]);
    if (g->meta_values) free(g->meta_values[i]);
  }
  free(g->added);
  free(g->counters);
  free(g->counter_values);
  free(g->counter_new);
  free(g->meta_keys);
  free(g->meta_values);
}

static const ut_st_entry *file_find(const ut_st_file *f, const char *name) {
  for (int i = 0; i < f->n_tensors; i++)
    if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
  return NULL;
}

/* Every tensor of the store but the external ones must come back from the file, with its shape. */
static ut_status check_against_store(const ut_store *st, const char *path, const ut_st_file *f) {
  char a[128], b[128];
  for (int i = 0; i < st->n_tensors; i++) {
    const ut_store_tensor *t = st->tensors[i];
    const ut_st_entry *e = file_find(f, t->name);
    if (!e && is_external(st, t->name)) continue;
    if (!e)
      return ut_fail(UT_ERR_MISMATCH, "%s: tensor '%s' (shape %s) is missing from the file", path, t->name,
                     ut_shape_str(t->shape, a, sizeof a));
    if (!ut_shape_equal(e->shape, t->shape))
      return ut_fail(UT_ERR_MISMATCH, "%s: tensor '%s': shape %s in the file, the model expects %s", path, t->name,
                     ut_shape_str(e->shape, a, sizeof a), ut_shape_str(t->shape, b, sizeof b));
  }
  return UT_OK;
}

static ut_status stage_meta(ut_store *st, const char *path, const ut_st_file *f, load_stage *g) {
  size_t plen = strlen(UT_META_COUNTER);
  int n_new_counters = 0, n_new_meta = 0;
  for (int i = 0; i < f->n_meta; i++) {
    const char *k = f->meta[i].key, *v = f->meta[i].value;
    if (strcmp(k, UT_META_FORMAT) == 0) {
      if (strcmp(v, UT_FORMAT_VERSION) != 0)
        return ut_fail(UT_ERR_MISMATCH, "%s: checkpoint format '%s', this untangle reads format %s", path, v,
                       UT_FORMAT_VERSION);
    } else if (strncmp(k, UT_META_COUNTER, plen) == 0) {
      const char *name = k + plen;
      char *end = NULL;
      errno = 0;
      long long value = strtoll(v, &end, 10);
      if (!*name || !*v || *end || errno == ERANGE)
        return ut_fail(UT_ERR_FORMAT, "%s: counter '%s': value '%s' is not a 64-bit decimal integer", path, name, v);
      g->counter_values[i] = (int64_t)value;
      store_counter *c = counter_find(st, name);
      if (!c) {
        if (!(c = calloc(1, sizeof *c)) || !(c->name = strdup(name))) {
          free(c);
          return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
        }
        g->counter_new[i] = 1;
        n_new_counters++;
      }
      g->counters[i] = c;
    } else if (strncmp(k, UT_META_RESERVED, strlen(UT_META_RESERVED)) != 0) {
      /* Other reserved keys would come from a later format revision; they are skipped. */
      g->meta_keys[i] = strdup(k);
      g->meta_values[i] = strdup(v);
      if (!g->meta_keys[i] || !g->meta_values[i]) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
      n_new_meta += meta_index(st, k) < 0;
    }
  }
  if (!reserve((void **)&st->counters, &st->cap_counters, st->n_counters + n_new_counters, sizeof *st->counters) ||
      !reserve((void **)&st->meta, &st->cap_meta, st->n_meta + n_new_meta, sizeof *st->meta))
    return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  return UT_OK;
}

/* New tensors get their buffers; then the values of every tensor go to the device. */
static ut_status stage_tensors(ut_store *st, const char *path, const ut_st_file *f, load_stage *g) {
  size_t most = 1;
  int n_new = 0;
  for (int i = 0; i < f->n_tensors; i++) {
    const ut_st_entry *e = &f->tensors[i];
    size_t numel = (size_t)((e->end - e->begin) / 4);
    if (numel > most) most = numel;
    if (ut_store_find(st, e->name)) continue;
    ut_status s = tensor_create(st, e->name, e->shape, numel, NULL, &g->added[i]);
    if (s != UT_OK) {
      ut_error_prefix("%s: tensor '%s'", path, e->name);
      return s;
    }
    n_new++;
  }
  if (!reserve((void **)&st->tensors, &st->cap_tensors, st->n_tensors + n_new, sizeof *st->tensors))
    return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  float *buf = malloc(most * sizeof *buf);
  if (!buf) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory for %zu values", path, most);
  /* A device failure past this point can leave earlier tensors updated: it is not the file's
   * fault, and keeping a host copy of the whole model to undo it would double the memory. */
  ut_status s = UT_OK;
  for (int i = 0; s == UT_OK && i < f->n_tensors; i++) {
    const ut_st_entry *e = &f->tensors[i];
    size_t numel = (size_t)((e->end - e->begin) / 4);
    ut_store_tensor *t = g->added[i] ? g->added[i] : ut_store_find(st, e->name);
    if (!numel) continue;
    ut_st_decode_f32(f->data + e->begin, buf, numel);
    s = ut_runtime_write(st->rt, t->buf, 0, numel * sizeof *buf, buf);
    if (s != UT_OK) ut_error_prefix("%s: tensor '%s'", path, e->name);
  }
  free(buf);
  return s;
}

/* Nothing here can fail: every allocation was made while staging. */
static void commit(ut_store *st, const ut_st_file *f, load_stage *g) {
  for (int i = 0; i < f->n_tensors; i++)
    if (g->added[i]) {
      st->tensors[st->n_tensors++] = g->added[i];
      g->added[i] = NULL;
    }
  for (int i = 0; i < f->n_meta; i++) {
    if (g->counters[i]) {
      g->counters[i]->value = g->counter_values[i];
      if (g->counter_new[i]) st->counters[st->n_counters++] = g->counters[i];
      g->counters[i] = NULL;
      g->counter_new[i] = 0;
    }
    if (g->meta_keys[i]) {
      int at = meta_index(st, g->meta_keys[i]);
      if (at >= 0) {
        free(st->meta[at].value);
        st->meta[at].value = g->meta_values[i];
        free(g->meta_keys[i]);
      } else {
        st->meta[st->n_meta++] = (store_meta){ g->meta_keys[i], g->meta_values[i] };
      }
      g->meta_keys[i] = g->meta_values[i] = NULL;
    }
  }
}

ut_status ut_store_load(ut_store *st, const char *path) {
  if (!st || !path || !*path) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_store_load: no store or no path");
  ut_st_file f;
  ut_status s = ut_st_read(path, &f);
  if (s != UT_OK) return s;
  load_stage g = { 0 };
  size_t nt = (size_t)f.n_tensors + 1, nm = (size_t)f.n_meta + 1;
  g.added = calloc(nt, sizeof *g.added);
  g.counters = calloc(nm, sizeof *g.counters);
  g.counter_values = calloc(nm, sizeof *g.counter_values);
  g.counter_new = calloc(nm, sizeof *g.counter_new);
  g.meta_keys = calloc(nm, sizeof *g.meta_keys);
  g.meta_values = calloc(nm, sizeof *g.meta_values);
  if (!g.added || !g.counters || !g.counter_values || !g.counter_new || !g.meta_keys || !g.meta_values)
    s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  if (s == UT_OK) s = check_against_store(st, path, &f);
  if (s == UT_OK) s = stage_meta(st, path, &f, &g);
  if (s == UT_OK) s = stage_tensors(st, path, &f, &g);
  if (s == UT_OK) commit(st, &f, &g);
  stage_free(&g, &f);
  ut_st_file_free(&f);
  return s;
}

ut_status ut_store_import(ut_store *st, const char *path, const char *prefix) {
  if (!st || !path || !*path || !prefix) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_store_import: no store, path or prefix");
  ut_st_file f;
  ut_status s = ut_st_read(path, &f);
  if (s != UT_OK) return s;
  load_stage g = { 0 };
  char **names = calloc((size_t)f.n_tensors + 1, sizeof *names);
  g.added = calloc((size_t)f.n_tensors + 1, sizeof *g.added);
  if (!names || !g.added) s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  for (int i = 0; s == UT_OK && i < f.n_tensors; i++) {
    size_t len = strlen(prefix) + strlen(f.tensors[i].name) + 1;
    if (!(names[i] = malloc(len))) {
      s = ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
      break;
    }
    snprintf(names[i], len, "%s%s", prefix, f.tensors[i].name);
    const ut_store_tensor *t = ut_store_find(st, names[i]);
    char a[128], b[128];
    if (t && !ut_shape_equal(t->shape, f.tensors[i].shape))
      s = ut_fail(UT_ERR_MISMATCH, "%s: tensor '%s': shape %s in the file, the model expects %s", path,
                  f.tensors[i].name, ut_shape_str(f.tensors[i].shape, a, sizeof a), ut_shape_str(t->shape, b, sizeof b));
  }
  /* Staging renames the entries so the shared code creates and fills the prefixed tensors. */
  for (int i = 0; s == UT_OK && i < f.n_tensors; i++) {
    char *file_name = f.tensors[i].name;
    f.tensors[i].name = names[i];
    names[i] = file_name;
  }
  if (s == UT_OK) s = stage_tensors(st, path, &f, &g);
  if (s == UT_OK)
    for (int i = 0; i < f.n_tensors; i++)
      if (g.added[i]) {
        st->tensors[st->n_tensors++] = g.added[i];
        g.added[i] = NULL;
      }
  for (int i = 0; g.added && i < f.n_tensors; i++) tensor_free(g.added[i]);
  free(g.added);
  for (int i = 0; names && i < f.n_tensors; i++) free(names[i]);
  free(names);
  ut_st_file_free(&f);
  return s;
}
