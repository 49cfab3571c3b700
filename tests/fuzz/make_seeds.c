/* Writes the seed corpus of every fuzz target into DIR/<target>/ with untangle's own writers,
 * so the seeds are valid files of the current formats (the fuzzer then mutates them). The
 * corpus checked in under tests/fuzz/corpus/ came from `fuzz_make_seeds tests/fuzz/corpus`;
 * run it again when a format changes.
 *
 * Targets whose input starts with option bytes (jpeg, idx, cli) get those bytes in front of
 * the file; fuzz_<target>.c says what they mean. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>

#include "fuzz_support.h"
#include "runtime_internal.h"
#include "safetensors.h"
#include "untangle_data.h"

static const char *out_dir;

static void die(const char *what) {
  fprintf(stderr, "make_seeds: %s: %s\n", what, ut_last_error());
  exit(1);
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) die(path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) die(path);
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* DIR/target/name := prefix bytes + data. */
static void seed(const char *target, const char *name, const void *prefix, size_t plen, const void *data, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", out_dir, target);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(prefix, 1, plen, f) != plen || fwrite(data, 1, len, f) != len || fclose(f) != 0) die(path);
}

/* A file written by one of our writers, copied in as a seed and removed. */
static void seed_file(const char *target, const char *name, const void *prefix, size_t plen, const char *path) {
  size_t len;
  char *data = read_all(path, &len);
  seed(target, name, prefix, plen, data, len);
  free(data);
  unlink(path);
}

static ut_status fill_ramp(void *user, int index, float *dst) {
  const ut_st_desc *d = user;
  int64_t n = 1;
  for (int k = 0; k < d[index].shape.rank; k++) n *= d[index].shape.d[k];
  for (int64_t i = 0; i < n; i++) dst[i] = (float)i * 0.25f - (float)index;
  return UT_OK;
}

static void safetensors_seeds(void) {
  const char *tmp = fuzz_path("seed.safetensors");
  ut_st_desc two[] = { { "fc1.w", UT_SHAPE(2, 3) }, { "fc1.b", UT_SHAPE(3) } };
  ut_st_pair meta[] = { { "model", "spirals" }, { "step", "10" } };
  if (ut_st_write(tmp, two, 2, meta, 2, fill_ramp, two) != UT_OK) die(tmp);
  seed_file("safetensors", "two-tensors", "", 0, tmp);
  ut_st_desc odd[] = { { "empty", UT_SHAPE(0, 4) }, { "scalar", { .rank = 0 } } };
  if (ut_st_write(tmp, odd, 2, NULL, 0, fill_ramp, odd) != UT_OK) die(tmp);
  seed_file("safetensors", "empty-and-scalar", "", 0, tmp);
  if (ut_st_write(tmp, NULL, 0, meta, 1, fill_ramp, NULL) != UT_OK) die(tmp);
  seed_file("safetensors", "metadata-only", "", 0, tmp);
}

static void dataset_seeds(void) {
  const char *tmp = fuzz_path("seed.dat");
  const char *names[] = { "cat", "dog" };
  ut_dataset_desc rgb = { .height = 2, .width = 3, .channels = 3, .n_classes = 2, .class_names = names,
                          .n_contents = 2, .source_json = "{\"kind\":\"seed\"}" };
  uint8_t img[2 * 3 * 3];
  ut_dataset_writer *w = ut_dataset_writer_open(tmp, &rgb);
  for (int i = 0; w && i < 3; i++) {
    memset(img, 40 * i, sizeof img);
    if (ut_dataset_writer_add(w, img, i % 2, i / 2) != UT_OK) die(tmp);
  }
  if (!w || ut_dataset_writer_finish(w) != UT_OK) die(tmp);
  seed_file("dataset", "rgb-with-contents", "", 0, tmp);
  ut_dataset_desc gray = { .height = 1, .width = 1, .channels = 1, .n_classes = 3 };
  w = ut_dataset_writer_open(tmp, &gray);
  if (!w || ut_dataset_writer_add(w, img, 2, -1) != UT_OK || ut_dataset_writer_finish(w) != UT_OK) die(tmp);
  seed_file("dataset", "gray-no-contents", "", 0, tmp);
  const char *domains[] = { "day", "night" };
  ut_dataset_desc two = { .height = 2, .width = 2, .channels = 3, .n_classes = 2, .class_names = names,
                          .n_contents = 0, .n_domains = 2, .domain_names = domains };
  w = ut_dataset_writer_open(tmp, &two);
  for (int i = 0; w && i < 3; i++)
    if (ut_dataset_writer_add_domain(w, img, i % 2, -1, i == 2) != UT_OK) die(tmp);
  if (!w || ut_dataset_writer_finish(w) != UT_OK) die(tmp);
  seed_file("dataset", "rgb-with-domains", "", 0, tmp);
  const char *attrs[] = { "hue", "style" };
  ut_dataset_desc labelled = { .height = 2, .width = 2, .channels = 3, .n_classes = 2, .class_names = names,
                               .n_domains = 2, .domain_names = domains, .n_attributes = 2, .attribute_names = attrs,
                               .has_masks = 1 };
  w = ut_dataset_writer_open(tmp, &labelled);
  for (int i = 0; w && i < 3; i++) {
    float values[2] = { 120.0f * (float)i, (float)(i % 2) };
    uint8_t mask[4] = { 0, 255, (uint8_t)(60 * i), 255 };
    ut_image_labels lb = { .class_id = i % 2, .content_id = -1, .domain_id = i == 2, .attributes = values, .mask = mask };
    if (ut_dataset_writer_add_labels(w, img, &lb) != UT_OK) die(tmp);
  }
  if (!w || ut_dataset_writer_finish(w) != UT_OK) die(tmp);
  seed_file("dataset", "rgb-with-attributes-and-masks", "", 0, tmp);
}

/* libjpeg directly, for the CMYK file untangle itself never writes. */
static void write_cmyk(const char *path) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr e;
  c.err = jpeg_std_error(&e);
  jpeg_create_compress(&c);
  FILE *f = fopen(path, "wb");
  if (!f) die(path);
  jpeg_stdio_dest(&c, f);
  c.image_width = 8;
  c.image_height = 8;
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 90, TRUE);
  jpeg_start_compress(&c, TRUE);
  uint8_t row[8 * 4];
  for (int x = 0; x < 8 * 4; x++) row[x] = (uint8_t)(x * 8);
  while (c.next_scanline < c.image_height) {
    JSAMPROW r = row;
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  fclose(f);
}

static void jpeg_seeds(void) {
  const char *tmp = fuzz_path("seed.jpg");
  uint8_t px[16 * 8 * 3];
  for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 7);
  /* First byte: bit 7 from memory, bit 6 gray, low bits + 1 the target side. */
  if (ut_jpeg_write(tmp, px, 16, 8, 3, 90) != UT_OK) die(tmp);
  seed_file("jpeg", "rgb-memory", "\x87", 1, tmp);
  if (ut_jpeg_write(tmp, px, 16, 8, 3, 50) != UT_OK) die(tmp);
  seed_file("jpeg", "rgb-file-gray-out", "\x43", 1, tmp);
  if (ut_jpeg_write(tmp, px, 8, 8, 1, 90) != UT_OK) die(tmp);
  seed_file("jpeg", "gray-file-rgb-out", "\x0f", 1, tmp);
  write_cmyk(tmp);
  seed_file("jpeg", "cmyk-memory", "\x83", 1, tmp);
}

static void idx_seeds(void) {
  /* Three 4 x 4 images with labels 0, 1, 2; options byte, then the label file's length. */
  uint8_t labels[8 + 3] = { 0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 2 };
  uint8_t images[16 + 3 * 16] = { 0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 4 };
  for (int i = 16; i < (int)sizeof images; i++) images[i] = (uint8_t)(i * 5);
  uint8_t buf[3 + sizeof labels + sizeof images];
  buf[1] = 0;
  buf[2] = sizeof labels;
  memcpy(buf + 3, labels, sizeof labels);
  memcpy(buf + 3 + sizeof labels, images, sizeof images);
  buf[0] = 0x07; /* gray, side 8, no class names */
  seed("idx", "three-images-gray", "", 0, buf, sizeof buf);
  buf[0] = 0xC1; /* RGB, side 2, three class names */
  seed("idx", "three-images-named-rgb", "", 0, buf, sizeof buf);
}

static void program_cache_seeds(void) {
  const unsigned char binary[] = "\x7f" "ELF a program binary";
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", fuzz_path("cache"));
  ut_program_cache_store(dir, FUZZ_CACHE_KEY, binary, sizeof binary);
  DIR *d = opendir(dir);
  if (!d) die(dir);
  for (struct dirent *e; (e = readdir(d));)
    if (strstr(e->d_name, ".bin")) {
      char path[8192];
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      seed_file("program_cache", "valid-entry", "", 0, path);
    }
  closedir(d);
  rmdir(dir);
}

/* PoCL binaries of format 9 as engine/pocl_binary_check.c reads them: one root entry holding
 * program.bc and one kernel with one compiled file; then the same with the root entry empty,
 * as PoCL writes it when program.bc was missing. */
static size_t put(unsigned char *at, const void *bytes, size_t n) {
  memcpy(at, bytes, n);
  return n;
}

static size_t put_file(unsigned char *at, const char *name, const char *content) {
  uint32_t n = (uint32_t)strlen(name), c = (uint32_t)strlen(content);
  size_t k = put(at, &n, 4);
  k += put(at + k, name, n);
  k += put(at + k, &c, 4);
  return k + put(at + k, content, c);
}

static size_t pocl_binary(unsigned char *b, int with_program_bc) {
  const uint64_t device = 0x1234, flags = (uint64_t)4 << 32;
  const uint32_t version = 9, kernels = 1, roots = 1;
  char hash[41];
  memset(hash, 'A', 40);
  hash[40] = '\0';
  size_t n = put(b, "poclbin", 8);
  n += put(b + n, &device, 8);
  n += put(b + n, &version, 4);
  n += put(b + n, &kernels, 4);
  n += put(b + n, &flags, 8);
  n += put(b + n, &roots, 4);
  n += put(b + n, hash, 41);
  uint64_t root = with_program_bc ? put_file(b + n + 8, "/program.bc", "BC bitcode") : 0;
  n += put(b + n, &root, 8) + (size_t)root;
  /* The kernel record: sizes, then (opaque here) metadata, then its files. */
  size_t start = n;
  n += 16 + 4;
  n += put(b + n, "twice metadata", 14);
  size_t files = put_file(b + n, "/twice/1-1-1-goffs0-smallgrid/twice.so", "\x7f" "ELF");
  n += files;
  uint64_t record = n - start, files64 = files;
  put(b + start, &record, 8);
  put(b + start + 8, &files64, 8);
  return n;
}

static void pocl_binary_seeds(void) {
  unsigned char b[512];
  size_t n = pocl_binary(b, 1);
  seed("pocl_binary", "whole-format-9", "", 0, b, n);
  n = pocl_binary(b, 0);
  seed("pocl_binary", "empty-root-entry", "", 0, b, n);
}

/* Argument vectors: the command byte (an index into fuzz_cli.c's table), NUL-separated words. */
static void cli_seed(const char *name, int command, const char *words, size_t len) {
  uint8_t c = (uint8_t)command;
  seed("cli", name, &c, 1, words, len);
}
#define CLI_SEED(name, command, words) cli_seed(name, command, words, sizeof words - 1)

static void cli_seeds(void) {
  CLI_SEED("train-lord", 0, "--batch\0" "32\0-o\0run\0--resume\0--device\0cpu");
  CLI_SEED("train-spirals", 1, "--steps\0" "100\0--seed\0" "5\0--save-every\0" "7\0-b\0" "0");
  CLI_SEED("data-synth", 2, "--classes\0" "3\0--views\0" "24\0--size\0" "16\0--seed\0" "1\0-o\0x.dat");
  CLI_SEED("data-idx", 4, "--names\0a,b,,c\0--rgb\0-o\0o.dat\0i.idx\0l.idx");
  CLI_SEED("translate", 6, "run\0-o\0o.jpg\0--class-from\0a.jpg\0--content-from\0b.jpg");
  CLI_SEED("grid", 7, "run\0-o\0g.jpg\0--images\0a.jpg\0b.jpg");
  CLI_SEED("raw-help", 11, "help\0train\0spirals");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR  (writes DIR/<target>/<seed> for every fuzz target)\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  mkdir(out_dir, 0755);
  safetensors_seeds();
  dataset_seeds();
  jpeg_seeds();
  idx_seeds();
  program_cache_seeds();
  pocl_binary_seeds();
  cli_seeds();
  printf("seeds written to %s\n", out_dir);
  return 0;
}
