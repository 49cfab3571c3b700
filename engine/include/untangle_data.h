/* untangle data layer: image data sets on disk, JPEG in and out, sample grids, and the
 * built-in rendered data set. Host-side only; it needs no OpenCL device.
 */
#ifndef UNTANGLE_DATA_H
#define UNTANGLE_DATA_H

#include "untangle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * The built-in rendered data set: lit, shaded 3-D objects on a plain background. A class is an
 * object identity (shape, proportions, colours, texture pattern) drawn from Philox keyed by
 * (seed, class); a content is a pose (azimuth x elevation). Any class can be drawn in any pose,
 * so the ground truth of every class/content swap is known exactly.
 */
typedef struct {
  int classes;   /* object identities */
  int views;     /* poses per class; ut_synth_view_angles says how a view index maps to angles */
  int size;      /* image side in pixels (square RGB images) */
  uint64_t seed; /* selects the set of identities */
  int domain;    /* the look (ut_synth_domain): 0 (day) is the original rendering */
  int style;     /* a light tint within the look (DMIT's styles): 0 is none, byte for byte as before */
} ut_synth_cfg;

/* The looks the renderer draws the same scenes in, as real domain pairs differ (lighting, paint
 * style) while the geometry of every (class, view) stays exactly the same. Day is the original
 * rendering, byte for byte. Night: a dark blue background, dim cool ambient and moon light, a
 * warm lamp near the camera with fall-off, colours partly washed out. Sketch: a line drawing in
 * dark ink on paper white, no colour: outlines of the object, its parts, its creases and its
 * texture pattern, and diagonal hatching (crossed where dark) for the shading. Dusk: a low warm
 * sun from the side, purple ambient light and a dusky rose background. */
typedef enum {
  UT_SYNTH_DAY = 0,
  UT_SYNTH_NIGHT = 1,
  UT_SYNTH_SKETCH = 2,
  UT_SYNTH_DUSK = 3,
  UT_SYNTH_DOMAIN_COUNT /* how many looks there are */
} ut_synth_domain;

/* The name of look `domain` ("day", "night", "sketch", "dusk"), or NULL when it is out of
 * range. */
const char *ut_synth_domain_name(int domain);

/* The look called `name` (as ut_synth_domain_name spells it), or -1 for an unknown name or
 * NULL. */
int ut_synth_domain_from_name(const char *name);

/* UT_SYNTH_DOMAIN_COUNT, for callers that list the looks. */
int ut_synth_domain_count(void);

/* The azimuth and elevation (degrees) of view `view` of a data set with `views` views. Views are
 * A azimuths x E elevations with the azimuth fastest (view = e * A + a): when views is a
 * multiple of 24, A = 24 (every 15 degrees, as Cars3D) and E = views / 24 elevations evenly
 * from 10 to 40 degrees (so 96 views: 10, 20, 30, 40), or 20 degrees when E = 1; otherwise
 * A = views azimuths evenly over the full turn at 20 degrees. At azimuth 0 the camera looks at
 * the object's front, at 90 at its right-hand side (front on the image's right), at 180 at its
 * back. An invalid (views, view) gives 0, 0; either output may be NULL. */
void ut_synth_view_angles(int views, int view, float *azimuth_deg, float *elevation_deg);

/* Renders class `class_id` in view `view` into rgb (size * size * 3 bytes, rows top to bottom,
 * pixels RGB interleaved): the object, centred and scaled so that it fits every view, ray cast
 * with 2x2 samples per pixel on a background of exactly (200, 200, 200) in the day look
 * (night: (16, 20, 38); dusk: (190, 128, 122); sketch: paper (246, 246, 246), where only
 * pixels the object covers can hold ink). Class c is the same object whatever cfg->classes is;
 * cfg->seed picks the whole set of objects; cfg->domain picks the look, never the geometry (a
 * pixel is background in the day look exactly where it is in the night and dusk looks);
 * cfg->style > 0 tints the look's light (the whole picture) with a hue of its own. The
 * same arguments give the same bytes on every machine (IEEE arithmetic only, no libm
 * transcendentals). About 0.4 ms per 64x64 image on one CPU core. UT_ERR_INVALID_ARGUMENT when
 * cfg or rgb is NULL, the class, view or domain is out of range, the style negative, or size
 * is outside [1, 4096];
 * UT_ERR_HOST_MEMORY when the sketch look cannot get its three rows of samples. */
ut_status ut_synth_render(const ut_synth_cfg *cfg, int class_id, int view, uint8_t *rgb);

/* Where the object of ut_synth_render(cfg, class_id, view) lies: coverage (size * size bytes,
 * rows top to bottom) gets, per pixel, how many of its 2x2 samples hit the object (0 .. 4). A
 * pixel of coverage 0 is exactly the look's background colour in the render; the look does not
 * matter (cfg->domain is not read). About a third of the render's time. UT_ERR_INVALID_ARGUMENT
 * for the arguments ut_synth_render refuses. */
ut_status ut_synth_coverage(const ut_synth_cfg *cfg, int class_id, int view, uint8_t *coverage);


/* ---------------------------------------------------------------------------------------------
 * The preprocessed data set file (format documented at the top of engine/data/dataset.c):
 * uint8 images N x H x W x C (rows top to bottom, channels interleaved), an int32 class id and
 * an int32 content id (-1 when the set has no content labels) per image, class names, and a
 * free-form "source" JSON object saying where the images came from. Training memory-maps it.
 */
typedef struct {
  int height, width;              /* image size in pixels */
  int channels;                   /* 1 (gray) or 3 (RGB) */
  int n_classes;                  /* class ids are 0 .. n_classes - 1 */
  const char *const *class_names; /* n_classes UTF-8 names, or NULL for "class-0", "class-1", ... */
  int n_contents;                 /* > 0: every image has a content id in 0 .. n_contents - 1;
                                     0: the set has no content labels (ids are -1) */
  const char *source_json;        /* a JSON object describing the origin, or NULL for {} */
  int n_domains;                   /* 0: the set has no domain labels (ids are -1); > 0: every image has a domain id */
  const char *const *domain_names; /* n_domains UTF-8 names, or NULL for "domain-0", ... */
  int n_attributes;                   /* named per-image values beyond the labels (0: none), e.g. a
                                         rendered style or paint id, or a continuous hue */
  const char *const *attribute_names; /* n_attributes distinct non-empty UTF-8 names (required) */
  int has_masks;                      /* 1: every image has a mask of height x width bytes (0 outside
                                         the region .. 255 inside), e.g. the part OverLORD's localized
                                         transform keeps */
} ut_dataset_desc;

typedef struct ut_dataset_writer ut_dataset_writer;

/* Starts writing a data set to `path`. Images are streamed into a temporary file next to
 * `path` (so the writer never holds them all in memory); nothing appears at `path` until
 * ut_dataset_writer_finish succeeds. A set without domains is written in format version 1 (as
 * before domains existed), one with domains in version 2, one with attributes or masks in
 * version 3. NULL on failure (bad description: also a domain or attribute name that is empty,
 * not UTF-8 or given twice; folder not writable). */
ut_dataset_writer *ut_dataset_writer_open(const char *path, const ut_dataset_desc *desc);

/* Appends one image (height * width * channels bytes, HWC) with its class id and content id
 * (-1 when the set has no content labels). Ids out of range fail with UT_ERR_INVALID_ARGUMENT
 * and leave the writer usable. */
ut_status ut_dataset_writer_add(ut_dataset_writer *w, const uint8_t *image, int class_id, int content_id);

/* As ut_dataset_writer_add, with the image's domain id: 0 .. n_domains - 1 when the set has
 * domains, -1 when it has none (ut_dataset_writer_add is this with -1). A domain id out of range
 * fails with UT_ERR_INVALID_ARGUMENT and leaves the writer usable. */
ut_status ut_dataset_writer_add_domain(ut_dataset_writer *w, const uint8_t *image, int class_id, int content_id,
                                       int domain_id);

/* Everything known about one image besides its pixels. */
typedef struct {
  int class_id;
  int content_id;          /* -1 when the set has no content labels */
  int domain_id;           /* -1 when the set has no domain labels */
  const float *attributes; /* n_attributes finite values, or NULL when the set has none */
  const uint8_t *mask;     /* height * width bytes, or NULL when the set has no masks */
} ut_image_labels;

/* As ut_dataset_writer_add_domain, with the image's attributes and mask: both are required when
 * the set has them and must be NULL when it has not. A non-finite attribute fails with
 * UT_ERR_INVALID_ARGUMENT naming it; the writer stays usable. */
ut_status ut_dataset_writer_add_labels(ut_dataset_writer *w, const uint8_t *image, const ut_image_labels *labels);

/* Images appended so far. */
int64_t ut_dataset_writer_count(const ut_dataset_writer *w);

/* Writes the labels and header, syncs, renames the temporary file over `path` and frees the
 * writer. On failure the temporary file is removed and `path` is unchanged; either way the
 * writer is gone. A set of zero images, or with domains where some domain got no image (the
 * error names it), is refused (UT_ERR_INVALID_ARGUMENT). */
ut_status ut_dataset_writer_finish(ut_dataset_writer *w);

/* Drops everything written so far (removes the temporary file) and frees the writer. */
void ut_dataset_writer_abort(ut_dataset_writer *w);

typedef struct ut_dataset ut_dataset;

/* Memory-maps a data set file and validates all of it: magic and version (1, 2 with domains,
 * 3 with attributes or masks), the header's fields, the section sizes against the file length,
 * every class, content and domain id, distinct domain and attribute names, at least one image
 * per domain, and finite attributes. NULL on
 * failure; the error names the file, the field and what was expected. */
ut_dataset *ut_dataset_open(const char *path);
void ut_dataset_close(ut_dataset *ds);

int32_t ut_dataset_count(const ut_dataset *ds);
int ut_dataset_height(const ut_dataset *ds);
int ut_dataset_width(const ut_dataset *ds);
int ut_dataset_channels(const ut_dataset *ds);
int ut_dataset_n_classes(const ut_dataset *ds);
const char *ut_dataset_class_name(const ut_dataset *ds, int class_id); /* NULL when out of range */
int ut_dataset_n_contents(const ut_dataset *ds);                       /* 0: no content labels */
/* Image i: height * width * channels bytes, HWC. i must be in 0 .. count - 1. */
const uint8_t *ut_dataset_image(const ut_dataset *ds, int32_t i);
/* Image i as float [channels, height, width] in [0, 1], the layout the models take. */
void ut_dataset_image_chw(const ut_dataset *ds, int32_t i, float *chw);
/* HWC bytes of an image of `pixels` pixels and `channels` channels to CHW floats in [0, 1]. */
void ut_image_bytes_to_chw(const uint8_t *hwc, size_t pixels, int channels, float *chw);
int32_t ut_dataset_class(const ut_dataset *ds, int32_t i);
int32_t ut_dataset_content(const ut_dataset *ds, int32_t i); /* -1 without content labels */

/* Domains: each image of a set with domain labels belongs to one domain (a side of an unpaired
 * translation: photos and paintings, day and night). A set without them (every format version 1
 * file) has n_domains 0 and domain id -1 for every image. */
int ut_dataset_n_domains(const ut_dataset *ds);                       /* 0: no domain labels */
const char *ut_dataset_domain_name(const ut_dataset *ds, int domain); /* NULL when out of range */
int32_t ut_dataset_domain(const ut_dataset *ds, int32_t i);           /* -1 without domain labels */
/* The id of the domain called `name` (exact bytes), or -1 when there is none (or name is NULL). */
int ut_dataset_find_domain(const ut_dataset *ds, const char *name);

/* The images of domain `domain` as a malloc'd list in ascending order (free it with free), for
 * a loader over one domain. A validated set has at least one image in each domain, so *n >= 1.
 * UT_ERR_INVALID_ARGUMENT when the domain is out of range (any domain of a set without domain
 * labels), the error naming the file; UT_ERR_HOST_MEMORY when the list cannot be allocated.
 * On failure *indices is NULL and *n is 0. */
ut_status ut_dataset_domain_indices(const ut_dataset *ds, int domain, int32_t **indices, int32_t *n);

/* Attributes: named float values per image (format version 3); a set without them has
 * n_attributes 0. `a` and `i` must be in range. */
int ut_dataset_n_attributes(const ut_dataset *ds);
const char *ut_dataset_attribute_name(const ut_dataset *ds, int a); /* NULL when out of range */
/* The index of the attribute called `name` (exact bytes), or -1 when there is none. */
int ut_dataset_find_attribute(const ut_dataset *ds, const char *name);
float ut_dataset_attribute(const ut_dataset *ds, int32_t i, int a);

/* Masks (format version 3): 1 when every image has one. */
int ut_dataset_has_masks(const ut_dataset *ds);
/* Image i's mask, height * width bytes (rows top to bottom), or NULL when the set has none. */
const uint8_t *ut_dataset_mask(const ut_dataset *ds, int32_t i);

/* The "source" object as compact JSON text (for a rendered set: the ut_synth_cfg used). */
const char *ut_dataset_source_json(const ut_dataset *ds);
const char *ut_dataset_path(const ut_dataset *ds);

/* Index lists of a data set split as lord.py's split-classes then split-samples, computed
 * rather than stored. Held-out classes: `test_classes` distinct class ids drawn uniformly
 * (partial Fisher-Yates over 0 .. n_classes - 1 with a splitmix64 stream seeded by `seed`).
 * Held-out samples: floor(test_ratio * m) images drawn the same way (continuing the stream)
 * from the m images of the remaining classes. Every list is in ascending image order, and
 * the three image lists partition 0 .. count - 1. The same (data set, arguments) always give
 * the same split. */
typedef struct {
  int32_t *train, n_train;             /* training images */
  int32_t *test_class, n_test_class;   /* all images of the held-out classes */
  int32_t *test_sample, n_test_sample; /* held-out images of the training classes */
  int *test_classes, n_test_classes;   /* the held-out class ids, ascending */
} ut_dataset_split;

/* Fills *split (free with ut_dataset_split_free). 0 <= test_classes < n_classes and
 * 0 <= test_ratio < 1, else UT_ERR_INVALID_ARGUMENT. */
ut_status ut_dataset_split_compute(const ut_dataset *ds, int test_classes, double test_ratio, uint64_t seed,
                                   ut_dataset_split *split);
void ut_dataset_split_free(ut_dataset_split *split);

/* ---------------------------------------------------------------------------------------------
 * The batch loader: a background thread prepares the next batch as float [B, C, H, W] in
 * [0, 1] while the caller trains on the current one. The order of epoch e is a permutation of
 * the index list that depends only on (seed, e), and an image's random crop and mirroring
 * depend only on (seed, e, its position in the epoch), so a run resumed at (epoch, batch) with
 * ut_loader_seek sees the same batches, bit for bit, as an uninterrupted one.
 */
typedef struct {
  const int32_t *indices; /* the images to draw from (copied); NULL means all of the set */
  int32_t n_indices;
  int batch;              /* images per batch */
  uint64_t seed;
  int drop_last;          /* 1: an epoch has floor(n / batch) full batches; 0: the last may be short */
  int in_order;           /* 1: no shuffling, batches follow the index list (evaluation) */
  int crop;         /* > 0: batches hold a crop of crop x crop pixels: at a random position while training, centred when in_order; 0: whole images */
  int flip;         /* 1: each image mirrored left-right with probability 1/2 (never when in_order) */
  int signed_range; /* 1: values in [-1, 1] (2 v - 1), for models whose output is tanh; 0: [0, 1] */
} ut_loader_cfg;

typedef struct {
  const float *images;     /* [n, C, H, W] (H = W = crop when cropping), values in [0, 1] or [-1, 1] */
  const int32_t *indices;  /* [n] image index in the data set (the content embedding row) */
  const int32_t *classes;  /* [n] class ids */
  const int32_t *contents; /* [n] content ids (-1 without content labels) */
  const int32_t *domains;  /* [n] domain ids (-1 without domain labels) */
  const float *attributes; /* [n, n_attributes] (NULL when the set has none) */
  int n_attributes;
  const float *masks;      /* [n, 1, H, W] in [0, 1], cropped and mirrored as the images (never
                              signed); NULL when the set has no masks */
  int n;                   /* images in this batch: cfg.batch, or fewer in a short last batch */
  int64_t epoch, batch;    /* where this batch sits */
} ut_batch;

typedef struct ut_loader ut_loader;

/* Starts the loader thread; the first batch is epoch 0, batch 0. NULL on failure (empty or
 * out-of-range index list, batch < 1, an epoch with no batch, a negative crop or one larger
 * than the images: the error names both sizes). The data set must stay open while the loader
 * lives. */
ut_loader *ut_loader_new(const ut_dataset *ds, const ut_loader_cfg *cfg);

/* The side of the square images the loader yields: cfg.crop when cropping, else the data set's
 * side; 0 for a data set of non-square images without a crop (see ut_dataset_height, _width). */
int ut_loader_image_side(const ut_loader *l);

/* Batches per epoch. */
int64_t ut_loader_batches_per_epoch(const ut_loader *l);

/* Makes (epoch, batch) the next batch ut_loader_next returns. */
ut_status ut_loader_seek(ut_loader *l, int64_t epoch, int64_t batch);

/* Waits for the next batch and returns it in *out; it stays valid until the next call of
 * ut_loader_next, ut_loader_seek or ut_loader_free. Batches run on across epochs. */
ut_status ut_loader_next(ut_loader *l, const ut_batch **out);

/* Stops and joins the thread and frees everything. */
void ut_loader_free(ut_loader *l);

/* Writes `len` bytes to `path` atomically: a temporary file next to it, fsync, rename, then a
 * best-effort fsync of the folder. On failure `path` is unchanged and the error names it. */
ut_status ut_data_write_atomic(const char *path, const void *data, size_t len);

/* ---------------------------------------------------------------------------------------------
 * JPEG in and out (libjpeg-turbo), and the square crop every importer applies.
 */
typedef struct {
  int width, height, channels; /* channels 1 or 3 */
  uint8_t *pixels;             /* malloc'd, HWC rows top to bottom */
} ut_image;

/* Decodes a JPEG held in memory (grayscale, YCbCr/RGB, CMYK or YCCK) to `channels` 1 (luma,
 * ITU-R 601 weights as PIL's convert("L")) or 3 (RGB). `name` is used in messages. A file
 * that is not a JPEG, is corrupt or truncated, or has over 100 million pixels fails with
 * UT_ERR_FORMAT. out->pixels is malloc'd; free it with ut_image_free. */
ut_status ut_jpeg_decode(const uint8_t *data, size_t len, const char *name, int channels, ut_image *out);
void ut_image_free(ut_image *img);

/* Reads a JPEG file, crops the centred square of side min(width, height) and resizes it to
 * size x size into hwc (size * size * channels bytes). Shrinking averages the covered source
 * area (box filter with fractional edges, as cv2's INTER_AREA); enlarging is bilinear with
 * half-pixel centres (as torch's interpolate(align_corners=False)). Large files are decoded
 * at a reduced DCT scale first when that still leaves at least twice the target size. */
ut_status ut_jpeg_load_square(const char *path, int channels, int size, uint8_t *hwc);

/* As ut_jpeg_load_square, into float [channels, size, size] with values in [0, 1]. */
ut_status ut_jpeg_read_float(const char *path, int channels, int size, float *chw);

/* The crop and resize of ut_jpeg_load_square on an image already in memory. */
ut_status ut_image_square_resize(const ut_image *in, int size, uint8_t *hwc);

/* Encodes width x height x channels (1 or 3) HWC bytes as a baseline JPEG of the given
 * quality (1..100) and writes it to `path` atomically (temporary file, fsync, rename). */
ut_status ut_jpeg_write(const char *path, const uint8_t *hwc, int width, int height, int channels, int quality);

/* Writes n images (float [n, C, H, W], values clamped to [0, 1]) as one JPEG grid of `cols`
 * columns, in row-major order, tiles separated by a 2-pixel white gap; atomic like
 * ut_jpeg_write. C is 1 or 3. */
ut_status ut_grid_write_jpeg(const char *path, const float *images, int n, int channels, int height, int width,
                             int cols, int quality);

/* ---------------------------------------------------------------------------------------------
 * Importers. Each writes a data set file through ut_dataset_writer, so `out_path` is either
 * the complete new file or untouched.
 */
typedef struct {
  int size;     /* image side of the data set */
  int channels; /* 1 or 3 */
  /* Called after each file (done of total); may be NULL. */
  void (*progress)(void *user, int64_t done, int64_t total);
  /* Called for each file that was skipped, with the reason; may be NULL. */
  void (*skipped)(void *user, const char *file, const char *reason);
  void *user;
} ut_import_cfg;

typedef struct {
  int64_t imported, skipped;
  int n_classes;
  int empty_classes; /* class folders in which no image could be read */
  int n_domains;     /* ut_import_domains: the domains written; 0 for the other importers */
} ut_import_stats;

/* Imports a folder of JPEGs with one sub-folder per class (class names and ids follow the
 * sub-folders' names in byte order; files in a folder are taken in name order). Every regular
 * file not starting with '.' is tried; one that is not a readable JPEG is reported through
 * cfg->skipped and counted. Files directly in `dir` belong to no class and are skipped too.
 * Fails when `dir` has no sub-folder or no image could be read. */
ut_status ut_import_folder(const char *dir, const char *out_path, const ut_import_cfg *cfg, ut_import_stats *stats);

/* Imports a folder of JPEGs with one sub-folder per domain, for unpaired translation (UNIT,
 * CycleGAN, DMIT). When `dir` holds folders named trainX or testX (X one capital letter), as
 * UNIT's and CycleGAN's data sets do, the domains are the letters X in order and `subset`
 * ("train", the default when NULL, or "test") picks which folders are read; each letter seen in
 * either subset must have its folder in the chosen one, and other entries of `dir` are ignored.
 * Otherwise every sub-folder of `dir` is a domain named after it (byte order). Each image gets
 * class 0 (the one class, "all"), content -1 and its domain id; files are read as
 * ut_import_folder reads them (unreadable ones reported through cfg->skipped). Fails, writing
 * nothing, with an error naming the folder when a domain folder is missing, empty or has no
 * readable image, when there are fewer than two domains, or when `subset` is neither. */
ut_status ut_import_domains(const char *dir, const char *subset, const char *out_path, const ut_import_cfg *cfg,
                            ut_import_stats *stats);

/* Imports an IDX image file (unsigned bytes, N x rows x cols, gray) and its IDX label file
 * (unsigned bytes, N) as Fashion-MNIST and MNIST ship them; either may be gzip-compressed.
 * Labels are the classes: n_classes is the number of `class_names` (NULL-terminated list) or
 * else the largest label + 1. Images are cropped and resized as ut_image_square_resize does;
 * cfg->channels 3 repeats the gray value. */
ut_status ut_import_idx(const char *images_path, const char *labels_path, const char *out_path,
                        const char *const *class_names, const ut_import_cfg *cfg, ut_import_stats *stats);

/* Renders the built-in data set (every class in every view, class-major) with ut_synth_render
 * on `threads` threads (0: 2) and writes it: class names "object-%03d", content id = view
 * index, n_contents = views, source {"kind": "synth", "classes", "views", "size", "seed"},
 * rendered in the look cfg->domain (no domain labels; a look other than day adds "domain":
 * its name to the source). UT_ERR_INVALID_ARGUMENT for a look out of range. */
ut_status ut_synth_write_dataset(const ut_synth_cfg *cfg, const char *out_path, int threads,
                                 void (*progress)(void *user, int64_t done, int64_t total), void *user);

/* Renders the built-in data set once per look in `domains` (n_domains entries, each a
 * ut_synth_domain; cfg->domain is not used) and writes it with domain labels: domain-major
 * (every class in every view of domains[0], then of domains[1], ...), class = object, content =
 * view, domain id = position in the list, domain names `domain_names` (n_domains strings) or
 * the looks' names when NULL. The geometry of (class, view) is the same in every domain. Source
 * as ut_synth_write_dataset's plus "domains": [the looks' names]. UT_ERR_INVALID_ARGUMENT when a
 * look is out of range, n_domains < 1 or the names are not distinct. */
ut_status ut_synth_write_domains(const ut_synth_cfg *cfg, const int *domains, const char *const *domain_names,
                                 int n_domains, const char *out_path, int threads,
                                 void (*progress)(void *user, int64_t done, int64_t total), void *user);

/* As ut_synth_write_domains, with every (class, view) of every domain rendered in n_styles
 * styles (cfg->style = 0 .. n_styles - 1, style-fastest: domain, class, view, style), each
 * image's style stored as the attribute "style" (format version 3) and "styles": n_styles in
 * the source. Style k > 0 is the look under a tinted light (ut_synth_render), the same hue for
 * style k in every domain, so within a domain the styles differ only by that tint.
 * UT_ERR_INVALID_ARGUMENT as ut_synth_write_domains, and for n_styles < 1. */
ut_status ut_synth_write_styles(const ut_synth_cfg *cfg, const int *domains, const char *const *domain_names,
                                int n_domains, int n_styles, const char *out_path,
                                void (*progress)(void *user, int64_t done, int64_t total), void *user);

#ifdef __cplusplus
}
#endif
#endif
