/* The safetensors file format (https://github.com/huggingface/safetensors), F32 only, apart
 * from the store that saves and loads through it:
 *
 *   8 bytes    N, the header length, unsigned little-endian
 *   N bytes    JSON: { "<tensor>": { "dtype": "F32", "shape": [...], "data_offsets": [begin, end] },
 *                      ..., "__metadata__": { "<key>": "<string>", ... } }
 *              padded with spaces so that the data starts at a multiple of 8
 *   the rest   raw little-endian tensor data; offsets count from the start of this section, and
 *              the tensors cover it exactly, without gaps, overlaps or trailing bytes.
 *
 * Reading validates everything a hostile file could get wrong before allocating anything sized
 * by it, and every message starts with the path (and names the tensor where there is one).
 */
#ifndef UT_SAFETENSORS_H
#define UT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "untangle.h"

typedef struct {
  char *name;
  ut_shape shape;
  uint64_t begin, end; /* byte offsets into the data section */
} ut_st_entry;

typedef struct {
  char *key;
  char *value;
} ut_st_pair;

/* A whole file in host memory after validation. */
typedef struct {
  ut_st_entry *tensors;
  int n_tensors;
  ut_st_pair *meta; /* the __metadata__ object, in file order */
  int n_meta;
  unsigned char *data; /* the data section, data_len bytes */
  uint64_t data_len;
} ut_st_file;

/* Reads and validates `path` into *out (zeroed first). On failure *out holds nothing and the
 * message says what is wrong: UT_ERR_IO (cannot read), UT_ERR_FORMAT (corrupt, truncated),
 * UT_ERR_MISMATCH (a valid file with a dtype or rank untangle does not handle). */
ut_status ut_st_read(const char *path, ut_st_file *out);
void ut_st_file_free(ut_st_file *f);

/* Little-endian F32 bytes to floats on any host. */
void ut_st_decode_f32(const unsigned char *src, float *dst, size_t n);

/* What ut_st_write saves: names and shapes up front (for the header), then each tensor's values
 * through fill(user, index, dst), one at a time, so the whole model never sits in host memory. */
typedef struct {
  const char *name;
  ut_shape shape;
} ut_st_desc;
typedef ut_status (*ut_st_fill_fn)(void *user, int index, float *dst);

/* Writes the file atomically: "<path>.tmp-XXXXXX" in the same folder is written, flushed,
 * fsync'ed and renamed over path, then the folder is synced. On failure the temporary file is
 * removed, an existing file at path is untouched and the message names the path and errno. */
ut_status ut_st_write(const char *path, const ut_st_desc *tensors, int n_tensors, const ut_st_pair *meta,
                      int n_meta, ut_st_fill_fn fill, void *user);

#endif
