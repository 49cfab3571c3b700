/* The preprocessed data set file: written once by an importer, memory-mapped by training.
 *
 * Layout (all integers little-endian; every section starts at a multiple of 64 bytes so a
 * reader can map it straight into aligned arrays):
 *
 *   offset 0   8 bytes  magic "UTDATAST"
 *   offset 8   uint32   format version: 1 without domain labels, 2 with them, 3 with
 *                       attributes or masks (domain labels optional)
 *   offset 12  uint32   header length L in bytes; 16 + L is a multiple of 64
 *   offset 16  L bytes  a UTF-8 JSON object, padded with spaces:
 *                {"format": "untangle-dataset", "version": 1, "count": N,
 *                 "height": H, "width": W, "channels": C (1 or 3),
 *                 "n_classes": K, "class_names": [K strings],
 *                 "has_contents": bool, "n_contents": M (0 when has_contents is false),
 *                 "source": {free-form object: importer, folder, synth config, ...},
 *                 "images_offset": I, "classes_offset": J, "contents_offset": P,
 *                 version 2: "n_domains": D (>= 1), "domain_names": [D distinct
 *                 strings], "domains_offset": Q;
 *                 version 3: "n_domains": D (>= 0), and when D > 0 "domain_names" and
 *                 "domains_offset" as in version 2; "n_attributes": A (>= 0), and when
 *                 A > 0 "attribute_names": [A distinct non-empty strings] and
 *                 "attributes_offset": R; "has_masks": bool, and when true "masks_offset": S}
 *   offset I = 16 + L        N * H * W * C bytes: uint8 images, each HWC, rows top to bottom
 *   offset J = align64(I + N*H*W*C)   N int32: class ids in 0 .. K-1
 *   offset P = align64(J + 4N)        N int32: content ids in 0 .. M-1, or all -1 without
 *                                     content labels
 *   version 2: offset Q = align64(P + 4N)  N int32: domain ids in 0 .. D-1, each used at least
 *                                     once
 *   version 3: the domain section when D > 0 as in version 2; then, when A > 0,
 *              offset R = align64(end of the last section)  N x A float32 (IEEE, image after
 *                                     image), all finite;
 *              then, with masks, offset S = align64(end of the last section)  N x H x W uint8,
 *                                     each image's mask rows top to bottom
 *   the file ends at the end of its last section exactly.
 *
 * Version 1 is what a set without domains is still written as, byte for byte, so files and
 * tools from before domains existed keep working; a version 1 file reads as n_domains 0.
 *
 * The offsets are stored although they follow from the rest, so that other tools (numpy's
 * memmap) can read the file from the header alone; the reader checks they agree.
 *
 * The writer does not know N in advance (an import skips unreadable files), so it reserves
 * a header large enough for any count, streams the images into the temporary file, keeps
 * only the 12-byte labels per image in memory, and writes labels and header at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data_internal.h"

#define MAGIC "UTDATAST"
enum { FORMAT_PLAIN = 1, FORMAT_DOMAINS = 2, FORMAT_ATTRIBUTES = 3, PREAMBLE = 16, ALIGN = 64 };
/* Header text beyond this is surely not ours; it also bounds what a corrupt file makes us parse. */
#define MAX_HEADER (64u << 20)
#define MAX_SIDE 65536
#define MAX_IMAGES INT32_MAX
#define MAX_IMAGE_BYTES (1ull << 50)
/* Attributes are a handful of factors per image; the bound keeps N x A inside every offset. */
#define MAX_ATTRIBUTES 1024

static uint64_t align64(uint64_t x) { return (x + ALIGN - 1) & ~(uint64_t)(ALIGN - 1); }

static void put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The optional parts of a set, which decide its version and sections. */
typedef struct {
  int has_domains, n_attributes, has_masks;
} sections;

static uint32_t format_version(sections x) {
  return x.n_attributes > 0 || x.has_masks ? FORMAT_ATTRIBUTES : x.has_domains ? FORMAT_DOMAINS : FORMAT_PLAIN;
}

/* Offsets of the sections for n images of `image_bytes` (and masks of `mask_bytes`) after a
 * header of hlen bytes; an absent section's offset is 0. */
typedef struct {
  uint64_t images, classes, contents, domains, attributes, masks, end;
} layout;

static layout layout_for(uint64_t hlen, uint64_t n, uint64_t image_bytes, uint64_t mask_bytes, sections x) {
  layout l = { 0 };
  l.images = PREAMBLE + hlen;
  l.classes = align64(l.images + n * image_bytes);
  l.contents = align64(l.classes + 4 * n);
  l.end = l.contents + 4 * n;
  if (x.has_domains) l.end = (l.domains = align64(l.end)) + 4 * n;
  if (x.n_attributes > 0) l.end = (l.attributes = align64(l.end)) + 4 * n * (uint64_t)x.n_attributes;
  if (x.has_masks) l.end = (l.masks = align64(l.end)) + n * mask_bytes;
  return l;
}

static sections sections_of(const ut_dataset_desc *d) {
  return (sections){ d->n_domains > 0, d->n_attributes, d->has_masks != 0 };
}

/* The header object; `count` and the offsets vary, the rest comes from the description. */
static json_t *header_json(const ut_dataset_desc *d, char **names, char **domain_names, char **attribute_names,
                           json_t *source, int64_t count, const layout *l) {
  uint32_t version = format_version(sections_of(d));
  json_t *h = json_object();
  json_t *arr = json_array();
  for (int i = 0; i < d->n_classes; i++) json_array_append_new(arr, json_string(names[i]));
  json_object_set_new(h, "format", json_string("untangle-dataset"));
  json_object_set_new(h, "version", json_integer(version));
  json_object_set_new(h, "count", json_integer(count));
  json_object_set_new(h, "height", json_integer(d->height));
  json_object_set_new(h, "width", json_integer(d->width));
  json_object_set_new(h, "channels", json_integer(d->channels));
  json_object_set_new(h, "n_classes", json_integer(d->n_classes));
  json_object_set_new(h, "class_names", arr);
  json_object_set_new(h, "has_contents", json_boolean(d->n_contents > 0));
  json_object_set_new(h, "n_contents", json_integer(d->n_contents));
  json_object_set(h, "source", source);
  json_object_set_new(h, "images_offset", json_integer((json_int_t)l->images));
  json_object_set_new(h, "classes_offset", json_integer((json_int_t)l->classes));
  json_object_set_new(h, "contents_offset", json_integer((json_int_t)l->contents));
  if (d->n_domains > 0 || version == FORMAT_ATTRIBUTES) json_object_set_new(h, "n_domains", json_integer(d->n_domains));
  if (d->n_domains > 0) {
    json_t *dn = json_array();
    for (int i = 0; i < d->n_domains; i++) json_array_append_new(dn, json_string(domain_names[i]));
    json_object_set_new(h, "domain_names", dn);
    json_object_set_new(h, "domains_offset", json_integer((json_int_t)l->domains));
  }
  if (version == FORMAT_ATTRIBUTES) {
    json_object_set_new(h, "n_attributes", json_integer(d->n_attributes));
    if (d->n_attributes > 0) {
      json_t *an = json_array();
      for (int i = 0; i < d->n_attributes; i++) json_array_append_new(an, json_string(attribute_names[i]));
      json_object_set_new(h, "attribute_names", an);
      json_object_set_new(h, "attributes_offset", json_integer((json_int_t)l->attributes));
    }
    json_object_set_new(h, "has_masks", json_boolean(d->has_masks));
    if (d->has_masks) json_object_set_new(h, "masks_offset", json_integer((json_int_t)l->masks));
  }
  return h;
}

/* ------------------------------------------------------------------------------------------ */

struct ut_dataset_writer {
  char *path, *tmp;
  FILE *fp;
  ut_dataset_desc desc; /* its name lists and source are NULL: the copies below hold them */
  char **names, **domain_names, **attribute_names;
  json_t *source;
  uint64_t header_len; /* reserved; the final header is padded to exactly this */
  uint64_t image_bytes, mask_bytes;
  int32_t *labels;   /* class, content, domain per image */
  float *attributes; /* n_attributes per image */
  int64_t count, cap;
  int64_t *per_domain; /* images so far in each domain */
  FILE *masks;         /* masks stream into an unlinked temporary file until the end */
};

static void free_names(char **names, int n) {
  if (names)
    for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

static void writer_free(ut_dataset_writer *w) {
  if (!w) return;
  free_names(w->names, w->desc.n_classes);
  free_names(w->domain_names, w->desc.n_domains);
  free_names(w->attribute_names, w->desc.n_attributes);
  free(w->per_domain);
  json_decref(w->source);
  free(w->labels);
  free(w->attributes);
  if (w->masks) fclose(w->masks);
  free(w->path);
  free(w->tmp);
  free(w);
}

static ut_status check_desc(const char *path, const ut_dataset_desc *d) {
  if (!d) return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: no data set description", path);
  if (d->height < 1 || d->height > MAX_SIDE || d->width < 1 || d->width > MAX_SIDE)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: image size %d x %d, expected sides from 1 to %d", path, d->height,
                   d->width, MAX_SIDE);
  if (d->channels != 1 && d->channels != 3)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %d channels, expected 1 (gray) or 3 (RGB)", path, d->channels);
  if (d->n_classes < 1 || d->n_contents < 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %d classes and %d contents, expected at least 1 class", path,
                   d->n_classes, d->n_contents);
  if (d->n_domains < 0)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %d domains, expected 0 (no domain labels) or more", path, d->n_domains);
  if (d->n_attributes < 0 || d->n_attributes > MAX_ATTRIBUTES)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %d attributes, expected 0 .. %d", path, d->n_attributes, MAX_ATTRIBUTES);
  if (d->n_attributes > 0 && !d->attribute_names)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %d attributes without names, expected one name each", path,
                   d->n_attributes);
  if (d->has_masks != 0 && d->has_masks != 1)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: has_masks %d, expected 0 or 1", path, d->has_masks);
  return UT_OK;
}

/* n names copied from `given` (NULL entries, or all when given is NULL: "<prefix>-<i>"), each
 * checked to be UTF-8 (jansson takes nothing else); `distinct`: also non-empty and unique. */
static char **copy_names(const char *path, const char *what, const char *prefix, const char *const *given, int n,
                         int distinct) {
  char **out = calloc((size_t)(n ? n : 1), sizeof *out);
  if (!out) goto oom;
  for (int i = 0; i < n; i++) {
    char fallback[48];
    snprintf(fallback, sizeof fallback, "%s-%d", prefix, i);
    const char *name = given && given[i] ? given[i] : fallback;
    if (!(out[i] = strdup(name))) goto oom;
    json_t *probe = json_string(name);
    if (!probe) {
      ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %s name %d is not valid UTF-8", path, what, i);
      free_names(out, n);
      return NULL;
    }
    json_decref(probe);
    for (int j = 0; distinct && j <= i; j++)
      if (!*name || (j < i && strcmp(out[j], name) == 0)) {
        ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: %s name %d ('%s') is %s, expected distinct non-empty names", path, what,
                i, name, *name ? "given twice" : "empty");
        free_names(out, n);
        return NULL;
      }
  }
  return out;
oom:
  ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  free_names(out, n);
  return NULL;
}

/* The masks come after the labels in the file but arrive with the images, so they wait in a
 * second temporary file next to the set (a folder that has room for the set has room for
 * them), unlinked at once so that nothing is left behind whatever happens. */
static ut_status open_mask_spool(ut_dataset_writer *w) {
  char *tmp = NULL;
  int fd = ut_data_temp_file(w->path, &tmp);
  if (fd < 0) return UT_ERR_IO;
  unlink(tmp);
  free(tmp);
  if (!(w->masks = fdopen(fd, "w+b"))) {
    close(fd);
    return ut_fail(UT_ERR_IO, "%s: cannot open a temporary file for the masks: %s", w->path, strerror(errno));
  }
  return UT_OK;
}

ut_dataset_writer *ut_dataset_writer_open(const char *path, const ut_dataset_desc *desc) {
  if (!path || !*path) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_dataset_writer_open: no path");
    return NULL;
  }
  if (check_desc(path, desc) != UT_OK) return NULL;
  ut_dataset_writer *w = calloc(1, sizeof *w);
  if (!w) goto oom;
  w->desc = *desc;
  w->desc.n_classes = 0; /* until the names are there, so writer_free frees only those */
  w->desc.n_domains = 0;
  w->desc.n_attributes = 0;
  if (!(w->path = strdup(path))) goto oom;
  if (!(w->names = copy_names(path, "class", "class", desc->class_names, desc->n_classes, 0)) ||
      !(w->domain_names = copy_names(path, "domain", "domain", desc->domain_names, desc->n_domains, 1)) ||
      !(w->attribute_names = copy_names(path, "attribute", "attribute", desc->attribute_names, desc->n_attributes, 1)) ||
      !(w->per_domain = calloc((size_t)desc->n_domains + 1, sizeof *w->per_domain))) {
    if (w->names && w->domain_names && w->attribute_names) ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
    w->desc.n_classes = w->names ? desc->n_classes : 0;
    w->desc.n_domains = w->domain_names ? desc->n_domains : 0;
    w->desc.n_attributes = w->attribute_names ? desc->n_attributes : 0;
    writer_free(w);
    return NULL;
  }
  w->desc.n_classes = desc->n_classes;
  w->desc.n_domains = desc->n_domains;
  w->desc.n_attributes = desc->n_attributes;
  w->desc.class_names = w->desc.domain_names = w->desc.attribute_names = NULL;
  w->desc.source_json = NULL;
  if (desc->source_json) {
    json_error_t jerr;
    w->source = json_loads(desc->source_json, 0, &jerr);
    if (!json_is_object(w->source)) {
      ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: source is not a JSON object: %s", path,
              w->source ? "another JSON value" : jerr.text);
      writer_free(w);
      return NULL;
    }
  } else {
    w->source = json_object();
  }
  w->image_bytes = (uint64_t)desc->height * (uint64_t)desc->width * (uint64_t)desc->channels;
  w->mask_bytes = desc->has_masks ? (uint64_t)desc->height * (uint64_t)desc->width : 0;
  if (desc->has_masks && open_mask_spool(w) != UT_OK) {
    writer_free(w);
    return NULL;
  }

  /* Reserve room for the largest count and offsets any file can have; padding fills the rest. */
  layout big = { INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX, 0 };
  json_t *h = header_json(desc, w->names, w->domain_names, w->attribute_names, w->source, MAX_IMAGES, &big);
  char *text = json_dumps(h, JSON_COMPACT);
  json_decref(h);
  if (!text) {
    ut_fail(UT_ERR_HOST_MEMORY, "%s: cannot format the header", path);
    writer_free(w);
    return NULL;
  }
  w->header_len = align64(PREAMBLE + strlen(text)) - PREAMBLE;
  free(text);
  if (w->header_len > MAX_HEADER) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: the header (class and domain names, source) would take %llu bytes, at most %u", path,
            (unsigned long long)w->header_len, MAX_HEADER);
    writer_free(w);
    return NULL;
  }

  int fd = ut_data_temp_file(path, &w->tmp);
  if (fd < 0) {
    writer_free(w);
    return NULL;
  }
  w->fp = fdopen(fd, "wb");
  if (!w->fp || fseeko(w->fp, (off_t)(PREAMBLE + w->header_len), SEEK_SET) != 0) {
    ut_fail(UT_ERR_IO, "%s: cannot write: %s", w->tmp, strerror(errno));
    if (w->fp)
      fclose(w->fp);
    else
      close(fd);
    unlink(w->tmp);
    writer_free(w);
    return NULL;
  }
  return w;
oom:
  ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", path);
  writer_free(w);
  return NULL;
}

ut_status ut_dataset_writer_add(ut_dataset_writer *w, const uint8_t *image, int class_id, int content_id) {
  return ut_dataset_writer_add_domain(w, image, class_id, content_id, -1);
}

ut_status ut_dataset_writer_add_domain(ut_dataset_writer *w, const uint8_t *image, int class_id, int content_id,
                                       int domain_id) {
  return ut_dataset_writer_add_labels(w, image,
                                      &(ut_image_labels){ .class_id = class_id, .content_id = content_id,
                                                          .domain_id = domain_id });
}

/* The attributes and mask of the next image against the set's description. */
static ut_status check_extras(const ut_dataset_writer *w, const ut_image_labels *lb) {
  int64_t i = w->count;
  if (w->desc.n_attributes > 0 && !lb->attributes)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: image %lld has no attributes, expected %d ('%s'%s)", w->path,
                   (long long)i, w->desc.n_attributes, w->attribute_names[0], w->desc.n_attributes > 1 ? ", ..." : "");
  if (w->desc.n_attributes == 0 && lb->attributes)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: image %lld has attributes, but the set has none", w->path,
                   (long long)i);
  for (int a = 0; a < w->desc.n_attributes; a++)
    if (!isfinite(lb->attributes[a]))
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: image %lld: attribute '%s' is %g, expected a finite value", w->path,
                     (long long)i, w->attribute_names[a], (double)lb->attributes[a]);
  if (w->desc.has_masks != (lb->mask != NULL))
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: image %lld %s, but the set has %s", w->path, (long long)i,
                   lb->mask ? "has a mask" : "has no mask", lb->mask ? "no masks" : "a mask for every image");
  return UT_OK;
}

ut_status ut_dataset_writer_add_labels(ut_dataset_writer *w, const uint8_t *image, const ut_image_labels *lb) {
  if (!w || !image || !lb) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_dataset_writer_add: no writer, image or labels");
  int class_id = lb->class_id, content_id = lb->content_id, domain_id = lb->domain_id;
  if (class_id < 0 || class_id >= w->desc.n_classes)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: class id %d, expected 0 .. %d", w->path, class_id,
                   w->desc.n_classes - 1);
  if (w->desc.n_contents > 0 ? content_id < 0 || content_id >= w->desc.n_contents : content_id != -1)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: content id %d, expected %s%d", w->path, content_id,
                   w->desc.n_contents > 0 ? "0 .. " : "", w->desc.n_contents > 0 ? w->desc.n_contents - 1 : -1);
  if (w->desc.n_domains > 0 ? domain_id < 0 || domain_id >= w->desc.n_domains : domain_id != -1)
    return w->desc.n_domains > 0
               ? ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: domain id %d, expected 0 .. %d", w->path, domain_id,
                         w->desc.n_domains - 1)
               : ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: domain id %d, expected -1 (the set has no domains)", w->path,
                         domain_id);
  /* Bounding the image bytes keeps every offset far inside int64 (and the header's reserve). */
  if (w->count >= MAX_IMAGES || (uint64_t)(w->count + 1) * w->image_bytes > MAX_IMAGE_BYTES)
    return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: a data set holds at most %d images and %llu bytes of them", w->path,
                   MAX_IMAGES, (unsigned long long)MAX_IMAGE_BYTES);
  ut_status s = check_extras(w, lb);
  if (s != UT_OK) return s;
  if (w->count == w->cap) {
    int64_t cap = w->cap ? 2 * w->cap : 1024;
    int32_t *l = realloc(w->labels, (size_t)cap * 3 * sizeof *l);
    if (!l) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", w->path);
    w->labels = l;
    if (w->desc.n_attributes > 0) {
      float *a = realloc(w->attributes, (size_t)cap * (size_t)w->desc.n_attributes * sizeof *a);
      if (!a) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", w->path);
      w->attributes = a;
    }
    w->cap = cap;
  }
  /* The mask first: a failed image write then leaves a mask that the next add overwrites. */
  if (w->masks && (fseeko(w->masks, (off_t)((uint64_t)w->count * w->mask_bytes), SEEK_SET) != 0 ||
                   fwrite(lb->mask, 1, w->mask_bytes, w->masks) != w->mask_bytes))
    return ut_fail(UT_ERR_IO, "%s: writing a mask to the temporary file failed: %s", w->path, strerror(errno));
  if (fwrite(image, 1, w->image_bytes, w->fp) != w->image_bytes)
    return ut_fail(UT_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
  if (w->desc.n_attributes > 0)
    memcpy(w->attributes + (size_t)w->count * (size_t)w->desc.n_attributes, lb->attributes,
           (size_t)w->desc.n_attributes * sizeof *w->attributes);
  w->labels[3 * w->count] = class_id;
  w->labels[3 * w->count + 1] = content_id;
  w->labels[3 * w->count + 2] = domain_id;
  w->per_domain[domain_id + 1]++;
  w->count++;
  return UT_OK;
}

int64_t ut_dataset_writer_count(const ut_dataset_writer *w) { return w ? w->count : 0; }

void ut_dataset_writer_abort(ut_dataset_writer *w) {
  if (!w) return;
  fclose(w->fp);
  unlink(w->tmp);
  writer_free(w);
}

static ut_status write_zeros(ut_dataset_writer *w, uint64_t from, uint64_t to) {
  static const uint8_t zeros[ALIGN];
  if (to > from && fwrite(zeros, 1, to - from, w->fp) != to - from)
    return ut_fail(UT_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
  return UT_OK;
}

/* One label column (0: classes, 1: contents, 2: domains) as little-endian int32. */
static ut_status write_labels(ut_dataset_writer *w, int column) {
  uint8_t buf[4096];
  size_t used = 0;
  for (int64_t i = 0; i < w->count; i++) {
    put_le32(buf + used, (uint32_t)w->labels[3 * i + column]);
    used += 4;
    if (used == sizeof buf || i + 1 == w->count) {
      if (fwrite(buf, 1, used, w->fp) != used) return ut_fail(UT_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
      used = 0;
    }
  }
  return UT_OK;
}

/* The attributes, image after image, as little-endian IEEE float32. */
static ut_status write_attributes(ut_dataset_writer *w) {
  uint8_t buf[4096];
  size_t used = 0, total = (size_t)w->count * (size_t)w->desc.n_attributes;
  for (size_t i = 0; i < total; i++) {
    uint32_t bits;
    memcpy(&bits, &w->attributes[i], 4);
    put_le32(buf + used, bits);
    used += 4;
    if (used == sizeof buf || i + 1 == total) {
      if (fwrite(buf, 1, used, w->fp) != used) return ut_fail(UT_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
      used = 0;
    }
  }
  return UT_OK;
}

/* The spooled masks copied into the set. */
static ut_status write_masks(ut_dataset_writer *w) {
  uint8_t buf[65536];
  uint64_t left = (uint64_t)w->count * w->mask_bytes;
  if (fseeko(w->masks, 0, SEEK_SET) != 0)
    return ut_fail(UT_ERR_IO, "%s: cannot read back the masks: %s", w->path, strerror(errno));
  while (left > 0) {
    size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
    if (fread(buf, 1, n, w->masks) != n)
      return ut_fail(UT_ERR_IO, "%s: cannot read back the masks: %s", w->path, strerror(errno));
    if (fwrite(buf, 1, n, w->fp) != n) return ut_fail(UT_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
    left -= n;
  }
  return UT_OK;
}

static ut_status finish_file(ut_dataset_writer *w) {
  if (w->count == 0) return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: no images to write", w->path);
  for (int d = 0; d < w->desc.n_domains; d++)
    if (w->per_domain[d + 1] == 0)
      return ut_fail(UT_ERR_INVALID_ARGUMENT, "%s: domain %d ('%s') has no image, expected at least one per domain",
                     w->path, d, w->domain_names[d]);
  sections x = sections_of(&w->desc);
  uint64_t n = (uint64_t)w->count;
  layout l = layout_for(w->header_len, n, w->image_bytes, w->mask_bytes, x);
  /* Each section follows zero padding from where the last one ended up to its offset. */
  uint64_t at = l.images + n * w->image_bytes;
  ut_status s = write_zeros(w, at, l.classes);
  if (s == UT_OK) s = write_labels(w, 0);
  if (s == UT_OK) s = write_zeros(w, l.classes + 4 * n, l.contents);
  if (s == UT_OK) s = write_labels(w, 1);
  at = l.contents + 4 * n;
  if (s == UT_OK && x.has_domains && (s = write_zeros(w, at, l.domains)) == UT_OK) {
    s = write_labels(w, 2);
    at = l.domains + 4 * n;
  }
  if (s == UT_OK && x.n_attributes > 0 && (s = write_zeros(w, at, l.attributes)) == UT_OK) {
    s = write_attributes(w);
    at = l.attributes + 4 * n * (uint64_t)x.n_attributes;
  }
  if (s == UT_OK && x.has_masks && (s = write_zeros(w, at, l.masks)) == UT_OK) s = write_masks(w);
  if (s != UT_OK) return s;

  json_t *h = header_json(&w->desc, w->names, w->domain_names, w->attribute_names, w->source, w->count, &l);
  char *text = json_dumps(h, JSON_COMPACT);
  json_decref(h);
  size_t tlen = text ? strlen(text) : 0;
  if (!text || tlen > w->header_len) {
    free(text);
    return ut_fail(UT_ERR_HOST_MEMORY, "%s: cannot format the header", w->path);
  }
  uint8_t *pre = malloc(PREAMBLE + w->header_len);
  if (!pre) {
    free(text);
    return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", w->path);
  }
  memcpy(pre, MAGIC, 8);
  put_le32(pre + 8, format_version(x));
  put_le32(pre + 12, (uint32_t)w->header_len);
  memset(pre + PREAMBLE, ' ', w->header_len);
  memcpy(pre + PREAMBLE, text, tlen);
  free(text);
  if (fseeko(w->fp, 0, SEEK_SET) != 0 || fwrite(pre, 1, PREAMBLE + w->header_len, w->fp) != PREAMBLE + w->header_len)
    s = ut_fail(UT_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
  free(pre);
  if (s == UT_OK && fflush(w->fp) != 0) s = ut_fail(UT_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
  if (s == UT_OK && fsync(fileno(w->fp)) != 0) s = ut_fail(UT_ERR_IO, "%s: fsync failed: %s", w->tmp, strerror(errno));
  return s;
}

ut_status ut_dataset_writer_finish(ut_dataset_writer *w) {
  if (!w) return ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_dataset_writer_finish: no writer");
  ut_status s = finish_file(w);
  if (fclose(w->fp) != 0 && s == UT_OK) s = ut_fail(UT_ERR_IO, "%s: close failed: %s", w->tmp, strerror(errno));
  if (s == UT_OK && rename(w->tmp, w->path) != 0)
    s = ut_fail(UT_ERR_IO, "%s: cannot rename %s over it: %s", w->path, w->tmp, strerror(errno));
  if (s != UT_OK)
    unlink(w->tmp);
  else
    ut_data_sync_parent(w->path);
  writer_free(w);
  return s;
}

/* ------------------------------------------------------------------------------------------ */

struct ut_dataset {
  char *path;
  const uint8_t *base;
  size_t len;
  int mapped; /* base is our mmap */
  int32_t count;
  uint32_t version;
  int height, width, channels, n_classes, n_contents, n_domains, n_attributes, has_masks;
  char **names, **domain_names, **attribute_names;
  char *source;
  layout l;
};

void ut_dataset_close(ut_dataset *ds) {
  if (!ds) return;
  if (ds->mapped) munmap((void *)ds->base, ds->len);
  free_names(ds->names, ds->n_classes);
  free_names(ds->domain_names, ds->n_domains);
  free_names(ds->attribute_names, ds->n_attributes);
  free(ds->source);
  free(ds->path);
  free(ds);
}

/* An integer field in [lo, hi]; the error says which field and what was there. */
static ut_status get_int(const char *name, json_t *h, const char *key, int64_t lo, int64_t hi, int64_t *out) {
  json_t *v = json_object_get(h, key);
  if (!json_is_integer(v))
    return ut_fail(UT_ERR_FORMAT, "%s: header field '%s': expected an integer, found %s", name, key,
                   v ? "another JSON type" : "nothing");
  json_int_t x = json_integer_value(v);
  if (x < lo || x > hi)
    return ut_fail(UT_ERR_FORMAT, "%s: header field '%s' is %lld, expected %lld .. %lld", name, key, (long long)x,
                   (long long)lo, (long long)hi);
  *out = x;
  return UT_OK;
}

/* `n` distinct non-empty names from the header's array `key` into *out (what: "domain"). */
static ut_status parse_names(const char *name, json_t *h, const char *key, const char *what, int n, char ***out) {
  json_t *names = json_object_get(h, key);
  if (!json_is_array(names) || json_array_size(names) != (size_t)n)
    return ut_fail(UT_ERR_FORMAT, "%s: header field '%s': expected an array of %d strings", name, key, n);
  if (!(*out = calloc((size_t)n, sizeof **out))) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", name);
  for (int i = 0; i < n; i++) {
    const char *dn = json_string_value(json_array_get(names, (size_t)i));
    if (!dn || !*dn) return ut_fail(UT_ERR_FORMAT, "%s: header field '%s'[%d]: expected a non-empty string", name, key, i);
    for (int j = 0; j < i; j++)
      if (strcmp((*out)[j], dn) == 0)
        return ut_fail(UT_ERR_FORMAT, "%s: header field '%s'[%d]: '%s' is also %s %d, expected distinct names", name,
                       key, i, dn, what, j);
    if (!((*out)[i] = strdup(dn))) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", name);
  }
  return UT_OK;
}

/* The optional sections' fields: version 2's domains (a count >= 1 and as many distinct
 * names), version 3's domains (a count >= 0), attributes and masks. Version 1 has none. The
 * counts are set before the names are read, so ut_dataset_close frees what was read. */
static ut_status parse_sections(ut_dataset *ds, json_t *h) {
  const char *name = ds->path;
  if (ds->version == FORMAT_PLAIN) return UT_OK;
  int64_t n = 0;
  ut_status s = get_int(name, h, "n_domains", ds->version == FORMAT_DOMAINS ? 1 : 0, INT32_MAX, &n);
  if (s != UT_OK) return s;
  ds->n_domains = (int)n;
  if (n > 0 && (s = parse_names(name, h, "domain_names", "domain", ds->n_domains, &ds->domain_names)) != UT_OK) return s;
  if (ds->version == FORMAT_DOMAINS) return UT_OK;
  if ((s = get_int(name, h, "n_attributes", 0, MAX_ATTRIBUTES, &n)) != UT_OK) return s;
  ds->n_attributes = (int)n;
  if (n > 0 &&
      (s = parse_names(name, h, "attribute_names", "attribute", ds->n_attributes, &ds->attribute_names)) != UT_OK)
    return s;
  json_t *has = json_object_get(h, "has_masks");
  if (!json_is_boolean(has)) return ut_fail(UT_ERR_FORMAT, "%s: header field 'has_masks': expected true or false", name);
  ds->has_masks = json_is_true(has);
  if (ds->n_attributes == 0 && !ds->has_masks)
    return ut_fail(UT_ERR_FORMAT, "%s: format version 3 without attributes or masks, expected version 1 or 2", name);
  return UT_OK;
}

static ut_status parse_header(ut_dataset *ds, json_t *h) {
  const char *name = ds->path;
  if (!json_is_object(h)) return ut_fail(UT_ERR_FORMAT, "%s: the header is not a JSON object", name);
  const char *fmt = json_string_value(json_object_get(h, "format"));
  if (!fmt || strcmp(fmt, "untangle-dataset") != 0)
    return ut_fail(UT_ERR_FORMAT, "%s: header field 'format': expected \"untangle-dataset\"", name);
  int64_t v[9] = { 0 };
  ut_status s;
  if ((s = get_int(name, h, "version", ds->version, ds->version, &v[0])) ||
      (s = get_int(name, h, "count", 1, MAX_IMAGES, &v[1])) || (s = get_int(name, h, "height", 1, MAX_SIDE, &v[2])) ||
      (s = get_int(name, h, "width", 1, MAX_SIDE, &v[3])) || (s = get_int(name, h, "channels", 1, 3, &v[4])) ||
      (s = get_int(name, h, "n_classes", 1, INT32_MAX, &v[5])) ||
      (s = get_int(name, h, "n_contents", 0, INT32_MAX, &v[6])))
    return s;
  if (v[4] == 2) return ut_fail(UT_ERR_FORMAT, "%s: header field 'channels' is 2, expected 1 or 3", name);
  ds->count = (int32_t)v[1];
  ds->height = (int)v[2];
  ds->width = (int)v[3];
  ds->channels = (int)v[4];
  ds->n_classes = (int)v[5];
  ds->n_contents = (int)v[6];
  json_t *has = json_object_get(h, "has_contents");
  if (!json_is_boolean(has)) return ut_fail(UT_ERR_FORMAT, "%s: header field 'has_contents': expected true or false", name);
  if (json_is_true(has) != (ds->n_contents > 0))
    return ut_fail(UT_ERR_FORMAT, "%s: header field 'has_contents' is %s but 'n_contents' is %d", name,
                   json_is_true(has) ? "true" : "false", ds->n_contents);
  json_t *names = json_object_get(h, "class_names");
  if (!json_is_array(names) || json_array_size(names) != (size_t)ds->n_classes)
    return ut_fail(UT_ERR_FORMAT, "%s: header field 'class_names': expected an array of %d strings", name,
                   ds->n_classes);
  if (!(ds->names = calloc((size_t)ds->n_classes, sizeof *ds->names)))
    return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", name);
  for (int i = 0; i < ds->n_classes; i++) {
    const char *cn = json_string_value(json_array_get(names, (size_t)i));
    if (!cn) return ut_fail(UT_ERR_FORMAT, "%s: header field 'class_names'[%d]: expected a string", name, i);
    if (!(ds->names[i] = strdup(cn))) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", name);
  }
  if ((s = parse_sections(ds, h)) != UT_OK) return s;
  json_t *src = json_object_get(h, "source");
  if (!json_is_object(src)) return ut_fail(UT_ERR_FORMAT, "%s: header field 'source': expected a JSON object", name);
  if (!(ds->source = json_dumps(src, JSON_COMPACT))) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", name);

  uint64_t hlen = get_le32(ds->base + 12);
  uint64_t image_bytes = (uint64_t)ds->height * (uint64_t)ds->width * (uint64_t)ds->channels;
  /* Checked before multiplying: count x image bytes could pass 2^64 for a forged header. */
  if (image_bytes > ds->len / (uint64_t)ds->count)
    return ut_fail(UT_ERR_FORMAT, "%s: %d images of %d x %d x %d need more than the file's %zu bytes (truncated?)", name,
                   ds->count, ds->height, ds->width, ds->channels, ds->len);
  uint64_t mask_bytes = ds->has_masks ? (uint64_t)ds->height * (uint64_t)ds->width : 0;
  sections x = { ds->n_domains > 0, ds->n_attributes, ds->has_masks };
  /* The same guard for the other per-image sections (attributes are at most 4 KiB an image). */
  if (mask_bytes > ds->len / (uint64_t)ds->count || 4 * (uint64_t)ds->n_attributes > ds->len / (uint64_t)ds->count)
    return ut_fail(UT_ERR_FORMAT, "%s: %d images with their masks and %d attributes need more than the file's %zu bytes (truncated?)",
                   name, ds->count, ds->n_attributes, ds->len);
  ds->l = layout_for(hlen, (uint64_t)ds->count, image_bytes, mask_bytes, x);
  static const char *const keys[6] = { "images_offset",  "classes_offset",    "contents_offset",
                                       "domains_offset", "attributes_offset", "masks_offset" };
  const uint64_t want[6] = { ds->l.images, ds->l.classes, ds->l.contents, ds->l.domains, ds->l.attributes, ds->l.masks };
  const int present[6] = { 1, 1, 1, x.has_domains, x.n_attributes > 0, x.has_masks };
  for (int i = 0; i < 6; i++) {
    if (!present[i]) continue;
    if ((s = get_int(name, h, keys[i], 0, INT64_MAX, &v[7]))) return s;
    if ((uint64_t)v[7] != want[i])
      return ut_fail(UT_ERR_FORMAT, "%s: header field '%s' is %lld, expected %llu for %d images of %d x %d x %d", name,
                     keys[i], (long long)v[7], (unsigned long long)want[i], ds->count, ds->height, ds->width,
                     ds->channels);
  }
  if (ds->l.end != ds->len)
    return ut_fail(UT_ERR_FORMAT, "%s: the file has %llu bytes, expected %llu for %d images of %d x %d x %d%s", name,
                   (unsigned long long)ds->len, (unsigned long long)ds->l.end, ds->count, ds->height, ds->width,
                   ds->channels, ds->len < ds->l.end ? " (truncated?)" : "");
  return UT_OK;
}

static ut_status check_domains(const ut_dataset *ds) {
  if (ds->n_domains == 0) return UT_OK;
  int64_t *per = calloc((size_t)ds->n_domains, sizeof *per);
  if (!per) return ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", ds->path);
  for (int32_t i = 0; i < ds->count; i++) {
    int32_t d = (int32_t)get_le32(ds->base + ds->l.domains + 4 * (uint64_t)i);
    if (d < 0 || d >= ds->n_domains) {
      free(per);
      return ut_fail(UT_ERR_FORMAT, "%s: image %d has domain id %d, expected 0 .. %d", ds->path, i, d,
                     ds->n_domains - 1);
    }
    per[d]++;
  }
  for (int d = 0; d < ds->n_domains; d++)
    if (per[d] == 0) {
      free(per);
      return ut_fail(UT_ERR_FORMAT, "%s: domain %d ('%s') has no image, expected at least one per domain", ds->path, d,
                     ds->domain_names[d]);
    }
  free(per);
  return UT_OK;
}

static ut_status check_labels(const ut_dataset *ds) {
  for (int32_t i = 0; i < ds->count; i++) {
    int32_t c = (int32_t)get_le32(ds->base + ds->l.classes + 4 * (uint64_t)i);
    if (c < 0 || c >= ds->n_classes)
      return ut_fail(UT_ERR_FORMAT, "%s: image %d has class id %d, expected 0 .. %d", ds->path, i, c, ds->n_classes - 1);
    int32_t k = (int32_t)get_le32(ds->base + ds->l.contents + 4 * (uint64_t)i);
    if (ds->n_contents > 0 ? k < 0 || k >= ds->n_contents : k != -1)
      return ut_fail(UT_ERR_FORMAT, "%s: image %d has content id %d, expected %s%d", ds->path, i, k,
                     ds->n_contents > 0 ? "0 .. " : "", ds->n_contents > 0 ? ds->n_contents - 1 : -1);
  }
  return UT_OK;
}

/* Every attribute finite: NaN would poison a model's loss long after the file was read. */
static ut_status check_attributes(const ut_dataset *ds) {
  for (int32_t i = 0; i < ds->count; i++)
    for (int a = 0; a < ds->n_attributes; a++) {
      float v = ut_dataset_attribute(ds, i, a);
      if (!isfinite(v))
        return ut_fail(UT_ERR_FORMAT, "%s: image %d has attribute '%s' = %g, expected a finite value", ds->path, i,
                       ds->attribute_names[a], (double)v);
    }
  return UT_OK;
}

static ut_status validate(ut_dataset *ds) {
  const char *name = ds->path;
  if (ds->len < PREAMBLE)
    return ut_fail(UT_ERR_FORMAT, "%s: %zu bytes, too short for a data set (a %d-byte preamble comes first)", name,
                   ds->len, PREAMBLE);
  if (memcmp(ds->base, MAGIC, 8) != 0)
    return ut_fail(UT_ERR_FORMAT, "%s: not an untangle data set (magic is not \"%s\")", name, MAGIC);
  uint32_t version = get_le32(ds->base + 8), hlen = get_le32(ds->base + 12);
  if (version < FORMAT_PLAIN || version > FORMAT_ATTRIBUTES)
    return ut_fail(UT_ERR_FORMAT, "%s: format version %u, this build reads versions %d to %d", name, version,
                   FORMAT_PLAIN, FORMAT_ATTRIBUTES);
  ds->version = version;
  if (hlen == 0 || hlen > MAX_HEADER || (PREAMBLE + (uint64_t)hlen) % ALIGN != 0 || PREAMBLE + (uint64_t)hlen > ds->len)
    return ut_fail(UT_ERR_FORMAT,
                   "%s: header length %u, expected 1 .. %u with 16 + length a multiple of 64, inside the file (%zu bytes)",
                   name, hlen, MAX_HEADER, ds->len);
  json_error_t jerr;
  json_t *h = json_loadb((const char *)ds->base + PREAMBLE, hlen, 0, &jerr);
  if (!h) return ut_fail(UT_ERR_FORMAT, "%s: the header is not valid JSON: %s (at byte %d)", name, jerr.text, jerr.position);
  ut_status s = parse_header(ds, h);
  json_decref(h);
  if (s == UT_OK) s = check_labels(ds);
  if (s == UT_OK) s = check_domains(ds);
  return s == UT_OK ? check_attributes(ds) : s;
}

ut_dataset *ut_dataset_from_memory(const void *buf, size_t len, const char *name) {
  ut_dataset *ds = calloc(1, sizeof *ds);
  if (!ds || !(ds->path = strdup(name ? name : "(memory)"))) {
    free(ds);
    ut_fail(UT_ERR_HOST_MEMORY, "%s: out of host memory", name ? name : "(memory)");
    return NULL;
  }
  ds->base = buf;
  ds->len = len;
  if (validate(ds) != UT_OK) {
    ut_dataset_close(ds);
    return NULL;
  }
  return ds;
}

ut_dataset *ut_dataset_open(const char *path) {
  if (!path) {
    ut_fail(UT_ERR_INVALID_ARGUMENT, "ut_dataset_open: no path");
    return NULL;
  }
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    ut_fail(UT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    ut_fail(UT_ERR_IO, "%s: not a regular file", path);
    close(fd);
    return NULL;
  }
  size_t len = (size_t)sb.st_size;
  void *base = NULL;
  if (len >= PREAMBLE) {
    base = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (base == MAP_FAILED) {
      ut_fail(UT_ERR_IO, "%s: cannot map %zu bytes: %s", path, len, strerror(errno));
      close(fd);
      return NULL;
    }
  }
  close(fd);
  static const uint8_t nothing[1];
  ut_dataset *ds = ut_dataset_from_memory(base ? base : nothing, len, path);
  if (!ds) {
    if (base) munmap(base, len);
    return NULL;
  }
  ds->mapped = 1;
  return ds;
}

int32_t ut_dataset_count(const ut_dataset *ds) { return ds->count; }
int ut_dataset_height(const ut_dataset *ds) { return ds->height; }
int ut_dataset_width(const ut_dataset *ds) { return ds->width; }
int ut_dataset_channels(const ut_dataset *ds) { return ds->channels; }
int ut_dataset_n_classes(const ut_dataset *ds) { return ds->n_classes; }
int ut_dataset_n_contents(const ut_dataset *ds) { return ds->n_contents; }
const char *ut_dataset_source_json(const ut_dataset *ds) { return ds->source; }
const char *ut_dataset_path(const ut_dataset *ds) { return ds->path; }

const char *ut_dataset_class_name(const ut_dataset *ds, int class_id) {
  return class_id >= 0 && class_id < ds->n_classes ? ds->names[class_id] : NULL;
}

const uint8_t *ut_dataset_image(const ut_dataset *ds, int32_t i) {
  return ds->base + ds->l.images + (uint64_t)i * (uint64_t)ds->height * (uint64_t)ds->width * (uint64_t)ds->channels;
}

int32_t ut_dataset_class(const ut_dataset *ds, int32_t i) { return (int32_t)get_le32(ds->base + ds->l.classes + 4 * (uint64_t)i); }

int32_t ut_dataset_content(const ut_dataset *ds, int32_t i) {
  return (int32_t)get_le32(ds->base + ds->l.contents + 4 * (uint64_t)i);
}

int ut_dataset_n_domains(const ut_dataset *ds) { return ds->n_domains; }

const char *ut_dataset_domain_name(const ut_dataset *ds, int domain) {
  return domain >= 0 && domain < ds->n_domains ? ds->domain_names[domain] : NULL;
}

int32_t ut_dataset_domain(const ut_dataset *ds, int32_t i) {
  return ds->n_domains > 0 ? (int32_t)get_le32(ds->base + ds->l.domains + 4 * (uint64_t)i) : -1;
}

int ut_dataset_find_domain(const ut_dataset *ds, const char *name) {
  for (int d = 0; name && d < ds->n_domains; d++)
    if (strcmp(ds->domain_names[d], name) == 0) return d;
  return -1;
}

int ut_dataset_n_attributes(const ut_dataset *ds) { return ds->n_attributes; }

const char *ut_dataset_attribute_name(const ut_dataset *ds, int a) {
  return a >= 0 && a < ds->n_attributes ? ds->attribute_names[a] : NULL;
}

int ut_dataset_find_attribute(const ut_dataset *ds, const char *name) {
  for (int a = 0; name && a < ds->n_attributes; a++)
    if (strcmp(ds->attribute_names[a], name) == 0) return a;
  return -1;
}

float ut_dataset_attribute(const ut_dataset *ds, int32_t i, int a) {
  uint32_t bits = get_le32(ds->base + ds->l.attributes + 4 * ((uint64_t)i * (uint64_t)ds->n_attributes + (uint64_t)a));
  float v;
  memcpy(&v, &bits, 4);
  return v;
}

int ut_dataset_has_masks(const ut_dataset *ds) { return ds->has_masks; }

const uint8_t *ut_dataset_mask(const ut_dataset *ds, int32_t i) {
  return ds->has_masks ? ds->base + ds->l.masks + (uint64_t)i * (uint64_t)ds->height * (uint64_t)ds->width : NULL;
}
