# Warnings are errors for gcc and clang alike (the hardening builds: UntangleSanitizers.cmake).
add_compile_options(-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter)
# POSIX calls (fsync, mkstemp, strdup, ...) under -std=c11.
add_compile_definitions(_POSIX_C_SOURCE=200809L)
