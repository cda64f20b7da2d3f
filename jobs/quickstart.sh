#!/usr/bin/env bash
# jobs/quickstart.sh [dlm-train options...]: the first command a new user runs.
# Builds dlm (jobs/setup.sh), then trains briefly with each objective on the
# built-in synthetic source: masked diffusion (mdlm), then autoregressive (ar).
# Extra arguments are passed to both runs, after the defaults.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
bash "$repo/jobs/setup.sh"

# Same rule as jobs/setup.sh.
build_dir=${DLM_BUILD_DIR:-$repo/build}
[[ $build_dir == /* ]] || build_dir=$PWD/$build_dir
train=$build_dir/bin/dlm-train
if [[ ! -x $train ]]; then
  echo "quickstart: $train was not built (is jobs/train.c there?)" >&2
  exit 1
fi

# One rank using every core, unless the caller chose otherwise. (GNU nproc
# would echo OMP_NUM_THREADS back when set, hence the env -u.)
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$cores}
export BLIS_NUM_THREADS=${BLIS_NUM_THREADS:-$cores}

for objective in mdlm ar; do
  echo "quickstart: dlm-train --objective $objective --steps 300 $* (OMP_NUM_THREADS=$OMP_NUM_THREADS BLIS_NUM_THREADS=$BLIS_NUM_THREADS)"
  "$train" --objective "$objective" --steps 300 "$@"
done
echo "quickstart: done"
