/* The thread's last-error message and the names of status codes. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

/* Thread-local like errno: the one piece of state outside the runtime object, because a
 * failed ut_runtime_open has no runtime to hold its message. */
static _Thread_local char last_error[4096];

const char *ut_last_error(void) { return last_error; }

void ut_clear_error(void) { last_error[0] = '\0'; }

ut_status ut_fail(ut_status status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return status;
}

ut_status ut_fail_cl(int cl_err, const char *call, const char *context_fmt, ...) {
  char context[2048] = "";
  if (context_fmt) {
    va_list ap;
    va_start(ap, context_fmt);
    vsnprintf(context, sizeof context, context_fmt, ap);
    va_end(ap);
  }
  snprintf(last_error, sizeof last_error, "%s failed: %s (%d)%s%s", call, ut_status_name(cl_err), cl_err,
           context[0] ? " " : "", context);
  return cl_err;
}

void ut_error_prefix(const char *fmt, ...) {
  char prefix[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  /* Shift the message right in place; a message too long for both loses its tail. */
  size_t plen = strlen(prefix) + 2, olen = strlen(last_error);
  if (plen + olen >= sizeof last_error) olen = sizeof last_error - plen - 1;
  memmove(last_error + plen, last_error, olen);
  last_error[plen + olen] = '\0';
  memcpy(last_error, prefix, plen - 2);
  last_error[plen - 2] = ':';
  last_error[plen - 1] = ' ';
}

const char *ut_status_name(ut_status s) {
  switch (s) {
#define NAME(code, value) case value: return #code;
    NAME(CL_SUCCESS, 0)
    NAME(CL_DEVICE_NOT_FOUND, -1)
    NAME(CL_DEVICE_NOT_AVAILABLE, -2)
    NAME(CL_COMPILER_NOT_AVAILABLE, -3)
    NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE, -4)
    NAME(CL_OUT_OF_RESOURCES, -5)
    NAME(CL_OUT_OF_HOST_MEMORY, -6)
    NAME(CL_PROFILING_INFO_NOT_AVAILABLE, -7)
    NAME(CL_MEM_COPY_OVERLAP, -8)
    NAME(CL_IMAGE_FORMAT_MISMATCH, -9)
    NAME(CL_IMAGE_FORMAT_NOT_SUPPORTED, -10)
    NAME(CL_BUILD_PROGRAM_FAILURE, -11)
    NAME(CL_MAP_FAILURE, -12)
    NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET, -13)
    NAME(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST, -14)
    NAME(CL_COMPILE_PROGRAM_FAILURE, -15)
    NAME(CL_LINKER_NOT_AVAILABLE, -16)
    NAME(CL_LINK_PROGRAM_FAILURE, -17)
    NAME(CL_DEVICE_PARTITION_FAILED, -18)
    NAME(CL_KERNEL_ARG_INFO_NOT_AVAILABLE, -19)
    NAME(CL_INVALID_VALUE, -30)
    NAME(CL_INVALID_DEVICE_TYPE, -31)
    NAME(CL_INVALID_PLATFORM, -32)
    NAME(CL_INVALID_DEVICE, -33)
    NAME(CL_INVALID_CONTEXT, -34)
    NAME(CL_INVALID_QUEUE_PROPERTIES, -35)
    NAME(CL_INVALID_COMMAND_QUEUE, -36)
    NAME(CL_INVALID_HOST_PTR, -37)
    NAME(CL_INVALID_MEM_OBJECT, -38)
    NAME(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR, -39)
    NAME(CL_INVALID_IMAGE_SIZE, -40)
    NAME(CL_INVALID_SAMPLER, -41)
    NAME(CL_INVALID_BINARY, -42)
    NAME(CL_INVALID_BUILD_OPTIONS, -43)
    NAME(CL_INVALID_PROGRAM, -44)
    NAME(CL_INVALID_PROGRAM_EXECUTABLE, -45)
    NAME(CL_INVALID_KERNEL_NAME, -46)
    NAME(CL_INVALID_KERNEL_DEFINITION, -47)
    NAME(CL_INVALID_KERNEL, -48)
    NAME(CL_INVALID_ARG_INDEX, -49)
    NAME(CL_INVALID_ARG_VALUE, -50)
    NAME(CL_INVALID_ARG_SIZE, -51)
    NAME(CL_INVALID_KERNEL_ARGS, -52)
    NAME(CL_INVALID_WORK_DIMENSION, -53)
    NAME(CL_INVALID_WORK_GROUP_SIZE, -54)
    NAME(CL_INVALID_WORK_ITEM_SIZE, -55)
    NAME(CL_INVALID_GLOBAL_OFFSET, -56)
    NAME(CL_INVALID_EVENT_WAIT_LIST, -57)
    NAME(CL_INVALID_EVENT, -58)
    NAME(CL_INVALID_OPERATION, -59)
    NAME(CL_INVALID_GL_OBJECT, -60)
    NAME(CL_INVALID_BUFFER_SIZE, -61)
    NAME(CL_INVALID_MIP_LEVEL, -62)
    NAME(CL_INVALID_GLOBAL_WORK_SIZE, -63)
    NAME(CL_INVALID_PROPERTY, -64)
    NAME(CL_INVALID_IMAGE_DESCRIPTOR, -65)
    NAME(CL_INVALID_COMPILER_OPTIONS, -66)
    NAME(CL_INVALID_LINKER_OPTIONS, -67)
    NAME(CL_INVALID_DEVICE_PARTITION_COUNT, -68)
    NAME(CL_INVALID_PIPE_SIZE, -69)
    NAME(CL_INVALID_DEVICE_QUEUE, -70)
    NAME(CL_PLATFORM_NOT_FOUND_KHR, -1001)
    /* CLBlast's own codes (clblast_c.h). */
    NAME(CLBLAST_NOT_IMPLEMENTED, -1024)
    NAME(CLBLAST_INVALID_MATRIX_A, -1022)
    NAME(CLBLAST_INVALID_MATRIX_B, -1021)
    NAME(CLBLAST_INVALID_MATRIX_C, -1020)
    NAME(CLBLAST_INVALID_VECTOR_X, -1019)
    NAME(CLBLAST_INVALID_VECTOR_Y, -1018)
    NAME(CLBLAST_INVALID_DIMENSION, -1017)
    NAME(CLBLAST_INVALID_LEAD_DIM_A, -1016)
    NAME(CLBLAST_INVALID_LEAD_DIM_B, -1015)
    NAME(CLBLAST_INVALID_LEAD_DIM_C, -1014)
    NAME(CLBLAST_INVALID_INCREMENT_X, -1013)
    NAME(CLBLAST_INVALID_INCREMENT_Y, -1012)
    NAME(CLBLAST_INSUFFICIENT_MEMORY_A, -1011)
    NAME(CLBLAST_INSUFFICIENT_MEMORY_B, -1010)
    NAME(CLBLAST_INSUFFICIENT_MEMORY_C, -1009)
    NAME(CLBLAST_INSUFFICIENT_MEMORY_X, -1008)
    NAME(CLBLAST_INSUFFICIENT_MEMORY_Y, -1007)
    NAME(CLBLAST_INSUFFICIENT_MEMORY_TEMP, -2050)
    NAME(CLBLAST_INVALID_BATCH_COUNT, -2049)
    NAME(CLBLAST_INVALID_OVERRIDE_KERNEL, -2048)
    NAME(CLBLAST_MISSING_OVERRIDE_PARAMETER, -2047)
    NAME(CLBLAST_INVALID_LOCAL_MEM_USAGE, -2046)
    NAME(CLBLAST_NO_HALF_PRECISION, -2045)
    NAME(CLBLAST_NO_DOUBLE_PRECISION, -2044)
    NAME(CLBLAST_INVALID_VECTOR_SCALAR, -2043)
    NAME(CLBLAST_INSUFFICIENT_MEMORY_SCALAR, -2042)
    NAME(CLBLAST_DATABASE_ERROR, -2041)
    NAME(CLBLAST_UNKNOWN_ERROR, -2040)
    NAME(CLBLAST_UNEXPECTED_ERROR, -2039)
    NAME(UT_ERR_INVALID_ARGUMENT, UT_ERR_INVALID_ARGUMENT)
    NAME(UT_ERR_SHAPE, UT_ERR_SHAPE)
    NAME(UT_ERR_NO_DEVICE, UT_ERR_NO_DEVICE)
    NAME(UT_ERR_BUILD, UT_ERR_BUILD)
    NAME(UT_ERR_IO, UT_ERR_IO)
    NAME(UT_ERR_FORMAT, UT_ERR_FORMAT)
    NAME(UT_ERR_MISMATCH, UT_ERR_MISMATCH)
    NAME(UT_ERR_HOST_MEMORY, UT_ERR_HOST_MEMORY)
    NAME(UT_ERR_NOT_FOUND, UT_ERR_NOT_FOUND)
    NAME(UT_ERR_BLAS, UT_ERR_BLAS)
    NAME(UT_ERR_STATE, UT_ERR_STATE)
#undef NAME
  default:
    return "UNKNOWN_STATUS";
  }
}
