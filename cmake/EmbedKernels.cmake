# Embeds the OpenCL C sources of cl/ into the library as C strings, so an installed program
# needs no source tree. ut_embed_kernels(OUTPUT file.c SOURCES a.cl b.cl ...) writes a C file
# defining ut_kernel_sources[] (name without ".cl", text) and ut_kernel_source_count.
set(UT_EMBED_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/embed_kernels_script.cmake)

function(ut_embed_kernels)
  cmake_parse_arguments(ARG "" "OUTPUT" "SOURCES" ${ARGN})
  add_custom_command(
    OUTPUT ${ARG_OUTPUT}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${ARG_OUTPUT} "-DSOURCES=${ARG_SOURCES}" -P ${UT_EMBED_SCRIPT}
    DEPENDS ${ARG_SOURCES} ${UT_EMBED_SCRIPT}
    COMMENT "Embedding OpenCL kernels"
    VERBATIM)
endfunction()
