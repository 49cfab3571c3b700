# The libraries untangle uses, found through pkg-config (Debian ships a .pc file for each).
find_package(PkgConfig REQUIRED)
pkg_check_modules(OPENCL REQUIRED IMPORTED_TARGET OpenCL)
pkg_check_modules(CLBLAST REQUIRED IMPORTED_TARGET clblast)
# The GEMMs of CPU devices run on the host (engine/host_gemm.c).
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(JPEG REQUIRED IMPORTED_TARGET libjpeg)
find_package(Threads REQUIRED)
if(UNTANGLE_TESTS)
  pkg_check_modules(CHECK REQUIRED IMPORTED_TARGET check)
endif()
