# The hardening builds. Both options change every target, libraries included, so a report
# points into the code that is actually wrong.
#
# UNTANGLE_SANITIZE: AddressSanitizer + UndefinedBehaviorSanitizer (gcc or clang). UBSan stops
#   at the first report instead of printing and going on, so ctest sees it as a failure.
#   scripts/test-sanitized.sh builds it and sets the run-time options.
# UNTANGLE_FUZZ: libFuzzer targets (tests/fuzz), clang only. Everything is compiled with the
#   fuzzer's coverage instrumentation and the sanitizers above; the targets themselves link
#   libFuzzer's main. scripts/fuzz.sh builds and runs them.
option(UNTANGLE_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(UNTANGLE_FUZZ "Build the libFuzzer targets of tests/fuzz (clang only; implies the sanitizers)" OFF)

if(UNTANGLE_FUZZ AND NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "UNTANGLE_FUZZ needs clang (libFuzzer), but the C compiler is ${CMAKE_C_COMPILER_ID}: "
                      "configure with -DCMAKE_C_COMPILER=clang")
endif()

if(UNTANGLE_SANITIZE OR UNTANGLE_FUZZ)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(UNTANGLE_FUZZ)
  # Coverage for the fuzzer without its main(); the targets add -fsanitize=fuzzer.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
