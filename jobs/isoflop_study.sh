#!/usr/bin/env bash
# jobs/isoflop_study.sh: the scaling-law study in one command. Builds the
# default corpus if ./data/corpus does not verify, runs every run of the
# sweep file locally (`dlm-sweep run`, J at a time, one thread each; a rerun
# resumes where it stopped), collects sweep.h5 and writes the report
# (analysis/report.py: report.md and its figures in <sweep dir>/report).
# Run it from the folder that holds data/ and runs/.
#
#   jobs/isoflop_study.sh [--config FILE] [--jobs J] [--reps R]
#
# --config defaults to configs/isoflop-sweep.cfg (about an hour here with
# 2 jobs); --jobs to the number of cores; --reps sets the report's bootstrap
# replicates (1000). DLM_BUILD_DIR names the build folder (default build/).
# On a cluster, use `dlm-sweep submit` instead of this script's run step,
# then `dlm-sweep collect` and analysis/report.py as below.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
config=$repo/configs/isoflop-sweep.cfg
jobs=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
reps=1000
while (($#)); do
  case $1 in
    --config) config=$2; shift ;;
    --jobs) jobs=$2; shift ;;
    --reps) reps=$2; shift ;;
    -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "isoflop_study: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
source "$repo/jobs/lib.sh"
dlm_find_programs isoflop_study dlm-prepare dlm-train dlm-eval dlm-sweep
python=/usr/bin/python3
[[ -x $python ]] || python=python3
"$python" -c "import numpy, scipy, h5py, matplotlib" 2>/dev/null || {
  echo "isoflop_study: $python lacks numpy/scipy/h5py/matplotlib: run jobs/setup.sh" >&2; exit 1; }

dlm_default_corpus isoflop_study

# mpiexec as root needs these; one rank per run needs no more
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
"$bin/dlm-sweep" run "$config" --jobs "$jobs" --threads 1
collected=$("$bin/dlm-sweep" collect "$config" --strict 2>&1) || { echo "$collected" >&2; exit 1; }
echo "$collected"
sweep_h5=$(sed -n 's/^collect: .* -> \(.*\)$/\1/p' <<<"$collected" | tail -1)
[[ -f $sweep_h5 ]] || { echo "isoflop_study: collect named no sweep.h5" >&2; exit 1; }
"$python" "$repo/analysis/report.py" "$sweep_h5" --reps "$reps"
