#!/usr/bin/env bash
# tests/sweep_local.sh <case> <build dir> <work dir>: dlm-sweep without Slurm.
#   plan_configs  every configs/*sweep*.cfg plans (against a small stand-in
#                 for its data), with rows of both mdlm and ar, and plan.h5
#   local         `dlm-sweep run` of 1 budget x 3 sizes x 2 objectives, 2 runs
#                 side by side: all done; run again: nothing to run;
#                 collect --strict: 6 of 6 done, sweep.h5 written; a run
#                 whose folder is removed is then named missing, and
#                 collect --strict fails; `submit --dry-run` prints the
#                 array (throttled), the evaluation array after it
#                 (aftercorr, cancelled on a failed training) and the
#                 collect job (afterany) for the one missing run only
set -euo pipefail
case_name=$1 build=$(cd "$2" && pwd) work=$3
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
sweep=$build/bin/dlm-sweep
fail() { echo "sweep $case_name: FAIL: $*"; exit 1; }
rm -rf "${work:?}/$case_name"
mkdir -p "$work/$case_name"
cd "$work/$case_name"
case $case_name in
plan_configs)
  n=0
  # the corpus the configs name, stood in for by a small byte-level shard set
  "$build/bin/dlm-prepare" synthetic --out data/corpus --name debian --tokens 200000 --seq-len 32 >/dev/null
  for f in "$src"/configs/*sweep*.cfg; do
    "$sweep" plan "$f" --set "sweep.dir=\"$PWD/plan$n\"" >plan$n.txt 2>&1 || { cat plan$n.txt; fail "$f does not plan"; }
    grep -q '^mdlm' plan$n.txt || fail "$f plans no mdlm run"
    grep -q '^ar_' plan$n.txt || fail "$f plans no ar run"
    [[ -s plan$n/plan.h5 ]] || fail "$f: no plan.h5"
    n=$((n + 1))
  done
  ((n >= 1)) || fail "configs/ holds no *sweep*.cfg"
  ;;
local)
  cat >sweep.cfg <<CFG
sweep = { name = "local"; dir = "$PWD/runs"; objectives = ["mdlm", "ar"]; budgets = [1e10];
          sizes = 3; min_sizes = 3; checkpoints = 2; };
shape = { head_dim = 8; };
eval = { chunks = 8; K = 2; };
CFG
  "$sweep" run sweep.cfg --jobs 2 --threads 1 >run1.txt 2>&1 || { cat run1.txt runs/*/run.log; fail "the first run failed"; }
  grep -q "6 runs, 0 done, 6 to run, 2 at a time" run1.txt || { cat run1.txt; fail "run did not plan 6 runs"; }
  [[ $(grep -c '\] done ' run1.txt) == 6 ]] || { cat run1.txt; fail "not 6 runs done"; }
  "$sweep" run sweep.cfg --jobs 2 >run2.txt 2>&1 || { cat run2.txt; fail "the second run failed"; }
  grep -q "6 runs, 6 done, 0 to run" run2.txt || { cat run2.txt; fail "the second run did not skip the finished runs"; }
  "$sweep" collect sweep.cfg --strict >collect.txt 2>&1 || { cat collect.txt; fail "collect --strict failed"; }
  grep -q "collect: 6 of 6 runs done" collect.txt || fail "collect did not find 6 done"
  [[ -s runs/sweep.h5 ]] || fail "no sweep.h5"
  gone=$(find runs -maxdepth 1 -name "ar_*" | sort | head -1)
  rm -rf "$gone"
  ! "$sweep" collect sweep.cfg --strict >collect2.txt 2>&1 || fail "collect --strict passed with a run missing"
  grep -q "^missing $(basename "$gone"): not started" collect2.txt || { cat collect2.txt; fail "the missing run is not named"; }
  "$sweep" submit sweep.cfg --dry-run >submit.txt 2>&1 || { cat submit.txt; fail "submit --dry-run failed"; }
  grep -q "submit: 1 runs of sweep local in 1 group" submit.txt || { cat submit.txt; fail "submit --dry-run: not the 1 missing run"; }
  for want in "--array=0-0%4 --ntasks=1" "sweep-train.sbatch" "--dependency=aftercorr:JOB --kill-on-invalid-dep=yes" \
    "sweep-eval.sbatch --estimator exact-k --K 2 --chunks 8 --weights ema" "--dependency=afterany:JOB:JOB" \
    "sweep-collect.sbatch $PWD/sweep.cfg"; do
    grep -q -- "$want" submit.txt || { cat submit.txt; fail "submit --dry-run: no '$want'"; }
  done
  ;;
*) fail "unknown case" ;;
esac
echo "sweep $case_name: ok"
