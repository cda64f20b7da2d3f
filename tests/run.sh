#!/usr/bin/env bash
# tests/run.sh: the whole test suite, and what CI runs. Builds build/ and
# build-asan/ (jobs/setup.sh --asan), runs every ctest test in build/, then the
# fast "unit" tests under ASan/UBSan; ends with "tests: N passed, M failed"
# and exits non-zero if anything failed. Honours DLM_BUILD_DIR like setup.sh.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# Same rule as jobs/setup.sh.
build_dir=${DLM_BUILD_DIR:-$repo/build}
[[ $build_dir == /* ]] || build_dir=$PWD/$build_dir
if [[ -n ${DLM_BUILD_DIR:-} ]]; then asan_dir=$build_dir-asan; else asan_dir=$repo/build-asan; fi

# Open MPI's mpiexec refuses to run as root unless told; CI runs as root.
if [[ $EUID -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
  export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
fi

log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

passed=0
failed=0
status=0
t_all=$SECONDS

# ---- stage 1: build both trees ----
t0=$SECONDS
echo "tests: stage setup: jobs/setup.sh --asan --slurm"
if ! bash "$repo/jobs/setup.sh" --asan --slurm; then
  echo "tests: stage setup FAILED after $((SECONDS - t0)) s"
  echo "tests: 0 passed, 0 failed (the build failed, no tests ran)"
  exit 1
fi
echo "tests: stage setup took $((SECONDS - t0)) s"

# run_ctest <stage name> <ctest arguments...>: runs ctest, adds its counts to
# the totals from the closing line "NN% tests passed, F tests failed out of T".
run_ctest() {
  local name=$1
  shift
  local log=$log_dir/$name.log rc=0 t0=$SECONDS line
  echo "tests: stage $name: ctest $*"
  ctest "$@" 2>&1 | tee "$log" || rc=$?
  line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1 || true)
  if [[ $line =~ ([0-9]+)\ tests?\ failed\ out\ of\ ([0-9]+) ]]; then
    failed=$((failed + BASH_REMATCH[1]))
    passed=$((passed + BASH_REMATCH[2] - BASH_REMATCH[1]))
  else
    echo "tests: stage $name: ctest printed no summary (exit $rc): this stage FAILED"
    ((rc)) || rc=1
  fi
  ((rc == 0)) || status=1
  echo "tests: stage $name took $((SECONDS - t0)) s (ctest exit $rc)"
}

# ---- stage 2: everything, normal build (tests pin 1 BLIS/OpenMP thread each) ----
run_ctest all --test-dir "$build_dir" --output-on-failure --no-tests=error -j2

# ---- stage 3: the fast tests under the sanitizers ----
run_ctest asan-unit --test-dir "$asan_dir" -L unit --output-on-failure --no-tests=error -j2

echo "tests: total $((SECONDS - t_all)) s"
echo "tests: $passed passed, $failed failed"
exit "$status"
