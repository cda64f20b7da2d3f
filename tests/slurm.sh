#!/usr/bin/env bash
# tests/slurm.sh <case> <build dir> <work dir>: the sbatch scripts of slurm/
# on a real one-node cluster (slurm/local-cluster.sh), one case per ctest
# entry; up and down bring the cluster up and always down (ctest fixtures).
#   chain      a tp2 training job (2 tasks) and an eval job that depends on
#              it (afterok): both complete; run.h5 holds the 6 steps, the
#              checkpoint is there, eval.h5 holds the checkpoint's group
#   time_limit once the first checkpoint exists, USR1 to the batch script
#              (as --signal=B:USR1@... does): the ranks checkpoint at the step
#              they reached, the script requeues, the job restarts once,
#              resumes at that step and finishes: run.h5's rows and the final
#              checkpoint those of an uninterrupted job, bit for bit
#   preempt    the same job preempted by one on the urgent partition: the
#              ranks checkpoint on Slurm's SIGTERM within the GraceTime,
#              Slurm requeues it (the script does not), the same bits
#   mpirun     the time-limit path with DLM_LAUNCH=mpirun: mpirun passes the
#              signal on, the same bits
#   failing    a bad config: the job ends FAILED with the error in its output,
#              and the eval job depending on it is cancelled, not left pending
#   sweep      dlm-sweep submit of a small sweep (2 budgets x 3 sizes, tiny
#              models): training and evaluation arrays and the collect job
#              run to the end, sweep.h5 holds all 6 runs done; submitting
#              again finds nothing to do
set -euo pipefail
case_name=$1 build=$(cd "$2" && pwd) work=$3
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=$work/cluster
cluster=$src/slurm/local-cluster.sh
fail() {
  echo "slurm $case_name: FAIL: $*"
  local jobs
  jobs=$(squeue -h -o %A 2>/dev/null || true) # so the next case starts on an empty node
  # shellcheck disable=SC2086
  [[ -z $jobs ]] || scancel --full $jobs 2>/dev/null || true
  exit 1
}
case $case_name in
up) mkdir -p "$work"; bash "$cluster" down "$state" >/dev/null 2>&1 || true
    rm -rf "$state"; bash "$cluster" up "$state"; echo "slurm up: ok"; exit 0 ;;
down) bash "$cluster" down "$state"; echo "slurm down: ok"; exit 0 ;;
esac
eval "$(bash "$cluster" env "$state")"
export DLM_BUILD=$build
rm -rf "${work:?}/$case_name"
mkdir -p "$work/$case_name"
cd "$work/$case_name"
digest=$build/tests/h5_digest print_losses=$build/tests/print_losses

small=(--set model.layers=2 --set model.width=32 --set model.heads=2 --set model.seq_len=32
       --set train.batch=4 --set train.warmup=1 --set train.val_chunks=4 --set parallel.tp=2)
# about 10 s of training: a signal after the first checkpoint lands mid-run
long=("${small[@]}" --set train.steps=12000 --set train.log_every=100 --set train.val_every=1000
      --set train.checkpoint_every=500 --set train.keep_checkpoints=100)

job_state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2; }
job_field() { scontrol show job "$1" 2>/dev/null | grep -o "$2=[^ ]*" | cut -d= -f2; }
# Waits (at most $2 s) until job $1 has ended; echoes its state.
wait_end() {
  local i s
  for ((i = 0; i < $2 * 2; i++)); do
    s=$(job_state "$1")
    case $s in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) echo "$s"; return ;; esac
    sleep 0.5
  done
  echo "STILL_${s:-UNKNOWN}"
}
# Submits the long run into folder $1 (more sbatch options after it).
submit_long() {
  local dir=$1
  shift
  sbatch --parsable -n 2 -c 1 -o "$dir.out" "$@" "$src/slurm/train.sbatch" "${long[@]}" \
    --set run.dir=\"$PWD/$dir\"
}
wait_file() { local i; for ((i = 0; i < 1200; i++)); do [[ -e $1 ]] && return; sleep 0.1; done; fail "no $1 after 120 s"; }
# The interrupted run in $1 against the straight run: it stopped at a step
# of its own and checkpointed there, restarted once, resumed there, and
# ends with the straight run's rows and final checkpoint.
check_resumed() {
  local dir=$1 jid=$2 step
  [[ $(job_field "$jid" Restarts) == 1 ]] || fail "$dir: job $jid restarted $(job_field "$jid" Restarts) times, expected 1"
  step=$(sed -n 's/.*stop requested: checkpointed at step \([0-9]*\).*/\1/p' "$dir.out" | head -1)
  [[ -n $step ]] || { cat "$dir.out"; fail "$dir: the ranks did not checkpoint on the signal"; }
  [[ -e $dir/checkpoints/step-$(printf %08d "$step").h5 ]] || fail "$dir: no checkpoint at step $step"
  grep -q "resuming from .*step-$(printf %08d "$step").h5 at step $step" "$dir.out" ||
    fail "$dir: the restart did not resume at step $step"
  "$print_losses" "$dir/run.h5" >"$dir.txt"
  diff -q straight.txt "$dir.txt" >/dev/null || fail "$dir: run.h5 rows differ from the uninterrupted job's"
  "$digest" "$dir/checkpoints/step-00012000.h5" --skip config >"$dir.final"
  diff -q straight.final "$dir.final" >/dev/null || fail "$dir: final checkpoint differs from the uninterrupted job's"
  echo "$dir: stopped at step $step, restarted once, the uninterrupted job's bits"
}
straight() {
  local jid
  jid=$(submit_long straight "$@")
  [[ $(wait_end "$jid" 120) == COMPLETED ]] || { cat straight.out; fail "the uninterrupted job did not complete"; }
  "$print_losses" straight/run.h5 >straight.txt
  "$digest" straight/checkpoints/step-00012000.h5 --skip config >straight.final
}

case $case_name in
chain)
  tj=$(sbatch --parsable -n 2 -c 1 -o train.out "$src/slurm/train.sbatch" "${small[@]}" \
    --set train.steps=6 --set train.log_every=2 --set run.dir=\"$PWD/run\")
  ej=$(sbatch --parsable -n 2 -c 1 -o eval.out --dependency=afterok:"$tj" "$src/slurm/eval.sbatch" \
    "$PWD/run" --tp 2 --chunks 8)
  [[ $(wait_end "$tj" 120) == COMPLETED ]] || { cat train.out; fail "training job $tj did not complete"; }
  [[ $(wait_end "$ej" 120) == COMPLETED ]] || { cat eval.out; fail "eval job $ej did not complete"; }
  "$print_losses" run/run.h5 >run.txt
  grep -q '^train/loss 6 ' run.txt || fail "run.h5 has no step 6"
  [[ -e run/checkpoints/step-00000006.h5 ]] || fail "no checkpoint at step 6"
  "$digest" run/checkpoints/eval.h5 >eval.digest
  grep -q '^/step-00000006_exact-k_ema group' eval.digest || fail "eval.h5 has no group of step 6"
  grep -q "2 ranks x 1 threads, launcher srun" train.out || fail "train.out: no start line"
  ;;
time_limit | mpirun)
  [[ $case_name == mpirun ]] && export DLM_LAUNCH=mpirun
  straight
  jid=$(submit_long cut)
  wait_file cut/checkpoints/step-00000500.h5
  scancel --batch --signal=USR1 "$jid"
  [[ $(wait_end "$jid" 180) == COMPLETED ]] || { cat cut.out; fail "the signalled job did not complete"; }
  grep -q "requeueing job $jid" cut.out || fail "the script did not requeue"
  grep -q "launcher ${DLM_LAUNCH:-srun}" cut.out || fail "cut.out: not launched by ${DLM_LAUNCH:-srun}"
  check_resumed cut "$jid"
  ;;
preempt)
  straight
  jid=$(submit_long pre)
  wait_file pre/checkpoints/step-00000500.h5
  uj=$(sbatch --parsable -p urgent -n 4 -o urgent.out --wrap "sleep 1")
  [[ $(wait_end "$jid" 240) == COMPLETED ]] || { cat pre.out; fail "the preempted job did not complete"; }
  [[ $(wait_end "$uj" 60) == COMPLETED ]] || fail "the urgent job did not run"
  grep -q "DUE TO PREEMPTION" pre.out || fail "job $jid was not preempted"
  ! grep -q "requeueing job" pre.out || fail "the script requeued a preempted job itself"
  check_resumed pre "$jid"
  ;;
failing)
  tj=$(sbatch --parsable -n 2 -c 1 -o bad.out "$src/slurm/train.sbatch" "${small[@]}" \
    --set train.lr=-1 --set run.dir=\"$PWD/bad\")
  ej=$(sbatch --parsable -n 1 -o bad-eval.out --dependency=afterok:"$tj" "$src/slurm/eval.sbatch" "$PWD/bad")
  [[ $(wait_end "$tj" 60) == FAILED ]] || fail "job $tj did not end FAILED"
  grep -q "train.lr" bad.out || { cat bad.out; fail "the error is not in the job's output"; }
  [[ $(wait_end "$ej" 60) == CANCELLED ]] || fail "the dependent job $ej is $(job_state "$ej"), not CANCELLED"
  ;;
sweep)
  cat >sweep.cfg <<EOF
sweep = { name = "ci"; dir = "$PWD/runs"; objectives = ["mdlm"]; budgets = [1e10, 2e10];
          sizes = 3; min_sizes = 3; checkpoints = 2; };
shape = { head_dim = 8; };
time = { overhead_s = 30.0; };
submit = { throttle = 2; };
eval = { chunks = 8; K = 2; };
EOF
  "$build/bin/dlm-sweep" submit sweep.cfg >submit.out 2>&1 || { cat submit.out; fail "dlm-sweep submit failed"; }
  cj=$(sed -n 's/.*collect: job \([0-9]*\) writes.*/\1/p' submit.out)
  [[ -n $cj ]] || { cat submit.out; fail "no collect job in dlm-sweep submit's output"; }
  [[ $(wait_end "$cj" 300) == COMPLETED ]] || { cat submit.out runs/slurm/*.out; fail "collect job $cj did not complete"; }
  grep -q "collect: 6 of 6 runs done" runs/slurm/ci-collect-"$cj".out ||
    { cat runs/slurm/*.out; fail "collect did not find the 6 runs done"; }
  [[ -e runs/sweep.h5 ]] || fail "no sweep.h5"
  "$build/bin/dlm-sweep" status sweep.cfg | grep -c '^done ' | grep -qx 6 || fail "status does not list 6 done"
  "$build/bin/dlm-sweep" submit sweep.cfg | grep -q "nothing to submit" || fail "a second submit found work"
  ;;
*) fail "unknown case" ;;
esac
echo "slurm $case_name: ok"
