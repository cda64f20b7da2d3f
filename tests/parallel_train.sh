#!/usr/bin/env bash
# tests/parallel_train.sh <case> <dlm-train> <dlm-prepare> <print_losses> <work dir> <mpiexec...>
# dlm-train as processes under mpiexec, one case per ctest entry:
#   dp         dp2 against serial from the same seed: step 1's loss equal to
#              the bit, every loss and gradient norm within relative 1e-5
#   resume     a stop seen by one rank only (--stop-at-step on rank 1 alone)
#              stops both at the same step with exit 75; resuming gives the
#              rows of a run straight through, bit for bit
#   signal     SIGTERM to rank 1 alone: every rank checkpoints and exits 75
#   one_rank_error  a shard missing on rank 1 only: all ranks end, one message
#   tp         tp2 against serial, untied and tied head: every loss and
#              gradient norm within relative 1e-5; stopped and resumed at tp2, the straight run's
#              rows bit for bit; its checkpoint resumes on one rank
#   muon       Muon at tp2 (Newton-Schulz by PSGEMM across the shards) within 1e-5
#              of serial Muon and unlike AdamW; resumed at tp2 bit for bit; its
#              checkpoint refused under AdamW; with ZeRO-1 refused naming both keys
#   pp         pp2 (one block per stage, 4 micro-batches, 1F1B) against
#              serial: step 1's loss equal to the bit, every loss, gradient
#              norm and held-out loss within relative 1e-5 (also with a tied
#              head); stopped and
#              resumed at pp2, the straight run's rows bit for bit; its
#              checkpoint resumes on one rank, and one rank's at pp2; tp2 x
#              pp2 within 1e-5 of serial, resumed bit for bit, its
#              checkpoint continued on one rank
#   bad_layout batch not divisible by dp x micro-batch, world size not
#              dp x tp x pp, a stage split that does not sum, tp not dividing the heads or the padded
#              vocabulary: one message
#              from rank 0, no hang
#   nonfinite  a loss that overflows at step 2, seen by both ranks after the
#              reductions: exit 1, one message (rank 0's), no MPI_Abort
#   checkpoint_layouts  a tp2 x pp2 checkpoint rewritten serially, that one
#              at tp2, no step between: every dataset, checksum and state
#              attribute the same bits (h5_digest, the config attribute
#              aside); resumed serially and at dp2 for 3 more steps, within
#              1e-5 of 6 serial steps
#   checkpoint_exact_resume  at dp2 x tp2 and at dp2: stopped and resumed,
#              and killed (SIGKILL of one rank) at injected points inside
#              checkpoint and run-file writes and at moments spread over
#              the run (at least 2 of 4 must land before it ends), then
#              resumed to the end: the straight run's rows and final
#              checkpoint, bit for bit
#   estimator_resume  mdlm's exact-k estimator (inverse proposal): dp2's step-1
#              loss the serial one to the bit, the rest within 1e-5; stopped
#              and resumed at dp2, the straight rows bit for bit
#   zero       ZeRO-1 at dp2, dp2 x tp2 and dp2 x pp2 against plain data parallelism with
#              clipping off: the same loss rows and final checkpoint
#              (params, EMA, moments) bit for bit; stopped and resumed at
#              dp2 with ZeRO-1, the straight rows bit for bit; its step-3
#              checkpoint resumed at dp4 with ZeRO-1 and on one rank within
#              1e-5 of plain dp2; at dp3 within
#              1e-5 of plain dp3; the saving printed
# The checkpoint and zero cases need H5_DIGEST (and checkpoint_layouts
# CKPT_RELAYOUT; tests/tools) in the environment.
set -euo pipefail
case_name=$1 train=$2 prepare=$3 print_losses=$4 work=$5
shift 5
mpiexec=("$@")
rm -rf "$work/$case_name"
mkdir -p "$work/$case_name"
cd "$work/$case_name"

fail() { echo "parallel_train $case_name: FAIL: $*"; exit 1; }
common=(--threads 1 --set model.layers=2 --set model.width=32 --set model.heads=2
        --set model.seq_len=32 --set train.batch=8 --set train.micro_batch=2
        --set train.warmup=2 --set train.val_chunks=8 --set train.grad_clip=1.0)

# relclose A B TOL: every row of two print_losses outputs within relative TOL
relclose() {
  paste -d' ' "$1" "$2" | awk -v tol="$3" '
    $1 != $5 || $2 != $6 { print "row mismatch: " $0; bad = 1; exit }
    { a = $4; b = $8; d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b;
      if (d > tol * m) { print "differs: " $1 " step " $2 ": " a " vs " b; bad = 1 } }
    END { exit bad }'
}

# A run of args at n ranks (n = 1: no mpiexec) into DIR, its rows to DIR.txt.
run_rows() {
  local n=$1 dir=$2
  shift 2
  if [[ $n == 1 ]]; then "$train" "$@" --set run.dir=\"$dir\" >"$dir.log"
  else "${mpiexec[@]}" -n "$n" "$train" "$@" --set run.dir=\"$dir\" >"$dir.log"; fi
  "$print_losses" "$dir/run.h5" >"$dir.txt"
}

# At n ranks, the run stopped after step 3 (exit 75) and resumed from that
# checkpoint gives the rows of the straight run in straight.txt, bit for bit.
stop_and_resume() {
  local n=$1 dir=$2 straight=$3
  shift 3
  set +e
  "${mpiexec[@]}" -n "$n" "$train" "$@" --set run.dir=\"$dir\" --stop-at-step 3 >"$dir-1.log" 2>&1
  local rc=$?
  set -e
  [[ $rc == 75 ]] || { cat "$dir-1.log"; fail "$dir: stop at step 3: exit $rc, expected 75"; }
  run_rows "$n" "$dir" "$@"
  grep -q "resuming from .*step-00000003.h5 at step 3" "$dir.log" || fail "$dir: did not resume at step 3"
  diff "$straight" "$dir.txt" || fail "$dir: resumed rows differ from the straight run's"
}

# One rank continues the 6-step run in dir to step 8: its checkpoint holds whole tensors.
one_rank_continues() {
  "$train" "${common[@]}" --set train.steps=8 --set train.log_every=1 --set run.dir=\"$1\" >"$1-one.log"
  grep -q "resuming from .*step-00000006.h5 at step 6" "$1-one.log" || fail "one rank did not resume $1"
}

# The final checkpoints of two runs hold the same bits (digests equal; the
# config attribute names each run folder).
same_final() {
  local ck=checkpoints/step-$(printf %08d "$3").h5
  "$H5_DIGEST" "$1/$ck" --skip config >"$1.final" && "$H5_DIGEST" "$2/$ck" --skip config >"$2.final" ||
    fail "no final checkpoint $ck in $1 or $2"
  diff -q "$1.final" "$2.final" >/dev/null || fail "$2's final checkpoint differs from $1's"
}

# At n ranks, rank r alone runs with the environment setting env (a
# DLM_FAULT point, where it SIGKILLs itself): the job must end, not hang.
fault_one() {
  local n=$1 dir=$2 r=$3 env=$4
  shift 4
  local cmd=() i
  for ((i = 0; i < n; i++)); do
    ((i > 0)) && cmd+=(:)
    cmd+=(-n 1)
    ((i == r)) && cmd+=(-x "$env")
    cmd+=("$train" "$@" --set run.dir=\"$dir\")
  done
  set +e
  timeout 120 "${mpiexec[@]}" "${cmd[@]}" >>"$dir.kills.log" 2>&1
  local rc=$?
  set -e
  [[ $rc != 0 && $rc != 124 ]] || fail "$dir: rank $r with $env: exit $rc (0: the point was not reached; 124: hung)"
}

# At n ranks, SIGKILL of rank r alone ms milliseconds after its process
# appears (if the run has not ended by then; landed counts the kills
# made): the job must end, not hang.
landed=0
kill_one_at() {
  local n=$1 dir=$2 r=$3 ms=$4
  shift 4
  timeout 120 "${mpiexec[@]}" -n "$n" "$train" "$@" --set run.dir=\"$dir\" >>"$dir.kills.log" 2>&1 &
  local job=$! p victim="" i
  for ((i = 0; i < 400; i++)); do
    for p in $(pgrep -f "run.dir=\"$dir\"\$" || true); do
      tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$r" && victim=$p
    done
    [[ -z $victim ]] || break
    sleep 0.01
  done
  sleep "$(awk -v ms="$ms" 'BEGIN { print ms / 1000 }')"
  [[ -n $victim ]] && kill -9 "$victim" 2>/dev/null && landed=$((landed + 1))
  set +e
  wait "$job"
  local rc=$?
  set -e
  [[ $rc != 124 ]] || fail "$dir: hung after rank $r was killed"
}

# Runs dir to its end at n ranks, resuming.
finish_run() {
  local n=$1 dir=$2
  shift 2
  "${mpiexec[@]}" -n "$n" "$train" "$@" --set run.dir=\"$dir\" >"$dir.log" 2>&1 ||
    { cat "$dir.log"; fail "$dir did not finish"; }
  "$print_losses" "$dir/run.h5" >"$dir.txt"
}

case $case_name in
estimator_resume)
  # exact-k with the inverse proposal: the draws keyed by global sample
  # index, so dp2's step-1 loss is the serial one to the bit; stopped and
  # resumed at dp2, the straight run's rows bit for bit
  args=("${common[@]}" --set train.steps=6 --set train.log_every=1 --set train.checkpoint_every=3
        --set objective.estimator=\"exact-k\" --set objective.k_proposal=\"inverse\")
  run_rows 1 serial "${args[@]}"
  run_rows 2 dp2 "${args[@]}" --set parallel.dp=2
  s1=$(grep '^train/loss 1 ' serial.txt); d1=$(grep '^train/loss 1 ' dp2.txt)
  [[ -n $s1 && "$s1" == "$d1" ]] || fail "step 1 loss differs: '$s1' vs '$d1'"
  relclose dp2.txt serial.txt 1e-5 || fail "dp2 beyond 1e-5 of serial"
  stop_and_resume 2 split dp2.txt "${args[@]}" --set parallel.dp=2
  ;;
zero)
  args=("${common[@]}" --set train.steps=6 --set train.log_every=1 --set train.checkpoint_every=3
        --set train.grad_clip=0 --set train.ema_decay=0.99)
  for layout in dp2 dp2tp2 dp2pp2; do
    case $layout in
    dp2) n=2 lay=(--set parallel.dp=2) ;;
    dp2tp2) n=4 lay=(--set parallel.dp=2 --set parallel.tp=2) ;;
    dp2pp2) n=4 lay=(--set parallel.dp=2 --set parallel.pp=2) ;;
    esac
    run_rows "$n" "plain-$layout" "${args[@]}" "${lay[@]}"
    run_rows "$n" "zero-$layout" "${args[@]}" "${lay[@]}" --set parallel.zero=1
    grep -q "ZeRO-1 over 2 data-parallel ranks: rank 0 holds AdamW moments and EMA for" "zero-$layout.log" ||
      { cat "zero-$layout.log"; fail "no ZeRO-1 memory line"; }
    # the gradient norm is summed in another order under ZeRO-1; with clipping off it steers nothing
    diff <(grep -v grad_norm "plain-$layout.txt") <(grep -v grad_norm "zero-$layout.txt") ||
      fail "$layout: ZeRO-1 losses differ from plain data parallelism's"
    relclose "zero-$layout.txt" "plain-$layout.txt" 1e-6 || fail "$layout: gradient norms beyond 1e-6"
    same_final "plain-$layout" "zero-$layout" 6
  done
  stop_and_resume 2 zero-split zero-dp2.txt "${args[@]}" --set parallel.dp=2 --set parallel.zero=1
  same_final zero-dp2 zero-split 6
  # a ZeRO-1 checkpoint at dp2 resumed with ZeRO-1 at dp4 and on one rank
  set +e
  "${mpiexec[@]}" -n 2 "$train" "${args[@]}" --set parallel.dp=2 --set parallel.zero=1 \
    --set run.dir=\"zx\" --stop-at-step 3 >zx.log 2>&1
  rc=$?
  set -e
  [[ $rc == 75 ]] || { cat zx.log; fail "zx: stop at step 3: exit $rc"; }
  cp -r zx zx-dp4
  cp -r zx zx-serial
  run_rows 4 zx-dp4 "${args[@]}" --set parallel.dp=4 --set parallel.zero=1
  run_rows 1 zx-serial "${args[@]}"
  for d in zx-dp4 zx-serial; do
    grep -q "resuming from .*step-00000003.h5 at step 3" "$d.log" || fail "$d did not resume at step 3"
    relclose "$d.txt" plain-dp2.txt 1e-5 || fail "$d beyond 1e-5 of plain dp2"
  done
  three=("${args[@]}" --set train.batch=6 --set parallel.dp=3)
  run_rows 3 plain-dp3 "${three[@]}"
  run_rows 3 zero-dp3 "${three[@]}" --set parallel.zero=1
  relclose zero-dp3.txt plain-dp3.txt 1e-5 || fail "dp3: ZeRO-1 beyond 1e-5 of plain"
  ;;
checkpoint_layouts)
  args=("${common[@]}" --set train.log_every=1 --set train.checkpoint_every=3 --set train.ema_decay=0.99
        --set model.tied_head=true)
  ck=checkpoints/step-00000003.h5
  run_rows 4 tpp "${args[@]}" --set train.steps=3 --set parallel.tp=2 --set parallel.pp=2
  # tp2 x pp2 -> serial -> tp2, no step between
  "$CKPT_RELAYOUT" tpp serial-copy "${args[@]}" --set train.steps=3 >relayout-serial.log
  "${mpiexec[@]}" -n 2 "$CKPT_RELAYOUT" serial-copy tp2-copy "${args[@]}" --set train.steps=3 \
    --set parallel.tp=2 >relayout-tp2.log
  for d in tpp serial-copy tp2-copy; do "$H5_DIGEST" "$d/$ck" --skip config >"$d.digest"; done
  [[ $(grep -c '/adam_v/.*checksum' tpp.digest) -ge 20 ]] || fail "too few moment datasets in the digest"
  grep -q '^/ema/' tpp.digest || fail "no EMA group in the digest"
  diff tpp.digest serial-copy.digest || fail "the serial rewrite of the tp2 x pp2 checkpoint differs"
  diff tpp.digest tp2-copy.digest || fail "the tp2 rewrite of the serial copy differs"
  # the tp2 x pp2 checkpoint resumed serially and at dp2 for 3 more steps
  run_rows 1 straight "${args[@]}" --set train.steps=6
  cp -r tpp at-serial
  cp -r tpp at-dp2
  run_rows 1 at-serial "${args[@]}" --set train.steps=6
  run_rows 2 at-dp2 "${args[@]}" --set train.steps=6 --set parallel.dp=2
  for d in at-serial at-dp2; do
    grep -q "resuming from .*step-00000003.h5 at step 3" "$d.log" || fail "$d did not resume at step 3"
    [[ $(grep -c '^train/loss' "$d.txt") == 6 ]] || fail "$d: not 6 loss rows"
    relclose "$d.txt" straight.txt 1e-5 || fail "$d beyond 1e-5 of 6 serial steps"
  done
  ;;
checkpoint_exact_resume)
  args=("${common[@]}" --set train.steps=120 --set train.log_every=2 --set train.checkpoint_every=4
        --set train.keep_checkpoints=2 --set train.ema_decay=0.99)
  for layout in dp2tp2 dp2; do
    if [[ $layout == dp2tp2 ]]; then n=4 lay=(--set parallel.dp=2 --set parallel.tp=2); victim=2
    else n=2 lay=(--set parallel.dp=2); victim=1; fi
    t0=$(date +%s%N)
    run_rows "$n" "s-$layout" "${args[@]}" "${lay[@]}"
    run_ms=$((($(date +%s%N) - t0) / 1000000))
    stop_and_resume "$n" "r-$layout" "s-$layout.txt" "${args[@]}" "${lay[@]}"
    same_final "s-$layout" "r-$layout" 120
    # one rank killed inside the collective write of its second checkpoint,
    # the renaming rank before the rename, rank 0 in a run-file write
    k="k-$layout"
    fault_one "$n" "$k" "$victim" DLM_FAULT=ckpt.write:2 "${args[@]}" "${lay[@]}"
    fault_one "$n" "$k" 0 DLM_FAULT=ckpt.rename:1 "${args[@]}" "${lay[@]}"
    fault_one "$n" "$k" 0 DLM_FAULT=runfile.write:2 "${args[@]}" "${lay[@]}"
    # an I/O error on one rank inside the collective write ends the job, one message
    fault_one "$n" "$k" "$victim" DLM_FAULT=ckpt.write_error:3 "${args[@]}" "${lay[@]}"
    grep -q "^\[$victim\] dlm-train failed: .*writing dataset /params/" "$k.kills.log" &&
      grep -q "^checkpoint step [0-9]* not saved" "$k.kills.log" ||
      { tail -20 "$k.kills.log"; fail "$k: no message from rank $victim's failed write"; }
    # and at moments spread over start-up and training (fractions of the
    # straight run, from when the rank's process appears)
    landed=0
    for f in 5 15 30 45; do
      kill_one_at "$n" "$k" "$victim" $((run_ms * f / 100)) "${args[@]}" "${lay[@]}"
    done
    echo "$k: $landed of 4 random kills landed (straight run $run_ms ms)"
    [[ $landed -ge 2 ]] || fail "$k: only $landed random kills landed before the run ended"
    [[ -z $(ls "$k/checkpoints" | grep -v '^step-[0-9]*\.h5\(\.tmp\)\?$') ]] || fail "$k: stray files"
    finish_run "$n" "$k" "${args[@]}" "${lay[@]}"
    grep -q "resuming from" "$k.log" || fail "$k: the last start did not resume"
    diff "s-$layout.txt" "$k.txt" || fail "$k: rows differ from the straight run's"
    same_final "s-$layout" "$k" 120
  done
  ;;
dp)
  "$train" "${common[@]}" --set train.steps=6 --set train.log_every=1 --set run.dir=\"serial\" >serial.log
  "${mpiexec[@]}" -n 2 "$train" "${common[@]}" --set train.steps=6 --set train.log_every=1 \
    --set parallel.dp=2 --set run.dir=\"dp2\" >dp2.log
  grep -q "rank 1 (dp 1 tp 0 pp 0): host" dp2.log || fail "no placement line for rank 1"
  "$print_losses" serial/run.h5 >serial.txt
  "$print_losses" dp2/run.h5 >dp2.txt
  [[ $(grep -c . serial.txt) -ge 12 ]] || fail "too few rows in serial.txt"
  s1=$(grep '^train/loss 1 ' serial.txt); d1=$(grep '^train/loss 1 ' dp2.txt)
  [[ "$s1" == "$d1" ]] || fail "step 1 loss differs: '$s1' vs '$d1'"
  relclose dp2.txt serial.txt 1e-5 || fail "losses or gradient norms beyond 1e-5"
  ;;
tp)
  args=("${common[@]}" --set train.steps=6 --set train.log_every=1 --set train.checkpoint_every=2)
  run_rows 1 serial "${args[@]}"
  run_rows 2 tp2 "${args[@]}" --set parallel.tp=2
  relclose tp2.txt serial.txt 1e-5 || fail "tp2 losses or gradient norms beyond 1e-5 of serial"
  # the tied head stays tied: wte's vocabulary shard is also the head's
  run_rows 1 serial-tied "${args[@]}" --set model.tied_head=true
  run_rows 2 tp2-tied "${args[@]}" --set model.tied_head=true --set parallel.tp=2
  relclose tp2-tied.txt serial-tied.txt 1e-5 || fail "tied tp2 beyond 1e-5 of serial"
  stop_and_resume 2 split tp2.txt "${args[@]}" --set parallel.tp=2
  one_rank_continues split
  ;;
muon)
  # Muon (Newton-Schulz by PSGEMM across the tp shards) against serial Muon;
  # its momentum lives in the checkpoint's moments, so a resume is exact;
  # with ZeRO-1 it is refused before any work, naming both keys
  args=("${common[@]}" --set train.steps=6 --set train.log_every=1 --set train.checkpoint_every=3
        --set train.optimizer=\"muon\")
  run_rows 1 serial "${args[@]}"
  grep -q "optimizer: Muon .* ScaLAPACK's BLAS: .*blis" serial.log || { cat serial.log; fail "no Muon line naming BLIS"; }
  run_rows 2 tp2 "${args[@]}" --set parallel.tp=2
  grep -q "PSGEMM across the tp shards" tp2.log || { cat tp2.log; fail "tp2 did not run Newton-Schulz across the shards"; }
  relclose tp2.txt serial.txt 1e-5 || fail "Muon at tp2 beyond 1e-5 of serial"
  run_rows 1 adamw "${common[@]}" --set train.steps=6 --set train.log_every=1
  ! diff -q adamw.txt serial.txt >/dev/null || fail "Muon's rows equal AdamW's: Muon did not run"
  stop_and_resume 2 split tp2.txt "${args[@]}" --set parallel.tp=2
  set +e
  out=$("$train" "${args[@]}" --set train.steps=8 --set train.optimizer=\"adamw\" --set run.dir=\"split\" 2>&1)
  set -e
  grep -q "was written by train.optimizer = \"muon\", but this run sets \"adamw\"" <<<"$out" ||
    { echo "$out"; fail "a Muon checkpoint resumed under AdamW was not refused"; }
  set +e
  out=$("${mpiexec[@]}" -n 2 "$train" "${args[@]}" --set parallel.dp=2 --set parallel.zero=1 \
        --set run.dir=\"zero\" 2>&1)
  set -e
  grep -q "parallel.zero = 1 (ZeRO-1) shards the optimizer .* train.optimizer = \"muon\" needs" <<<"$out" ||
    { echo "$out"; fail "Muon with ZeRO-1 was not refused"; }
  ;;
pp)
  args=("${common[@]}" --set train.steps=6 --set train.log_every=1 --set train.checkpoint_every=2
        --set train.val_every=2)
  run_rows 1 serial "${args[@]}"
  run_rows 2 pp2 "${args[@]}" --set parallel.pp=2
  grep -q "pipeline over 2 stages (stage 0: embedding, blocks 0-0, stage 1: blocks 1-1, head): 4 micro-batches" pp2.log ||
    { cat pp2.log; fail "no pipeline line"; }
  grep -q "stage 0 held at most 2 micro-batches (1F1B bound: 2)" pp2.log || { cat pp2.log; fail "no high-water mark of 2"; }
  grep -q '^val/' serial.txt || fail "no validation rows"
  s1=$(grep '^train/loss 1 ' serial.txt); p1=$(grep '^train/loss 1 ' pp2.txt)
  [[ -n "$s1" && "$s1" == "$p1" ]] || fail "step 1 loss differs: '$s1' vs '$p1'"
  relclose pp2.txt serial.txt 1e-5 || fail "pp2 beyond 1e-5 of serial"
  # a tied head: the last stage's copy of the embedding, its gradient summed with the first's
  run_rows 1 serial-tied "${args[@]}" --set model.tied_head=true
  run_rows 2 pp2-tied "${args[@]}" --set model.tied_head=true --set parallel.pp=2
  relclose pp2-tied.txt serial-tied.txt 1e-5 || fail "tied pp2 beyond 1e-5 of serial"
  stop_and_resume 2 split pp2.txt "${args[@]}" --set parallel.pp=2
  # whole tensors in the checkpoint: one rank continues a pp2 run, pp2 a one-rank run
  one_rank_continues split
  "${mpiexec[@]}" -n 2 "$train" "${common[@]}" --set train.steps=8 --set train.log_every=1 \
    --set parallel.pp=2 --set run.dir=\"serial\" >serial-pp.log
  grep -q "resuming from .*step-00000006.h5 at step 6" serial-pp.log || fail "pp2 did not resume the serial run"
  # tp2 x pp2 (4 ranks): within 1e-5 of serial; stopped and resumed, its own rows bit for bit;
  # its checkpoint (each stage's tp shards assembled) resumes on one rank
  tpp=("${args[@]}" --set parallel.tp=2 --set parallel.pp=2)
  run_rows 4 tpp "${tpp[@]}"
  relclose tpp.txt serial.txt 1e-5 || fail "tp2 x pp2 beyond 1e-5 of serial"
  stop_and_resume 4 tpp-split tpp.txt "${tpp[@]}"
  one_rank_continues tpp
  ;;
resume)
  args=("${common[@]}" --set train.steps=10 --set train.log_every=1 --set train.checkpoint_every=4
        --set parallel.dp=2)
  "${mpiexec[@]}" -n 2 "$train" "${args[@]}" --set run.dir=\"straight\" >straight.log
  set +e
  "${mpiexec[@]}" -n 1 "$train" "${args[@]}" --set run.dir=\"split\" : \
                  -n 1 "$train" "${args[@]}" --set run.dir=\"split\" --stop-at-step 5 >split1.log 2>&1
  rc=$?
  set -e
  [[ $rc == 75 ]] || { cat split1.log; fail "stop on rank 1 only: exit $rc, expected 75"; }
  [[ -e split/checkpoints/step-00000005.h5 ]] || fail "no checkpoint at step 5"
  grep -q "stop requested: checkpointed at step 5" split1.log || fail "rank 0 did not stop at step 5"
  "${mpiexec[@]}" -n 2 "$train" "${args[@]}" --set run.dir=\"split\" >split2.log
  grep -q "resuming from .*step-00000005.h5 at step 5" split2.log || fail "did not resume at step 5"
  "$print_losses" straight/run.h5 >straight.txt
  "$print_losses" split/run.h5 >split.txt
  diff straight.txt split.txt || fail "resumed rows differ from the straight run"
  ;;
signal)
  # rank 1 sends itself SIGTERM once run.h5 exists (a few steps in); exec keeps its pid
  set +e
  timeout 120 "${mpiexec[@]}" -n 2 bash -c '
    if [[ ${OMPI_COMM_WORLD_RANK:-0} == 1 ]]; then
      (while [[ ! -e sig/run.h5 ]]; do sleep 0.05; done; kill -TERM $$) &
    fi
    exec "$0" "$@"' "$train" "${common[@]}" --set train.steps=1000000 --set train.log_every=2 \
      --set parallel.dp=2 --set run.dir=\"sig\" >sig.log 2>&1
  rc=$?
  set -e
  [[ $rc == 75 ]] || { cat sig.log; fail "SIGTERM to rank 1: exit $rc, expected 75"; }
  step=$(sed -n 's/.*stop requested: checkpointed at step \([0-9]*\).*/\1/p' sig.log)
  [[ -n $step ]] || fail "no stop line"
  [[ -e sig/checkpoints/step-$(printf %08d "$step").h5 ]] || fail "no checkpoint at step $step"
  ;;
one_rank_error)
  mkdir -p a b
  "$prepare" synthetic --out a --name s --kind iid --tokens 20000 >/dev/null
  cp a/s_val.bin a/s_val.json b/  # rank 1 (in b) has the validation shard, not the training one
  args=("${common[@]}" --set train.steps=4 --set data.source=shards --set data.train=\"s_train.bin\" --set data.val=\"s_val.bin\"
        --set parallel.dp=2 --set run.dir=\"r\")
  set +e
  timeout 120 "${mpiexec[@]}" -n 1 --wdir a "$train" "${args[@]}" : -n 1 --wdir b "$train" "${args[@]}" \
    >err.log 2>&1
  rc=$?
  set -e
  [[ $rc != 0 && $rc != 124 ]] || { cat err.log; fail "exit $rc (124: hung)"; }
  [[ $(grep -c "dlm-train failed" err.log) == 1 ]] || { cat err.log; fail "not exactly one failure message"; }
  grep -q "^\[1\] dlm-train failed: cannot open shard s_train.bin" err.log || { cat err.log; fail "rank 1's reason missing"; }
  ;;
bad_layout)
  set +e
  timeout 60 "${mpiexec[@]}" -n 2 "$train" "${common[@]}" --set parallel.dp=2 --set train.micro_batch=8 \
    >div.log 2>&1
  rc1=$?
  timeout 60 "${mpiexec[@]}" -n 2 "$train" "${common[@]}" --set parallel.dp=4 >size.log 2>&1
  rc2=$?
  timeout 60 "${mpiexec[@]}" -n 2 "$train" "${common[@]}" --set parallel.pp=2 --set "parallel.stage_layers=[2,1]" >pp.log 2>&1
  rc3=$?
  timeout 60 "${mpiexec[@]}" -n 2 "$train" "${common[@]}" --set parallel.tp=2 --set model.heads=1 >tp.log 2>&1
  rc4=$?
  # 3 heads of 16 and an MLP of 192 split over 3, but not the 320 padded ids
  timeout 60 "${mpiexec[@]}" -n 3 "$train" "${common[@]}" --set parallel.tp=3 --set model.heads=3 \
    --set model.width=48 >vocab.log 2>&1
  rc5=$?
  set -e
  for f in div size pp tp vocab; do
    [[ $(grep -c "dlm-train failed" $f.log) == 1 ]] || { cat $f.log; fail "$f: not exactly one message"; }
    grep -q "^\[0\] dlm-train failed" $f.log || fail "$f: the message is not rank 0's"
  done
  [[ $rc1 == 1 && $rc2 == 1 && $rc3 == 1 && $rc4 == 1 && $rc5 == 1 ]] ||
    fail "exit statuses $rc1 $rc2 $rc3 $rc4 $rc5, expected 1"
  grep -q "train.batch = 8 does not split over parallel.dp = 2 ranks in micro-batches of train.micro_batch = 8" div.log || fail "div: wrong reason"
  grep -q "but the job has 2 MPI ranks" size.log || fail "size: wrong reason"
  grep -q "parallel.stage_layers sums to 3 blocks, but model.layers = 2" pp.log || fail "pp: wrong reason"
  grep -q "parallel.tp = 2 must divide model.heads = 1" tp.log || fail "tp: wrong reason"
  grep -q "the padded vocabulary (320 ids) must be a multiple of the tensor-parallel size 3" vocab.log ||
    fail "vocab: wrong reason"
  ;;
nonfinite)
  set +e
  timeout 60 "${mpiexec[@]}" -n 2 "$train" "${common[@]}" --set parallel.dp=2 --set train.lr=1e30 \
    --set train.steps=6 --set train.warmup=1 --set run.dir=\"nf\" >nf.log 2>&1
  rc=$?
  set -e
  [[ $rc == 1 ]] || { cat nf.log; fail "exit $rc, expected 1"; }
  [[ $(grep -c "dlm-train failed" nf.log) == 1 ]] || { cat nf.log; fail "not exactly one message"; }
  grep -q "^\[0\] dlm-train failed: .*not finite at step 2" nf.log || { cat nf.log; fail "wrong message"; }
  ! grep -q "MPI_ABORT" nf.log || fail "the job was aborted instead of ending together"
  ;;
*) fail "unknown case" ;;
esac
echo "parallel_train $case_name: ok"
