/* `untangle data` as a user meets it: help for every subcommand, exit status 2 with the
 * culprit named for bad command lines, import with skipped files named and counted, the
 * rendered set and `info --json`, IDX import of Fashion-MNIST when Debian's package is
 * installed, and failures that leave the output file as it was.
 *
 * The program is found next to this test in the build tree (../apps/untangle) or at
 * $UNTANGLE_EXE; it runs through the shell with its output captured in files. */
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_runner.h"
#include "untangle_data.h"

START_TEST(test_help) {
  cli_result r = cli_run("--help");
  ck_assert_int_eq(r.status, 0);
  assert_contains(r.out, "data");
  cli_result_free(&r);
  static const char *const asks[] = { "data --help", "help data" };
  for (int i = 0; i < 2; i++) {
    r = cli_run(asks[i]);
    ck_assert_msg(r.status == 0, "'%s' exited %d", asks[i], r.status);
    assert_contains(r.out, "untangle data import DIR --size S [--gray] -o OUT");
    assert_contains(r.out, "untangle data idx IMAGES LABELS");
    assert_contains(r.out, "untangle data synth");
    assert_contains(r.out, "untangle data info FILE");
    cli_result_free(&r);
  }
  static const struct {
    const char *args, *says;
  } subs[] = { { "data import --help", "--gray" }, { "data idx -h", "--names" },
               { "data synth --help", "--views" }, { "data info --help", "--json" } };
  for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
    r = cli_run(subs[i].args);
    ck_assert_msg(r.status == 0, "'%s' exited %d", subs[i].args, r.status);
    assert_contains(r.out, subs[i].says);
    cli_result_free(&r);
  }
}
END_TEST

START_TEST(test_usage_errors) {
  static const struct {
    const char *args, *says[2];
  } cases[] = {
    { "data", { "expects a subcommand", "untangle help data" } },
    { "data frobnicate", { "unknown subcommand 'frobnicate'", NULL } },
    { "data import", { "expects 1 file or folder name", NULL } },
    { "data import somewhere", { "-o OUT", NULL } },
    { "data import a b -o x.dat", { "got also 'b'", NULL } },
    { "data import a --size 0 -o x.dat", { "--size expects a whole number from 1", "'0'" } },
    { "data import a --size", { "'--size' needs a value", NULL } },
    { "data import a --frob -o x.dat", { "unknown option '--frob'", NULL } },
    { "data idx onlyone -o x.dat", { "expects 2 file or folder names, got 1", NULL } },
    { "data idx a b --names 'x,,y' -o x.dat", { "empty name at position 2", NULL } },
    { "data synth --classes x -o x.dat", { "--classes expects a whole number", "'x'" } },
    { "data synth --seed -3 -o x.dat", { "--seed", "'-3'" } },
    { "data synth -o ''", { "-o OUT", NULL } },
    { "data info", { "expects 1 file", NULL } },
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_result r = cli_run(cases[i].args);
    ck_assert_msg(r.status == 2, "'untangle %s' exited %d, not 2; stderr:\n%s", cases[i].args, r.status, r.err);
    for (int k = 0; k < 2 && cases[i].says[k]; k++) assert_contains(r.err, cases[i].says[k]);
    cli_result_free(&r);
  }
}
END_TEST

static void write_small_jpeg(const char *path, int shade) {
  uint8_t px[12 * 10 * 3];
  for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(shade + (int)(i % 7) * 3);
  ck_assert_ut_ok(ut_jpeg_write(path, px, 12, 10, 3, 90));
}

START_TEST(test_import_and_info) {
  char root[4096], p[8192], out[4096], args[16384];
  snprintf(root, sizeof root, "%s", test_tmp_path("cli-photos"));
  snprintf(out, sizeof out, "%s", test_tmp_path("cli-photos.dat"));
  mkdir(root, 0755);
  static const char *const dirs[] = { "apples", "pears" };
  for (int i = 0; i < 2; i++) {
    snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
    mkdir(p, 0755);
  }
  static const char *const files[] = { "apples/1.jpg", "apples/2.jpg", "pears/1.jpg" };
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s", root, files[i]);
    write_small_jpeg(p, 40 * (i + 1));
  }
  snprintf(p, sizeof p, "%s/pears/readme.txt", root);
  FILE *f = fopen(p, "w");
  fputs("not a jpeg\n", f);
  fclose(f);

  snprintf(args, sizeof args, "data import '%s' --size 16 -o '%s'", root, out);
  cli_result r = cli_run(args);
  ck_assert_msg(r.status == 0, "import exited %d:\n%s%s", r.status, r.out, r.err);
  assert_contains(r.out, "3 images of 16 x 16 RGB, 2 classes; skipped 1 files");
  assert_contains(r.err, "readme.txt: not a JPEG");
  assert_contains(r.err, "import step 4/4");
  cli_result_free(&r);

  snprintf(args, sizeof args, "data info '%s'", out);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "info exited %d:\n%s", r.status, r.err);
  assert_contains(r.out, "3 of 16 x 16 RGB");
  assert_contains(r.out, "apples (2), pears (1)");
  assert_contains(r.out, "contents  none");
  cli_result_free(&r);

  /* A failed import (no such folder; a folder without classes) keeps the previous file. */
  size_t before_len, after_len;
  char *before = cli_slurp(out, &before_len);
  snprintf(args, sizeof args, "data import '%s/apples' --gray -o '%s'", root, out);
  r = cli_run(args);
  ck_assert_msg(r.status == 1, "import of a folder without classes exited %d", r.status);
  assert_contains(r.err, "no class folders");
  cli_result_free(&r);
  snprintf(args, sizeof args, "data import '%s/nothing' -o '%s'", root, out);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "is not a folder");
  cli_result_free(&r);
  char *after = cli_slurp(out, &after_len);
  ck_assert_uint_eq(before_len, after_len);
  ck_assert_mem_eq(before, after, before_len);
  free(after);

  /* info on a damaged file names the file and the problem. */
  snprintf(p, sizeof p, "%s/damaged.dat", root);
  f = fopen(p, "wb");
  fwrite(before, 1, before_len - 3, f);
  fclose(f);
  free(before);
  snprintf(args, sizeof args, "data info '%s'", p);
  r = cli_run(args);
  ck_assert_int_eq(r.status, 1);
  assert_contains(r.err, "damaged.dat");
  assert_contains(r.err, "truncated");
  cli_result_free(&r);
  unlink(p);

  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s/%s", root, files[i]);
    unlink(p);
  }
  snprintf(p, sizeof p, "%s/pears/readme.txt", root);
  unlink(p);
  for (int i = 0; i < 2; i++) {
    snprintf(p, sizeof p, "%s/%s", root, dirs[i]);
    rmdir(p);
  }
  rmdir(root);
  unlink(out);
}
END_TEST

START_TEST(test_synth_and_json) {
  char out[4096], args[8192];
  snprintf(out, sizeof out, "%s", test_tmp_path("cli-synth.dat"));
  snprintf(args, sizeof args, "data synth --classes 3 --views 4 --size 8 --seed 5 -o '%s'", out);
  cli_result r = cli_run(args);
  ck_assert_msg(r.status == 0, "synth exited %d:\n%s%s", r.status, r.out, r.err);
  assert_contains(r.out, "12 images of 8 x 8 RGB, 3 classes x 4 views (seed 5)");
  cli_result_free(&r);
  snprintf(args, sizeof args, "data info --json '%s'", out);
  r = cli_run(args);
  ck_assert_msg(r.status == 0, "info exited %d:\n%s", r.status, r.err);
  json_error_t err;
  json_t *j = json_loads(r.out, 0, &err);
  ck_assert_msg(j != NULL, "not JSON (%s):\n%s", err.text, r.out);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "count")), 12);
  ck_assert_int_eq(json_integer_value(json_object_get(j, "n_contents")), 4);
  ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "class_names"), 2)), "object-002");
  ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(j, "class_counts"), 1)), 4);
  json_t *src = json_object_get(j, "source");
  ck_assert_str_eq(json_string_value(json_object_get(src, "kind")), "synth");
  ck_assert_int_eq(json_integer_value(json_object_get(src, "seed")), 5);
  ck_assert_int_eq(json_integer_value(json_object_get(src, "views")), 4);
  json_decref(j);
  cli_result_free(&r);

  /* The file holds exactly what the renderer draws: content id = view, class-major order. */
  ut_dataset *ds = ut_dataset_open(out);
  ck_assert_ut_ptr(ds);
  ut_synth_cfg cfg = { .classes = 3, .views = 4, .size = 8, .seed = 5 };
  uint8_t want[8 * 8 * 3];
  for (int i = 0; i < 12; i++) {
    ck_assert_int_eq(ut_dataset_class(ds, i), i / 4);
    ck_assert_int_eq(ut_dataset_content(ds, i), i % 4);
    ck_assert_ut_ok(ut_synth_render(&cfg, i / 4, i % 4, want));
    ck_assert_mem_eq(ut_dataset_image(ds, i), want, sizeof want);
  }
  ut_dataset_close(ds);
  unlink(out);
}
END_TEST

START_TEST(test_fashion_mnist) {
  const char *dir = "/usr/share/datasets/fashion-mnist";
  char images[512], labels[512], out[4096], args[8192];
  snprintf(images, sizeof images, "%s/t10k-images-idx3-ubyte.gz", dir);
  snprintf(labels, sizeof labels, "%s/t10k-labels-idx1-ubyte.gz", dir);
  if (access(images, R_OK) != 0 || access(labels, R_OK) != 0) {
    fprintf(stderr, "test_fashion_mnist: %s not installed (apt-get install dataset-fashion-mnist); skipped\n", images);
    return;
  }
  snprintf(out, sizeof out, "%s", test_tmp_path("cli-fmnist.dat"));
  snprintf(args, sizeof args, "data idx '%s' '%s' --size 32 -o '%s'", images, labels, out);
  cli_result r = cli_run(args);
  ck_assert_msg(r.status == 0, "idx exited %d:\n%s%s", r.status, r.out, r.err);
  assert_contains(r.out, "10000 images of 32 x 32 gray, 10 classes");
  cli_result_free(&r);
  ut_dataset *ds = ut_dataset_open(out);
  ck_assert_ut_ptr(ds);
  int per[10] = { 0 };
  for (int i = 0; i < 10000; i++) per[ut_dataset_class(ds, i)]++;
  for (int c = 0; c < 10; c++) ck_assert_int_eq(per[c], 1000);
  ut_dataset_close(ds);
  unlink(out);
}
END_TEST

static Suite *data_cli_suite(void) {
  Suite *s = suite_create("data_cli");
  TCase *tc = tcase_create("program");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_help);
  tcase_add_test(tc, test_usage_errors);
  tcase_add_test(tc, test_import_and_info);
  tcase_add_test(tc, test_synth_and_json);
  tcase_add_test(tc, test_fashion_mnist);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(data_cli_suite()); }
