# Warnings are errors for gcc and clang alike; sanitizers are an option for the hardening build.
add_compile_options(-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter)
# POSIX calls (fsync, mkstemp, strdup, ...) under -std=c11.
add_compile_definitions(_POSIX_C_SOURCE=200809L)

option(UNTANGLE_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
if(UNTANGLE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
