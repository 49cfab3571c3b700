#!/usr/bin/env bash
# Prepares a Debian machine for untangle and builds it: installs the packages that are
# missing, configures with CMake and builds with every core. Safe to run again: it installs
# nothing that is already there and rebuilds only what changed.
#
#   BUILD_DIR   build folder, relative to the repository root (default: build)
#   BUILD_TYPE  CMake build type (default: Release)
#   JOBS        parallel build jobs (default: every core)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${BUILD_DIR:-build}
build_type=${BUILD_TYPE:-Release}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

packages=(build-essential cmake pkg-config ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd
          libclblast-dev libopenblas-dev libjpeg62-turbo-dev check libjansson-dev clinfo
          libopenmpi-dev openmpi-bin) # MPI: data-parallel training (--mpi) and its test
# The hardening runs of scripts/test.sh (fuzz.sh) also need clang and its libFuzzer runtime;
# they ask for them with UNTANGLE_HARDENING_TOOLS=1.
if [[ ${UNTANGLE_HARDENING_TOOLS:-0} == 1 ]]; then packages+=(clang libclang-rt-dev); fi

if command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$p")
  done
  if ((${#missing[@]} > 0)); then
    say "installing missing packages: ${missing[*]}"
    # Root installs directly; anyone else needs sudo, and without it we can only say what to do.
    if [[ $(id -u) -eq 0 ]]; then
      as_root=()
    elif command -v sudo >/dev/null 2>&1; then
      as_root=(sudo)
    else
      die "not root and no sudo: as root, run: apt-get install ${missing[*]}"
    fi
    ${as_root[@]+"${as_root[@]}"} apt-get update
    ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends "${missing[@]}"
  else
    say "all ${#packages[@]} packages are installed"
  fi
else
  say "no dpkg-query: not a Debian system, so installing nothing."
  say "make sure these (or your system's equivalents) are installed: ${packages[*]}"
fi

command -v cmake >/dev/null 2>&1 || die "cmake is not installed"

cd "$root"
say "configuring $build_dir ($build_type)"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type"
say "building $build_dir with $jobs jobs"
cmake --build "$build_dir" -j "$jobs"
say "done: the program is $build_dir/apps/untangle"
