/* The runtime: device listing and selection, the on-disk program cache, build failures. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime_internal.h"
#include "test_support.h"

static const char *source_ok = "__kernel void twice(__global float *x) { x[get_global_id(0)] *= 2.0f; }\n";

/* A cache folder of its own, so the counts below do not depend on earlier runs. */
static const char *fresh_cache(const char *name) {
  static char dir[4096];
  snprintf(dir, sizeof dir, "%s", test_tmp_path(name));
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
  return dir;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));) n += strstr(e->d_name, ".bin") != NULL;
  closedir(d);
  return n;
}

static ut_runtime *open_with_cache(const char *dir) {
  const char *sel = getenv("UNTANGLE_TEST_DEVICE");
  ut_runtime *rt = ut_runtime_open(&(ut_device_query){ .select = sel ? sel : "best", .cache_dir = dir });
  ck_assert_ut_ptr(rt);
  return rt;
}

START_TEST(test_devices_listed) {
  ut_device_info *list = NULL;
  int n = 0;
  ck_assert_ut_ok(ut_devices_list(&list, &n));
  ck_assert_int_ge(n, 1);
  for (int i = 0; i < n; i++) {
    ck_assert_int_eq(list[i].index, i);
    ck_assert_str_ne(list[i].name, "");
    ck_assert_uint_gt(list[i].compute_units, 0);
    ck_assert_uint_gt(list[i].global_mem_bytes, 0);
    ck_assert_uint_gt(list[i].max_alloc_bytes, 0);
  }
  free(list);
}
END_TEST

START_TEST(test_select_by_kind_index_and_name) {
  ut_device_info *list = NULL;
  int n = 0;
  ck_assert_ut_ok(ut_devices_list(&list, &n));
  ut_runtime *by_index = ut_runtime_open(&(ut_device_query){ .select = "0", .cache_dir = "" });
  ck_assert_ut_ptr(by_index);
  ck_assert_str_eq(ut_runtime_device(by_index)->name, list[0].name);
  /* A name substring in another case still finds it. */
  char part[8] = { 0 };
  memcpy(part, list[0].name, sizeof part - 1);
  for (char *c = part; *c; c++) *c = (char)((*c >= 'a' && *c <= 'z') ? *c - 32 : (*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
  ut_runtime *by_name = ut_runtime_open(&(ut_device_query){ .select = part, .cache_dir = "" });
  ck_assert_ut_ptr(by_name);
  ck_assert_str_eq(ut_runtime_device(by_name)->name, list[0].name);
  /* "best" prefers a GPU; where none exists it takes a CPU. */
  ut_runtime *best = ut_runtime_open(&(ut_device_query){ .select = "best", .cache_dir = "" });
  ck_assert_ut_ptr(best);
  int have_gpu = 0;
  for (int i = 0; i < n; i++) have_gpu |= list[i].type == UT_DEVICE_GPU;
  ck_assert_int_eq(ut_runtime_device(best)->type, have_gpu ? UT_DEVICE_GPU : UT_DEVICE_CPU);
  ut_runtime_close(by_index);
  ut_runtime_close(by_name);
  ut_runtime_close(best);
  free(list);
}
END_TEST

START_TEST(test_unknown_device_names_selection) {
  ck_assert_ptr_null(ut_runtime_open(&(ut_device_query){ .select = "no-such-device-xyz" }));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "no-such-device-xyz"));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "0: ")); /* and lists what exists */
  ck_assert_ptr_null(ut_runtime_open(&(ut_device_query){ .select = "999" }));
}
END_TEST

START_TEST(test_second_run_builds_no_program) {
  const char *dir = fresh_cache("cache-hit");
  ut_runtime *first = open_with_cache(dir);
  cl_program prog;
  ck_assert_ut_ok(ut_runtime_build(first, "twice", source_ok, "", &prog));
  ck_assert_ut_ok(ut_runtime_program(first, "elementwise", "-cl-std=CL1.2", &prog));
  ut_runtime_stats s1 = ut_runtime_get_stats(first);
  ck_assert_uint_eq(s1.programs_built, 2);
  ck_assert_uint_eq(s1.programs_cached, 0);
  ut_runtime_close(first);
  ck_assert_int_eq(count_entries(dir), 2);

  ut_runtime *second = open_with_cache(dir);
  ck_assert_ut_ok(ut_runtime_build(second, "twice", source_ok, "", &prog));
  ck_assert_ut_ok(ut_runtime_program(second, "elementwise", "-cl-std=CL1.2", &prog));
  ut_runtime_stats s2 = ut_runtime_get_stats(second);
  ck_assert_uint_eq(s2.programs_built, 0);
  ck_assert_uint_eq(s2.programs_cached, 2);
  /* The cached program works: run its kernel. */
  cl_int err;
  cl_kernel k = clCreateKernel(prog, "unary_scale", &err);
  ck_assert_int_eq(err, CL_SUCCESS);
  clReleaseKernel(k);
  /* Other options are another entry, built anew. */
  ck_assert_ut_ok(ut_runtime_build(second, "twice", source_ok, "-cl-fast-relaxed-math", &prog));
  ck_assert_uint_eq(ut_runtime_get_stats(second).programs_built, 1);
  ut_runtime_close(second);
}
END_TEST

static void corrupt_every_entry(const char *dir, long at) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  for (struct dirent *e; (e = readdir(d));) {
    if (!strstr(e->d_name, ".bin")) continue;
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, at < 0 ? size + at : at, SEEK_SET);
    int c = fgetc(f);
    fseek(f, at < 0 ? size + at : at, SEEK_SET);
    fputc(c ^ 0x5a, f);
    fclose(f);
  }
  closedir(d);
}

START_TEST(test_corrupt_entry_is_rebuilt) {
  const long places[] = { 0, 20, -12, -1 }; /* magic, key, binary, checksum */
  for (int i = 0; i < 4; i++) {
    const char *dir = fresh_cache("cache-corrupt");
    ut_runtime *rt = open_with_cache(dir);
    cl_program prog;
    ck_assert_ut_ok(ut_runtime_build(rt, "twice", source_ok, "", &prog));
    ut_runtime_close(rt);
    corrupt_every_entry(dir, places[i]);
    rt = open_with_cache(dir);
    ck_assert_ut_ok(ut_runtime_build(rt, "twice", source_ok, "", &prog));
    ut_runtime_stats s = ut_runtime_get_stats(rt);
    ck_assert_msg(s.cache_rejected == 1 && s.programs_built == 1 && s.programs_cached == 0,
                  "damage at %ld: rejected %u built %u cached %u", places[i], s.cache_rejected, s.programs_built,
                  s.programs_cached);
    ut_runtime_close(rt);
    /* The rebuilt entry replaced the damaged one and is trusted again. */
    rt = open_with_cache(dir);
    ck_assert_ut_ok(ut_runtime_build(rt, "twice", source_ok, "", &prog));
    ck_assert_uint_eq(ut_runtime_get_stats(rt).programs_cached, 1);
    ut_runtime_close(rt);
  }
}
END_TEST

/* The cached binary as PoCL 3.1 serialises it when program.bc is missing from its cache folder
 * at that moment (another process writing it): the root entry's size 0 and its files gone. */
static unsigned char *without_program_bc(const unsigned char *bin, size_t size, size_t *out_size) {
  const size_t header = 77; /* PoCL binary format 9; the first root entry's size follows */
  uint64_t bytes;
  memcpy(&bytes, bin + header, 8);
  ck_assert_uint_le(header + 8 + bytes, size);
  unsigned char *out = calloc(size, 1);
  ck_assert_ptr_nonnull(out);
  memcpy(out, bin, header);
  memcpy(out + header + 8, bin + header + 8 + bytes, size - (header + 8 + bytes));
  *out_size = size - (size_t)bytes;
  return out;
}

/* The path of the one entry in dir. */
static void entry_path(const char *dir, char *path, size_t size) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  path[0] = '\0';
  for (struct dirent *e; (e = readdir(d));)
    if (strstr(e->d_name, ".bin")) snprintf(path, size, "%s/%s", dir, e->d_name);
  closedir(d);
  ck_assert_msg(path[0], "no cache entry in %s", dir);
}

/* The one entry in dir: its key and binary, as program_cache.c lays them out. */
static void read_entry(const char *dir, char **key, unsigned char **bin, size_t *size) {
  char path[8192];
  entry_path(dir, path, sizeof path);
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  char magic[8];
  uint64_t key_len, bin_len;
  ck_assert_int_eq(fread(magic, 1, 8, f), 8);
  ck_assert_int_eq(fread(&key_len, 8, 1, f), 1);
  *key = calloc(key_len + 1, 1);
  ck_assert_int_eq(fread(*key, 1, key_len, f), key_len);
  ck_assert_int_eq(fread(&bin_len, 8, 1, f), 1);
  *bin = malloc(bin_len);
  ck_assert_int_eq(fread(*bin, 1, bin_len, f), bin_len);
  *size = bin_len;
  fclose(f);
}

/* Overwrites the one entry in dir with `key` and `bin` in program_cache.c's layout, as an older
 * untangle (which stored any binary) would have written it. */
static void plant_entry(const char *dir, const char *key, const unsigned char *bin, size_t size) {
  char path[8192];
  entry_path(dir, path, sizeof path);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  uint64_t key_len = strlen(key), bin_len = size, sum = ut_hash64(bin, size, 0);
  ck_assert(fwrite("UTPC0001", 1, 8, f) == 8 && fwrite(&key_len, 8, 1, f) == 1 && fwrite(key, 1, key_len, f) == key_len &&
            fwrite(&bin_len, 8, 1, f) == 1 && fwrite(bin, 1, size, f) == size && fwrite(&sum, 8, 1, f) == 1);
  ck_assert_int_eq(fclose(f), 0);
}

/* PoCL aborts (an assertion, not an error code) when a binary it loads has an empty program.bc
 * entry, and such a binary can reach the cache when two processes build one program at once (a
 * CI run's test_bench did). The runtime must refuse it and build from source, not crash. */
START_TEST(test_pocl_binary_with_empty_file_is_rebuilt) {
  const char *dir = fresh_cache("cache-pocl-empty");
  ut_runtime *rt = open_with_cache(dir);
  cl_program prog;
  ck_assert_ut_ok(ut_runtime_build(rt, "twice", source_ok, "", &prog));
  ut_runtime_close(rt);
  char *key;
  unsigned char *bin;
  size_t size;
  read_entry(dir, &key, &bin, &size);
  uint32_t version = 0;
  if (size >= 20) memcpy(&version, bin + 16, 4);
  if (size < 8 || memcmp(bin, "poclbin", 8) != 0 || version != 9) { /* another driver or PoCL version */
    free(key);
    free(bin);
    return;
  }
  ck_assert_int_eq(ut_pocl_binary_whole(bin, size), 1);
  ck_assert_int_eq(ut_pocl_binary_whole(bin, size - 1), 0);
  size_t damaged_size;
  unsigned char *damaged = without_program_bc(bin, size, &damaged_size);
  ck_assert_int_eq(ut_pocl_binary_whole(damaged, damaged_size), 0);
  /* The cache does not store it: the whole entry stays. */
  ut_program_cache_store(dir, key, damaged, damaged_size);
  char *key_after;
  unsigned char *bin_after;
  size_t size_after;
  read_entry(dir, &key_after, &bin_after, &size_after);
  ck_assert(size_after == size && memcmp(bin_after, bin, size) == 0);
  free(key_after);
  free(bin_after);
  /* One already on disk (an older untangle stored any binary) is rejected and rebuilt. */
  plant_entry(dir, key, damaged, damaged_size);

  rt = open_with_cache(dir);
  ck_assert_ut_ok(ut_runtime_build(rt, "twice", source_ok, "", &prog));
  ut_runtime_stats s = ut_runtime_get_stats(rt);
  ck_assert_msg(s.cache_rejected == 1 && s.programs_built == 1 && s.programs_cached == 0,
                "rejected %u built %u cached %u", s.cache_rejected, s.programs_built, s.programs_cached);
  ut_runtime_close(rt);
  /* The rebuilt program's whole binary replaced the damaged one. */
  rt = open_with_cache(dir);
  ck_assert_ut_ok(ut_runtime_build(rt, "twice", source_ok, "", &prog));
  ck_assert_uint_eq(ut_runtime_get_stats(rt).programs_cached, 1);
  ut_runtime_close(rt);
  free(damaged);
  free(key);
  free(bin);
}
END_TEST

START_TEST(test_build_failure_shows_log) {
  ut_runtime *rt = test_runtime();
  cl_program prog;
  ut_status st = ut_runtime_build(rt, "broken", "__kernel void broken(__global float *x) { x[0] = undeclared_thing; }\n", "", &prog);
  ck_assert_int_eq(st, UT_ERR_BUILD);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "broken"));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "CL_BUILD_PROGRAM_FAILURE"));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "undeclared_thing")); /* from the compiler's log */
}
END_TEST

START_TEST(test_status_names) {
  ck_assert_str_eq(ut_status_name(-5), "CL_OUT_OF_RESOURCES");
  ck_assert_str_eq(ut_status_name(-4), "CL_MEM_OBJECT_ALLOCATION_FAILURE");
  ck_assert_str_eq(ut_status_name(UT_ERR_SHAPE), "UT_ERR_SHAPE");
  ck_assert_str_eq(ut_status_name(-2046), "CLBLAST_INVALID_LOCAL_MEM_USAGE");
}
END_TEST

START_TEST(test_allocation_beyond_device_limit_explains) {
  ut_runtime *rt = test_runtime();
  cl_mem m;
  size_t too_big = (size_t)ut_runtime_device(rt)->max_alloc_bytes + 4096;
  ut_status st = ut_runtime_alloc(rt, too_big, "a test tensor", &m);
  ck_assert_int_ne(st, UT_OK);
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "a test tensor"));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), ut_runtime_device(rt)->name));
  ck_assert_ptr_nonnull(strstr(ut_last_error(), "smaller batch"));
}
END_TEST

int main(void) {
  Suite *s = suite_create("runtime");
  TCase *tc = tcase_create("runtime");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_devices_listed);
  tcase_add_test(tc, test_select_by_kind_index_and_name);
  tcase_add_test(tc, test_unknown_device_names_selection);
  tcase_add_test(tc, test_second_run_builds_no_program);
  tcase_add_test(tc, test_corrupt_entry_is_rebuilt);
  tcase_add_test(tc, test_pocl_binary_with_empty_file_is_rebuilt);
  tcase_add_test(tc, test_build_failure_shows_log);
  tcase_add_test(tc, test_status_names);
  tcase_add_test(tc, test_allocation_beyond_device_limit_explains);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
