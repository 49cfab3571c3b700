/* Failures explain themselves: a device selection that matches nothing, shapes that do not fit
 * an op (the graph keeps its first error and ut_plan_compile reports it), status names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

static void assert_contains(const char *msg, const char *part, const char *what) {
  ck_assert_msg(strstr(msg, part) != NULL, "%s: the message \"%s\" does not mention \"%s\"", what, msg, part);
}

START_TEST(test_no_such_device) {
  ut_runtime *rt = ut_runtime_open(&(ut_device_query){ .select = "no-such-device-xyz", .cache_dir = "" });
  ck_assert_msg(rt == NULL, "a device matched \"no-such-device-xyz\"");
  assert_contains(ut_last_error(), "no-such-device-xyz", "ut_runtime_open");
}
END_TEST

/* A device index past the end of the list fails the same way. */
START_TEST(test_device_index_out_of_range) {
  ut_runtime *rt = ut_runtime_open(&(ut_device_query){ .select = "9999", .cache_dir = "" });
  ck_assert_msg(rt == NULL, "device 9999 opened");
  assert_contains(ut_last_error(), "9999", "ut_runtime_open");
}
END_TEST

START_TEST(test_shape_mismatch_add) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *a = ut_input(g, "a", UT_F32, UT_SHAPE(2, 3));
  ut_tensor *b = ut_input(g, "b", UT_F32, UT_SHAPE(4, 5));
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert_int_eq(ut_graph_status(g), UT_OK);
  ut_tensor *c = ut_add(g, a, b);
  ck_assert_ptr_null(c);
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", ut_last_error());
  assert_contains(msg, "add", "ut_add");
  assert_contains(msg, "[2, 3]", "ut_add");
  assert_contains(msg, "[4, 5]", "ut_add");

  /* Building on goes on quietly: NULL in, NULL out, and the first error stays. */
  ck_assert_ptr_null(ut_relu(g, c));
  ut_tensor *d = ut_matmul(g, a, ut_input(g, "e", UT_F32, UT_SHAPE(5, 7)), 0, 0); /* a second, different error */
  ck_assert_ptr_null(d);
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);

  ut_tensor *ok = ut_relu(g, a); /* a valid node, so the plan has something to compile */
  ck_assert_ptr_nonnull(ok);
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &ok, .n_outputs = 1 });
  ck_assert_msg(p == NULL, "a plan compiled from a graph with a build error");
  const char *perr = ut_last_error();
  assert_contains(perr, "add", "ut_plan_compile");
  assert_contains(perr, "[2, 3]", "ut_plan_compile");
  assert_contains(perr, "[4, 5]", "ut_plan_compile");
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

START_TEST(test_shape_mismatch_matmul) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ut_tensor *a = ut_input(g, "a", UT_F32, UT_SHAPE(2, 3));
  ut_tensor *b = ut_input(g, "b", UT_F32, UT_SHAPE(4, 5));
  ck_assert_ptr_null(ut_matmul(g, a, b, 0, 0)); /* inner 3 vs 4 */
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", ut_last_error());
  assert_contains(msg, "matmul", "ut_matmul");
  assert_contains(msg, "[2, 3]", "ut_matmul");
  assert_contains(msg, "[4, 5]", "ut_matmul");
  ut_plan *p = ut_plan_compile(g, &(ut_plan_cfg){ .outputs = &a, .n_outputs = 1 });
  ck_assert_msg(p == NULL, "a plan compiled from a graph with a build error");
  assert_contains(ut_last_error(), "matmul", "ut_plan_compile");
  assert_contains(ut_last_error(), "[4, 5]", "ut_plan_compile");
  ut_graph_free(g);

  /* Transposes that make the inner dimensions agree are accepted: [3, 2]^T [3, 5] = [2, 5]. */
  g = ut_graph_new(test_runtime(), st);
  ut_tensor *c = ut_matmul(g, ut_input(g, "a", UT_F32, UT_SHAPE(3, 2)), ut_input(g, "b", UT_F32, UT_SHAPE(3, 5)), 1, 0);
  ck_assert_ptr_nonnull(c);
  ck_assert(ut_shape_equal(ut_tensor_shape(c), UT_SHAPE(2, 5)));
  /* ... and a transpose that makes them disagree is refused: [2, 3] [5, 3]^T fits, [2, 3] [3, 5]^T not. */
  ck_assert_ptr_nonnull(ut_matmul(g, ut_input(g, "c", UT_F32, UT_SHAPE(2, 3)), ut_input(g, "d", UT_F32, UT_SHAPE(5, 3)), 0, 1));
  ck_assert_int_eq(ut_graph_status(g), UT_OK);
  ck_assert_ptr_null(ut_matmul(g, ut_input(g, "e", UT_F32, UT_SHAPE(2, 3)), ut_input(g, "f", UT_F32, UT_SHAPE(3, 5)), 0, 1));
  ck_assert_int_eq(ut_graph_status(g), UT_ERR_SHAPE);
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

/* A parameter asked for again with another shape. */
START_TEST(test_param_shape_clash) {
  ut_store *st = ut_store_new(test_runtime(), 1);
  ut_graph *g = ut_graph_new(test_runtime(), st);
  ck_assert_ptr_nonnull(ut_param(g, "w", UT_SHAPE(3, 4), (ut_init){ UT_INIT_ZERO, 0, 0 }));
  ck_assert_ptr_null(ut_param(g, "w", UT_SHAPE(4, 3), (ut_init){ UT_INIT_ZERO, 0, 0 }));
  ck_assert_int_ne(ut_graph_status(g), UT_OK);
  assert_contains(ut_last_error(), "w", "ut_param");
  ut_graph_free(g);
  ut_store_free(st);
}
END_TEST

START_TEST(test_status_names) {
  ck_assert_str_eq(ut_status_name(-5), "CL_OUT_OF_RESOURCES");
  ck_assert_str_eq(ut_status_name(-4), "CL_MEM_OBJECT_ALLOCATION_FAILURE");
  ck_assert_str_eq(ut_status_name(UT_ERR_SHAPE), "UT_ERR_SHAPE");
  ck_assert_str_eq(ut_status_name(UT_ERR_NO_DEVICE), "UT_ERR_NO_DEVICE");
  ck_assert_ptr_nonnull(ut_status_name(-12345)); /* unknown codes still name something */
}
END_TEST

static Suite *errors_suite(void) {
  Suite *s = suite_create("errors");
  TCase *tc = tcase_create("errors");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_no_such_device);
  tcase_add_test(tc, test_device_index_out_of_range);
  tcase_add_test(tc, test_shape_mismatch_add);
  tcase_add_test(tc, test_shape_mismatch_matmul);
  tcase_add_test(tc, test_param_shape_clash);
  tcase_add_test(tc, test_status_names);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(errors_suite()); }
