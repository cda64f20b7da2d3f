#!/usr/bin/env bash
# jobs/setup.sh [--asan] [--slurm]: get a machine ready to run dlm. Installs the missing
# Debian 12 packages (as root) or lists them for an admin, then builds into
# build/ (Release) and, with --asan, into build-asan/ (ASan + UBSan).
# Run it on a login node, not inside a batch job.
#
# Environment: DLM_BUILD_DIR overrides build/ (the sanitizer build then goes
# to "$DLM_BUILD_DIR-asan"); DLM_CMAKE_ARGS adds CMake options, e.g.
# DLM_CMAKE_ARGS=-DDLM_PORTABLE=ON when login and compute nodes differ.
set -euo pipefail

# Every Debian package dlm builds and runs against (gcc's ASan/UBSan runtimes
# come with build-essential, so --asan needs nothing more).
DLM_PACKAGES=(
  build-essential cmake pkg-config
  openmpi-bin libopenmpi-dev
  libblis-openmp-dev libscalapack-openmpi-dev libhdf5-openmpi-dev
  libconfig-dev libjson-c-dev librandom123-dev libcunit1-dev
  python3 python3-numpy python3-scipy python3-h5py python3-matplotlib   # analysis/ and its fit tests
)
# --slurm: the Slurm tests' local cluster (a cluster's own Slurm needs nothing from here)
DLM_SLURM_PACKAGES=(slurm-wlm munge)

usage() {
  echo "usage: jobs/setup.sh [--asan] [--slurm]"
  echo "  installs missing Debian packages (as root) and builds dlm into build/;"
  echo "  --asan also builds build-asan/ with AddressSanitizer and UBSan;"
  echo "  --slurm also installs Slurm and munge for the tests' local cluster"
}

asan=0
while (($#)); do
  case $1 in
    --asan) asan=1 ;;
    --slurm) DLM_PACKAGES+=("${DLM_SLURM_PACKAGES[@]}") ;;
    -h | --help) usage; exit 0 ;;
    *) echo "setup: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
build_dir=${DLM_BUILD_DIR:-$repo/build}
[[ $build_dir == /* ]] || build_dir=$PWD/$build_dir
if [[ -n ${DLM_BUILD_DIR:-} ]]; then asan_dir=$build_dir-asan; else asan_dir=$repo/build-asan; fi
read -r -a cmake_extra <<<"${DLM_CMAKE_ARGS:-}"
# GNU nproc reports OMP_NUM_THREADS when it is set; count the usable cores instead.
njobs=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 2)

# ---- packages ----
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${DLM_PACKAGES[@]}"; do
    # shellcheck disable=SC2016  # ${db:...} is a dpkg-query field, not a shell expansion
    if ! dpkg-query -W -f='${db:Status-Status}\n' "$pkg" 2>/dev/null | grep -qx installed; then
      missing+=("$pkg")
    fi
  done
else
  echo "setup: no dpkg-query (not Debian?): skipping the package check; CMake names anything missing" >&2
fi

if ((${#missing[@]})); then
  if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  else
    {
      echo "setup: these Debian packages are missing and installing them needs root:"
      echo "  ${missing[*]}"
      echo "setup: ask a cluster admin to run"
      echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
      echo "setup: then run jobs/setup.sh again"
    } >&2
    exit 1
  fi
else
  echo "setup: all ${#DLM_PACKAGES[@]} required packages are installed"
fi

# ---- builds ----
build() { # build <dir> <cmake options...>
  local dir=$1
  shift
  echo "setup: configuring $dir"
  cmake -S "$repo" -B "$dir" "$@" "${cmake_extra[@]}"
  echo "setup: building $dir ($njobs jobs)"
  cmake --build "$dir" --parallel "$njobs"
}

build "$build_dir" -DCMAKE_BUILD_TYPE=Release
if ((asan)); then
  build "$asan_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDLM_SANITIZE=ON
fi

progs=()
if [[ -d $build_dir/bin ]]; then
  shopt -s nullglob
  progs=("$build_dir"/bin/*)
  progs=("${progs[@]##*/}")
fi
if ((${#progs[@]})); then
  echo "setup: programs are in $build_dir/bin: ${progs[*]}"
else
  echo "setup: programs go to $build_dir/bin (none built yet: there is no jobs/*.c)"
fi
if ((asan)); then
  echo "setup: sanitizer build is in $asan_dir"
fi
